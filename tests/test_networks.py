"""Layers and networks: equalized LR, sub-pixel identity, full-size manifest."""

import json
import os

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


@pytest.mark.parametrize('mode', ['ALL', 'H'])
def test_subpixel_upscale_conv_equals_literal(mode):
  fast = layers.EqualizedConv2D(6, 3, upscale_input=2, scale_mode=mode,
                                activation='lrelu_pixelnorm')
  slow = layers.EqualizedConv2D(6, 3, upscale_input=2, scale_mode=mode,
                                activation='lrelu_pixelnorm',
                                fast_upscale=False)
  x = tf.random.normal([3, 4, 8, 5])
  fast(x)
  slow(x)
  slow.kernel.assign(fast.kernel)
  fast.bias.assign(tf.random.normal([6]))
  slow.bias.assign(fast.bias)
  literal = tf.nn.conv2d(layers.upscale(x, 2, mode), slow.kernel * slow.scale,
                         1, 'SAME') + slow.bias
  literal = layers.pixel_norm(tf.nn.leaky_relu(literal, 0.2))
  np.testing.assert_allclose(fast(x).numpy(), literal.numpy(), atol=2e-5)
  np.testing.assert_allclose(slow(x).numpy(), literal.numpy(), atol=2e-5)


def test_upscale_downscale():
  x = tf.reshape(tf.range(8, dtype=tf.float32), [1, 2, 2, 2])
  up = layers.upscale(x, 2)
  assert up.shape == (1, 4, 4, 2)
  np.testing.assert_array_equal(up[0, 1, 1].numpy(), x[0, 0, 0].numpy())
  np.testing.assert_array_equal(up[0, 3, 2].numpy(), x[0, 1, 1].numpy())
  np.testing.assert_allclose(layers.downscale(up, 2).numpy(), x.numpy())
  assert layers.upscale(x, 4, 'H').shape == (1, 8, 2, 2)


def test_pixel_norm_and_minibatch_stddev():
  x = tf.random.normal([4, 3, 3, 16]) * 5.0
  y = layers.pixel_norm(x)
  np.testing.assert_allclose(tf.reduce_mean(y**2, -1).numpy(), 1.0, rtol=1e-4)
  same = tf.ones([4, 2, 2, 3])
  assert float(layers.minibatch_mean_stddev(same)) == pytest.approx(1e-3)
  out = layers.scalar_concat(same, 2.5)
  assert out.shape == (4, 2, 2, 4) and float(out[0, 0, 0, 3]) == 2.5


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
