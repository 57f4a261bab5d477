"""End-to-end SavedModel export (`gansynth-export`) and `SavedModelSynth`.

The SavedModel holds the generator's EMA weights and one graph per signature
(generator -> denormalize -> phase or Griffin-Lim inversion); loading it needs
only TensorFlow (`tf.saved_model.load`, TF Serving, `saved_model_cli`).

Signatures (all batch sizes; pitches are MIDI numbers, checked in the graph
against the model's range, an out-of-range pitch fails with
InvalidArgumentError):

  serving_default(latents f32 [B, L], pitches i32 [B])
      -> {'waveforms': f32 [B, audio_length]}
  specgrams(latents f32 [B, L], pitches i32 [B])
      -> {'specgrams': f32 [B, H, W, C] (denormalized),
          'normalized_specgrams': f32 [B, H, W, C] (generator output)}
  generate_from_seed(pitches i32 [B], seed i64 [])
      -> {'waveforms': f32 [B, audio_length], 'latents': f32 [B, L]}
      latents = tf.random.stateless_normal([B, L], seed=[seed, 0]) (NOT the
      numpy RandomState draws of `Synth.sample_latents`)
  specgrams_to_waveforms(specgrams f32 [B, H, W, C]) -> {'waveforms': ...}
  metadata() -> {'latent_size', 'min_pitch', 'max_pitch', 'sample_rate',
                 'audio_length', 'num_frames', 'num_bins', 'num_channels',
                 'vocoder', 'griffin_lim_iters', 'xla', 'bfloat16',
                 'format_version'}

`assets.extra/gansynth_export.json` repeats the metadata plus the model's
hparams (experiment.json values) and the verification figures.

Export style (tensorflow/models official/projects): a tf.Module that tracks
the variables, explicit concrete functions with named TensorSpecs, written to
a temporary folder, verified (the written variables restored into a fresh
module with `assert_existing_objects_matched()`, then every signature of the
reloaded SavedModel compared with the in-process model), then renamed into
place: a failed export leaves nothing behind.
"""

import json
import os

import numpy as np
import tensorflow as tf

from gansynth_tf2 import io_util
from gansynth_tf2 import spectral
from gansynth_tf2 import synth as synth_lib

FORMAT_VERSION = 1
EXTRA_JSON = os.path.join('assets.extra', 'gansynth_export.json')
SIGNATURES = ('serving_default', 'specgrams', 'generate_from_seed',
              'specgrams_to_waveforms', 'metadata')
# Op name prefixes that would need more than core TensorFlow to load.
FOREIGN_OP_PREFIXES = ('IO>', 'Addons>', 'Text>')
_function = synth_lib.graph_function


class ExportModule(tf.Module):
  """The serving module: the graph functions of a `GenerationGraph`.

  Args:
    graph: `synth.GenerationGraph` (generator, normalizer, transform, vocoder).
    jit_compile: XLA-compile the network + inversion (validation stays
      outside the compiled cluster so its errors stay readable).
  """

  def __init__(self, graph, jit_compile=False, name='gansynth'):
    super().__init__(name=name)
    self._graph = graph
    self._jit = bool(jit_compile)
    # Track the plain tf.Variables under the Keras variables (what the traced
    # functions capture). Tracking the Keras wrappers instead loads in TF2 but
    # not in a TF1 session (saved_model_cli run, TF Serving's TF1 loader).
    self.generator_variables = [_tf_variable(v)
                                for v in graph.network.variables]
    cfg = graph.config
    self.latent_size = int(cfg.latent_vector_size)
    self.pitch_lo, self.pitch_hi = (int(p) for p in cfg.pitch_range)
    spec_shape = list(graph.transform.spec_shape)
    self._spec_shape = spec_shape
    z_spec = tf.TensorSpec([None, self.latent_size], tf.float32,
                           name='latents')
    p_spec = tf.TensorSpec([None], tf.int32, name='pitches')
    s_spec = tf.TensorSpec([None] + spec_shape, tf.float32, name='specgrams')
    jit = True if self._jit else None
    # Core functions with fixed signatures: traced once, shared by every
    # signature (one copy of the network and of the inversion constants in
    # the function library).
    core_normalized = _function(graph.normalized, jit_compile=jit,
                                  input_signature=[z_spec, p_spec])
    core_invert = _function(graph.invert, jit_compile=jit,
                              input_signature=[s_spec])
    if self._jit:  # one XLA cluster for network + inversion
      core_waves = _function(graph.waveforms, jit_compile=True,
                               input_signature=[z_spec, p_spec])
    else:
      def core_waves(latents, pitches):
        specs = graph.normalizer.denormalize(core_normalized(latents, pitches))
        return core_invert(specs)

    def core_specs(latents, pitches):
      norm = core_normalized(latents, pitches)
      return graph.normalizer.denormalize(norm), norm

    @_function(input_signature=[z_spec, p_spec])
    def serve(latents, pitches):
      latents, pitches = self._validate(latents, pitches)
      return {'waveforms': tf.identity(core_waves(latents, pitches),
                                       name='waveforms')}

    @_function(input_signature=[z_spec, p_spec])
    def specgrams(latents, pitches):
      latents, pitches = self._validate(latents, pitches)
      specs, norm = core_specs(latents, pitches)
      return {'specgrams': specs, 'normalized_specgrams': norm}

    @_function(input_signature=[p_spec,
                                  tf.TensorSpec([], tf.int64, name='seed')])
    def generate_from_seed(pitches, seed):
      n = tf.shape(pitches)[0]
      latents = tf.random.stateless_normal(
          tf.stack([n, self.latent_size]),
          seed=tf.stack([seed, tf.constant(0, tf.int64)]))
      latents, pitches = self._validate(latents, pitches)
      return {'waveforms': core_waves(latents, pitches), 'latents': latents}

    @_function(input_signature=[s_spec])
    def specgrams_to_waveforms(specgrams):
      specgrams = tf.debugging.assert_all_finite(
          specgrams, 'specgrams must be finite')
      return {'waveforms': core_invert(specgrams)}

    meta = self.metadata_dict()

    @_function(input_signature=[])
    def metadata():
      return {k: tf.constant(v) for k, v in meta.items()}

    self.serve = serve
    self.specgrams = specgrams
    self.generate_from_seed = generate_from_seed
    self.specgrams_to_waveforms = specgrams_to_waveforms
    self.metadata = metadata

  def _validate(self, latents, pitches):
    lo, hi = self.pitch_lo, self.pitch_hi
    checks = [
        tf.debugging.assert_greater_equal(
            pitches, tf.constant(lo, tf.int32),
            message='pitches must be MIDI numbers in the model range '
                    '%d..%d' % (lo, hi)),
        tf.debugging.assert_less_equal(
            pitches, tf.constant(hi, tf.int32),
            message='pitches must be MIDI numbers in the model range '
                    '%d..%d' % (lo, hi)),
        tf.debugging.assert_equal(
            tf.shape(latents)[0], tf.shape(pitches)[0],
            message='latents and pitches must have the same batch size'),
        # A loaded signature does not enforce its declared latent width.
        tf.debugging.assert_equal(
            tf.shape(latents)[1], self.latent_size,
            message='latents must be [N, %d]' % self.latent_size),
    ]
    with tf.control_dependencies(checks):
      latents = tf.debugging.assert_all_finite(latents,
                                               'latents must be finite')
      return tf.identity(latents), tf.identity(pitches)

  def metadata_dict(self):
    g = self._graph
    t = g.transform
    return {
        'latent_size': self.latent_size,
        'min_pitch': self.pitch_lo,
        'max_pitch': self.pitch_hi,
        'sample_rate': int(t.sample_rate),
        'audio_length': int(t.audio_length),
        'num_frames': int(self._spec_shape[0]),
        'num_bins': int(self._spec_shape[1]),
        'num_channels': int(self._spec_shape[2]),
        'vocoder': g.vocoder if t.representation != 'magnitude'
                   else 'griffin_lim',
        'griffin_lim_iters': int(g.griffin_lim_iters),
        'xla': bool(self._jit),
        'bfloat16': bool(g.bfloat16),
        'format_version': FORMAT_VERSION,
    }

  def signatures(self):
    """Explicit concrete functions, one per signature name."""
    return {
        'serving_default': self.serve.get_concrete_function(),
        'specgrams': self.specgrams.get_concrete_function(),
        'generate_from_seed': self.generate_from_seed.get_concrete_function(),
        'specgrams_to_waveforms':
            self.specgrams_to_waveforms.get_concrete_function(),
        'metadata': self.metadata.get_concrete_function(),
    }


def _tf_variable(v):
  """The tf.Variable of a Keras 3 variable (or `v` itself)."""
  if isinstance(v, tf.Variable):
    return v
  value = getattr(v, 'value', None)
  if not isinstance(value, tf.Variable):
    raise ValueError('cannot export variable %r: no tf.Variable behind it' %
                     getattr(v, 'path', v))
  return value


def saved_model_op_names(export_dir):
  """Every op type in the SavedModel's graphs and function library."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  sm = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as f:
    sm.ParseFromString(f.read())
  ops = set()
  for mg in sm.meta_graphs:
    ops.update(n.op for n in mg.graph_def.node)
    for fn in mg.graph_def.library.function:
      ops.update(n.op for n in fn.node_def)
  return ops


def _max_abs(a, b):
  return float(np.max(np.abs(np.asarray(a, np.float64) -
                             np.asarray(b, np.float64))))


def verify_export(export_dir, module_factory, reference, probe_latents,
                  probe_pitches, tolerance=1e-3):
  """Checks a written SavedModel; raises ValueError on any mismatch.

  1. Its variables restore into a fresh module of the same structure with
     `assert_existing_objects_matched()` (nothing missing or misnamed).
  2. `tf.saved_model.load` it; every signature on a probe batch matches the
     in-process `reference` synth (max abs difference <= tolerance x
     max(1, peak of that output); normalized specgrams: <= tolerance).
  3. No op outside core TensorFlow (tensorflow-io and friends) in the graph.

  Returns:
    dict of figures (max abs differences per output).
  """
  fresh = module_factory()
  status = tf.train.Checkpoint(fresh).read(
      os.path.join(export_dir, 'variables', 'variables'))
  try:
    status.assert_existing_objects_matched()
  except AssertionError as e:
    raise ValueError('exported variables do not match the module: %s' %
                     str(e)[:300]) from None
  status.expect_partial()
  foreign = sorted(op for op in saved_model_op_names(export_dir)
                   if op.startswith(FOREIGN_OP_PREFIXES))
  if foreign:
    raise ValueError('exported graph uses ops outside core TensorFlow: %s' %
                     foreign)

  loaded = tf.saved_model.load(export_dir)
  missing = [s for s in SIGNATURES if s not in loaded.signatures]
  if missing:
    raise ValueError('exported SavedModel lacks signatures %s' % missing)
  z = tf.constant(probe_latents, tf.float32)
  p = tf.constant(probe_pitches, tf.int32)
  figures = {}
  ref_waves = reference.generate(probe_pitches, probe_latents)
  ref_specs = reference.generate_specgrams(probe_pitches, probe_latents)
  ref_norm = reference.generate_specgrams(probe_pitches, probe_latents,
                                          normalized=True)
  out = loaded.signatures['serving_default'](latents=z, pitches=p)
  figures['waveforms_max_abs_diff'] = _max_abs(out['waveforms'], ref_waves)
  out = loaded.signatures['specgrams'](latents=z, pitches=p)
  figures['specgrams_max_abs_diff'] = _max_abs(out['specgrams'], ref_specs)
  figures['normalized_max_abs_diff'] = _max_abs(out['normalized_specgrams'],
                                                ref_norm)
  out = loaded.signatures['specgrams_to_waveforms'](
      specgrams=tf.constant(ref_specs))
  figures['inversion_max_abs_diff'] = _max_abs(
      out['waveforms'], reference.specgrams_to_waves(ref_specs))
  seed_out = loaded.signatures['generate_from_seed'](
      pitches=p, seed=tf.constant(7, tf.int64))
  figures['seed_max_abs_diff'] = _max_abs(
      seed_out['waveforms'],
      reference.generate(probe_pitches, seed_out['latents'].numpy()))
  # Fresh module restored from the written variables == reference too.
  fresh_out = fresh.serve(z, p)['waveforms']
  figures['restored_variables_max_abs_diff'] = _max_abs(fresh_out, ref_waves)
  wave_scale = max(1.0, float(np.max(np.abs(ref_waves))))
  spec_scale = max(1.0, float(np.max(np.abs(ref_specs))))
  limits = {k: tolerance * wave_scale for k in figures}
  limits['specgrams_max_abs_diff'] = tolerance * spec_scale
  limits['normalized_max_abs_diff'] = tolerance
  bad = {k: v for k, v in figures.items() if not v <= limits[k]}
  if bad:
    raise ValueError('exported SavedModel differs from the in-process model: '
                     '%s (limits %s)' % (bad, {k: limits[k] for k in bad}))
  meta = {k: v.numpy() for k, v in loaded.signatures['metadata']().items()}
  if int(meta['latent_size']) != int(probe_latents.shape[1]):
    raise ValueError('exported metadata does not match the model')
  return figures


def generator_from_saved_model(path):
  """(config, EMA generator, metadata) of a SavedModel of `gansynth-export`.

  The hparams, block count, progress and metadata (what was baked in:
  vocoder, bfloat16, ...; {} when absent) come from its
  assets.extra/gansynth_export.json; the weights are restored from its
  variables into an `ExportModule` of the same structure
  (`assert_existing_objects_matched()`), so a re-export (another vocoder, XLA,
  bfloat16) starts from exactly the exported weights.
  """
  from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  path = os.fspath(path)
  extra = os.path.join(path, EXTRA_JSON)
  if not os.path.isfile(extra):
    raise ValueError('%s: SavedModel without %s (not written by '
                     'gansynth-export): its generator cannot be rebuilt' %
                     (path, EXTRA_JSON))
  try:
    with open(extra) as f:
      info = json.load(f)
    config = config_lib.Config(info['hparams'], strict=False)
    num_blocks = int(info['num_blocks'])
    progress = float(info['progress'])
    metadata = info.get('metadata')
    if not isinstance(metadata, dict):
      metadata = {}
  except (ValueError, KeyError, TypeError, OSError) as e:
    raise ValueError('%s: expected the hparams, num_blocks and progress of '
                     'the export (%s: %s)' % (extra, type(e).__name__,
                                              e)) from None
  if not 1 <= num_blocks <= config.num_resolutions:
    raise ValueError('%s: num_blocks=%d outside 1..%d' % (
        extra, num_blocks, config.num_resolutions))
  generator = networks.Generator(config, num_blocks=num_blocks).build_all()
  generator.set_progress(progress)
  module = ExportModule(synth_lib.GenerationGraph(config, generator))
  try:
    status = tf.train.Checkpoint(module).read(
        os.path.join(path, 'variables', 'variables'))
    status.assert_existing_objects_matched()
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError('%s: its variables do not match a generator of its '
                     'hparams (%s)' % (path, ' '.join(str(e).split())[:300])
                     ) from None
  status.expect_partial()
  return config, generator, metadata


def _check_rebuilt_generator(path, config, generator, bf16, latents,
                             pitches):
  """Max abs difference of the source SavedModel's generator output and the
  rebuilt one's (normalized specgrams, computed in the source's precision,
  bfloat16 when `bf16`); ValueError past float tolerance."""
  sig = tf.saved_model.load(path).signatures['specgrams']
  want = sig(latents=tf.constant(latents, tf.float32),
             pitches=tf.constant(pitches, tf.int32))['normalized_specgrams']
  rebuilt = synth_lib.Synth(config, generator, bfloat16=bf16)
  got = rebuilt.generate_specgrams(pitches, latents, normalized=True)
  diff = _max_abs(got, want)
  if not diff <= (5e-2 if bf16 else 1e-4):
    raise ValueError('%s: the generator rebuilt from its variables differs '
                     'from the SavedModel by %.3g' % (path, diff))
  return diff


def export_saved_model(model, output_dir, vocoder=None,
                       griffin_lim_iters=None, jit_compile=False,
                       bfloat16=None, verify=True):
  """Writes an end-to-end SavedModel of `model` to `output_dir`.

  Args:
    model: a native model dir, a Magenta checkpoint dir, a SavedModel of
      `gansynth-export` (re-exported from its weights), or a loaded synth.
    output_dir: SavedModel dir to write (replaced atomically when it is an
      earlier SavedModel or an empty folder; any other folder, or one that
      holds the model, is refused).
    vocoder: 'phase' or 'griffin_lim'; default: the Synth's or the source
      SavedModel's, else 'phase'.
    griffin_lim_iters: iterations of the Griffin-Lim vocoder; default: the
      Synth's or the source SavedModel's, else 64.
    jit_compile: XLA-compile the graph functions.
    bfloat16: opt-in bfloat16 network (approximate; inversion stays float32);
      default: the Synth's or the source SavedModel's, else False.
    verify: reload and compare (see `verify_export`).

  Returns:
    dict: output_dir, signatures, metadata, verification figures, size.
  """
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  baked = None  # a source SavedModel's metadata (what was baked in)
  if isinstance(model, synth_lib.Synth):
    config, generator, source = model.config, model.generator, model.source
    defaults = {'vocoder': model.graph.vocoder,
                'griffin_lim_iters': model.graph.griffin_lim_iters,
                'bfloat16': model.graph.bfloat16}
  else:
    path = os.fspath(model.source if isinstance(model, synth_lib.SynthBase)
                     else model)  # a SavedModelSynth: its folder
    # Refused before the (slow) load; atomic_dir checks again.
    io_util.check_output_dir(output_dir, 'saved_model.pb', protect=[path])
    defaults = {'vocoder': 'phase', 'griffin_lim_iters': 64,
                'bfloat16': False}
    if os.path.isfile(os.path.join(path, 'saved_model.pb')):
      config, generator, baked = generator_from_saved_model(path)
      # What was baked in, unless the arguments say otherwise.
      defaults = {k: baked.get(k, v) for k, v in defaults.items()}
    else:
      s = synth_lib.load(path)
      config, generator = s.config, s.generator
    source = path
  if vocoder is None:
    vocoder = defaults['vocoder']
  if griffin_lim_iters is None:
    griffin_lim_iters = int(defaults['griffin_lim_iters'])
  if bfloat16 is None:
    bfloat16 = bool(defaults['bfloat16'])
  protect = [source] if source and os.path.exists(source) else []
  graph = synth_lib.GenerationGraph(config, generator, vocoder,
                                    griffin_lim_iters, bfloat16,
                                    xla=jit_compile)
  module = ExportModule(graph, jit_compile)
  reference = synth_lib.Synth(config, generator, batch_size=8, source=source,
                              vocoder=vocoder,
                              griffin_lim_iters=griffin_lim_iters,
                              bfloat16=bfloat16)

  def module_factory():
    g = networks.Generator(config, num_blocks=generator.num_blocks).build_all()
    # The graph takes the progress as a constant when traced (static_progress).
    g.set_progress(float(generator.progress.numpy()))
    fresh = synth_lib.GenerationGraph(config, g, vocoder, griffin_lim_iters,
                                      bfloat16)
    return ExportModule(fresh, jit_compile=False)

  lo, hi = config.pitch_range
  probe_pitches = np.array([lo, (lo + hi) // 2, hi], np.int32)
  probe_latents = synth_lib.sample_latents(3, int(config.latent_vector_size),
                                           0)
  meta = module.metadata_dict()
  info = {'output_dir': os.path.abspath(output_dir), 'source': source,
          'signatures': list(SIGNATURES), 'metadata': meta}
  if verify and baked is not None:  # rebuilt from a SavedModel
    info['source_max_abs_diff'] = _check_rebuilt_generator(
        source, config, generator, bool(baked.get('bfloat16', False)),
        probe_latents, probe_pitches)
  with io_util.atomic_dir(output_dir, 'saved_model.pb', protect) as tmp:
    tf.saved_model.save(module, tmp, signatures=module.signatures())
    if verify:
      info['verification'] = verify_export(
          tmp, module_factory, reference, probe_latents, probe_pitches,
          tolerance=5e-2 if bfloat16 else 1e-3)
    extra = dict(info, hparams=config.to_dict(),
                 num_blocks=int(generator.num_blocks),
                 progress=float(generator.progress.numpy()))
    extra['output_dir'] = None  # the final path is not known to the model
    os.makedirs(os.path.join(tmp, 'assets.extra'), exist_ok=True)
    with open(os.path.join(tmp, EXTRA_JSON), 'w') as f:
      json.dump(extra, f, indent=1, default=_json_default)
    size = 0
    for root, _, files in os.walk(tmp):
      size += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    info['size_bytes'] = size
  return info


def _json_default(x):
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (np.floating,)):
    return float(x)
  if isinstance(x, np.ndarray):
    return x.tolist()
  return str(x)


class SavedModelSynth(synth_lib.SynthBase):
  """A synth backed by an exported SavedModel (needs only TensorFlow here).

  Same public surface as `synth.Synth`: generate, generate_specgrams,
  specgrams_to_waves, interpolate, render_midi, latent_size, sample_rate,
  audio_length, pitch_range.
  """

  def __init__(self, path, batch_size=8):
    path = os.fspath(path)
    try:
      self._loaded = tf.saved_model.load(path)
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError('cannot load SavedModel %s: %s' % (
          path, ' '.join(str(e).split())[:300])) from None
    sigs = self._loaded.signatures
    if 'serving_default' not in sigs:
      raise ValueError('%s: SavedModel has no serving_default signature' %
                       path)
    self.source = path
    self.batch_size = int(batch_size)
    self._sigs = sigs
    self.metadata = self._read_metadata(path)
    m = self.metadata
    self.latent_size = int(m['latent_size'])
    self.pitch_range = (int(m['min_pitch']), int(m['max_pitch']))
    self.sample_rate = int(m['sample_rate'])
    self.audio_length = int(m['audio_length'])
    self.vocoder = str(m.get('vocoder', 'phase'))
    self.config = None
    extra = os.path.join(path, EXTRA_JSON)
    if os.path.isfile(extra):
      try:
        from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top
        with open(extra) as f:
          self.export_info = json.load(f)
        self.config = config_lib.Config(self.export_info.get('hparams', {}),
                                        strict=False)
      except (ValueError, OSError):
        self.config = None

  def _read_metadata(self, path):
    if 'metadata' in self._sigs:
      out = {}
      for k, v in self._sigs['metadata']().items():
        v = v.numpy()
        out[k] = v.decode() if isinstance(v, bytes) else v.item()
      return out
    # A foreign SavedModel with only serving_default: derive what we can.
    fn = self._sigs['serving_default']
    _, kwargs = fn.structured_input_signature
    if 'latents' not in kwargs or 'pitches' not in kwargs:
      raise ValueError('%s: serving_default must take latents and pitches' %
                       path)
    out_spec = fn.structured_outputs.get('waveforms')
    return {'latent_size': int(kwargs['latents'].shape[-1]),
            'min_pitch': 24, 'max_pitch': 84, 'sample_rate': 16000,
            'audio_length': int(out_spec.shape[-1] or 64000)}

  def _run_batch(self, kind, latents, pitches):
    z = tf.constant(latents, tf.float32)
    p = tf.constant(pitches, tf.int32)
    if kind == 'waves':
      return self._sigs['serving_default'](latents=z, pitches=p)[
          'waveforms'].numpy()
    if 'specgrams' not in self._sigs:
      raise ValueError('%s: SavedModel has no specgrams signature' %
                       self.source)
    out = self._sigs['specgrams'](latents=z, pitches=p)
    key = 'normalized_specgrams' if kind == 'normalized' else 'specgrams'
    return out[key].numpy()

  def generate_from_seed(self, pitches, seed):
    """(waves, latents) from the graph's own stateless random latents."""
    pitches = self.check_pitches(pitches)
    out = self._sigs['generate_from_seed'](
        pitches=tf.constant(pitches, tf.int32),
        seed=tf.constant(int(seed), tf.int64))
    return out['waveforms'].numpy(), out['latents'].numpy()

  def specgrams_to_waves(self, specgrams):
    if 'specgrams_to_waveforms' not in self._sigs:
      raise ValueError('%s: SavedModel has no specgrams_to_waveforms '
                       'signature' % self.source)
    fn = self._sigs['specgrams_to_waveforms']
    spec = fn.structured_input_signature[1]['specgrams']
    specgrams = spectral.check_float(specgrams, 'specgrams',
                                     tuple(spec.shape.as_list()))
    return fn(specgrams=tf.constant(specgrams, tf.float32))[
        'waveforms'].numpy()
