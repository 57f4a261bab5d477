"""The GAN keras.Model: objective, gradient penalty, EMA, progress, Adam."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf2 import config as config_lib
from gansynth_tf2 import gan as gan_lib
from gansynth_tf2 import networks


@pytest.fixture(scope='module')
def cfg():
  return config_lib.load_config('tiny')


def _real_batch(cfg, n=8, seed=0):
  rng = np.random.RandomState(seed)
  real = rng.uniform(-0.8, 0.8, size=(n,) + cfg.final_resolution +
                     (cfg.num_channels,)).astype(np.float32)
  labels = np.eye(cfg.num_pitches, dtype=np.float32)[
      rng.randint(0, cfg.num_pitches, n)]
  return tf.constant(real), tf.constant(labels)


def _weights(model):
  return [v.numpy().copy() for v in model.weights]


def _set(model, values):
  """Restores weights, leaving the progress variable alone."""
  for v, x in zip(model.weights, values):
    if 'progress' not in v.path:
      v.assign(x)


def _step_draws(gan, labels, start):
  """The latents and fake labels train_step draws at `start` images seen
  (stateless, keyed by images_seen): z_g, y_g, z_d, y_d."""
  gan.images_seen.assign(start)
  n = int(labels.shape[0])
  lat = [n, gan.config.latent_vector_size]
  return (gan._random('normal', gan_lib._G_LATENTS, lat),
          gan._fake_labels(gan_lib._G_LABELS, labels, n),
          gan._random('normal', gan_lib._D_LATENTS, lat),
          gan._fake_labels(gan_lib._D_LABELS, labels, n))


def _randomize_projection(d, seed=0):
  k = d.projection.kernel
  k.assign(np.random.RandomState(seed).normal(size=k.shape).astype(np.float32))


def _ce(y, logits):
  return -tf.reduce_sum(y * tf.nn.log_softmax(logits), -1)


@pytest.mark.parametrize('overrides', [
    {}, {'stable_stage_num_images': 24, 'transition_stage_num_images': 40},
    {'train_progressive': False}])
def test_compute_progress_matches_config(cfg, overrides):
  c = cfg.copy(**overrides)
  for num_blocks in range(1, c.num_resolutions + 1):
    images = np.arange(0, 420, 3)
    got = [float(gan_lib.compute_progress(tf.constant(i, tf.int64), c,
                                          num_blocks)) for i in images]
    want = [np.float32(c.compute_progress(int(i), num_blocks))
            for i in images]
    np.testing.assert_array_equal(got, want)


def test_safe_norm_value_and_gradient_at_zero():
  x = tf.constant([0.0, 4.0, 2.25])
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = gan_lib.safe_norm(x)
  g = tape.gradient(y, x).numpy()
  np.testing.assert_allclose(y.numpy(), [0.0, 2.0, 1.5])
  np.testing.assert_allclose(g, [0.0, 0.25, 1.0 / 3.0], rtol=1e-6)
  assert np.all(np.isfinite(g))


def test_gradient_penalty_by_hand():
  # D(x) = sum(a * x) has gradient a everywhere: ||a|| = sqrt(9 * 4) = 6.
  a = tf.fill([2, 2, 2, 1], 3.0)
  x = tf.random.uniform([2, 2, 2, 1])
  with tf.GradientTape() as tape:
    tape.watch(x)
    d = tf.reduce_sum(a * x)
  gp, norm = gan_lib.gradient_penalty(tape.gradient(d, x), target=1.0)
  np.testing.assert_allclose(norm.numpy(), [6.0, 6.0])
  np.testing.assert_allclose(gp.numpy(), [25.0, 25.0])  # (6 - 1)^2
  gp2, _ = gan_lib.gradient_penalty(a, target=2.0)
  np.testing.assert_allclose(gp2.numpy(), [4.0, 4.0])  # ((6 - 2) / 2)^2
  # A zero gradient gives (0 - 1)^2 and a finite derivative.
  z = tf.zeros([1, 2, 2, 1])
  with tf.GradientTape() as tape:
    tape.watch(z)
    gp0, _ = gan_lib.gradient_penalty(z * z, target=1.0)
  np.testing.assert_allclose(gp0.numpy(), [1.0])
  assert np.all(np.isfinite(tape.gradient(gp0, z).numpy()))


def test_adam_is_the_originals(cfg):
  g = gan_lib.GAN(cfg, seed=1)
  g.compile()
  for opt, lr in ((g.g_optimizer, cfg.generator_learning_rate),
                  (g.d_optimizer, cfg.discriminator_learning_rate)):
    assert opt.beta_1 == 0.0 and opt.beta_2 == 0.99 and opt.epsilon == 1e-8
    assert abs(float(opt.learning_rate) - lr) < 1e-9


def test_train_step_objective_ema_and_stage_blocks(cfg):
  """One eager step against an independent recomputation of both losses."""
  gan = gan_lib.GAN(cfg, seed=5)
  gan.compile()
  gan.set_stage(1)  # 2 blocks, transition stage
  start = 24  # progress 0.5: real images blended, D/G blocks blended
  gan.images_seen.assign(start)
  real, labels = _real_batch(cfg)
  g0, d0 = _weights(gan.generator), _weights(gan.discriminator)
  ema0 = _weights(gan.generator_ema)
  out = gan.train_step((real, labels))
  out = {k: float(v) for k, v in out.items()}
  assert int(gan.images_seen.numpy()) == start + 8
  progress = cfg.compute_progress(start, 2)
  assert progress == 0.5
  for net in (gan.generator, gan.discriminator, gan.generator_ema):
    assert float(net.progress.numpy()) == progress
  g1, d1 = _weights(gan.generator), _weights(gan.discriminator)

  # Same random draws as the step (stateless, keyed by images_seen).
  z_g, y_g, z_d, y_d = _step_draws(gan, labels, start)
  u = gan._random('uniform', gan_lib._GP_MIX, [8, 1, 1, 1])
  # Fake labels are drawn from the real batch's labels.
  real_ids = set(np.argmax(labels.numpy(), -1))
  assert set(np.argmax(y_g.numpy(), -1)) <= real_ids

  G, D = gan.generator, gan.discriminator

  # Generator loss: G and D before the step.
  _set(G, g0)
  _set(D, d0)
  d_f, c_f = D(G((z_g, y_g), num_blocks=2), num_blocks=2)
  want_g = (-tf.reduce_mean(d_f) + cfg.generator_ac_loss_weight *
            tf.reduce_mean(_ce(y_g, c_f)))
  # Discriminator loss: G after its step, D before.
  _set(G, g1)
  fake = G((z_d, y_d), num_blocks=2)
  real_b = networks.blend_images(real, 0.5, cfg, 2)
  # The GP as the original computes it: its generator outputs and real data
  # are DENORMALIZED specgrams, interpolated there, and its discriminator
  # normalizes its input (clip(a x + b, -1, 1)); the gradient is taken with
  # respect to the denormalized interpolates.
  normalizer = cfg.normalizer()
  raw_real, raw_fake = normalizer.denormalize(real_b), normalizer.denormalize(fake)
  x_hat = raw_real + u * (raw_fake - raw_real)
  with tf.GradientTape() as tape:
    tape.watch(x_hat)
    s = tf.reduce_sum(D(normalizer.normalize(x_hat), num_blocks=2)[0])
  grad = tape.gradient(s, x_hat)
  norm = tf.norm(tf.reshape(grad, [8, -1]), axis=1)
  gp = tf.reduce_mean(tf.square(norm - 1.0))
  # ... which differs from the penalty in the normalized domain.
  norm_n = tf.norm(tf.reshape(grad / normalizer.a.astype(np.float32),
                              [8, -1]), axis=1)
  assert float(tf.reduce_mean(tf.abs(norm_n - norm))) > 1e-2 * float(
      tf.reduce_mean(norm))
  d_r, c_r = D(real_b, num_blocks=2)
  d_fk, _ = D(fake, num_blocks=2)
  want_d = (tf.reduce_mean(d_fk) - tf.reduce_mean(d_r) + 10.0 * gp +
            0.001 * tf.reduce_mean(tf.square(d_r)) +
            cfg.discriminator_ac_loss_weight * tf.reduce_mean(_ce(labels, c_r)))
  _set(D, d1)
  np.testing.assert_allclose(out['g_loss'], float(want_g), rtol=1e-5)
  np.testing.assert_allclose(out['d_loss'], float(want_d), rtol=1e-5)
  np.testing.assert_allclose(out['gradient_penalty'], float(gp), rtol=1e-4)
  np.testing.assert_allclose(out['real_score_penalty'],
                             float(tf.reduce_mean(tf.square(d_r))), rtol=1e-4)

  # EMA of the generator after its step: ema = ema0 - (1 - d)(ema0 - w1).
  d = cfg.ema_decay
  assert d == 0.999
  ema1 = _weights(gan.generator_ema)
  names = [v.path for v in gan.generator.weights]
  for name, e0, e1, w1, w0 in zip(names, ema0, ema1, g1, g0):
    if 'progress' in name:
      continue
    np.testing.assert_allclose(e1, e0 - (1 - d) * (e0 - w1), atol=1e-6,
                               err_msg=name)
    # Only the blocks of the stage (1, 2) train.
    block = int(name.split('block_')[1].split('_')[0])
    changed = not np.array_equal(w0, w1)
    assert changed == (block <= 2), name
  for v, x0, x1 in zip(gan.discriminator.weights, d0, d1):
    if 'block_' in v.path:
      block = int(v.path.split('block_')[1].split('_')[0])
      assert (not np.array_equal(x0, x1)) == (block <= 2), v.path


def test_traced_steps_finite_and_changing(cfg):
  gan = gan_lib.GAN(cfg, seed=2, fake_labels='uniform')
  gan.compile()
  gan.set_stage(0)
  step = tf.function(gan.train_step)
  real, labels = _real_batch(cfg, seed=3)
  hist = [{k: float(v) for k, v in step((real, labels)).items()}
          for _ in range(3)]
  for h in hist:
    assert set(h) == set(gan_lib.METRIC_NAMES)
    assert all(np.isfinite(v) for v in h.values()), h
  assert len({h['g_loss'] for h in hist}) == 3
  assert len({h['d_loss'] for h in hist}) == 3
  assert int(gan.g_optimizer.iterations.numpy()) == 3
  gan.reset_optimizers()
  assert int(gan.g_optimizer.iterations.numpy()) == 0
  assert all(not np.any(v.numpy()) for v in gan.g_optimizer.variables
             if 'momentum' in v.path or 'velocity' in v.path)
  assert abs(float(gan.g_optimizer.learning_rate) -
             cfg.generator_learning_rate) < 1e-9


@pytest.mark.parametrize('projection', [False, True])
def test_minibatch_groups_equal_separate_calls(cfg, projection):
  gan = gan_lib.GAN(cfg.copy(discriminator_projection=projection), seed=4,
                    minibatch_groups=2)
  gan.set_stage(2)
  real, labels = _real_batch(cfg)
  if projection:
    _randomize_projection(gan.discriminator)
  logits, cls = gan.discriminate(real, labels)
  a = gan.discriminator(real[:4], num_blocks=2, one_hot=labels[:4])
  b = gan.discriminator(real[4:], num_blocks=2, one_hot=labels[4:])
  np.testing.assert_allclose(logits.numpy(),
                             np.concatenate([a[0], b[0]]), rtol=1e-5)
  np.testing.assert_allclose(cls.numpy(), np.concatenate([a[1], b[1]]),
                             rtol=1e-5, atol=1e-6)


def test_keras_fit_runs_the_step(cfg):
  """The GAN is a plain keras.Model: fit() drives train_step per stage."""
  from gansynth_tf2 import training  # pylint: disable=g-import-not-at-top
  gan = gan_lib.GAN(cfg, seed=6)
  gan.compile()
  gan.set_stage(0)
  ds = training.synthetic_dataset(cfg, 8, 0, kind='noise')
  hist = gan.fit(ds, steps_per_epoch=2, epochs=1, verbose=0,
                 shuffle=False).history
  assert np.isfinite(hist['d_loss'][0]) and np.isfinite(hist['g_loss'][0])
  assert int(gan.images_seen.numpy()) == 16
  assert int(gan.d_optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize('projection', [False, True])
def test_nonsaturating_r1_objective(cfg, projection):
  """gan_loss='nonsaturating': logistic losses + R1 on the real batch,
  against an independent recomputation (one eager step, stable stage);
  with the projection discriminator every score is D(x | its labels)."""
  c = cfg.copy(gan_loss='nonsaturating', r1_gamma=4.0,
               discriminator_projection=projection)
  gan = gan_lib.GAN(c, seed=3)
  gan.compile()
  if projection:
    _randomize_projection(gan.discriminator)
  gan.set_stage(2)
  start = int(c.stage_info(1)[1])
  gan.images_seen.assign(start)
  nb = gan.num_blocks
  progress = float(c.compute_progress(start, nb))
  real, labels = _real_batch(c, seed=1)
  g0, d0 = _weights(gan.generator), _weights(gan.discriminator)
  out = {k: float(v) for k, v in gan.train_step((real, labels)).items()}
  g1 = _weights(gan.generator)
  z_g, y_g, z_d, y_d = _step_draws(gan, labels, start)
  G, D = gan.generator, gan.discriminator

  def softplus(x):
    return tf.math.log1p(tf.exp(-tf.abs(x))) + tf.maximum(x, 0.0)

  _set(G, g0)
  _set(D, d0)
  d_f, c_f = D(G((z_g, y_g), num_blocks=nb), num_blocks=nb, one_hot=y_g)
  want_g = (tf.reduce_mean(softplus(-d_f)) + c.generator_ac_loss_weight *
            tf.reduce_mean(_ce(y_g, c_f)))
  _set(G, g1)
  fake = G((z_d, y_d), num_blocks=nb)
  real_b = networks.blend_images(real, progress, c, nb)
  with tf.GradientTape() as tape:
    tape.watch(real_b)
    d_r, c_r = D(real_b, num_blocks=nb, one_hot=labels)
    s = tf.reduce_sum(d_r)
  r1 = tf.reduce_mean(tf.reduce_sum(
      tf.square(tape.gradient(s, real_b)), axis=[1, 2, 3]))
  d_fk, _ = D(fake, num_blocks=nb, one_hot=y_d)
  want_d = (tf.reduce_mean(softplus(d_fk)) + tf.reduce_mean(softplus(-d_r)) +
            2.0 * r1 + 0.001 * tf.reduce_mean(tf.square(d_r)) +
            c.discriminator_ac_loss_weight * tf.reduce_mean(_ce(labels, c_r)))
  np.testing.assert_allclose(out['g_loss'], float(want_g), rtol=1e-5)
  np.testing.assert_allclose(out['d_loss'], float(want_d), rtol=1e-5)
  np.testing.assert_allclose(out['gradient_penalty'], float(r1), rtol=1e-4)
  assert float(r1) > 0
  with pytest.raises(ValueError, match='gan_loss'):
    cfg.copy(gan_loss='hinge').validate()


def test_projection_discriminator_scores_the_pitch(cfg):
  """discriminator_projection: with E = 0 the score is the plain critic's;
  then it depends on the labels by <E[y], phi(x)>, and the pitch classifier
  does not; labels are required."""
  keras.utils.set_random_seed(3)  # the critics' initial weights
  plain = networks.Discriminator(cfg).build_all()
  proj = networks.Discriminator(
      cfg.copy(discriminator_projection=True)).build_all()
  networks.copy_weights(plain, proj, keep=proj.projection.weights)
  real, labels = _real_batch(cfg)
  nb = cfg.num_resolutions
  s0, c0 = plain(real, num_blocks=nb)
  s1, c1 = proj(real, num_blocks=nb, one_hot=labels)
  np.testing.assert_array_equal(s0.numpy(), s1.numpy())
  _randomize_projection(proj)
  other = tf.roll(labels, 1, axis=1)
  s2, c2 = proj(real, num_blocks=nb, one_hot=labels)
  s3, c3 = proj(real, num_blocks=nb, one_hot=other)
  np.testing.assert_array_equal(c2.numpy(), c0.numpy())
  np.testing.assert_array_equal(c3.numpy(), c0.numpy())
  # Every score moves (a term of order 1e-2 here; one sample's term may
  # happen to be small, never exactly zero) and moves with the labels.
  for a, b in ((s2, s0), (s3, s2)):
    d = np.abs(a.numpy() - b.numpy())
    assert np.all(d > 1e-6) and np.median(d) > 1e-3, d
  # Linear in the labels: the mean one-hot gives the mean of the scores.
  s4, _ = proj(real, num_blocks=nb, one_hot=0.5 * (labels + other))
  np.testing.assert_allclose(s4.numpy(), 0.5 * (s2.numpy() + s3.numpy()),
                             rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match='one_hot'):
    proj(real, num_blocks=nb)


def test_linear_to_rgb_fakes_are_clipped_as_the_original(cfg):
  """The original's critic normalizes its (denormalized) input with
  clip(a x + b, -1, 1), so with to_rgb_activation 'linear' it scores the
  clipped fakes: D(normalize(denormalize(G(z)))) = D(clip(G(z)))."""
  c = cfg.copy(to_rgb_activation='linear')
  gan = gan_lib.GAN(c, seed=7)
  gan.compile()
  gan.set_stage(0)
  # Push the generator's output outside [-1, 1] (the first block's to_rgb).
  gan.generator.to_rgb[0].bias.assign([1.5] * c.num_channels)
  real, labels = _real_batch(c, seed=2)
  g0, d0 = _weights(gan.generator), _weights(gan.discriminator)
  out = {k: float(v) for k, v in gan.train_step((real, labels)).items()}
  z_g, y_g, _, _ = _step_draws(gan, labels, 0)
  G, D = gan.generator, gan.discriminator
  _set(G, g0)
  _set(D, d0)
  fake = G((z_g, y_g), num_blocks=1)
  assert float(tf.reduce_max(fake)) > 1.2
  normalizer = c.normalizer()
  d_f, c_f = D(normalizer.normalize(normalizer.denormalize(fake)), num_blocks=1)
  want_g = (-tf.reduce_mean(d_f) + c.generator_ac_loss_weight *
            tf.reduce_mean(_ce(y_g, c_f)))
  d_u, c_u = D(fake, num_blocks=1)
  unclipped = (-tf.reduce_mean(d_u) + c.generator_ac_loss_weight *
               tf.reduce_mean(_ce(y_g, c_u)))
  assert abs(float(unclipped) - float(want_g)) > 1e-3
  np.testing.assert_allclose(out['g_loss'], float(want_g), rtol=1e-5)
