"""`Synth`: generate notes, morphs and MIDI renders from any kind of model.

  synth = gansynth_tf2.load(path)   # native dir, exported SavedModel or Magenta dir
  waves = synth.generate([60, 64, 67], seed=0)        # float32 [N, audio_length]
  specs = synth.generate_specgrams([60], latents=z)   # float32 [N, H, W, C]
  waves, z, p = synth.interpolate(steps=9, seed=1, pitches=[60])  # a morph
  result = synth.render_midi('song.mid', secs_per_instrument=6, seed=0)

Latents default to standard normal draws of np.random.RandomState(seed), as
the original's generate scripts do (seed None: fresh random draws);
`truncation=psi` (0 < psi <= 1) scales the drawn latents towards the mean
latent 0 (more typical notes, less variety). `normalize_notes` is the per-note
gain `gansynth-generate` applies before writing 16-bit PCM (by default only
notes that would clip are scaled down); the returned waves are as generated.

Two implementations share the public surface of `SynthBase`:
  `Synth`                     Keras generator in process (this module)
  `export.SavedModelSynth`    an exported SavedModel (only TensorFlow needed)

`GenerationGraph` holds the pure-TF graph functions (generator with EMA
weights -> denormalize -> phase or Griffin-Lim inversion) used both in process
and by the SavedModel export, so the two compute the same thing.
"""

import functools
import inspect
import os
import time

import numpy as np
import tensorflow as tf

from gansynth_tf2 import interpolation
from gansynth_tf2 import midi
from gansynth_tf2 import magenta
from gansynth_tf2 import model_io
from gansynth_tf2 import spectral

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(_PACKAGE_DIR)
# The shipped model: in a checkout (or an editable install) under
# saved_models/, in a wheel or non-editable install under the package
# gansynth_tf2.saved_models (setup.cfg).
DEFAULT_MODEL_DIRS = (
    os.path.join(_REPO_ROOT, 'saved_models', 'gansynth_sf_cpu_fast'),
    os.path.join(_PACKAGE_DIR, 'saved_models', 'gansynth_sf_cpu_fast'),
)
VOCODERS = ('phase', 'griffin_lim')

# tf.function without autograph: the graph code has no data-dependent Python
# control flow, and autograph would convert Keras and numpy helpers (seconds).
graph_function = functools.partial(tf.function, autograph=False)
_function = graph_function
parse_pitches = midi.parse_pitches  # '60,64,67' / '48-60' -> [int]


def default_model_path():
  """The model shipped in saved_models/ (or $GANSYNTH_MODEL); raises if absent."""
  env = os.environ.get('GANSYNTH_MODEL')
  if env:
    return env
  for path in DEFAULT_MODEL_DIRS:
    if os.path.isdir(path):
      return path
  raise ValueError('no --model given and no shipped model found (looked in %s;'
                   ' set GANSYNTH_MODEL or pass a model path)' %
                   ', '.join(DEFAULT_MODEL_DIRS))


def check_truncation(truncation):
  """float in (0, 1], or raise."""
  try:
    t = float(truncation)
  except (TypeError, ValueError):
    t = float('nan')
  if not 0.0 < t <= 1.0:
    raise ValueError('truncation must be in (0, 1], got %r' % (truncation,))
  return t


def sample_latents(num, latent_size, seed=None, truncation=1.0):
  """float32 [num, latent_size] standard normal (RandomState(seed)) draws,
  scaled by `truncation` (the latent truncation trick: the mean latent is 0,
  so psi < 1 pulls the draws towards it, trading variety for typical notes;
  1.0 leaves them as drawn)."""
  t = check_truncation(truncation)
  try:
    rng = np.random.RandomState(seed)
  except (TypeError, ValueError):
    raise ValueError('seed must be None or an integer in [0, 2**32 - 1], got '
                     '%r' % (seed,)) from None
  z = rng.normal(size=(num, latent_size))
  return (z * t).astype(np.float32)  # x * 1.0 == x: psi 1 changes nothing


NOTE_NORMALIZATIONS = ('avoid_clipping', 'peak', 'none')


def normalize_notes(waves, mode='avoid_clipping', peak=0.9):
  """Per-note gain for writing notes as 16-bit PCM.

  Args:
    waves: float [N, T].
    mode: 'avoid_clipping' scales only the notes whose peak |x| is above
      `peak` down to `peak` (the others are left as generated); 'peak' scales
      every (non-silent) note to `peak`; 'none' leaves all notes as they are
      (16-bit PCM then clips what is outside [-1, 1]).
    peak: target peak level, in (0, 1].

  Returns:
    (float32 waves [N, T], gains float32 [N]).
  """
  if mode not in NOTE_NORMALIZATIONS:
    raise ValueError('note normalization must be one of %s, got %r' %
                     (', '.join(NOTE_NORMALIZATIONS), mode))
  peak = midi.check_peak(peak)
  waves = np.asarray(waves, np.float32)
  peaks = np.abs(waves.reshape(len(waves), -1)).max(axis=1, initial=0.0)
  scaled = {'avoid_clipping': peaks > peak, 'peak': peaks > 0.0,
            'none': np.zeros(len(waves), bool)}[mode]
  gains = np.where(scaled, peak / np.maximum(peaks, 1e-12),
                   1.0).astype(np.float32)
  shape = (len(waves),) + (1,) * (waves.ndim - 1)
  return waves * gains.reshape(shape), gains


def check_pitches(pitches, pitch_range):
  """int32 [N] MIDI numbers, all inside `pitch_range` (inclusive) or raise.

  The range is checked before the cast (no int32 wrap-around of huge values).
  """
  try:
    p = np.asarray(pitches)
  except ValueError:  # ragged nested lists
    p = np.asarray(None)
  if p.dtype.kind not in 'iuf':  # strings, None, bools, objects
    raise ValueError('pitches must be integer MIDI numbers, got %r' %
                     (pitches,))
  if p.ndim == 0:
    p = p[None]
  if p.ndim != 1 or p.size == 0:
    raise ValueError('pitches must be a non-empty list of MIDI numbers, got '
                     'shape %s' % (p.shape,))
  if p.dtype.kind == 'f' and not np.all(np.isfinite(p) & (p == np.round(p))):
    raise ValueError('pitches must be integers (MIDI numbers), got %s' %
                     p.tolist())
  lo, hi = pitch_range
  outside = (p < lo) | (p > hi)
  if np.any(outside):
    bad = sorted(set(int(x) for x in p[outside].tolist()))
    raise ValueError('pitch(es) %s outside the model\'s range %d..%d' %
                     (bad, lo, hi))
  return p.astype(np.int32)


def bfloat16_generator(generator):
  """A copy of `generator` computing in bfloat16 (weights kept in float32).

  Opt-in speed lever (approximate): Keras 'mixed_bfloat16' policy, so convs
  and activations run in bfloat16 while variables stay float32 (same values).
  """
  import keras  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  old = keras.config.dtype_policy()
  keras.config.set_dtype_policy('mixed_bfloat16')
  try:
    g16 = networks.Generator(generator.config, num_blocks=generator.num_blocks)
    g16.build_all()
  finally:
    keras.config.set_dtype_policy(old)
  networks.copy_weights(generator, g16, 'bfloat16 copy')
  return g16


class GenerationGraph:
  """Graph functions of one generator (traceable; no Python side effects).

    normalized(latents [B, L] f32, pitches [B] i32) -> [B, H, W, C] in [-1, 1]
    specgrams(latents, pitches)      -> denormalized [B, H, W, C]
    invert(specgrams)                -> waves [B, audio_length]
    waveforms(latents, pitches)      -> waves [B, audio_length]

  Args:
    config: the model's `Config`.
    generator: a `networks.Generator` holding the EMA weights.
    vocoder: 'phase' (the original's IF/phase -> STFT -> inverse STFT) or
      'griffin_lim' (Griffin-Lim on the generated magnitude only). Magnitude-
      only models always use Griffin-Lim.
    griffin_lim_iters: Griffin-Lim iterations.
    bfloat16: run the network in bfloat16 (inversion stays float32).
    xla: the functions will be XLA-compiled (the generator then takes its
      pixel norms with XLA-compilable ops).
  """

  def __init__(self, config, generator, vocoder='phase', griffin_lim_iters=64,
               bfloat16=False, xla=False):
    if vocoder not in VOCODERS:
      raise ValueError('vocoder must be one of %s, got %r' % (VOCODERS,
                                                              vocoder))
    if int(griffin_lim_iters) < 1:
      raise ValueError('griffin_lim_iters must be >= 1, got %r' %
                       griffin_lim_iters)
    self.config = config
    self.generator = generator
    self.vocoder = vocoder
    self.griffin_lim_iters = int(griffin_lim_iters)
    self.bfloat16 = bool(bfloat16)
    self.network = bfloat16_generator(generator) if bfloat16 else generator
    # Inference: the blend position is a constant (read now), so a generator
    # that offers `call(..., static_progress=p)` skips the blocks whose weight
    # is 0 (networks.Generator does).
    try:
      params = inspect.signature(self.network.call).parameters
    except (TypeError, ValueError):
      params = {}
    self._call_kwargs = {}
    if 'static_progress' in params:
      self._call_kwargs['static_progress'] = float(
          generator.progress.numpy())
    if xla and 'one_pass_norm' in params:
      # EuclideanNorm (the one-pass pixel norm) has no XLA kernel; XLA fuses
      # the Square + Mean form anyway.
      self._call_kwargs['one_pass_norm'] = False
    self.transform = config.spec_transform()
    self._if_inversion = (spectral.IFInversion(self.transform)
                          if self.transform.representation in ('mel', 'linear')
                          else None)
    self.normalizer = config.normalizer()
    self.pitch_range = config.pitch_range
    self.num_pitches = int(config.num_pitches)

  def normalized(self, latents, pitches):
    one_hot = tf.one_hot(pitches - self.pitch_range[0], self.num_pitches)
    out = self.network((latents, one_hot), **self._call_kwargs)
    return tf.cast(out, tf.float32)

  def specgrams(self, latents, pitches):
    return self.normalizer.denormalize(self.normalized(latents, pitches))

  def invert(self, specgrams):
    if (self.vocoder == 'griffin_lim' or
        self.transform.representation == 'magnitude'):
      magnitude = tf.exp(self.transform.log_magnitude(specgrams))
      return self.transform.griffin_lim(magnitude, self.griffin_lim_iters)
    if self._if_inversion is not None:
      return self._if_inversion(specgrams)
    return self.transform.specgrams_to_waves(specgrams)

  def waveforms(self, latents, pitches):
    return self.invert(self.specgrams(latents, pitches))


class SynthBase:
  """What every synth offers; subclasses run one batch (`_run_batch`).

  Attributes: latent_size, sample_rate, audio_length, pitch_range (lo, hi
  inclusive), batch_size, source (the path it came from), config (None for a
  SavedModel without one).
  """

  latent_size = None
  sample_rate = None
  audio_length = None
  pitch_range = None
  batch_size = 8
  source = None
  config = None
  vocoder = 'phase'

  # --- to implement ----------------------------------------------------------
  def _run_batch(self, kind, latents, pitches):
    """kind: 'waves', 'specgrams' or 'normalized' -> np.float32 array."""
    raise NotImplementedError

  def specgrams_to_waves(self, specgrams):
    """Denormalized specgrams [N, H, W, C] -> waves [N, audio_length]."""
    raise NotImplementedError

  # --- helpers ---------------------------------------------------------------
  @property
  def note_seconds(self):
    return self.audio_length / float(self.sample_rate)

  def describe(self):
    return ('%s (latent %d, pitches %d..%d, %d samples at %d Hz, vocoder %s)'
            % (self.source or type(self).__name__, self.latent_size,
               self.pitch_range[0], self.pitch_range[1], self.audio_length,
               self.sample_rate, self.vocoder))

  def check_pitches(self, pitches):
    return check_pitches(pitches, self.pitch_range)

  def _inputs(self, pitches, latents, seed, truncation=1.0):
    pitches = self.check_pitches(pitches)
    if latents is None:
      latents = sample_latents(len(pitches), self.latent_size, seed,
                               truncation)
    latents = np.asarray(latents, np.float32)
    if latents.ndim == 1:
      latents = latents[None]
    if latents.ndim != 2 or latents.shape[1] != self.latent_size:
      raise ValueError('latents must have shape [N, %d], got %s' %
                       (self.latent_size, latents.shape))
    if not np.all(np.isfinite(latents)):
      raise ValueError('latents must be finite numbers')
    if latents.shape[0] == 1 and len(pitches) > 1:
      latents = np.repeat(latents, len(pitches), axis=0)
    if len(pitches) == 1 and latents.shape[0] > 1:
      pitches = np.repeat(pitches, latents.shape[0])
    if latents.shape[0] != len(pitches):
      raise ValueError('%d latents for %d pitches' % (latents.shape[0],
                                                      len(pitches)))
    return latents, pitches

  def _batched(self, kind, latents, pitches, batch_size=None, progress=None):
    """Runs in batches; a partial last batch is padded when there are several
    (one shape for every call). A note's result depends on its batch only by
    float rounding (~1e-4 on waves: kernels are picked by batch size)."""
    bs = (self.batch_size if batch_size is None else
          interpolation.check_integer('batch_size', batch_size, 1))
    n = len(pitches)
    outs = []
    for i in range(0, n, bs):
      z, p = latents[i:i + bs], pitches[i:i + bs]
      real = len(p)
      if n > bs and real < bs:  # pad with copies of the first row
        z = np.concatenate([z, np.repeat(z[:1], bs - real, 0)], 0)
        p = np.concatenate([p, np.repeat(p[:1], bs - real, 0)], 0)
      outs.append(np.asarray(self._run_batch(kind, z, p),
                             np.float32)[:real])
      if progress is not None:
        progress(min(i + bs, n), n)
    return np.concatenate(outs, axis=0)

  # --- public API ------------------------------------------------------------
  def sample_latents(self, num, seed=None, truncation=1.0):
    """float32 [num, latent_size] standard normal (RandomState(seed)) draws,
    scaled by `truncation` (see the module function)."""
    return sample_latents(num, self.latent_size, seed, truncation)

  def generate(self, pitches, latents=None, seed=None, batch_size=None,
               progress=None, truncation=1.0):
    """Waveforms float32 [N, audio_length] for MIDI `pitches` [N].

    latents: [N, L] (or [L] / [1, L], shared by all notes); default
      RandomState(seed) normal draws, scaled by `truncation` (in (0, 1]; it
      does not touch given latents). progress: optional callable(done, total).
    """
    latents, pitches = self._inputs(pitches, latents, seed, truncation)
    return self._batched('waves', latents, pitches, batch_size, progress)

  def generate_specgrams(self, pitches, latents=None, seed=None,
                         normalized=False, batch_size=None, progress=None,
                         truncation=1.0):
    """Specgrams float32 [N, H, W, C] (denormalized unless `normalized`)."""
    latents, pitches = self._inputs(pitches, latents, seed, truncation)
    return self._batched('normalized' if normalized else 'specgrams',
                         latents, pitches, batch_size, progress)

  def interpolation_latents(self, steps, anchors=None, num_anchors=2,
                            seed=None, method='slerp', truncation=1.0):
    """[steps, L] latents morphing through anchors (given, or drawn and
    scaled by `truncation`)."""
    if anchors is None:
      num_anchors = interpolation.check_integer('num_anchors', num_anchors, 2)
      anchors = self.sample_latents(num_anchors, seed, truncation)
    anchors = np.asarray(anchors, np.float32)
    if anchors.ndim != 2 or anchors.shape[1] != self.latent_size:
      raise ValueError('anchors must have shape [N, %d], got %s' %
                       (self.latent_size, anchors.shape))
    return interpolation.interpolate(anchors, steps, method)

  def interpolate(self, steps, anchors=None, num_anchors=2, seed=None,
                  pitches=60, method='slerp', batch_size=None, progress=None,
                  truncation=1.0):
    """`steps` notes morphing between latent anchors.

    Args:
      steps: number of notes (>= 2); the first and last use the end anchors.
      anchors: [N >= 2, L] latents, or None to draw `num_anchors` from `seed`.
      pitches: one MIDI pitch for all notes, or `steps` pitches.
      method: 'slerp' or 'lerp'.
      truncation: scale of drawn anchors, in (0, 1] (see `sample_latents`).

    Returns:
      (waves [steps, audio_length], latents [steps, L], pitches [steps]).
    """
    z = self.interpolation_latents(steps, anchors, num_anchors, seed, method,
                                   truncation)
    p = np.asarray(pitches).reshape(-1)
    if p.size == 1:
      p = np.repeat(p, len(z))
    if p.size != len(z):
      raise ValueError('%d pitches for %d interpolation steps' % (p.size,
                                                                   len(z)))
    p = self.check_pitches(p)
    return self.generate(p, z, batch_size=batch_size, progress=progress), z, p

  def render_midi(self, midi_file, **kwargs):
    """Renders a MIDI file to one mixed wave; see `midi.render`."""
    return midi.render(self, midi_file, **kwargs)


class Synth(SynthBase):
  """Generation with a generator's EMA weights (Keras, in process).

  Args:
    config: the model's `Config`.
    generator: `networks.Generator` with the EMA weights.
    batch_size: notes per forward pass.
    source: where it came from (for messages).
    vocoder: 'phase' or 'griffin_lim' (see `GenerationGraph`).
    griffin_lim_iters: Griffin-Lim iterations.
    jit_compile: XLA-compile the graph functions.
    bfloat16: opt-in bfloat16 network (float32 inversion); approximate.
  """

  def __init__(self, config, generator, batch_size=8, source=None,
               vocoder='phase', griffin_lim_iters=64, jit_compile=False,
               bfloat16=False):
    self.config = config
    self.generator = generator
    self.batch_size = interpolation.check_integer('batch_size', batch_size, 1)
    self.source = source
    self.graph = GenerationGraph(config, generator, vocoder, griffin_lim_iters,
                                 bfloat16, xla=jit_compile)
    self.vocoder = vocoder
    self.jit_compile = bool(jit_compile)
    self.transform = self.graph.transform
    self.normalizer = self.graph.normalizer
    self.latent_size = int(config.latent_vector_size)
    self.sample_rate = int(config.sample_rate)
    self.audio_length = int(config.audio_length)
    self.pitch_range = config.pitch_range
    sig = [tf.TensorSpec([None, self.latent_size], tf.float32),
           tf.TensorSpec([None], tf.int32)]
    spec_sig = [tf.TensorSpec([None] + list(self.transform.spec_shape),
                              tf.float32)]
    jit = self.jit_compile or None
    graph = self.graph
    # The network and the inversion are traced once each; the composite
    # functions call them (with XLA, waves is one compiled cluster).
    normalized = _function(graph.normalized, input_signature=sig,
                             jit_compile=jit)
    self._invert_fn = _function(graph.invert, input_signature=spec_sig,
                                  jit_compile=jit)
    invert = self._invert_fn

    def specgrams(latents, pitches):
      return graph.normalizer.denormalize(normalized(latents, pitches))

    if self.jit_compile:
      waves = _function(graph.waveforms, input_signature=sig,
                          jit_compile=True)
    else:
      waves = _function(lambda z, p: invert(specgrams(z, p)),
                          input_signature=sig)
    self._fns = {
        'normalized': normalized,
        'specgrams': _function(specgrams, input_signature=sig),
        'waves': waves,
    }
    # Old attribute names (kept working).
    self._normalized_fn = self._fns['normalized']
    self._specgrams_fn = self._fns['specgrams']
    self._waves_fn = self._fns['waves']

  def _run_batch(self, kind, latents, pitches):
    return self._fns[kind](tf.constant(latents, tf.float32),
                           tf.constant(pitches, tf.int32)).numpy()

  def specgrams_to_waves(self, specgrams):
    """Denormalized specgrams [N, H, W, C] -> waves [N, audio_length]."""
    specgrams = spectral.check_float(
        specgrams, 'specgrams', (None,) + tuple(self.transform.spec_shape))
    return self._invert_fn(specgrams).numpy()


def load(path=None, batch_size=8, **kwargs):
  """A synth from a native model dir, a SavedModel dir or a Magenta dir.

  Without `path`, the model shipped in saved_models/ ($GANSYNTH_MODEL first).
  kwargs (vocoder, griffin_lim_iters, jit_compile, bfloat16) go to `Synth`;
  a SavedModel has its inversion baked in and accepts none of them.
  """
  batch_size = interpolation.check_integer('batch_size', batch_size, 1)
  if path is None:
    path = default_model_path()
  path = os.fspath(path)
  if not os.path.exists(path):
    raise ValueError('model path %s does not exist' % path)
  if model_io.is_model_dir(path):
    m = model_io.load_model_dir(path)
    return Synth(m['config'], m['generator_ema'], batch_size, source=path,
                 **kwargs)
  if os.path.isfile(os.path.join(path, 'saved_model.pb')):
    from gansynth_tf2 import export  # pylint: disable=g-import-not-at-top
    s = export.SavedModelSynth(path, batch_size=batch_size)
    # Its inversion and precision are baked in: options may only repeat them.
    m = s.metadata
    baked = {'vocoder': s.vocoder, 'jit_compile': bool(m.get('xla', False)),
             'bfloat16': bool(m.get('bfloat16', False))}
    if s.vocoder == 'griffin_lim':
      baked['griffin_lim_iters'] = int(m.get('griffin_lim_iters', 0))
    bad = ['%s=%r (export: %s)' % (k, v, baked.get(k, 'n/a'))
           for k, v in sorted(kwargs.items())
           if v not in (None, False) and baked.get(k) != v and
           not (k == 'griffin_lim_iters' and s.vocoder != 'griffin_lim')]
    if bad:
      raise ValueError('%s is an exported SavedModel: its inversion is fixed '
                       'at export time; %s differ (re-export with '
                       'gansynth-export instead)' % (path, ', '.join(bad)))
    return s
  if magenta.is_magenta_dir(path) or os.path.isfile(
      os.path.join(path, 'experiment.json')):
    m = magenta.load_magenta_checkpoint(path, load_discriminator=False)
    return Synth(m['config'], m['generator_ema'], batch_size, source=path,
                 **kwargs)
  raise ValueError('%s: not a gansynth_tf2 model dir (model.json), a '
                   'SavedModel (saved_model.pb) or an original GANSynth '
                   'checkpoint dir (experiment.json + stage_*/)' % path)


class Timer:
  """Wall-clock seconds since creation (for summaries)."""

  def __init__(self):
    self.start = time.perf_counter()

  def __call__(self):
    return time.perf_counter() - self.start
