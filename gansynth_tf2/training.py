"""Progressive GANSynth training: stages, strategies, checkpoints, summaries.

  from gansynth_tf2 import config as config_lib, training
  cfg = config_lib.load_config('tiny', {'train_data_path': 'data/*train*'})
  training.train(cfg, '/tmp/run', strategy='auto')

The train root dir (`--train_root_dir`) holds:
  experiment.json     hparams (cfg.to_dict()), as the original writes it
  model.json          native model description, rewritten atomically BEFORE
                      every checkpoint (so `gansynth_tf2.load(dir)` works)
  checkpoints/        tf.train.CheckpointManager: generator_ema, generator,
                      discriminator, g_optimizer, d_optimizer, images_seen,
                      seed, stage_id
  summaries/          TensorBoard events (scalars, EMA audio, spectrograms)

Schedule: stage s trains while images_seen < cfg.stage_info(s)[1], with the
global batch cfg.batch_size(s) and one traced step function per stage
(num_blocks static). progress = cfg.compute_progress(images_seen, num_blocks)
before each step, as the original. As the original's scaffold, every stage
starts with fresh Adam state (its optimizer variables are not carried over
from the previous stage). Non-progressive mode (train_progressive false) runs
only the last stage (all blocks, progress num_blocks - 1) like the original,
for total_num_images images (the original stops that stage at the sum of all
stages' cumulative image counts instead, 6.7x total_num_images for mel_hires).
(The original's StopAtStepHook runs one step past each stage's image count;
here a stage stops at exactly its count.)

Resume: a restart with the same train root dir restores the newest checkpoint
and continues: weights, EMA, both optimizers, images_seen, the stage and the
random stream (stateless, keyed by seed and images_seen) are exact. The data
stream is exact for the synthetic sources (keyed by image index); real-data
pipelines are rebuilt with a seed derived from (seed, images_seen), so they do
not replay examples in the same order. Bit for bit when TensorFlow runs on
one intra-op and one inter-op thread (tests/resume_scenario.py); with the
default thread pools some float reductions can round differently from run to
run, so two runs, resumed or not, may drift apart by rounding (seen: ~1e-6
after a few steps, in 2 of 9 runs of the tiny resume test). Checkpoints are
saved every save_checkpoint_num_images images, at the end of each stage and at
the end; CheckpointManager writes the state file last and atomically, so a
SIGKILL at any moment leaves the previous checkpoint loadable. SIGINT/SIGTERM
save a checkpoint and stop. A non-finite loss stops training with
`TrainingDivergedError` without saving (the last good checkpoint stays).

Data sources (config.dataset_name): everything `gansynth_tf2.data` reads
('nsynth_tfrecord', 'nsynth_tfds', 'audio_folder'), plus two synthetic ones
for tests and benchmarks: 'synthetic_tones' (decaying harmonic tones at random
pitches, labelled with their pitch) and 'synthetic_noise' (uniform noise in
[-0.8, 0.8], the original's benchmark stub).
"""

import collections
import json
import math
import os
import shutil
import signal
import time

import numpy as np
import tensorflow as tf

from gansynth_tf2 import gan as gan_lib
from gansynth_tf2 import io_util
from gansynth_tf2 import model_io
from gansynth_tf2 import networks

STRATEGIES = ('auto', 'default', 'mirrored', 'multi_worker', 'tpu')
SYNTHETIC_SOURCES = ('synthetic_tones', 'synthetic_noise')
CHECKPOINT_DIR = 'checkpoints'
SUMMARY_DIR = 'summaries'
# Hparams that change variable shapes: a resumed run must keep them.
ARCHITECTURE_KEYS = (
    'data_type', 'audio_length', 'sample_rate', 'latent_vector_size',
    'kernel_size', 'start_height', 'start_width', 'scale_mode', 'scale_base',
    'num_resolutions', 'simple_arch', 'to_rgb_activation', 'fmap_base',
    'fmap_decay', 'fmap_max', 'min_pitch', 'max_pitch', 'overlap',
    'mel_downscale', 'g_fn', 'd_fn', 'discriminator_projection',
    'generator_pitch_bias_blocks', 'generator_pitch_bias_lr_multiplier')


class TrainingError(ValueError):
  """A training problem with a one-line, human-readable message."""


class TrainingDivergedError(TrainingError):
  """A loss became NaN or Inf."""


# -----------------------------------------------------------------------------
# Strategies.
# -----------------------------------------------------------------------------
def _local_tpu():
  """True on a Cloud TPU VM (TPU chips attached to this host)."""
  return os.path.exists('/dev/accel0') or any(
      n.isdigit() for n in (os.listdir('/dev/vfio')
                            if os.path.isdir('/dev/vfio') else []))


def _tpu_hint(tpu):
  return bool(tpu or os.environ.get('TPU_NAME') or
              os.environ.get('COLAB_TPU_ADDR') or _local_tpu())


def _tpu_strategy(tpu):
  name = tpu or os.environ.get('TPU_NAME') or (
      'local' if _local_tpu() else None)
  resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
  if name != 'local':
    tf.config.experimental_connect_to_cluster(resolver)
  tf.tpu.experimental.initialize_tpu_system(resolver)
  return tf.distribute.TPUStrategy(resolver)


def _tf_config_workers():
  try:
    cluster = json.loads(os.environ.get('TF_CONFIG', '{}')).get('cluster', {})
  except json.JSONDecodeError:
    return 0
  return sum(len(v) for k, v in cluster.items() if k in ('chief', 'worker'))


def make_strategy(name='auto', tpu=None):
  """A tf.distribute strategy by name.

  auto: TPU if one resolves (--tpu, TPU_NAME, or a TPU VM), multi-worker if
  TF_CONFIG names several workers, Mirrored if more than one GPU, else the
  default strategy.
  """
  if name not in STRATEGIES:
    raise TrainingError('--strategy must be one of %s, got %r' %
                        ('|'.join(STRATEGIES), name))
  if name == 'tpu':
    try:
      return _tpu_strategy(tpu)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
      raise TrainingError('no TPU found (--tpu=%s): %s' %
                          (tpu, str(e).splitlines()[0] if str(e) else
                           type(e).__name__)) from None
  if name == 'auto':
    if _tpu_hint(tpu):
      try:
        return _tpu_strategy(tpu)
      except (ValueError, RuntimeError, tf.errors.OpError):
        pass
    if _tf_config_workers() > 1:
      return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices('GPU')) > 1:
      return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if name == 'multi_worker':
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def worker_role(strategy):
  """(is_chief, task label) of this process under `strategy`."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  task_type = getattr(resolver, 'task_type', None)
  task_id = getattr(resolver, 'task_id', None) or 0
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return True, 'chief'
  if task_type in (None, 'chief'):
    return True, 'chief'
  spec = resolver.cluster_spec().as_dict()
  if task_type == 'worker' and task_id == 0 and 'chief' not in spec:
    return True, 'worker_0'
  return False, '%s_%d' % (task_type, task_id)


# -----------------------------------------------------------------------------
# Data.
# -----------------------------------------------------------------------------
def _mix_seed(seed, n):
  """A 31-bit seed from (seed, n), stable across runs."""
  x = (int(seed) * 1000003 + int(n) * 7919 + 12345) & 0xffffffffffff
  return int((x ^ (x >> 17)) % (2**31 - 1))


def synthetic_tones(config, num, keys, seed, pitches=None):
  """Decaying harmonic tones, each determined by (seed, key).

  Args:
    config: a `Config` (audio length, sample rate, pitch range).
    num: static batch size.
    keys: int64 [num] example keys (image indices).
    seed: int.
    pitches: optional list of MIDI pitches to draw from (default: the range).

  Returns:
    (waves float32 [num, audio_length], MIDI pitches int32 [num]).
  """
  lo, hi = config.pitch_range
  pitch_set = tf.constant(pitches if pitches else list(range(lo, hi + 1)),
                          tf.int32)
  sr = float(config.sample_rate)
  t = tf.range(int(config.audio_length), dtype=tf.float32) / sr
  seeds = tf.stack([tf.fill([num], tf.cast(seed, tf.int64)),
                    tf.cast(keys, tf.int64)], axis=1)

  def one(s):
    u = tf.random.stateless_uniform([10], seed=s)
    pitch = tf.gather(pitch_set, tf.cast(
        u[0] * tf.cast(tf.size(pitch_set), tf.float32), tf.int32))
    f0 = 440.0 * tf.pow(2.0, (tf.cast(pitch, tf.float32) - 69.0) / 12.0)
    k = tf.range(1.0, 7.0)  # 6 harmonics, 1/k amplitudes, below Nyquist
    amp = tf.where(k * f0 < sr / 2, 1.0 / k, 0.0)
    phase = u[1:7] * 2.0 * math.pi
    # Partial phases wrapped in float64-free form: 2 pi f t mod 2 pi.
    cycles = k[:, None] * f0 * t[None, :]
    cycles = cycles - tf.floor(cycles)
    wave = tf.reduce_sum(amp[:, None] * tf.sin(2 * math.pi * cycles +
                                                phase[:, None]), 0)
    decay = 0.4 + 1.6 * u[7]
    env = tf.exp(-t / decay) * tf.minimum(1.0, t / 0.005)
    wave = wave * env
    gain = (0.3 + 0.6 * u[8]) / tf.maximum(tf.reduce_max(tf.abs(wave)), 1e-9)
    return wave * gain, pitch

  waves, pitch = tf.map_fn(one, seeds, fn_output_signature=(
      tf.TensorSpec([int(config.audio_length)], tf.float32),
      tf.TensorSpec([], tf.int32)))
  return waves, pitch


def synthetic_dataset(config, batch_size, seed, input_context=None,
                      start_images=0, kind='tones', global_batch=None,
                      pitches=None):
  """Infinite batches keyed by image index (exact under any strategy/resume).

  Element e of input pipeline p (r replicas per pipeline) holds the global
  batch of step e // r, slice of replica p * r + e % r: a global batch is the
  same whatever the number of replicas, and `start_images` resumes exactly.
  """
  num_pipelines = input_context.num_input_pipelines if input_context else 1
  pipeline = input_context.input_pipeline_id if input_context else 0
  replicas = input_context.num_replicas_in_sync if input_context else 1
  per_pipeline = max(replicas // num_pipelines, 1)
  global_batch = int(global_batch or batch_size * replicas)
  b = int(batch_size)
  h, w = config.final_resolution
  ch = config.num_channels
  transform = config.spec_transform()
  normalizer = config.normalizer()
  seed = int(seed)

  def make(e):
    step = e // per_pipeline
    replica = pipeline * per_pipeline + e % per_pipeline
    base = int(start_images) + step * global_batch + replica * b
    keys = base + tf.range(b, dtype=tf.int64)
    if kind == 'noise':
      specs = tf.random.stateless_uniform(
          [b, h, w, ch], seed=tf.stack([tf.constant(seed, tf.int64), base]),
          minval=-0.8, maxval=0.8)
      labels = tf.random.stateless_uniform(
          [b], seed=tf.stack([tf.constant(seed + 1, tf.int64), base]),
          minval=0, maxval=config.num_pitches, dtype=tf.int32)
      return specs, tf.one_hot(labels, config.num_pitches)
    waves, pitch = synthetic_tones(config, b, keys, seed, pitches)
    specs = normalizer.normalize(transform.waves_to_specgrams(waves))
    specs = tf.ensure_shape(specs, [b, h, w, ch])
    return specs, tf.one_hot(pitch - config.min_pitch, config.num_pitches)

  ds = tf.data.Dataset.range(2**62).map(
      make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.prefetch(2)


def make_dataset_fn(config, source=None):
  """fn(batch_size, seed, input_context, start_images, global_batch) -> ds.

  `source` defaults to config.dataset_name.
  """
  source = source or config.dataset_name
  if source in SYNTHETIC_SOURCES:
    kind = 'noise' if source == 'synthetic_noise' else 'tones'

    def synthetic_fn(batch_size, seed, input_context, start_images,
                     global_batch):
      return synthetic_dataset(config, batch_size, seed, input_context,
                               start_images, kind, global_batch)
    return synthetic_fn

  from gansynth_tf2 import data  # pylint: disable=g-import-not-at-top
  if source not in data.SOURCES:
    raise TrainingError('unknown dataset_name %r; expected one of %s' %
                        (source, sorted(data.SOURCES) +
                         list(SYNTHETIC_SOURCES)))

  def real_fn(batch_size, seed, input_context, start_images, global_batch):
    del global_batch
    # A fresh order after a resume (see the module doc).
    return data.build_train_dataset(
        config, batch_size, seed=_mix_seed(seed, start_images),
        input_context=input_context)
  return real_fn


# -----------------------------------------------------------------------------
# The trainer.
# -----------------------------------------------------------------------------
def _format_secs(s):
  if s is None or not np.isfinite(s):
    return '?'
  s = int(round(s))
  return '%d:%02d:%02d' % (s // 3600, s // 60 % 60, s % 60)


def _readable(path):
  """rw-r--r-- (atomic writes create 0600 temp files)."""
  try:
    os.chmod(path, 0o644)
  except OSError:
    pass


def _check_supported(config):
  """Original hparams this trainer does not implement raise, not ignored."""
  if config.train_time_limit is not None:
    raise TrainingError('train_time_limit (wall-clock stage schedule) is not '
                        'supported; schedule with stable/transition/total '
                        'image counts')
  if float(config.gen_gl_consistency_loss_weight or 0.0) > 0.0:
    raise TrainingError('gen_gl_consistency_loss_weight > 0 (G&L consistency '
                        'loss) is not supported')
  if int(config.ps_tasks or 0) > 0:
    raise TrainingError('ps_tasks > 0 (parameter servers) is not supported; '
                        'use --strategy=multi_worker')


def architecture_diff(old, new):
  """[(name, old value, new value)] of ARCHITECTURE_KEYS that differ; keys
  missing from the dict `old` are not compared."""
  return [(k, old[k], new.get(k)) for k in ARCHITECTURE_KEYS
          if k in old and old[k] != new.get(k)]


def _check_resume_config(root, config):
  path = os.path.join(root, model_io.EXPERIMENT_JSON)
  # A run killed before its first checkpoint has nothing to protect.
  if not (os.path.isfile(path) and
          tf.train.latest_checkpoint(os.path.join(root, CHECKPOINT_DIR))):
    return
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise TrainingError('%s: unreadable (%s)' % (path, e)) from None
  diff = architecture_diff(old, config.to_dict())
  if diff:
    raise TrainingError(
        '%s holds a run with different architecture hparams (%s); use a new '
        '--train_root_dir or the same config' % (
            root, ', '.join('%s: %r -> %r' % d for d in diff)))


class Trainer:
  """Owns the GAN, its checkpoint and the stage loop of one train root dir.

  Args:
    config: a `Config`.
    train_root_dir: the run's folder (created; resumed from if it holds a
      checkpoint).
    strategy: a tf.distribute.Strategy, or a name of `make_strategy`.
    dataset_fn: see `make_dataset_fn` (default: from config.dataset_name).
    fake_labels, minibatch_groups: passed to `gan.GAN`.
    log: fn(str) for progress lines (default print to stdout, chief only).
    log_every_secs: seconds between progress lines.
    summaries: write TensorBoard summaries (chief only).
    num_summary_samples: EMA samples per audio summary (default
      fake_batch_size, at most 16).
    max_checkpoints: checkpoints kept.
  """

  def __init__(self, config, train_root_dir, strategy='auto', tpu=None,
               dataset_fn=None, fake_labels='real', minibatch_groups=1,
               log=None, log_every_secs=10.0, summaries=True,
               num_summary_samples=None, max_checkpoints=3, init_from=None):
    self.config = config
    self.root = os.path.abspath(train_root_dir)
    if isinstance(strategy, str):
      strategy = make_strategy(strategy, tpu)
    self.strategy = strategy
    self.is_chief, self.task = worker_role(strategy)
    self._log = log or (lambda s: print(s, flush=True))
    self.log_every_secs = float(log_every_secs)
    self.dataset_fn = dataset_fn or make_dataset_fn(config)
    self.num_replicas = int(strategy.num_replicas_in_sync)
    self._stop_signal = None

    _check_supported(config)
    _check_resume_config(self.root, config)
    # Check the data source before anything is written (bad paths fail here).
    b0 = config.batch_size(0) // max(self.num_replicas, 1) or 1
    self.dataset_fn(b0, 0, None, 0, b0)
    self.created_root = not os.path.isdir(self.root)
    os.makedirs(self.root, exist_ok=True)
    if config.seed is not None:
      # Initial weights from the seed too (a fresh run is reproducible).
      import keras  # pylint: disable=g-import-not-at-top
      keras.utils.set_random_seed(int(config.seed))
    with strategy.scope():
      self.gan = gan_lib.GAN(config, fake_labels=fake_labels,
                             minibatch_groups=minibatch_groups,
                             seed=config.seed)
      self.gan.compile()
      self.stage_var = tf.Variable(
          -1, dtype=tf.int64, trainable=False, name='stage_id',
          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.checkpoint = tf.train.Checkpoint(stage_id=self.stage_var,
                                          **self.gan.checkpoint_objects())
    self.ckpt_dir = os.path.join(self.root, CHECKPOINT_DIR)
    if self.is_chief:
      write_dir = self.ckpt_dir
    else:
      write_dir = os.path.join(self.root, '.worker_tmp', self.task)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, write_dir, max_to_keep=max_checkpoints)
    self.restored_from = self._restore()
    if self.restored_from:
      self._apply_config_learning_rates()
    self.initialized_from = None
    if self.restored_from is None and init_from:
      self._init_from(init_from)
    if self.is_chief:
      cfg = config.copy(train_root_dir=self.root)
      cfg.to_json(os.path.join(self.root, model_io.EXPERIMENT_JSON))
      _readable(os.path.join(self.root, model_io.EXPERIMENT_JSON))
    self.writer = None
    if summaries and self.is_chief:
      self.writer = tf.summary.create_file_writer(
          os.path.join(self.root, SUMMARY_DIR))
    n = num_summary_samples or min(int(config.fake_batch_size), 16)
    self._summary_latents = np.random.RandomState(0).normal(
        size=(n, int(config.latent_vector_size))).astype(np.float32)
    self._summary_labels = np.round(
        np.linspace(0, config.num_pitches - 1, n)).astype(np.int32)
    self._step_fns = {}
    self._sample_fns = {}
    self._iterator = None
    # Per-step metrics of this invocation (the most recent 10000 steps).
    self.history = collections.deque(maxlen=10000)

  # --- state ----------------------------------------------------------------
  @property
  def images_seen(self):
    return int(self.gan.images_seen.numpy())

  def _restore(self):
    prefix = tf.train.latest_checkpoint(self.ckpt_dir)
    if prefix is None:
      return None
    status = self.checkpoint.restore(prefix)
    try:
      status.assert_existing_objects_matched()
    except AssertionError as e:
      raise TrainingError('%s does not match this config: %s' %
                          (prefix, str(e).splitlines()[0][:300])) from None
    return prefix

  def _apply_config_learning_rates(self):
    """The config's learning rates over the restored ones: a resumed run can
    change them with --hparams (Adam's slots and step count are kept)."""
    for opt, key in ((self.gan.g_optimizer, 'generator_learning_rate'),
                     (self.gan.d_optimizer, 'discriminator_learning_rate')):
      want = float(self.config[key])
      have = float(opt.learning_rate.numpy())
      if abs(have - want) > 1e-6 * abs(want):
        opt.learning_rate.assign(want)
        self._log('[gansynth-train] %s %g -> %g (from the config)' % (
            key, have, want))

  def _init_from(self, model_dir):
    """Starts a new run from a native model dir's three networks.

    Copies the generator, EMA generator and discriminator weights and the
    images seen (so the schedule and random stream continue); the optimizers
    start fresh, as at every stage start of the original. This is how a run
    continues on another machine from a model shipped with
    `package_model --with_discriminator` (a training checkpoint with its Adam
    slots is twice the size).
    """
    if not model_io.is_model_dir(model_dir):
      raise TrainingError('--init_from %s: not a gansynth_tf2 model dir (no '
                          '%s)' % (model_dir, model_io.MODEL_JSON))
    info = model_io.read_info(model_dir)
    if not (info.get('has_generator') and info.get('has_discriminator')):
      raise TrainingError(
          '--init_from %s holds only the EMA generator; training needs the '
          'raw generator and the discriminator too (package it with '
          '--with_discriminator)' % model_dir)
    try:
      m = model_io.load_model_dir(model_dir, load_generator=True,
                                  load_discriminator=True)
    except ValueError as e:
      raise TrainingError('--init_from %s: %s' % (model_dir, e)) from None
    # Adding zero-initialized layers is allowed: the discriminator's pitch
    # projection, the generator's per-pitch frequency biases (more blocks).
    adds_projection = (self.config.discriminator_projection and
                       not m['config'].discriminator_projection)
    src_bias = int(m['config'].generator_pitch_bias_blocks)
    adds_bias = int(self.config.generator_pitch_bias_blocks) > src_bias
    allowed = {'discriminator_projection'} if adds_projection else set()
    if adds_bias:
      allowed.add('generator_pitch_bias_blocks')
      if src_bias == 0:  # no stored biases: any multiplier
        allowed.add('generator_pitch_bias_lr_multiplier')
    diff = [d for d in architecture_diff(m['config'].to_dict(),
                                         self.config.to_dict())
            if d[0] not in allowed]
    if diff:
      raise TrainingError('--init_from %s has another architecture: %s' % (
          model_dir, ', '.join('%s=%r (this config: %r)' % d for d in diff)))
    pairs = ((self.gan.generator, m['generator']),
             (self.gan.generator_ema, m['generator_ema']),
             (self.gan.discriminator, m['discriminator']))
    d = self.gan.discriminator
    added = d.projection.weights if adds_projection else []
    below = self.config.num_resolutions - src_bias

    def new_biases(g):  # the blocks below the source's biased ones
      return [w for layer in g.pitch_bias[:below] if layer is not None
              for w in layer.weights]

    try:
      for dst, src in pairs:
        keep = added if dst is d else new_biases(dst)
        networks.copy_weights(src, dst, '--init_from %s' % model_dir,
                              keep=keep)
    except ValueError as e:
      raise TrainingError(str(e)) from None
    images = int(m['info'].get('images_seen', 0))
    self.gan.images_seen.assign(images)
    self.initialized_from = os.path.abspath(model_dir)
    self._log('[gansynth-train] initialized from %s (%d images seen; fresh '
              'optimizers)' % (model_dir, images))
    if added:
      self._log('[gansynth-train] %s: the discriminator\'s pitch projection '
                'is new and starts at zero' % model_dir)
    if adds_bias:
      self._log('[gansynth-train] %s: the generator\'s per-pitch frequency '
                'biases of the top %d blocks are new and start at zero' % (
                    model_dir, self.config.generator_pitch_bias_blocks -
                    src_bias))

  def _info(self, num_blocks, complete):
    return {'format': model_io.FORMAT, 'num_blocks': int(num_blocks),
            'progress': float(self.gan.generator_ema.progress.numpy()),
            'images_seen': self.images_seen, 'has_generator': True,
            'has_discriminator': True, 'stage_id': int(self.stage_var.numpy()),
            'total_num_images': int(self.config.total_num_images),
            'complete': bool(complete), 'checkpoint_dir': CHECKPOINT_DIR}

  def _all_finite(self):
    nets = (self.gan.generator, self.gan.discriminator, self.gan.generator_ema)
    return all(bool(tf.reduce_all(tf.math.is_finite(v)).numpy())
               for n in nets for v in n.weights)

  def save(self, complete=False):
    """model.json (chief) then a checkpoint (every worker, as required)."""
    if not self._all_finite():
      raise TrainingDivergedError(
          'non-finite weights at %d images; not saving over the last good '
          'checkpoint %s' % (self.images_seen,
                             tf.train.latest_checkpoint(self.ckpt_dir)))
    stage = int(self.stage_var.numpy())
    num_blocks = self.config.stage_info(max(stage, 0))[0]
    if self.is_chief:
      # Written first: num_blocks only grows, so an older checkpoint with a
      # newer model.json still generates correctly (extra blocks weigh 0).
      path = os.path.join(self.root, model_io.MODEL_JSON)
      io_util.atomic_write_text(
          path, json.dumps(self._info(num_blocks, complete), indent=1))
      _readable(path)
    path = self.manager.save(checkpoint_number=self.images_seen)
    if not self.is_chief:
      shutil.rmtree(os.path.join(self.root, '.worker_tmp', self.task),
                    ignore_errors=True)
    return path

  # --- traced functions -------------------------------------------------------
  def _step_fn(self, stage_id):
    if stage_id not in self._step_fns:
      gan, strategy = self.gan, self.strategy

      @tf.function
      def step(iterator):
        out = strategy.run(gan.train_step, args=(next(iterator),))
        # train_step returns the global means on every replica.
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in out.items()}
      self._step_fns = {stage_id: step}  # one stage's trace alive at a time
    return self._step_fns[stage_id]

  def _dataset(self, global_batch):
    start = self.images_seen
    seed = int(self.gan.seed.numpy())

    def fn(ctx):
      return self.dataset_fn(ctx.get_per_replica_batch_size(global_batch),
                             seed, ctx, start, global_batch)
    return self.strategy.distribute_datasets_from_function(fn)

  def _sample_fn(self, num_blocks):
    if num_blocks not in self._sample_fns:
      g = self.gan.generator_ema
      transform = self.config.spec_transform()
      normalizer = self.config.normalizer()

      @tf.function
      def sample(z, labels):
        one_hot = tf.one_hot(labels, self.config.num_pitches)
        specs = g((z, one_hot), num_blocks=num_blocks)
        waves = transform.specgrams_to_waves(normalizer.denormalize(specs))
        return specs, waves
      self._sample_fns = {num_blocks: sample}
    return self._sample_fns[num_blocks]

  # --- summaries --------------------------------------------------------------
  def _write_scalars(self, metrics, extra):
    if self.writer is None:
      return
    with self.writer.as_default(step=self.images_seen):
      for k, v in list(metrics.items()) + list(extra.items()):
        tf.summary.scalar(k, v)

  def write_sample_summaries(self, num_blocks):
    """EMA audio + spectrogram images at fixed latents (chief only)."""
    if self.writer is None:
      return
    fn = self._sample_fn(num_blocks)
    specs, waves = [], []
    n = len(self._summary_labels)
    for i in range(0, n, 8):
      s, w = fn(tf.constant(self._summary_latents[i:i + 8]),
                tf.constant(self._summary_labels[i:i + 8]))
      specs.append(s.numpy())
      waves.append(w.numpy())
    specs = np.concatenate(specs)
    waves = np.clip(np.concatenate(waves), -1.0, 1.0)
    with self.writer.as_default(step=self.images_seen):
      tf.summary.audio('ema_fake_waves', waves[..., None],
                       int(self.config.sample_rate), max_outputs=n)
      img = (specs + 1.0) / 2.0
      tf.summary.image('ema_fake_specgrams_magnitude', img[..., :1],
                       max_outputs=n)
      if specs.shape[-1] > 1:
        tf.summary.image('ema_fake_specgrams_if', img[..., 1:2],
                         max_outputs=n)
    self.writer.flush()

  # --- the loop ---------------------------------------------------------------
  def _install_signal_handlers(self):
    def handler(signum, frame):
      del frame
      self._stop_signal = signum
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
      try:
        old[sig] = signal.signal(sig, handler)
      except ValueError:  # not the main thread
        pass
    return old

  def _log_line(self, stage_id, num_blocks, progress, rate, metrics):
    cfg = self.config
    total = int(cfg.total_num_images)
    seen = self.images_seen
    stage_end = cfg.stage_info(stage_id)[1]
    stage_eta = (stage_end - seen) / rate if rate else None
    eta = (total - seen) / rate if rate else None
    self._log(
        '[gansynth-train] stage %d/%d (%d blocks, progress %.3f) | images '
        '%d/%d (%.1f%%) | %s images/s | ETA stage %s, run %s at this speed | '
        'g_loss %.4g d_loss %.4g gp %.3g fake_ac_acc %.2f' % (
            stage_id, cfg.total_num_stages - 1, num_blocks, progress, seen,
            total, 100.0 * seen / max(total, 1),
            '%.3g' % rate if rate else '?', _format_secs(stage_eta),
            _format_secs(eta), metrics.get('g_loss', float('nan')),
            metrics.get('d_loss', float('nan')),
            metrics.get('gradient_penalty', float('nan')),
            metrics.get('fake_ac_accuracy', float('nan'))))

  def train(self, stop_after_images=None):
    """Trains to total_num_images (or `stop_after_images`); returns a dict."""
    cfg = self.config
    total = int(cfg.total_num_images)
    limit = total if stop_after_images is None else min(
        total, int(stop_after_images))
    if self.restored_from:
      self._log('[gansynth-train] resuming from %s (%d images seen)' %
                (self.restored_from, self.images_seen))
    old_handlers = self._install_signal_handlers()
    status = 'complete'
    try:
      status = self._loop(limit)
    finally:
      for sig, h in old_handlers.items():
        signal.signal(sig, h)
    return {'status': status, 'signal': self._stop_signal,
            'images_seen': self.images_seen,
            'stage_id': int(self.stage_var.numpy()),
            'checkpoint': tf.train.latest_checkpoint(self.ckpt_dir),
            'history': list(self.history)}

  def _loop(self, limit):
    cfg = self.config
    total = int(cfg.total_num_images)
    ckpt_every = max(int(cfg.save_checkpoint_num_images or 0), 1)
    summ_every = max(int(cfg.save_summaries_num_images or 0), 1)
    scalar_every = max(summ_every // 10, 1)
    if self.images_seen >= total:
      if self.is_chief:
        self.save(complete=True)
      self._log('[gansynth-train] already complete (%d images)' %
                self.images_seen)
      return 'complete'
    t_start = time.time()
    start_images = self.images_seen
    while self.images_seen < limit:
      stage_id = (cfg.stage_of_images(self.images_seen)
                  if cfg.train_progressive else cfg.total_num_stages - 1)
      num_blocks, stage_end = cfg.stage_info(stage_id)
      global_batch = cfg.batch_size(stage_id)
      if global_batch % self.num_replicas:
        raise TrainingError('batch size %d of stage %d is not divisible by %d '
                            'replicas' % (global_batch, stage_id,
                                          self.num_replicas))
      self.gan.set_stage(stage_id)
      if int(self.stage_var.numpy()) != stage_id:
        # A new stage: fresh optimizer state, as the original's scaffold.
        self.gan.reset_optimizers()
        self.stage_var.assign(stage_id)
      step = self._step_fn(stage_id)
      if self._iterator is None or self._iterator[0] != global_batch:
        # The data stream continues across stages of the same batch size.
        self._iterator = (global_batch,
                          iter(self._dataset(global_batch)))
      iterator = self._iterator[1]
      last_log = 0.0
      n_stage = 0
      rate = None
      self._log('[gansynth-train] stage %d/%d: %d blocks, batch %d, images '
                '%d -> %d' % (stage_id, cfg.total_num_stages - 1, num_blocks,
                              global_batch, self.images_seen, stage_end))
      while self.images_seen < min(stage_end, limit):
        before = self.images_seen
        progress = cfg.compute_progress(before, num_blocks)
        t0 = time.time()
        out = step(iterator)
        metrics = {k: float(v) for k, v in out.items()}
        dt = time.time() - t0
        bad = sorted(k for k, v in metrics.items() if not np.isfinite(v))
        if bad:
          raise TrainingDivergedError(
              'training diverged at %d images (stage %d): non-finite %s; '
              'stopped, last good checkpoint kept: %s' % (
                  before, stage_id, ', '.join('%s=%s' % (k, metrics[k])
                                              for k in bad),
                  tf.train.latest_checkpoint(self.ckpt_dir)))
        after = self.images_seen
        if n_stage > 0:  # the first step of a stage includes tracing
          rate = ((after - before) / dt if rate is None else
                  0.8 * rate + 0.2 * (after - before) / dt)
        n_stage += 1
        self.history.append(dict(metrics, images_seen=before,
                                 stage_id=stage_id, progress=progress))
        if after // scalar_every != before // scalar_every:
          self._write_scalars(metrics, {
              'progress': progress, 'stage_id': stage_id,
              'num_blocks': num_blocks, 'batch_size': global_batch,
              'images_per_sec': rate or 0.0})
        if after // summ_every != before // summ_every:
          self.write_sample_summaries(num_blocks)
        now = time.time()
        if now - last_log >= self.log_every_secs or after >= min(stage_end,
                                                                 limit):
          self._log_line(stage_id, num_blocks, progress, rate, metrics)
          last_log = now
        if self._stop_signal is not None:
          self.save(complete=self.images_seen >= total)
          self._log('[gansynth-train] stopped by signal %d at %d images; '
                    'checkpoint saved' % (self._stop_signal, after))
          return 'interrupted'
        if after // ckpt_every != before // ckpt_every and after < stage_end:
          self.save(complete=False)
      # End of a stage (or of this invocation): always a checkpoint.
      self.save(complete=self.images_seen >= total)
    elapsed = time.time() - t_start
    self._log('[gansynth-train] %s at %d images (%d this run in %s)' % (
        'finished' if self.images_seen >= total else 'stopped',
        self.images_seen, self.images_seen - start_images,
        _format_secs(elapsed)))
    if self.writer is not None:
      self.writer.flush()
    return 'complete' if self.images_seen >= total else 'stopped'


def train(config, train_root_dir, strategy='auto', tpu=None,
          stop_after_images=None, **kwargs):
  """Trains (or resumes) a run; see `Trainer`. Returns Trainer.train()'s dict."""
  root = os.path.abspath(train_root_dir)
  existed = os.path.isdir(root)
  try:
    trainer = Trainer(config, root, strategy=strategy, tpu=tpu, **kwargs)
    return trainer.train(stop_after_images=stop_after_images)
  except BaseException:
    # Leave no half-made run behind: a new dir without any checkpoint goes.
    if not existed and os.path.isdir(root) and not tf.train.latest_checkpoint(
        os.path.join(root, CHECKPOINT_DIR)):
      shutil.rmtree(root, ignore_errors=True)
    raise
