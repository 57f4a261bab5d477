"""Layers and networks: equalized LR, the fast upscale-conv forms (forward
and gradients) and the inference path (static progress) against the literal
computation, full-size manifest."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf2 import config as config_lib
from gansynth_tf2 import layers
from gansynth_tf2 import magenta
from gansynth_tf2 import networks


def test_he_scale_and_runtime_scaling():
  conv = layers.EqualizedConv2D(8, 3, slope=0.0)
  x = tf.random.normal([2, 5, 7, 4])
  y = conv(x)
  assert conv.scale == pytest.approx(np.sqrt(2.0 / (3 * 3 * 4)))
  ref = tf.nn.conv2d(x, conv.kernel * conv.scale, 1, 'SAME') + conv.bias
  np.testing.assert_allclose(y.numpy(), ref.numpy(), atol=1e-5)
  # Kernels are stored unscaled (N(0, 1) init).
  assert 0.7 < float(np.std(conv.kernel.numpy())) < 1.3
  dense = layers.EqualizedDense(3, slope=1.0)
  dense(tf.zeros([1, 2, 2, 5]))
  assert dense.scale == pytest.approx(np.sqrt(1.0 / 20))


def _upscale_convs(mode, dtype='float32'):
  """The same weights in every upscale form: {form: EqualizedConv2D}."""
  x = tf.random.normal([3, 4, 8, 5], dtype=dtype)
  convs = {f: layers.EqualizedConv2D(6, 3, upscale_input=2, scale_mode=mode,
                                     activation='lrelu_pixelnorm',
                                     fast_upscale=f, dtype=dtype)
           for f in ('transposed', 'subpixel', 'literal')}
  for c in convs.values():
    c(x)
  bias = tf.random.normal([6], dtype=dtype)
  for c in convs.values():
    c.kernel.assign(convs['literal'].kernel)
    c.bias.assign(bias)
  return x, convs


@pytest.mark.parametrize('mode', ['ALL', 'H'])
def test_fast_upscale_conv_equals_literal(mode):
  x, convs = _upscale_convs(mode)
  assert layers.EqualizedConv2D(6, 3, upscale_input=2).upscale_form == \
      'transposed'  # the default
  slow = convs['literal']
  assert slow.upscale_form == 'literal'
  literal = tf.nn.conv2d(layers.upscale(x, 2, mode), slow.kernel * slow.scale,
                         1, 'SAME') + slow.bias
  literal = layers.pixel_norm(tf.nn.leaky_relu(literal, 0.2)).numpy()
  for form, conv in convs.items():
    assert conv.upscale_form == form
    np.testing.assert_allclose(conv(x).numpy(), literal, atol=2e-5,
                               err_msg=form)


@pytest.mark.parametrize('mode', ['ALL', 'H'])
def test_transposed_conv_gradients_equal_literal(mode):
  """Forward and both gradients (input, kernel, bias) of the transposed-conv
  form == the literal upscale + conv: exact in float64, rounding in float32."""
  for dtype, tol in (('float64', 1e-12), ('float32', 2e-5)):
    x, convs = _upscale_convs(mode, dtype)
    x = tf.Variable(x)
    upstream = tf.random.normal([3, 8, 16 if mode == 'ALL' else 8, 6],
                                dtype=dtype)
    got = {}
    for form in ('transposed', 'literal'):
      conv = convs[form]
      with tf.GradientTape() as tape:
        loss = tf.reduce_sum(conv(x) * upstream)
      grads = tape.gradient(loss, [x, conv.kernel, conv.bias])
      got[form] = [g.numpy() for g in grads]
    for g_fast, g_lit, name in zip(got['transposed'], got['literal'],
                                   ('input', 'kernel', 'bias')):
      scale = max(1.0, np.abs(g_lit).max())
      assert np.abs(g_fast - g_lit).max() <= tol * scale, (dtype, name)


def test_bad_upscale_form():
  with pytest.raises(ValueError, match='fast_upscale'):
    layers.EqualizedConv2D(6, 3, upscale_input=2, fast_upscale='winograd')
  # Forms that do not apply (factor 4, 5x5 kernel) fall back to literal.
  assert layers.EqualizedConv2D(6, 3, upscale_input=4).upscale_form == \
      'literal'
  assert layers.EqualizedConv2D(6, 5, upscale_input=2).upscale_form == \
      'literal'
  assert layers.EqualizedConv2D(6, 3).upscale_form is None


def test_upscale_downscale():
  x = tf.reshape(tf.range(8, dtype=tf.float32), [1, 2, 2, 2])
  up = layers.upscale(x, 2)
  assert up.shape == (1, 4, 4, 2)
  np.testing.assert_array_equal(up[0, 1, 1].numpy(), x[0, 0, 0].numpy())
  np.testing.assert_array_equal(up[0, 3, 2].numpy(), x[0, 1, 1].numpy())
  np.testing.assert_allclose(layers.downscale(up, 2).numpy(), x.numpy())
  assert layers.upscale(x, 4, 'H').shape == (1, 8, 2, 2)


@pytest.mark.parametrize('mode', ['ALL', 'H'])
@pytest.mark.parametrize('scale', [2, 3, 4, 6, 8, 64])
def test_downscale_is_the_box_mean(scale, mode):
  """The box mean over scale x scale (scale x 1 for 'H') windows."""
  rng = np.random.RandomState(scale)
  x = rng.normal(size=(2, 192, 128 if mode == 'H' else 192, 3))
  x = x.astype(np.float32)
  sw = 1 if mode == 'H' else scale
  b, h, w, c = x.shape
  want = x.astype(np.float64).reshape(
      b, h // scale, scale, w // sw, sw, c).mean(axis=(2, 4))
  got = layers.downscale(tf.constant(x), scale, mode).numpy()
  np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)


def test_pixel_norm_and_minibatch_stddev():
  x = tf.random.normal([4, 3, 3, 16]) * 5.0
  y = layers.pixel_norm(x)
  np.testing.assert_allclose(tf.reduce_mean(y**2, -1).numpy(), 1.0, rtol=1e-4)
  same = tf.ones([4, 2, 2, 3])
  assert float(layers.minibatch_mean_stddev(same)) == pytest.approx(1e-3)
  out = layers.scalar_concat(same, 2.5)
  assert out.shape == (4, 2, 2, 4) and float(out[0, 0, 0, 3]) == 2.5


def test_one_pass_pixel_norm_and_deferred_norm():
  """The inference forms: the one-pass pixel norm (EuclideanNorm) equals the
  Square + Mean form; a conv's deferred norm applied after a 1x1 conv
  (input_scale) equals the 1x1 conv of the normalized features."""
  x = tf.random.normal([3, 4, 5, 16]) * 3.0
  np.testing.assert_allclose(layers.pixel_norm(x, one_pass=True).numpy(),
                             layers.pixel_norm(x).numpy(), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(
      (x * layers.pixel_norm_scale(x)).numpy(), layers.pixel_norm(x).numpy())
  conv = layers.EqualizedConv2D(8, 3, activation='lrelu_pixelnorm')
  rgb = layers.EqualizedConv2D(2, 1, slope=1.0, activation='tanh')
  rgb(conv(x))  # builds the weights of both layers
  for v in conv.weights + rgb.weights:
    if 'bias' in v.path:
      v.assign(tf.random.normal(v.shape))
  ref = rgb(conv(x)).numpy()
  features, scale = conv(x, defer_norm=True)
  assert scale.shape == (3, 4, 5, 1)
  np.testing.assert_allclose(features.numpy() * scale.numpy(),
                             conv(x).numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(rgb(features, input_scale=scale).numpy(), ref,
                             atol=1e-5)
  with pytest.raises(ValueError, match='input_scale needs a 1x1 conv'):
    conv(x, input_scale=scale)
  with pytest.raises(ValueError, match='defer_norm needs lrelu_pixelnorm'):
    rgb(features, defer_norm=True)


def test_inference_graph_takes_norms_in_one_pass():
  """At a static progress every pixel norm of a conv is one EuclideanNorm
  (no squared copy of the features), and the last block's norm is applied
  after its to_rgb: its to_rgb conv reads the conv1 activations directly.
  With a pitch bias on the last block, the norm cannot move (the bias is
  added after it) and the output still equals the training path's."""
  cfg = config_lib.load_config('tiny')
  z = tf.random.stateless_normal([2, cfg.latent_vector_size], seed=[1, 2])
  oh = tf.one_hot([3, 40], cfg.num_pitches)
  n = cfg.num_resolutions
  for bias_blocks in (0, 2):
    g = networks.Generator(cfg.copy(generator_pitch_bias_blocks=bias_blocks))
    g.build_all()
    for w in g.pitch_bias_weights:
      w.assign(tf.random.normal(w.shape))
    g.set_progress(n - 1)
    fn = tf.function(lambda z, y, g=g: g((z, y), static_progress=n - 1.0))
    graph = fn.get_concrete_function(z, oh).graph
    ops = graph.get_operations()
    # latent conv + n conv1 + (n - 1) conv0, one norm each.
    assert sum(op.type == 'EuclideanNorm' for op in ops) == 2 * n
    assert not [op for op in ops if op.type == 'Mean' and
                op.inputs[0].shape.rank == 4]
    rgb_conv, = [op for op in ops if op.type == 'Conv2D' and
                 op.inputs[1].shape[:2] == (1, 1)]
    feeds = rgb_conv.inputs[0].op.type
    assert feeds == ('LeakyRelu' if bias_blocks == 0 else 'AddV2'), feeds
    out = fn(z, oh).numpy()
    ref = g((z, oh)).numpy()
    assert np.abs(out - ref).max() <= 1e-3
    assert _rel_err(out, ref) <= 1e-4


def test_alphas_sum_to_one():
  for p in np.linspace(0, 6, 25):
    alphas = [float(networks.generator_alpha(b, p)) for b in range(1, 8)]
    assert sum(alphas) == pytest.approx(1.0)
    assert min(alphas) >= 0.0
  assert float(networks.generator_alpha(7, 6.0)) == 1.0
  assert float(networks.discriminator_alpha(6, 5.5)) == 0.5


def test_progress_is_model_state_one_trace_per_stage():
  cfg = config_lib.load_config('tiny')
  g = networks.Generator(cfg).build_all()
  z = tf.random.normal([2, cfg.latent_vector_size])
  oh = tf.one_hot([0, 5], cfg.num_pitches)
  fn = tf.function(lambda z, y: g((z, y)))
  g.set_progress(6.0)
  a = fn(z, oh).numpy()
  g.set_progress(5.5)
  b = fn(z, oh).numpy()
  assert fn.experimental_get_tracing_count() == 1
  assert np.abs(a - b).max() > 1e-3
  assert a.shape == (2, 128, 1024, 2) and np.abs(a).max() <= 1.0


def test_early_stage_computes_fewer_blocks():
  cfg = config_lib.load_config('tiny')
  g = networks.Generator(cfg, num_blocks=2)
  y = g((tf.zeros([1, 256]), tf.one_hot([3], 61)))
  assert y.shape == (1, 128, 1024, 2)
  built = {w.path.split('/')[1] for w in g.weights if '/' in w.path}
  assert 'block_3_conv0' not in built and 'block_2_conv0' in built
  d = networks.Discriminator(cfg, num_blocks=2)
  logits, cls = d(tf.zeros([2, 128, 1024, 2]))
  assert logits.shape == (2, 1) and cls.shape == (2, 61)


def _rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.sqrt(np.sum((a - b)**2) / max(np.sum(b**2), 1e-30)))


@pytest.fixture(scope='module')
def tiny_generators():
  """The tiny-config generator (defaults) and a literal copy (same weights)."""
  cfg = config_lib.load_config('tiny')
  keras.utils.set_random_seed(3)  # deterministic weights and latents
  fast = networks.Generator(cfg).build_all()
  literal = networks.Generator(cfg, fast_upscale=False).build_all()
  for a, b in zip(literal.variables, fast.variables):
    a.assign(b)
  z = tf.random.stateless_normal([2, cfg.latent_vector_size], seed=[3, 0])
  oh = tf.one_hot([3, 40], cfg.num_pitches)
  return cfg, fast, literal, z, oh


@pytest.mark.parametrize('progress', [6.0, 5.5, 5.0, 4.3, 1.0, 0.0])
def test_inference_path_equals_literal_training_path(tiny_generators,
                                                     progress):
  """static_progress (zero-weight blocks skipped) gives what the literal
  network with the progress variable gives."""
  _, fast, literal, z, oh = tiny_generators
  fast.set_progress(progress)
  literal.set_progress(progress)
  ref = literal((z, oh)).numpy()
  outs = {
      'variable': fast((z, oh)),
      'static': fast((z, oh), static_progress=progress),
      'literal_static': literal((z, oh), static_progress=progress),
  }
  for name, out in outs.items():
    out = out.numpy()
    assert out.shape == ref.shape, name
    # Random-init tiny widths (4 channels in the last blocks) amplify float
    # rounding through the pixel norms; still rounding-level.
    assert np.abs(out - ref).max() <= 1e-3, name
    assert _rel_err(out, ref) <= 1e-4, name


def test_static_progress_skips_zero_weight_blocks():
  cfg = config_lib.load_config('tiny')
  z, oh = tf.zeros([1, 256]), tf.one_hot([3], 61)
  g = networks.Generator(cfg, num_blocks=7)
  # progress 4: alpha_5 = 1, every other weight 0 -> blocks 6, 7 not computed
  # (so not even built), and no to_rgb below block 5.
  out = g((z, oh), static_progress=4.0)
  assert out.shape == (1, 128, 1024, 2)
  built = {w.path.split('/')[1] for w in g.weights if '/' in w.path}
  assert 'block_5_conv1' in built and 'block_5_to_rgb' in built
  assert not built & {'block_6_conv0', 'block_7_conv0', 'block_4_to_rgb',
                      'block_1_to_rgb'}
  g.build_all()
  g.set_progress(4.0)
  # Rounding only (the inference path takes its pixel norms in one pass).
  np.testing.assert_allclose(g((z, oh), static_progress=4.0).numpy(),
                             g((z, oh)).numpy(), atol=2e-5)
  # The variable is not read: the blend is the traced constant.
  g.set_progress(6.0)
  fn = tf.function(lambda z, y: g((z, y), static_progress=6.0))
  graph = fn.get_concrete_function(z, oh).graph
  convs = [op for op in graph.get_operations()
           if op.type in ('Conv2D', 'Conv2DBackpropInput')]
  # 7 conv1 + 6 transposed conv0 + ONE to_rgb (block 7).
  assert len(convs) == 7 + 6 + 1
  assert sum(op.type == 'Conv2DBackpropInput' for op in convs) == 6


def test_generator_gradients_equal_literal(tiny_generators):
  """Training path (progress variable, transposed conv0): output and the
  gradient of every trainable variable equal those of the literal network.
  In float64 to 1e-9 (the identity is exact); in float32 both paths against
  the float64 literal: the transposed path within 10x the literal path's own
  rounding error + 1e-4 (measured: 2-4x, at most 7e-5 relative, the first
  layers' gradients; the weights are folded before multiplying)."""
  cfg, fast32, literal32, z, oh = tiny_generators
  old_policy = keras.config.dtype_policy()
  try:
    keras.config.set_dtype_policy('float64')
    fast64 = networks.Generator(cfg).build_all()
    literal64 = networks.Generator(cfg, fast_upscale=False).build_all()
  finally:
    keras.config.set_dtype_policy(old_policy)
  for net in (fast64, literal64):
    for dst, src in zip(net.variables, fast32.variables):
      dst.assign(tf.cast(src, 'float64'))

  def grads(net, dtype):
    net.set_progress(5.5)
    with tf.GradientTape() as tape:
      y = net((tf.cast(z, dtype), tf.cast(oh, dtype)))
      loss = tf.reduce_sum(y * tf.sin(3.0 * y + 1.0))
    assert y.dtype == dtype
    return y, tape.gradient(loss, net.trainable_variables)

  y = {}
  g = {}
  for key, net, dtype in (('fast64', fast64, 'float64'),
                          ('literal64', literal64, 'float64'),
                          ('fast32', fast32, 'float32'),
                          ('literal32', literal32, 'float32')):
    y[key], g[key] = grads(net, dtype)
  names = lambda net: [v.path.split('/', 1)[1] for v in net.trainable_variables]
  assert names(fast64) == names(literal32) == names(fast32)
  ref = g['literal64']
  assert _rel_err(y['fast64'], y['literal64']) <= 1e-9
  assert _rel_err(y['fast32'], y['literal64']) <= 1e-4
  for i, v in enumerate(fast32.trainable_variables):
    if 'block_1_to_rgb' in v.path or 'block_2_to_rgb' in v.path:
      continue  # weight 0 at progress 5.5: zero gradients on both sides
    assert g['fast32'][i] is not None, v.path
    assert _rel_err(g['fast64'][i], ref[i]) <= 1e-9, v.path
    err_fast = _rel_err(g['fast32'][i], ref[i])
    err_literal = _rel_err(g['literal32'][i], ref[i])
    assert err_fast <= 10.0 * err_literal + 1e-4, (v.path, err_fast,
                                                   err_literal)


@pytest.fixture(scope='module')
def manifest(data_dir):
  with open(os.path.join(data_dir, 'variables_mel_prog_hires.json')) as f:
    return json.load(f)


def test_full_size_networks_match_the_original_variable_manifest(manifest):
  cfg = config_lib.load_config('mel_prog_hires')
  exp = {k: v for k, v in manifest['experiment_json'].items()
         if k in config_lib.DEFAULTS}
  cfg_from_json = config_lib.Config(exp)
  for key in ('fmap_base', 'fmap_max', 'start_height', 'start_width',
              'latent_vector_size', 'num_resolutions', 'data_type'):
    assert getattr(cfg, key) == getattr(cfg_from_json, key), key
  shapes = {v['name']: tuple(v['shape']) for v in manifest['variables']}
  assert len(shapes) == 312
  magenta.check_variables(shapes, cfg, num_blocks=7)  # raises on mismatch

  g = networks.Generator(cfg).build_all()
  d = networks.Discriminator(cfg).build_all()
  g_map = magenta.generator_names(cfg, 7)
  d_map = magenta.discriminator_names(cfg, 7)
  groups = {}
  for v in manifest['variables']:
    groups.setdefault(v['group'], set()).add(v['name'])
  assert set(g_map) == groups['generator']
  assert {n + magenta.EMA_SUFFIX for n in g_map} == groups['generator_ema']
  assert set(d_map) == groups['discriminator']
  for model, mapping in ((g, g_map), (d, d_map)):
    seen = []
    for name, ((kind, b, attr), _) in mapping.items():
      var = getattr(magenta._layer(model, kind, b), attr)  # pylint: disable=protected-access
      assert tuple(var.shape) == shapes[name], name
      seen.append(id(var))
    trainable = [id(w) for w in model.trainable_weights]
    assert sorted(seen) == sorted(trainable)  # none left over, none missing
  assert sum(int(np.prod(w.shape)) for w in g.trainable_weights) == \
      manifest['meta']['generator_num_params']
  assert sum(int(np.prod(w.shape)) for w in d.trainable_weights) == \
      manifest['meta']['discriminator_num_params']


def test_copy_weights_copies_and_refuses_other_architectures():
  cfg = config_lib.load_config('tiny')
  a = networks.Generator(cfg).build_all()
  b = networks.Generator(cfg).build_all()
  z = tf.random.stateless_normal([2, cfg.latent_vector_size], seed=[0, 1])
  one_hot = tf.one_hot([3, 30], cfg.num_pitches)
  assert not np.allclose(a((z, one_hot)).numpy(), b((z, one_hot)).numpy())
  networks.copy_weights(a, b, 'test copy')
  np.testing.assert_array_equal(a((z, one_hot)).numpy(),
                                b((z, one_hot)).numpy())
  small = networks.Generator(cfg.copy(fmap_max=cfg.fmap_max // 2)).build_all()
  with pytest.raises(ValueError, match='test copy: .*shape'):
    networks.copy_weights(a, small, 'test copy')
  with pytest.raises(ValueError, match='variables'):
    networks.copy_weights(a, networks.Discriminator(cfg).build_all(), 'x')


def test_pitch_frequency_bias_adds_a_per_pitch_profile_over_frequency():
  """generator_pitch_bias_blocks: block b's features gain E[pitch] [W, C],
  the same at every time step; a different pitch gets its own profile."""
  layer = layers.PitchFrequencyBias(5, 8, 3)
  layer.build()
  kernel = np.random.RandomState(0).randn(5, 8, 3).astype(np.float32)
  layer.kernel.assign(kernel)
  x = tf.random.stateless_normal([2, 4, 8, 3], seed=[3, 4])
  out = layer(x, tf.one_hot([1, 4], 5)).numpy()
  np.testing.assert_allclose(out[0] - x[0].numpy(),
                             np.broadcast_to(kernel[1], (4, 8, 3)), atol=1e-6)
  np.testing.assert_allclose(out[1] - x[1].numpy(),
                             np.broadcast_to(kernel[4], (4, 8, 3)), atol=1e-6)
  cfg = config_lib.load_config('tiny')
  g = networks.Generator(cfg.copy(generator_pitch_bias_blocks=2)).build_all()
  names = [w.path.split('/')[-2] for w in g.pitch_bias_weights]
  n = cfg.num_resolutions
  assert names == ['block_%d_pitch_bias' % b for b in (n - 1, n)]
  for b, w in zip((n - 1, n), g.pitch_bias_weights):
    assert tuple(w.shape) == (cfg.num_pitches, cfg.block_resolution(b)[1],
                              cfg.num_filters(b))
  # Zero at the start: the same output as the generator without them.
  plain = networks.Generator(cfg).build_all()
  networks.copy_weights(plain, g, keep=g.pitch_bias_weights)
  z = tf.random.stateless_normal([2, cfg.latent_vector_size], seed=[5, 6])
  y = tf.one_hot([2, 9], cfg.num_pitches)
  np.testing.assert_array_equal(g((z, y)).numpy(), plain((z, y)).numpy())
  # The top block's bias moves the output only at the frequencies it holds.
  top = g.pitch_bias_weights[-1]
  k = np.zeros(top.shape, np.float32)
  k[9, 3, :] = 1.0
  top.assign(k)
  diff = np.abs(g((z, y)).numpy() - plain((z, y)).numpy())
  assert diff[0].max() == 0.0  # pitch index 2: untouched
  assert diff[1].max() > 0 and diff[1][:, 3].min() > 0
  assert diff[1][:, :2].max() == 0.0 and diff[1][:, 5:].max() == 0.0
  with pytest.raises(ValueError, match='generator_pitch_bias_blocks'):
    cfg.copy(generator_pitch_bias_blocks=n + 1).validate()
  # lr_multiplier: E = kernel * multiplier (so Adam moves E that much slower).
  slow = layers.PitchFrequencyBias(5, 8, 3, lr_multiplier=0.1)
  slow.build()
  slow.kernel.assign(kernel)
  np.testing.assert_allclose(slow(x, tf.one_hot([1, 4], 5)).numpy() - x.numpy(),
                             0.1 * (out - x.numpy()), atol=1e-6)
  with pytest.raises(ValueError, match='generator_pitch_bias_lr_multiplier'):
    cfg.copy(generator_pitch_bias_lr_multiplier=0.0).validate()
