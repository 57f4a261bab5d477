"""The GANSynth GAN as a Keras model: progressive WGAN-GP + AC-GAN + EMA.

One call of `GAN.train_step((real, one_hot))` is one step of the original
(`tfgan.gan_train` with sequential 1:1 hooks): ONE generator Adam step, then
the generator EMA update, then ONE discriminator Adam step, then
`images_seen += global_batch` (the original's global_step counts images).

  generator loss     = -mean D(G(z, y))                       (Wasserstein)
                       + generator_ac_loss_weight * CE(y, D_cls(G(z, y)))
  discriminator loss = mean D(fake) - mean D(real)            (Wasserstein)
                       + gradient_penalty_weight * mean GP
                       + real_score_penalty_weight * mean D(real)^2
                       + discriminator_ac_loss_weight * CE(y_real, D_cls(real))
  GP_i = (||d sum_j D(x_hat_j) / d x_hat_i|| - target)^2 / target^2,
  x_hat = real + u (fake - real), u ~ U[0, 1) per example.

The gradient of the GP is taken, as in the original, with respect to the
DENORMALIZED interpolates (the original's generator outputs denormalized
specgrams, real data are denormalized, and the discriminator normalizes its
input with clip(a x + b, -1, 1)): we interpolate in the normalized domain
(the same points, normalization being affine) and multiply the gradient by
the normalizer's per-channel `a` (chain rule; the clip is the identity on
the interpolates of a real batch and a generator output in [-1, 1]).
With the default normalizer a = (0.066, 0.8): the magnitude channel's
gradient counts 15x less in the norm than in the normalized domain.

`gan_loss='nonsaturating'` (an option, not the original's) replaces the
Wasserstein terms and the GP by the logistic losses with an R1 penalty on the
real batch (Mescheder et al. 2018; StyleGAN2), which converge in fewer steps:

  generator loss     = mean softplus(-D(G(z, y))) + AC term as above
  discriminator loss = mean softplus(D(fake)) + mean softplus(-D(real))
                       + r1_gamma / 2 * mean ||d D(real) / d real||^2
                       + real_score_penalty_weight * mean D(real)^2 + AC term
The metrics keep their names: 'gradient_penalty' is then the R1 term
||grad||^2 (before r1_gamma / 2) and 'wasserstein_distance' the score gap.

`discriminator_projection` (an option) conditions every score D(x) above on
the pitch, D(x | y) = logits(phi(x)) + <E[y], phi(x)> (Miyato & Koyama 2018):
fakes are scored with the labels they were generated with, real notes and the
WGAN-GP interpolates with the real labels.

`real` is the batch blended across resolutions like the original
(`networks.blend_images` at the current progress). Each of the two sub-steps
draws its own latents z ~ N(0, 1) and its own fake labels y. Fake labels are
drawn (with replacement) from the labels of the GLOBAL real batch by default
(`fake_labels='real'`: the data's pitch distribution, as the original draws
them from the NSynth pitch histogram), or uniformly over all pitches
(`fake_labels='uniform'`).

The norm of the GP gradient is computed safely: where the squared norm is 0
the norm is 0 with a zero derivative (the original passes epsilon 0 to a bare
sqrt, whose derivative is infinite at 0).

Distribution: `train_step` runs in a replica context of any tf.distribute
strategy. Every per-example term is summed and divided by the GLOBAL batch, so
summing over replicas (what Keras' optimizer does with gradients) gives the
global mean. All randomness is stateless, keyed by (seed, images_seen, stream)
and drawn for the whole global batch, each replica taking its own slice: the
same global batch gives the same random numbers on 1 device or N replicas, and
a resumed run draws exactly what an uninterrupted one would.

Note on the minibatch-stddev layer: the discriminator computes it over the
batch it is called with, i.e. per replica under a strategy. `minibatch_groups`
> 1 splits each replica's batch into that many groups for every
discriminator call (equal statistics on one device and on N replicas of a
global batch N times smaller per replica).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from gansynth_tf2 import networks

FAKE_LABEL_MODES = ('real', 'uniform')

# Stream ids of the stateless random draws of one step.
_G_LATENTS, _G_LABELS, _D_LATENTS, _D_LABELS, _GP_MIX = range(5)
_STREAMS = 8

# Names of the (global-mean) values `train_step` returns.
METRIC_NAMES = (
    'g_loss', 'd_loss', 'g_wasserstein_loss', 'd_wasserstein_loss',
    'wasserstein_distance', 'gradient_penalty', 'real_score_penalty',
    'real_ac_loss', 'fake_ac_loss', 'real_ac_accuracy', 'fake_ac_accuracy',
    'd_real', 'd_fake', 'gradient_norm')


def compute_progress(images_seen, config, num_blocks):
  """In-graph `config.compute_progress` (float32 scalar); exact for ints."""
  if not config.train_progressive:
    return tf.constant(float(num_blocks - 1), tf.float32)
  stable = int(config.stable_stage_num_images)
  trans = int(config.transition_stage_num_images)
  min_total = num_blocks * stable + (num_blocks - 1) * trans
  capped = tf.minimum(tf.cast(images_seen, tf.int64), min_total - 1)
  stage_images = stable + trans
  integer = capped // stage_images
  rem = capped % stage_images - stable
  fraction = tf.maximum(tf.constant(0.0, tf.float64),
                        tf.cast(rem, tf.float64) / float(max(trans, 1)))
  return tf.cast(tf.cast(integer, tf.float64) + fraction, tf.float32)


def safe_norm(squared_norm):
  """sqrt(x) with value 0 and derivative 0 at x == 0 (no inf/NaN)."""
  positive = squared_norm > 0.0
  safe = tf.where(positive, squared_norm, tf.ones_like(squared_norm))
  return tf.where(positive, tf.sqrt(safe), tf.zeros_like(squared_norm))


def gradient_penalty(gradients, target=1.0):
  """Per-example (||g|| - target)^2 / target^2 and ||g||. g: [B, ...]."""
  axes = list(range(1, gradients.shape.rank))
  norm = safe_norm(tf.reduce_sum(tf.square(gradients), axis=axes))
  return tf.square(norm - target) / (target * target), norm


def r1_penalty(gradients):
  """Per-example ||g||^2 (R1) and ||g||. g: [B, ...]."""
  axes = list(range(1, gradients.shape.rank))
  sq = tf.reduce_sum(tf.square(gradients), axis=axes)
  return sq, safe_norm(sq)


def softmax_cross_entropy(one_hot, logits):
  return tf.nn.softmax_cross_entropy_with_logits(
      labels=tf.stop_gradient(one_hot), logits=logits)


def ema_update(shadow, value, decay):
  """The original's ExponentialMovingAverage (no num_updates) on tensors."""
  return shadow - (1.0 - decay) * (shadow - value)


def _tf_var(v):
  """The tf.Variable (or DistributedVariable) under a Keras variable."""
  return v.value if isinstance(v, keras.Variable) else v


def _update_in_replica_context(pairs, fn):
  """var <- fn(var, value) for (var, value) pairs, from a replica context.

  Runs in the cross-replica context through merge_call (works under every
  strategy, including the default one), each device updating its own copy
  with its own value.
  """
  variables = [_tf_var(v) for v, _ in pairs]
  values = [x for _, x in pairs]

  def merge_fn(strategy, *vals):
    for var, val in zip(variables, vals):
      strategy.extended.update(var, fn, args=(val,), group=False)

  ctx = tf.distribute.get_replica_context()
  if ctx is None:  # already cross-replica
    merge_fn(tf.distribute.get_strategy(), *values)
  else:
    ctx.merge_call(merge_fn, args=tuple(values))


def random_seed():
  """A fresh random int seed in [0, 2^31)."""
  return int.from_bytes(os.urandom(4), 'little') & 0x7fffffff


def make_adam(config, which):
  """Adam as the original: lr from config, beta1/beta2 from config, eps 1e-8."""
  lr = (config.generator_learning_rate if which == 'generator' else
        config.discriminator_learning_rate)
  return keras.optimizers.Adam(
      learning_rate=float(lr), beta_1=float(config.adam_beta1),
      beta_2=float(config.adam_beta2), epsilon=1e-8,
      name='%s_adam' % which)


def reset_optimizer(optimizer):
  """Zeroes Adam's slots and step count (the original starts every stage with
  fresh optimizer variables: its scaffold restores everything but them)."""
  for v in optimizer.variables:
    if v is optimizer.iterations or v.path == optimizer.iterations.path:
      v.assign(tf.zeros_like(v))
    elif getattr(optimizer, '_learning_rate', None) is v:
      continue
    elif 'learning_rate' in v.path:
      continue
    else:
      v.assign(tf.zeros_like(v))


class GAN(keras.Model):
  """Generator + discriminator + EMA generator, trained by `train_step`.

  Args:
    config: a `Config`.
    generator, discriminator, generator_ema: networks (built here if None;
      generator_ema starts as a copy of generator).
    fake_labels: 'real' or 'uniform' (see the module doc).
    minibatch_groups: discriminator minibatch-stddev groups per replica batch.
    seed: int seed of the stateless random draws (random if None).

  Attributes:
    images_seen: int64 variable (the original's global_step).
    seed: int64 variable.
    stage_id, num_blocks: the current stage (`set_stage`).
  """

  def __init__(self, config, generator=None, discriminator=None,
               generator_ema=None, fake_labels='real', minibatch_groups=1,
               seed=None, **kwargs):
    super().__init__(**kwargs)
    if fake_labels not in FAKE_LABEL_MODES:
      raise ValueError('fake_labels must be one of %s, got %r' %
                       (FAKE_LABEL_MODES, fake_labels))
    self.config = config
    self.fake_labels = fake_labels
    self.minibatch_groups = int(minibatch_groups)
    self.generator = generator or networks.Generator(config).build_all()
    self.discriminator = (discriminator or
                          networks.Discriminator(config).build_all())
    if generator_ema is None:
      generator_ema = networks.Generator(config,
                                         name='generator_ema').build_all()
      for e, v in zip(generator_ema.weights, self.generator.weights):
        e.assign(v)
    self.generator_ema = generator_ema
    if seed is None:
      seed = random_seed()
    self.images_seen = tf.Variable(
        0, dtype=tf.int64, trainable=False, name='images_seen',
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.seed = tf.Variable(
        int(seed), dtype=tf.int64, trainable=False, name='seed',
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.stage_id = None
    self.num_blocks = int(config.num_resolutions)
    self.ema_decay = float(config.ema_decay)
    self.nonsaturating = config.gan_loss == 'nonsaturating'
    self.g_optimizer = None
    self.d_optimizer = None
    self.built = True

  # --- setup ------------------------------------------------------------------
  def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
    """Optimizers (default: the original's Adam); build them in the scope."""
    super().compile(**kwargs)
    self.d_optimizer = d_optimizer or make_adam(self.config, 'discriminator')
    self.g_optimizer = g_optimizer or make_adam(self.config, 'generator')
    self.d_optimizer.build(self.discriminator.trainable_variables)
    self.g_optimizer.build(self.generator.trainable_variables)

  def set_stage(self, stage_id):
    """Selects the stage (static num_blocks: one traced function each)."""
    num_blocks, _ = self.config.stage_info(stage_id)
    if stage_id != self.stage_id:
      self.stage_id = int(stage_id)
      self.num_blocks = int(num_blocks)
      self.train_function = None  # Keras' fit retraces for the new stage
    return self.num_blocks

  def reset_optimizers(self):
    reset_optimizer(self.g_optimizer)
    reset_optimizer(self.d_optimizer)

  def set_progress(self, progress):
    for net in (self.generator, self.discriminator, self.generator_ema):
      net.progress.assign(float(progress))

  def checkpoint_objects(self):
    """Objects of a training checkpoint (the native model dir's keys)."""
    return dict(generator_ema=self.generator_ema, generator=self.generator,
                discriminator=self.discriminator,
                g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer,
                images_seen=self.images_seen, seed=self.seed)

  # --- pieces of a step -------------------------------------------------------
  def discriminate(self, images, one_hot):
    """D(images | one_hot) with `minibatch_groups` groups: ([B, 1], [B, P]).

    The labels condition the score only with discriminator_projection.
    The input is clipped to [-1, 1] as the original's discriminator does
    (it normalizes its input with clip(a x + b, -1, 1)): a no-op for real
    data (normalized, clipped) and a tanh generator, but with
    to_rgb_activation 'linear' the critic sees (and the generator gets
    gradient through) only the clipped fakes, as in the original.
    """
    images = tf.clip_by_value(images, -1.0, 1.0)
    g = self.minibatch_groups
    if g <= 1:
      return self.discriminator(images, num_blocks=self.num_blocks,
                                one_hot=one_hot)
    ys = tf.split(one_hot, g, axis=0) if one_hot is not None else [None] * g
    outs = [self.discriminator(x, num_blocks=self.num_blocks, one_hot=y)
            for x, y in zip(tf.split(images, g, axis=0), ys)]
    return (tf.concat([o[0] for o in outs], 0),
            tf.concat([o[1] for o in outs], 0))

  def generate(self, latents, one_hot):
    return self.generator((latents, one_hot), num_blocks=self.num_blocks)

  def _random(self, kind, stream, global_shape, dtype=tf.float32, maxval=None):
    """Stateless draw for the global batch; this replica's slice."""
    seed = tf.stack([self.seed, self.images_seen * _STREAMS + stream])
    if kind == 'normal':
      x = tf.random.stateless_normal(global_shape, seed=seed, dtype=dtype)
    elif kind == 'uniform':
      x = tf.random.stateless_uniform(global_shape, seed=seed, dtype=dtype)
    else:  # 'int'
      x = tf.random.stateless_uniform(global_shape, seed=seed, minval=0,
                                      maxval=maxval, dtype=tf.int32)
    ctx = tf.distribute.get_replica_context()
    n = global_shape[0] // self._num_replicas()
    rid = ctx.replica_id_in_sync_group if ctx is not None else 0
    return x[rid * n:(rid + 1) * n]

  def _normalizer_scale(self):
    """The normalizer's per-channel `a` as a [C] float32 constant."""
    return tf.constant(np.asarray(self.config.normalizer().a, np.float32))

  @staticmethod
  def _num_replicas():
    ctx = tf.distribute.get_replica_context()
    return int(ctx.num_replicas_in_sync) if ctx is not None else 1

  def _fake_labels(self, stream, all_real_labels, global_batch):
    p = self.config.num_pitches
    if self.fake_labels == 'uniform':
      idx = self._random('int', stream, [global_batch], maxval=p)
      return tf.one_hot(idx, p)
    idx = self._random('int', stream, [global_batch], maxval=global_batch)
    return tf.gather(all_real_labels, idx)

  # --- the step ---------------------------------------------------------------
  def train_step(self, data):
    """One generator step, EMA, one discriminator step. data: (specs, one_hot).

    Returns the global means of the step's values, on every replica (each
    replica's sum over its examples divided by the global batch, summed over
    the replicas with an all-reduce).
    """
    real, real_labels = data
    real = tf.convert_to_tensor(real, tf.float32)
    real_labels = tf.cast(real_labels, tf.float32)
    num_replicas = self._num_replicas()
    batch = real.shape[0]
    if batch is None:
      # Distributed iterators may hide the static batch (e.g. multi-worker):
      # the stage's global batch from the config.
      batch = self.config.batch_size(self.stage_id or 0) // num_replicas
    batch = int(batch)
    real = tf.ensure_shape(real, [batch] + real.shape.as_list()[1:])
    real_labels = tf.ensure_shape(real_labels,
                                  [batch] + real_labels.shape.as_list()[1:])
    if batch % max(self.minibatch_groups, 1):
      raise ValueError('per-replica batch %d not divisible by '
                       'minibatch_groups %d' % (batch, self.minibatch_groups))
    global_batch = batch * num_replicas
    inv = 1.0 / global_batch
    c = self.config
    ctx = tf.distribute.get_replica_context()
    all_real_labels = (ctx.all_gather(real_labels, axis=0)
                       if ctx is not None and num_replicas > 1 else
                       real_labels)

    # Progress from the images seen before this step (as the original).
    progress = compute_progress(self.images_seen, c, self.num_blocks)
    _update_in_replica_context(
        [(n.progress, progress) for n in
         (self.generator, self.discriminator, self.generator_ema)],
        lambda var, val: var.assign(val))

    latent_shape = [global_batch, int(c.latent_vector_size)]

    # ---- generator step ----
    z = self._random('normal', _G_LATENTS, latent_shape)
    y_g = self._fake_labels(_G_LABELS, all_real_labels, global_batch)
    g_vars = self.generator.trainable_variables
    with tf.GradientTape() as tape:
      fake = self.generate(z, y_g)
      d_fake_g, cls_fake_g = self.discriminate(fake, y_g)
      g_wass = (tf.nn.softplus(-d_fake_g[:, 0]) if self.nonsaturating else
                -d_fake_g[:, 0])
      fake_ac = softmax_cross_entropy(y_g, cls_fake_g)
      g_loss = tf.reduce_sum(
          g_wass + float(c.generator_ac_loss_weight) * fake_ac) * inv
    grads = tape.gradient(g_loss, g_vars)
    pairs = [(g, v) for g, v in zip(grads, g_vars) if g is not None]
    self.g_optimizer.apply_gradients(pairs)
    decay = self.ema_decay
    _update_in_replica_context(
        list(zip(self.generator_ema.trainable_variables,
                 [_tf_var(v) for v in g_vars])),
        lambda shadow, value: shadow.assign(ema_update(shadow, value, decay)))

    # ---- discriminator step ----
    z = self._random('normal', _D_LATENTS, latent_shape)
    y = self._fake_labels(_D_LABELS, all_real_labels, global_batch)
    fake = tf.stop_gradient(self.generate(z, y))
    real_blend = networks.blend_images(real, self.generator.progress, c,
                                       self.num_blocks)
    d_vars = self.discriminator.trainable_variables
    with tf.GradientTape() as tape:
      if self.nonsaturating:
        # R1: the gradient at the real batch (D(real) computed once).
        with tf.GradientTape() as gp_tape:
          gp_tape.watch(real_blend)
          d_real, cls_real = self.discriminate(real_blend, real_labels)
          d_real_sum = tf.reduce_sum(d_real)
        gp_grads = gp_tape.gradient(d_real_sum, real_blend)
        gp, gnorm = r1_penalty(gp_grads)
        gp_weight = 0.5 * float(c.r1_gamma)
      else:
        d_real, cls_real = self.discriminate(real_blend, real_labels)
        mix = self._random('uniform', _GP_MIX, [global_batch, 1, 1, 1])
        interp = real_blend + mix * (fake - real_blend)
        with tf.GradientTape() as gp_tape:
          gp_tape.watch(interp)
          d_interp, _ = self.discriminate(interp, real_labels)
          d_interp_sum = tf.reduce_sum(d_interp)
        gp_grads = gp_tape.gradient(d_interp_sum, interp)
        # d D / d x_raw = a * d D / d x_normalized (see the module doc).
        gp_grads = gp_grads * self._normalizer_scale()
        gp, gnorm = gradient_penalty(gp_grads,
                                     float(c.gradient_penalty_target))
        gp_weight = float(c.gradient_penalty_weight)
      d_fake, _ = self.discriminate(fake, y)
      d_real, d_fake = d_real[:, 0], d_fake[:, 0]
      d_wass = d_fake - d_real
      if self.nonsaturating:
        d_adv = tf.nn.softplus(d_fake) + tf.nn.softplus(-d_real)
      else:
        d_adv = d_wass
      drift = tf.square(d_real)
      real_ac = softmax_cross_entropy(real_labels, cls_real)
      d_loss = tf.reduce_sum(
          d_adv + gp_weight * gp +
          float(c.real_score_penalty_weight) * drift +
          float(c.discriminator_ac_loss_weight) * real_ac) * inv
    grads = tape.gradient(d_loss, d_vars)
    pairs = [(g, v) for g, v in zip(grads, d_vars) if g is not None]
    self.d_optimizer.apply_gradients(pairs)

    _update_in_replica_context(
        [(self.images_seen, tf.constant(global_batch, tf.int64))],
        lambda var, val: var.assign_add(val))

    def acc(one_hot, logits):
      return tf.cast(tf.equal(tf.argmax(one_hot, -1), tf.argmax(logits, -1)),
                     tf.float32)

    s = lambda x: tf.reduce_sum(x) * inv  # pylint: disable=unnecessary-lambda-assignment
    metrics = {
        'g_loss': g_loss,
        'd_loss': d_loss,
        'g_wasserstein_loss': s(g_wass),
        'd_wasserstein_loss': s(d_wass),
        'wasserstein_distance': -s(d_wass),
        'gradient_penalty': s(gp),
        'real_score_penalty': s(drift),
        'real_ac_loss': s(real_ac),
        'fake_ac_loss': s(fake_ac),
        'real_ac_accuracy': s(acc(real_labels, cls_real)),
        'fake_ac_accuracy': s(acc(y_g, cls_fake_g)),
        'd_real': s(d_real),
        'd_fake': s(d_fake),
        'gradient_norm': s(gnorm),
    }
    if ctx is not None and num_replicas > 1:
      # Every replica returns the global means (keras fit() reduces the
      # replicas' outputs by their mean, or takes the first on TPU).
      names = sorted(metrics)
      summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                              [metrics[k] for k in names])
      metrics = dict(zip(names, summed))
    return metrics
