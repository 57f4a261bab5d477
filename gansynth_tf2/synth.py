"""`Synth`: generate notes from a native model dir or an original checkpoint.

  synth = gansynth_tf2.load(path)
  waves = synth.generate([60, 64, 67], seed=0)        # float32 [N, audio_length]
  specs = synth.generate_specgrams([60], latents=z)   # float32 [N, H, W, C]

Latents default to standard normal draws of np.random.RandomState(seed), as
the original's generate scripts do.
"""

import os

import numpy as np
import tensorflow as tf

from gansynth_tf2 import magenta
from gansynth_tf2 import model_io

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL_DIRS = (
    os.path.join(_REPO_ROOT, 'saved_models', 'gansynth_sf_small'),
)


def default_model_path():
  """The model shipped in saved_models/ (raises if it is not there)."""
  env = os.environ.get('GANSYNTH_MODEL')
  if env:
    return env
  for path in DEFAULT_MODEL_DIRS:
    if os.path.isdir(path):
      return path
  raise ValueError('No model given and no shipped model found in %s' %
                   (DEFAULT_MODEL_DIRS,))


def sample_latents(num, latent_size, seed=None):
  """float32 [num, latent_size] standard normal (RandomState(seed))."""
  return np.random.RandomState(seed).normal(
      size=(num, latent_size)).astype(np.float32)


def check_pitches(pitches, pitch_range):
  pitches = np.asarray(pitches)
  if pitches.ndim != 1 or pitches.size == 0:
    raise ValueError('pitches must be a non-empty list of MIDI numbers, got '
                     'shape %s' % (pitches.shape,))
  if not np.all(np.equal(np.mod(pitches, 1), 0)):
    raise ValueError('pitches must be integers (MIDI numbers), got %s' %
                     pitches.tolist())
  pitches = pitches.astype(np.int32)
  lo, hi = pitch_range
  bad = sorted(set(int(p) for p in pitches if p < lo or p > hi))
  if bad:
    raise ValueError('pitch(es) %s outside the model\'s range %d..%d' %
                     (bad, lo, hi))
  return pitches


class Synth:
  """Generation with a generator's EMA weights (Keras, in process).

  Attributes: config, latent_size, sample_rate, audio_length, pitch_range.
  """

  def __init__(self, config, generator, batch_size=8, source=None):
    self.config = config
    self.generator = generator
    self.batch_size = int(batch_size)
    self.source = source
    self.transform = config.spec_transform()
    self.normalizer = config.normalizer()
    self.latent_size = int(config.latent_vector_size)
    self.sample_rate = int(config.sample_rate)
    self.audio_length = int(config.audio_length)
    self.pitch_range = config.pitch_range
    sig = [tf.TensorSpec([None, self.latent_size], tf.float32),
           tf.TensorSpec([None], tf.int32)]
    self._specgrams_fn = tf.function(self._specgrams, input_signature=sig)
    self._normalized_fn = tf.function(self._normalized, input_signature=sig)
    self._waves_fn = tf.function(self._waves, input_signature=sig)

  # --- graph functions ------------------------------------------------------
  def _normalized(self, latents, pitches):
    labels = pitches - self.pitch_range[0]
    one_hot = tf.one_hot(labels, self.config.num_pitches)
    return self.generator((latents, one_hot))

  def _specgrams(self, latents, pitches):
    return self.normalizer.denormalize(self._normalized(latents, pitches))

  def _waves(self, latents, pitches):
    return self.transform.specgrams_to_waves(self._specgrams(latents, pitches))

  # --- helpers ---------------------------------------------------------------
  def _inputs(self, pitches, latents, seed):
    pitches = check_pitches(pitches, self.pitch_range)
    if latents is None:
      latents = sample_latents(len(pitches), self.latent_size, seed)
    latents = np.asarray(latents, np.float32)
    if latents.ndim == 1:
      latents = latents[None]
    if latents.ndim != 2 or latents.shape[1] != self.latent_size:
      raise ValueError('latents must have shape [N, %d], got %s' %
                       (self.latent_size, latents.shape))
    if latents.shape[0] == 1 and len(pitches) > 1:
      latents = np.repeat(latents, len(pitches), axis=0)
    if latents.shape[0] != len(pitches):
      raise ValueError('%d latents for %d pitches' % (latents.shape[0],
                                                      len(pitches)))
    return latents, pitches

  def _batched(self, fn, latents, pitches):
    outs = []
    for i in range(0, len(pitches), self.batch_size):
      outs.append(fn(tf.constant(latents[i:i + self.batch_size]),
                     tf.constant(pitches[i:i + self.batch_size])).numpy())
    return np.concatenate(outs, axis=0).astype(np.float32)

  # --- public API ------------------------------------------------------------
  def sample_latents(self, num, seed=None):
    return sample_latents(num, self.latent_size, seed)

  def generate(self, pitches, latents=None, seed=None):
    """Waveforms float32 [N, audio_length] for MIDI `pitches` [N]."""
    latents, pitches = self._inputs(pitches, latents, seed)
    return self._batched(self._waves_fn, latents, pitches)

  def generate_specgrams(self, pitches, latents=None, seed=None,
                         normalized=False):
    """Specgrams float32 [N, H, W, C] (denormalized unless `normalized`)."""
    latents, pitches = self._inputs(pitches, latents, seed)
    fn = self._normalized_fn if normalized else self._specgrams_fn
    return self._batched(fn, latents, pitches)

  def specgrams_to_waves(self, specgrams):
    """Denormalized specgrams [N, H, W, C] -> waves [N, audio_length]."""
    return self.transform.specgrams_to_waves(
        tf.constant(specgrams, tf.float32)).numpy()


def load(path=None, batch_size=8):
  """A `Synth` from a native model dir, a SavedModel dir or a Magenta dir."""
  if path is None:
    path = default_model_path()
  path = os.fspath(path)
  if not os.path.exists(path):
    raise ValueError('Model path %s does not exist' % path)
  if model_io.is_model_dir(path):
    m = model_io.load_model_dir(path)
    return Synth(m['config'], m['generator_ema'], batch_size, source=path)
  if os.path.isfile(os.path.join(path, 'saved_model.pb')):
    from gansynth_tf2 import export  # pylint: disable=g-import-not-at-top
    return export.SavedModelSynth(path, batch_size=batch_size)
  if magenta.is_magenta_dir(path) or os.path.isfile(
      os.path.join(path, 'experiment.json')):
    m = magenta.load_magenta_checkpoint(path, load_discriminator=False)
    return Synth(m['config'], m['generator_ema'], batch_size, source=path)
  raise ValueError('%s: not a gansynth_tf2 model dir (model.json), a '
                   'SavedModel (saved_model.pb) or an original GANSynth '
                   'checkpoint dir (experiment.json + stage_*/)' % path)
