"""GANSynth configuration: the original's hparam names and derived geometry.

A `Config` holds every hyperparameter under the name the original Magenta code
used (so an original `experiment.json` maps onto it), plus a few names of our
own (pitch range, overlap). Everything else in the package asks a `Config` for
derived geometry (spectrogram shape, n_fft, hop, filters per block, stage
schedule, training progress) instead of recomputing it.
"""

import copy
import json
import math
import os

import importlib_resources

# Defaults of the original `model.set_flags` (keys and values), then ours.
ORIGINAL_DEFAULTS = {
    'train_root_dir': '/tmp/gansynth/train',
    'train_data_path': '/tmp/gansynth/nsynth-test.tfrecord',
    'dataset_name': 'nsynth_tfrecord',
    'data_type': 'mel',
    'audio_length': 64000,
    'sample_rate': 16000,
    'data_normalizer': 'specgrams_prespecified_normalizer',
    'normalizer_margin': 0.8,
    'normalizer_num_examples': 1000,
    'mag_normalizer_a': 0.0661371661726,
    'mag_normalizer_b': 0.113718730221,
    'p_normalizer_a': 0.8,
    'p_normalizer_b': 0.0,
    'gradient_penalty_target': 1.0,
    'gradient_penalty_weight': 10.0,
    'real_score_penalty_weight': 0.001,
    'generator_ac_loss_weight': 1.0,
    'discriminator_ac_loss_weight': 1.0,
    'gen_gl_consistency_loss_weight': 0.0,
    'generator_learning_rate': 0.0004,
    'discriminator_learning_rate': 0.0004,
    'adam_beta1': 0.0,
    'adam_beta2': 0.99,
    'fake_batch_size': 16,
    'master': '',
    'ps_tasks': 0,
    'task': 0,
    'debug_hook': False,
    'batch_size_schedule': [16, 8],
    'stable_stage_num_images': 32,
    'transition_stage_num_images': 32,
    'total_num_images': 320,
    'save_summaries_num_images': 100,
    'train_progressive': True,
    'train_time_limit': None,
    'train_time_stage_multiplier': 1.0,
    'g_fn': 'specgram',
    'd_fn': 'specgram',
    'latent_vector_size': 256,
    'kernel_size': 3,
    'start_height': 4,
    'start_width': 8,
    'scale_mode': 'ALL',
    'scale_base': 2,
    'num_resolutions': 7,
    'simple_arch': False,
    'to_rgb_activation': 'tanh',
    'fmap_base': 512,
    'fmap_decay': 1.0,
    'fmap_max': 128,
    'tfds_data_dir': None,
    'eval_batch_size': None,
}

# Names that are ours (not in the original), with defaults.
EXTRA_DEFAULTS = {
    # MIDI pitch range of the conditioning one-hot (label = pitch - min_pitch).
    'min_pitch': 24,
    'max_pitch': 84,
    # STFT overlap; n_fft = 2 * frequency bins, hop = (1 - overlap) * n_fft.
    'overlap': 0.75,
    # Mel bins = linear bins // mel_downscale (original: 1). With mel data the
    # final width is the number of mel bins, so n_fft = 2 x width x downscale.
    'mel_downscale': 1,
    # Training loop (ours).
    'ema_decay': 0.999,
    # 'wasserstein' (the original: WGAN-GP) or 'nonsaturating' (logistic
    # losses + R1 penalty r1_gamma / 2 ||grad D(real)||^2; see gan.py).
    'gan_loss': 'wasserstein',
    'r1_gamma': 1.0,
    # Projection discriminator (Miyato & Koyama 2018; an option, not the
    # original's): D's real/fake score gains <E[pitch], phi(x)> (E zero at
    # start), so a note with the wrong pitch is judged fake. The auxiliary
    # classifier alone is trained on real notes only, and a generator can
    # satisfy it with features no pitch tracker hears.
    'discriminator_projection': False,
    # Per-pitch frequency bias in the generator's top N blocks (ours; 0 = the
    # original's generator): each adds a learned, zero-initialized profile
    # E[pitch] [width, channels] after its conv1 (layers.PitchFrequencyBias),
    # so the high-resolution blocks that draw the partials of low notes
    # (a few bins apart) know the pitch directly.
    'generator_pitch_bias_blocks': 0,
    # E = kernel * this: the rate at which the biases move relative to the
    # other weights (Adam); stored kernels are read with it, so keep it when
    # resuming.
    'generator_pitch_bias_lr_multiplier': 1.0,
    'save_checkpoint_num_images': 10000,
    'seed': None,
    # Data pipeline (ours; see gansynth_tf2.data).
    'instrument_sources': None,
    'instrument_families': None,
    'velocities': None,
    'shuffle_buffer_size': 1000,
    'cache_dataset': False,
    'skip_bad_examples': False,
    'deterministic_data': False,
}

DEFAULTS = dict(ORIGINAL_DEFAULTS, **EXTRA_DEFAULTS)

# Hparams that must be > 0 (numbers) or >= 0; the rest are checked by type.
POSITIVE = ('audio_length', 'sample_rate', 'normalizer_num_examples',
            'generator_learning_rate', 'discriminator_learning_rate',
            'fake_batch_size', 'stable_stage_num_images', 'total_num_images',
            'save_summaries_num_images', 'train_time_stage_multiplier',
            'latent_vector_size', 'kernel_size', 'start_height',
            'start_width', 'scale_base', 'num_resolutions', 'fmap_base',
            'fmap_max', 'mel_downscale', 'save_checkpoint_num_images',
            'shuffle_buffer_size')
NON_NEGATIVE = ('transition_stage_num_images', 'gradient_penalty_weight',
                'real_score_penalty_weight', 'generator_ac_loss_weight',
                'discriminator_ac_loss_weight', 'r1_gamma', 'min_pitch',
                'fmap_decay')

DATA_TYPES = ('mel', 'linear', 'phase', 'magnitude')
GAN_LOSSES = ('wasserstein', 'nonsaturating')


def _is_integral_float(x):
  return isinstance(x, float) and math.isfinite(x) and x.is_integer()


class Config:
  """A dict of hparams with attribute access and derived geometry."""

  def __init__(self, values=None, strict=True):
    self._values = copy.deepcopy(DEFAULTS)
    if values:
      self.update(values, strict=strict)

  # --- dict-like access -------------------------------------------------
  def update(self, values, strict=True):
    """Overrides hparams; unknown names raise ValueError when `strict`."""
    unknown = sorted(k for k in values if k not in DEFAULTS)
    if unknown and strict:
      raise ValueError(
          'Unknown hparam name(s) %s; expected original GANSynth hparam names '
          'such as %s' % (unknown, sorted(DEFAULTS)[:8] + ['...']))
    for k, v in values.items():
      if k in DEFAULTS or not strict:
        self._values[k] = copy.deepcopy(v)
    self.validate()
    return self

  def __getattr__(self, name):
    if name.startswith('_'):
      raise AttributeError(name)
    try:
      return self._values[name]
    except KeyError:
      raise AttributeError(name) from None

  def __getitem__(self, name):
    return self._values[name]

  def get(self, name, default=None):
    return self._values.get(name, default)

  def to_dict(self):
    return copy.deepcopy(self._values)

  def copy(self, **overrides):
    return Config(dict(self._values, **overrides), strict=False)

  def __repr__(self):
    return 'Config(%s)' % json.dumps(self._values, sort_keys=True)

  def _check_types(self):
    """Each hparam has its default's type (ints for floats allowed)."""
    v = self._values
    for k, default in DEFAULTS.items():
      x = v[k]
      if default is None or (x is None and k not in POSITIVE):
        continue
      # JSON writes 1e7 as a float: an integral float is that integer.
      if (isinstance(default, int) and not isinstance(default, bool) and
          _is_integral_float(x)):
        x = v[k] = int(x)
      elif isinstance(default, list) and isinstance(x, list):
        x = v[k] = [int(b) if _is_integral_float(b) else b for b in x]
      if isinstance(default, bool):
        ok, want = isinstance(x, bool), 'true or false'
      elif isinstance(default, int):
        ok, want = isinstance(x, int) and not isinstance(x, bool), 'an integer'
      elif isinstance(default, float):
        ok = (isinstance(x, (int, float)) and not isinstance(x, bool) and
              math.isfinite(x))
        want = 'a finite number'
      elif isinstance(default, list):
        ok = (isinstance(x, list) and bool(x) and
              all(isinstance(b, int) and not isinstance(b, bool) and b > 0
                  for b in x))
        want = 'a non-empty list of positive integers'
      else:
        ok, want = isinstance(x, type(default)), 'a %s' % type(default).__name__
      if ok and k in POSITIVE:
        ok, want = x > 0, want + ' > 0'
      elif ok and k in NON_NEGATIVE:
        ok, want = x >= 0, want + ' >= 0'
      if not ok:
        raise ValueError('hparam %s must be %s, got %r' % (k, want, x))
    if _is_integral_float(v['seed']):
      v['seed'] = int(v['seed'])
    if v['seed'] is not None and (isinstance(v['seed'], bool) or
                                  not isinstance(v['seed'], int)):
      raise ValueError('hparam seed must be an integer or null, got %r' %
                       (v['seed'],))

  def validate(self):
    self._check_types()
    v = self._values
    if v['data_type'] not in DATA_TYPES:
      raise ValueError('data_type must be one of %s, got %r' %
                       (DATA_TYPES, v['data_type']))
    if v['scale_mode'] not in ('ALL', 'H'):
      raise ValueError("scale_mode must be 'ALL' or 'H', got %r" %
                       v['scale_mode'])
    if v['to_rgb_activation'] not in ('tanh', 'linear'):
      raise ValueError("to_rgb_activation must be 'tanh' or 'linear', got %r"
                       % v['to_rgb_activation'])
    if v['gan_loss'] not in GAN_LOSSES:
      raise ValueError('gan_loss must be one of %s, got %r' %
                       (GAN_LOSSES, v['gan_loss']))
    if not isinstance(v['discriminator_projection'], bool):
      raise ValueError('discriminator_projection must be true or false, got '
                       '%r' % (v['discriminator_projection'],))
    n = v['generator_pitch_bias_blocks']
    if (isinstance(n, bool) or not isinstance(n, int) or
        not 0 <= n <= v['num_resolutions']):
      raise ValueError('generator_pitch_bias_blocks must be an integer in '
                       '[0, num_resolutions=%d], got %r' %
                       (v['num_resolutions'], n))
    m = v['generator_pitch_bias_lr_multiplier']
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not m > 0:
      raise ValueError('generator_pitch_bias_lr_multiplier must be a number '
                       '> 0, got %r' % (m,))
    if v['max_pitch'] > 127:
      raise ValueError('hparam max_pitch must be a MIDI pitch <= 127, got %d'
                       % v['max_pitch'])
    if v['max_pitch'] < v['min_pitch']:
      raise ValueError('max_pitch %d < min_pitch %d' %
                       (v['max_pitch'], v['min_pitch']))
    bins = self.final_resolution[1]
    if bins & (bins - 1):
      raise ValueError('Number of frequency bins (final width) must be a power'
                       ' of 2, got %d' % bins)

  # --- geometry -----------------------------------------------------------
  @property
  def start_resolution(self):
    return (int(self.start_height), int(self.start_width))

  def scale_factor(self, block_id):
    """Upscale factor from block `block_id` (1-based) to the final size."""
    if not 1 <= block_id <= self.num_resolutions:
      raise ValueError('block_id must be in [1, %d]' % self.num_resolutions)
    return int(self.scale_base) ** (self.num_resolutions - block_id)

  def block_resolution(self, block_id):
    """(H, W) of the output of block `block_id`."""
    s = int(self.scale_base) ** (block_id - 1)
    h, w = self.start_resolution
    return (h * s, w * s) if self.scale_mode == 'ALL' else (h * s, w)

  @property
  def final_resolution(self):
    return self.block_resolution(self.num_resolutions)

  @property
  def num_channels(self):
    """Channels of the generated spectrogram image."""
    return 1 if self.data_type == 'magnitude' else 2

  @property
  def num_pitches(self):
    return int(self.max_pitch) - int(self.min_pitch) + 1

  @property
  def pitch_range(self):
    return (int(self.min_pitch), int(self.max_pitch))

  @property
  def n_fft(self):
    """2 x linear frequency bins; mel specgrams have bins / mel_downscale."""
    bins = self.final_resolution[1]
    if self.data_type == 'mel':
      bins *= int(self.mel_downscale)
    return 2 * bins

  @property
  def hop_length(self):
    return int((1.0 - self.overlap) * self.n_fft)

  @property
  def num_frames(self):
    return self.final_resolution[0]

  def num_filters(self, block_id):
    """Feature maps of block `block_id` (the original's num_filters)."""
    return int(min(self.fmap_base / math.pow(2.0, block_id * self.fmap_decay),
                   self.fmap_max))

  def spec_transform(self):
    """The `SpecgramTransform` of this config's data representation."""
    from gansynth_tf2 import spectral  # pylint: disable=g-import-not-at-top
    return spectral.SpecgramTransform(
        audio_length=int(self.audio_length),
        sample_rate=int(self.sample_rate),
        n_fft=self.n_fft,
        hop_length=self.hop_length,
        num_frames=self.num_frames,
        representation=self.data_type,
        mel_downscale=int(self.mel_downscale))

  def normalizer(self):
    from gansynth_tf2 import spectral  # pylint: disable=g-import-not-at-top
    if self.data_normalizer != 'specgrams_prespecified_normalizer':
      raise ValueError('Only specgrams_prespecified_normalizer is supported, '
                       'got data_normalizer=%r' % self.data_normalizer)
    a = [self.mag_normalizer_a, self.p_normalizer_a][:self.num_channels]
    b = [self.mag_normalizer_b, self.p_normalizer_b][:self.num_channels]
    return spectral.Normalizer(a, b)

  # --- progressive schedule ----------------------------------------------
  @property
  def total_num_stages(self):
    return 2 * int(self.num_resolutions) - 1

  def batch_size(self, stage_id):
    """Batch size of stage `stage_id` (schedule padded at the front)."""
    sched = list(self.batch_size_schedule)
    n = int(self.num_resolutions)
    if len(sched) < n:
      sched = [sched[0]] * (n - len(sched)) + sched
    return int(sched[(stage_id + 1) // 2])

  def stage_info(self, stage_id):
    """(num_blocks, cumulative images at the end of stage `stage_id`)."""
    total = self.total_num_stages
    if not 0 <= stage_id < total:
      raise ValueError('stage_id must be in [0, %d), got %d' %
                       (total, stage_id))
    num_blocks = (stage_id + 1) // 2 + 1
    num_images = ((stage_id // 2 + 1) * self.stable_stage_num_images +
                  ((stage_id + 1) // 2) * self.transition_stage_num_images)
    if stage_id >= total - 1:
      num_images = self.total_num_images
    return num_blocks, min(num_images, self.total_num_images)

  def stage_of_images(self, num_images):
    """The stage that is training when `num_images` images have been seen."""
    for stage_id in range(self.total_num_stages):
      if num_images < self.stage_info(stage_id)[1]:
        return stage_id
    return self.total_num_stages - 1

  def compute_progress(self, current_image_id, num_blocks):
    """Training progress (float) exactly as the original computes it."""
    if not self.train_progressive:
      return float(num_blocks - 1)
    stable = int(self.stable_stage_num_images)
    trans = int(self.transition_stage_num_images)
    min_total = num_blocks * stable + (num_blocks - 1) * trans
    capped = min(int(current_image_id), min_total - 1)
    stage_images = stable + trans
    integer = capped // stage_images
    # No transition (trans 0): the remainder is < 0, so the fraction is 0 as
    # in the original (max(0, -inf)); gan.compute_progress divides the same.
    fraction = max(0.0, float(capped % stage_images - stable) /
                   float(max(trans, 1)))
    return float(integer) + fraction

  # --- (de)serialization ---------------------------------------------------
  def to_json(self, path):
    from gansynth_tf2 import io_util  # pylint: disable=g-import-not-at-top
    io_util.atomic_write_text(path, json.dumps(self._values, indent=1))

  @classmethod
  def from_json(cls, path, strict=False):
    with open(path) as f:
      values = json.load(f)
    values = {k: v for k, v in values.items() if not k.startswith('_')}
    if 'jobs' in values:
      raise ValueError('%s: experiment.json with hparam sweeps ("jobs") is '
                       'not supported' % path)
    return cls(values, strict=strict)


def config_names():
  """Names of the configs shipped in configs/."""
  root = importlib_resources.files('gansynth_tf2.configs')
  return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith('.json'))


def load_config(name_or_path, overrides=None):
  """A `Config` from a configs/ name or a JSON file, with hparam overrides."""
  if os.path.isfile(str(name_or_path)):
    cfg = Config.from_json(name_or_path, strict=True)
  else:
    names = config_names()
    if name_or_path not in names:
      raise ValueError('Unknown config %r; expected one of %s or a JSON file' %
                       (name_or_path, names))
    text = (importlib_resources.files('gansynth_tf2.configs') /
            (name_or_path + '.json')).read_text()
    values = {k: v for k, v in json.loads(text).items()
              if not k.startswith('_')}  # '_description'
    cfg = Config(values, strict=True)
  if overrides:
    if isinstance(overrides, str):
      try:
        overrides = json.loads(overrides)
      except json.JSONDecodeError as e:
        raise ValueError('--hparams must be a JSON object: %s' % e) from None
    if not isinstance(overrides, dict):
      raise ValueError('hparams overrides must be a JSON object, got %r' %
                       (overrides,))
    cfg.update(overrides)
  return cfg
