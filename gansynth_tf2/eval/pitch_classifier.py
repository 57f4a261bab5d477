"""A small Keras CNN that predicts the pitch class of a 4 s, 16 kHz note.

The evaluation metrics (pitch accuracy / entropy, Inception Score, FID) need a
pitch classifier, as in the GANSynth paper; the original's (an NSynth pitch
model) cannot be downloaded here, so we train our own on the same kind of data
(tools/train_pitch_classifier.py: `python -m
gansynth_tools.train_pitch_classifier`).

Input: waves float32 [N, audio_length] (any model's output or real notes).
Front end (`FrontEnd`): each note peak-normalized (gain invariance), its
GANSynth mel-IF spectrogram (n_fft 2048, hop 512: [128, 1024, 2]) normalized
with the original's prespecified normalizer (values in [-1, 1]; channel 0 only
for 'log_mel'), averaged over groups of `time_pool` frames: float32
[N, 128 / time_pool, 1024, C] ([N, 4, 1024, 2] by default). The time-averaged
mel IF carries the partials' exact frequencies: with it, the classifier
reached 100% held-out accuracy on 5 General MIDI programs it had not seen
(FluidR3_GM, 305 notes, pitches 24..84), trained on 854 notes of 14 other
programs in 8 epochs (log-mel alone: ~80%).
Network: 4 conv blocks (conv, batch norm, ReLU, max-pool; the frequency axis
halves each block), flatten, dense `feature_dim` ('features', the FID
embedding, taken before its ReLU), dense num_pitches ('logits'). Batch-norm
statistics are recomputed exactly over (up to 512) training notes after each
epoch (`recalibrate_batch_norm`). About 0.6 M parameters (0.5 M in the
flatten -> features dense layer); ~32 M multiply-adds per note.

A classifier dir holds classifier.json (front-end and network parameters,
training info and held-out accuracy) and weights.weights.h5.
"""

import json
import os
import time

import numpy as np

from gansynth_tf2 import io_util

FORMAT = 'gansynth_tf2.pitch_classifier'
PARAMS_JSON = 'classifier.json'
WEIGHTS_FILE = 'weights.weights.h5'
REPRESENTATIONS = ('mel_if', 'log_mel')

DEFAULT_PARAMS = {
    'sample_rate': 16000,
    'audio_length': 64000,
    'n_fft': 2048,
    'hop_length': 512,
    'representation': 'mel_if',
    'peak_normalize': True,
    'time_pool': 32,
    'min_pitch': 24,
    'max_pitch': 84,
    'widths': [16, 32, 48, 64],
    'feature_dim': 128,
    'dropout': 0.0,
    'norm': 'batch',
    # The original GANSynth prespecified normalizer (log mel power, mel IF).
    'mag_normalizer_a': 0.0661371661726,
    'mag_normalizer_b': 0.113718730221,
    'p_normalizer_a': 0.8,
    'p_normalizer_b': 0.0,
}


def make_params(**overrides):
  """DEFAULT_PARAMS with overrides, validated."""
  unknown = sorted(set(overrides) - set(DEFAULT_PARAMS))
  if unknown:
    raise ValueError('unknown classifier parameter(s) %s' % unknown)
  p = dict(DEFAULT_PARAMS, **overrides)
  if p['representation'] not in REPRESENTATIONS:
    raise ValueError('representation must be one of %s, got %r' %
                     (REPRESENTATIONS, p['representation']))
  if p['norm'] not in ('batch', 'group', 'none'):
    raise ValueError("norm must be 'batch', 'group' or 'none', got %r" %
                     (p['norm'],))
  if p['max_pitch'] < p['min_pitch']:
    raise ValueError('max_pitch < min_pitch')
  if not p['widths'] or p['time_pool'] < 1:
    raise ValueError('widths must be non-empty and time_pool >= 1')
  return p


class FrontEnd:
  """waves [N, audio_length] -> pooled normalized specgrams [N, T', F, C]."""

  def __init__(self, params):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from gansynth_tf2 import spectral  # pylint: disable=g-import-not-at-top
    self.params = params
    self.transform = spectral.SpecgramTransform(
        audio_length=params['audio_length'], sample_rate=params['sample_rate'],
        n_fft=params['n_fft'], hop_length=params['hop_length'],
        representation='mel')
    frames, bins, _ = self.transform.spec_shape
    self.channels = 2 if params['representation'] == 'mel_if' else 1
    tp = int(params['time_pool'])
    if frames % tp:
      raise ValueError('time_pool %d must divide the %d frames' % (tp, frames))
    self.shape = (frames // tp, bins, self.channels)
    a = np.array([params['mag_normalizer_a'], params['p_normalizer_a']],
                 np.float32)[:self.channels]
    b = np.array([params['mag_normalizer_b'], params['p_normalizer_b']],
                 np.float32)[:self.channels]

    def fn(waves):
      if params['peak_normalize']:
        peak = tf.reduce_max(tf.abs(waves), axis=1, keepdims=True)
        waves = waves / tf.maximum(peak, 1e-8)
      spec = self.transform.waves_to_specgrams(waves)[..., :self.channels]
      spec = tf.clip_by_value(spec * a + b, -1.0, 1.0)
      spec = tf.reshape(spec, [-1, frames // tp, tp, bins, self.channels])
      return tf.reduce_mean(spec, axis=2)

    self._fn = tf.function(fn, input_signature=[
        tf.TensorSpec([None, params['audio_length']], tf.float32)])

  def fit_length(self, waves):
    """Checks and pads (zeros at the end) or trims waves to audio_length."""
    waves = np.asarray(waves, np.float32)
    if waves.ndim != 2 or waves.shape[0] == 0:
      raise ValueError('waves must be [N, T] with N > 0, got %s' %
                       (waves.shape,))
    if not np.all(np.isfinite(waves)):
      raise ValueError('waves contain NaN or Inf')
    n = self.params['audio_length']
    if waves.shape[1] >= n:
      return waves[:, :n]
    return np.pad(waves, [[0, 0], [0, n - waves.shape[1]]])

  def __call__(self, waves, batch_size=32):
    """float32 [N, T', F, C] of waves [N, T] (T padded / trimmed)."""
    waves = self.fit_length(waves)
    out = [self._fn(waves[i:i + batch_size]).numpy()
           for i in range(0, len(waves), batch_size)]
    return np.concatenate(out).astype(np.float32)


def build_network(params, input_shape):
  """Keras model: features [T', F, C] -> (logits [K], embedding [D])."""
  import keras  # pylint: disable=g-import-not-at-top
  from keras import layers  # pylint: disable=g-import-not-at-top
  num_pitches = params['max_pitch'] - params['min_pitch'] + 1
  x = inputs = keras.Input(shape=tuple(input_shape), name='specgrams')
  time_len = input_shape[0]
  for i, width in enumerate(params['widths']):
    kernel = (3, 7) if i == 0 else ((3, 5) if i < 3 else (3, 3))
    x = layers.Conv2D(width, kernel, padding='same',
                      use_bias=params['norm'] == 'none', name='conv%d' % i)(x)
    if params['norm'] == 'group':
      x = layers.GroupNormalization(groups=min(8, width), name='norm%d' % i)(x)
    elif params['norm'] == 'batch':
      x = layers.BatchNormalization(name='norm%d' % i)(x)
    x = layers.ReLU(name='relu%d' % i)(x)
    pool_t = 2 if (i > 0 and time_len > 1) else 1
    time_len //= pool_t
    x = layers.MaxPooling2D((pool_t, 2), name='pool%d' % i)(x)
  x = layers.Flatten(name='flatten')(x)
  x = layers.Dropout(params['dropout'], name='dropout0')(x)
  features = layers.Dense(params['feature_dim'], name='features')(x)
  x = layers.ReLU(name='features_relu')(features)
  x = layers.Dropout(params['dropout'], name='dropout1')(x)
  logits = layers.Dense(num_pitches, name='logits')(x)
  return keras.Model(inputs, [logits, features], name='pitch_classifier')


class PitchClassifier:
  """Front end + network; `predict(waves)` gives logits, probs and features.

  Attributes: params, info (training info: held-out accuracy, ...),
  pitch_range (lo, hi) MIDI inclusive, num_pitches.
  """

  def __init__(self, params, network=None, info=None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.params = make_params(**params)
    self.info = dict(info or {})
    self.front_end = FrontEnd(self.params)
    self.network = network or build_network(self.params, self.front_end.shape)
    self.pitch_range = (int(self.params['min_pitch']),
                        int(self.params['max_pitch']))
    self.num_pitches = self.pitch_range[1] - self.pitch_range[0] + 1
    self._call = tf.function(lambda x: self.network(x, training=False))

  def labels(self, pitches):
    """MIDI pitches [N] -> class indices [N]; raises outside the range."""
    pitches = np.asarray(pitches).reshape(-1).astype(np.int64)
    lo, hi = self.pitch_range
    bad = sorted(set(int(p) for p in pitches if p < lo or p > hi))
    if bad:
      raise ValueError('pitch(es) %s outside the classifier\'s range %d..%d' %
                       (bad, lo, hi))
    return (pitches - lo).astype(np.int32)

  def predict_features(self, specgrams, batch_size=64):
    """Front-end output [N, T', F, C] -> dict of logits [N, K], probs [N, K],
    predicted_pitch [N] (MIDI), features [N, D]."""
    logits, feats = [], []
    for i in range(0, len(specgrams), batch_size):
      lg, ft = self._call(specgrams[i:i + batch_size])
      logits.append(lg.numpy())
      feats.append(ft.numpy())
    logits = np.concatenate(logits).astype(np.float64)
    from gansynth_tf2.eval import metrics  # pylint: disable=g-import-not-at-top
    return {'logits': logits, 'probs': metrics.softmax(logits),
            'predicted_pitch': np.argmax(logits, 1) + self.pitch_range[0],
            'features': np.concatenate(feats).astype(np.float64)}

  def predict(self, waves, batch_size=32):
    """waves float [N, T] at params['sample_rate'] -> see predict_features."""
    return self.predict_features(self.front_end(waves, batch_size),
                                 batch_size)

  def accuracy(self, waves, pitches):
    pred = self.predict(waves)['predicted_pitch']
    return float(np.mean(pred == np.asarray(pitches).reshape(-1)))

  def save(self, path, protect=()):
    """Writes the classifier dir atomically (a crash leaves the old one).

    An existing `path` is replaced only when it is empty or an earlier
    classifier dir, and never when it is or holds one of the `protect` paths.
    """
    with io_util.atomic_dir(path, PARAMS_JSON, protect) as tmp:
      self.network.save_weights(os.path.join(tmp, WEIGHTS_FILE))
      with open(os.path.join(tmp, PARAMS_JSON), 'w') as f:
        json.dump({'format': FORMAT, 'params': self.params, 'info': self.info},
                  f, indent=1, default=io_util.jsonable)
    return path


def is_classifier_dir(path):
  return os.path.isfile(os.path.join(path, PARAMS_JSON))


def load(path):
  """A `PitchClassifier` from a dir written by `PitchClassifier.save`."""
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise ValueError('pitch classifier %s is not a folder' % path)
  if not is_classifier_dir(path):
    raise ValueError('%s: no %s; not a pitch classifier dir (train one with '
                     'python -m gansynth_tools.train_pitch_classifier)' % (path, PARAMS_JSON))
  with open(os.path.join(path, PARAMS_JSON)) as f:
    try:
      desc = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError('%s: bad %s: %s' % (path, PARAMS_JSON, e)) from None
  if not isinstance(desc, dict) or desc.get('format') != FORMAT:
    raise ValueError('%s: %s is not a pitch classifier description' %
                     (path, PARAMS_JSON))
  if not isinstance(desc.get('params'), dict):
    raise ValueError('%s: %s has no "params" object' % (path, PARAMS_JSON))
  try:
    clf = PitchClassifier(desc['params'], info=desc.get('info'))
  except (ValueError, TypeError, KeyError) as e:
    raise ValueError('%s: bad params in %s: %s' % (path, PARAMS_JSON,
                                                   e)) from None
  weights = os.path.join(path, WEIGHTS_FILE)
  if not os.path.isfile(weights):
    raise ValueError('%s: no %s' % (path, WEIGHTS_FILE))
  try:
    clf.network.load_weights(weights)
  except (ValueError, OSError) as e:
    raise ValueError('%s: weights do not fit the network of %s: %s' %
                     (path, PARAMS_JSON, str(e)[:300])) from None
  return clf


def recalibrate_batch_norm(network, specgrams, batch_size=64):
  """Sets every BatchNormalization layer's moving mean / variance to the
  exact statistics of its inputs over `specgrams` [N, T', F, C], layer after
  layer (each with the previous layers already recalibrated). Without it, a
  short training run leaves moving averages far from the population ones."""
  import keras  # pylint: disable=g-import-not-at-top
  bns = [l for l in network.layers
         if isinstance(l, keras.layers.BatchNormalization)]
  for bn in bns:
    probe = keras.Model(network.input, bn.input)
    total, total_sq, count = 0.0, 0.0, 0
    for i in range(0, len(specgrams), batch_size):
      a = probe(specgrams[i:i + batch_size], training=False).numpy()
      a = a.reshape(-1, a.shape[-1]).astype(np.float64)
      total = total + a.sum(0)
      total_sq = total_sq + (a * a).sum(0)
      count += a.shape[0]
    mean = total / count
    var = np.maximum(total_sq / count - mean * mean, 0.0)
    bn.moving_mean.assign(mean.astype(np.float32))
    bn.moving_variance.assign(var.astype(np.float32))


def train(train_specgrams, train_pitches, val_specgrams=None, val_pitches=None,
          params=None, epochs=10, batch_size=32, learning_rate=1e-3,
          gain_augment=0.0, seed=0, time_limit_s=None, verbose=1, log=print):
  """Trains a classifier on front-end outputs (see `FrontEnd`).

  Args:
    train_specgrams: float32 [N, T', F, C] front-end outputs of real notes.
    train_pitches: [N] MIDI pitches within params' range.
    val_specgrams, val_pitches: held-out notes; the weights of the epoch with
      the best held-out accuracy are kept (the last epoch's without them).
    params: classifier parameters (`make_params`); must be those the
      specgrams were computed with.
    epochs, batch_size, learning_rate: Adam with cosine decay to 0.
    gain_augment: each training example's log-magnitude channel is shifted by
      U(-g, g) (g=0.2 is a loudness change of up to ~+-12 dB; off by default:
      the front end peak-normalizes every note, and it slowed learning).
    seed: initialization and shuffling seed.
    time_limit_s: stop after the epoch that passes this many seconds.
    verbose: Keras fit verbosity.
    log: a print-like function for the per-epoch summary.

  Returns:
    PitchClassifier with info: train/held-out accuracy, epochs, seconds.
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  params = make_params(**(params or {}))
  # Seeded before the network is built: Keras draws each initializer's seed
  # from Python's `random` when the layer is created.
  keras.utils.set_random_seed(seed)
  clf = PitchClassifier(params)
  x = np.asarray(train_specgrams, np.float32)
  if x.ndim != 4 or tuple(x.shape[1:]) != tuple(clf.front_end.shape):
    raise ValueError('train_specgrams must be [N, %s], got %s' %
                     (', '.join(map(str, clf.front_end.shape)), x.shape))
  y = clf.labels(train_pitches)
  if len(y) != len(x) or not len(x):
    raise ValueError('%d specgrams for %d pitches' % (len(x), len(y)))
  has_val = val_specgrams is not None and len(val_specgrams)
  if has_val:
    xv = np.asarray(val_specgrams, np.float32)
    yv = clf.labels(val_pitches)
  model = keras.Model(clf.network.input, clf.network.outputs[0])
  steps = epochs * int(np.ceil(len(x) / batch_size))
  sched = keras.optimizers.schedules.CosineDecay(learning_rate,
                                                 max(1, steps))
  model.compile(optimizer=keras.optimizers.Adam(sched),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True),
                metrics=['accuracy'])

  def augment(spec, label):
    if gain_augment:
      shift = tf.random.uniform([], -gain_augment, gain_augment)
      ch = tf.shape(spec)[-1]
      spec = spec + shift * tf.one_hot(0, ch)
    return spec, label

  ds = (tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .map(augment).batch(batch_size).prefetch(2))
  calib = np.sort(np.random.RandomState(seed).permutation(len(x))[:512])
  best = {'acc': -1.0, 'weights': None, 'epoch': 0}
  history = []
  start = time.time()
  epoch = 0
  for epoch in range(1, epochs + 1):
    h = model.fit(ds, epochs=1, verbose=verbose, shuffle=False)
    entry = {'epoch': epoch, 'loss': float(h.history['loss'][-1]),
             'train_accuracy': float(h.history['accuracy'][-1])}
    recalibrate_batch_norm(clf.network, x[calib])
    if has_val:
      entry['heldout_accuracy'] = float(np.mean(
          np.argmax(clf.predict_features(xv)['logits'], 1) == yv))
      if entry['heldout_accuracy'] > best['acc']:
        best = {'acc': entry['heldout_accuracy'],
                'weights': clf.network.get_weights(), 'epoch': epoch}
    entry['seconds'] = round(time.time() - start, 1)
    history.append(entry)
    log('epoch %d: %s' % (epoch, ', '.join('%s=%.4g' % (k, v) for k, v in
                                           entry.items() if k != 'epoch')))
    if time_limit_s is not None and time.time() - start > time_limit_s:
      log('time limit reached after epoch %d' % epoch)
      break
  if best['weights'] is not None:
    clf.network.set_weights(best['weights'])  # includes the BN statistics
  clf.info = {
      'num_train_notes': int(len(x)),
      'num_heldout_notes': int(len(xv)) if has_val else 0,
      'epochs_run': epoch, 'best_epoch': best['epoch'] or epoch,
      'heldout_accuracy': best['acc'] if has_val else None,
      'train_seconds': round(time.time() - start, 1),
      'history': history,
  }
  return clf
