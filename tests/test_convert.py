"""Converter parity with the ORIGINAL code's outputs, and refusal of bad checkpoints."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import gansynth_tf2
from gansynth_tf2 import config as config_lib
from gansynth_tf2 import magenta
from gansynth_tf2 import model_io
from gansynth_tf2 import synth as synth_lib

NORM_TOL = 1e-3
WAVE_TOL = 2e-3


@pytest.fixture(scope='module')
def converted(tiny_ckpt_dir):
  return magenta.load_magenta_checkpoint(tiny_ckpt_dir)


def _one_hot(ref, cfg):
  return tf.one_hot(ref['labels'], cfg.num_pitches)


def test_stage_and_progress_derived_like_the_original(converted, tiny_reference):
  assert converted['stage_id'] == 12 and converted['num_blocks'] == 7
  assert converted['global_step'] == int(tiny_reference['global_step']) == 216
  assert converted['progress'] == float(tiny_reference['progress']) == 6.0
  cfg = converted['config']
  assert cfg.compute_progress(int(tiny_reference['blend_global_step']), 7) == \
      float(tiny_reference['blend_progress']) == 5.5
  assert cfg.num_filters(7) == 4 and cfg.num_filters(0) == 16


def test_ema_generator_matches_original(converted, tiny_reference):
  ref = tiny_reference
  cfg = converted['config']
  synth = synth_lib.Synth(cfg, converted['generator_ema'])
  out = synth.generate_specgrams(ref['pitches'], ref['z_float32'],
                                 normalized=True)
  assert np.abs(out - ref['normalized_output']).max() <= NORM_TOL
  waves = synth.generate(ref['pitches'], ref['z_float32'])
  assert waves.shape == (2, 64000)
  assert np.abs(waves - ref['waves']).max() <= WAVE_TOL


def test_raw_weights_differ_from_ema(converted, tiny_reference):
  ref = tiny_reference
  cfg = converted['config']
  raw = converted['generator']((ref['z_float32'], _one_hot(ref, cfg))).numpy()
  # Raw (non-EMA) weights must NOT reproduce the original's generation ...
  assert np.abs(raw - ref['normalized_output']).max() > 0.1
  # ... but they do reproduce the original's raw-weight output.
  assert np.abs(raw[:1] - ref['raw_weights_normalized_output']).max() <= NORM_TOL


def test_blend_at_progress_5_5(tiny_ckpt_dir, tiny_reference, tmp_path):
  """The same checkpoint rewritten with global_step 184 blends blocks 6 and 7."""
  ckpt = str(tmp_path / 'ckpt184')
  _rewrite_checkpoint(tiny_ckpt_dir, ckpt, {'global_step': np.int64(184)})
  m = magenta.load_magenta_checkpoint(ckpt)
  assert m['progress'] == 5.5
  ref = tiny_reference
  synth = synth_lib.Synth(m['config'], m['generator_ema'])
  out = synth.generate_specgrams(ref['pitches'], ref['z_float32'],
                                 normalized=True)
  assert np.abs(out - ref['blend_normalized_output']).max() <= NORM_TOL
  waves = synth.generate(ref['pitches'], ref['z_float32'])
  assert np.abs(waves - ref['blend_waves']).max() <= WAVE_TOL


def test_cli_convert_then_load(tiny_ckpt_dir, tiny_reference, tmp_path):
  out_dir = str(tmp_path / 'native')
  res = subprocess.run(
      [sys.executable, '-m', 'gansynth_tools.convert_magenta_checkpoint',
       '--magenta_ckpt_dir=' + tiny_ckpt_dir, '--output_dir=' + out_dir],
      capture_output=True, text=True, timeout=300)
  assert res.returncode == 0, res.stderr[-2000:]
  info = json.load(open(os.path.join(out_dir, 'model.json')))
  assert info['num_blocks'] == 7 and info['images_seen'] == 216
  synth = gansynth_tf2.load(out_dir)
  ref = tiny_reference
  out = synth.generate_specgrams(ref['pitches'], ref['z_float32'],
                                 normalized=True)
  assert np.abs(out - ref['normalized_output']).max() <= NORM_TOL
  # D weights come along for fine-tuning.
  m = model_io.load_model_dir(out_dir, load_generator=True,
                              load_discriminator=True)
  x = tf.constant(ref['normalized_output'])
  logits, cls = m['discriminator'](x)
  assert logits.shape == (2, 1) and cls.shape == (2, 61)
  # Loading the original dir directly gives the same thing (in memory).
  direct = gansynth_tf2.load(tiny_ckpt_dir).generate_specgrams(
      ref['pitches'], ref['z_float32'], normalized=True)
  np.testing.assert_allclose(direct, out, atol=1e-6)


def test_generate_needs_no_dataset(tiny_ckpt_dir):
  synth = gansynth_tf2.load(tiny_ckpt_dir)
  assert synth.pitch_range == (24, 84) and synth.latent_size == 256
  assert synth.sample_rate == 16000 and synth.audio_length == 64000
  w = synth.generate([60], seed=3)
  assert w.shape == (1, 64000) and np.isfinite(w).all()
  np.testing.assert_array_equal(w, synth.generate([60], seed=3))
  with pytest.raises(ValueError, match='outside'):
    synth.generate([100])


# --- bad checkpoints ---------------------------------------------------------
def _rewrite_checkpoint(src_dir, dst_dir, replace=None, drop=(), add=None,
                        experiment=None):
  """Copies an original checkpoint dir with variables changed (TF1 format)."""
  replace = dict(replace or {})
  stage, prefix = magenta.latest_stage(src_dir)
  reader = tf.train.load_checkpoint(prefix)
  tensors = {}
  for name in reader.get_variable_to_shape_map():
    if name not in drop:
      tensors[name] = replace.pop(name, None)
      if tensors[name] is None:
        tensors[name] = reader.get_tensor(name)
  tensors.update(replace)
  tensors.update(add or {})
  stage_dir = os.path.join(dst_dir, 'stage_%05d' % stage)
  os.makedirs(stage_dir)
  _save_v1_checkpoint(os.path.join(stage_dir, 'model.ckpt-1'), tensors)
  exp = json.load(open(os.path.join(src_dir, 'experiment.json')))
  exp.update(experiment or {})
  json.dump(exp, open(os.path.join(dst_dir, 'experiment.json'), 'w'))
  return dst_dir


def _save_v1_checkpoint(prefix, tensors):
  names = sorted(tensors)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                    shape_and_slices=[''] * len(names),
                    tensors=[tf.constant(tensors[n]) for n in names])
  with open(os.path.join(os.path.dirname(prefix), 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "%s"\n' % os.path.basename(prefix))


def test_missing_variable_refused(tiny_ckpt_dir, tmp_path):
  name = ('Generator/progressive_gan_generator/progressive_gan_block_3/conv1/'
          'conv2d/kernel/ExponentialMovingAverage')
  d = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'c'), drop=[name])
  with pytest.raises(magenta.CheckpointMismatchError, match='1 missing') as e:
    magenta.load_magenta_checkpoint(d)
  assert name in str(e.value)


def test_extra_variable_refused(tiny_ckpt_dir, tmp_path):
  d = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'c'),
                          add={'Generator/extra/kernel': np.zeros(3,
                                                                  np.float32)})
  with pytest.raises(magenta.CheckpointMismatchError,
                     match='unexpected[^$]*Generator/extra/kernel'):
    magenta.load_magenta_checkpoint(d)


def test_wrong_shape_refused(tiny_ckpt_dir, tmp_path):
  name = ('Discriminator/progressive_gan_discriminator/progressive_gan_block_2/'
          'conv0/bias')
  d = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'c'),
                          replace={name: np.zeros(7, np.float32)})
  with pytest.raises(magenta.CheckpointMismatchError,
                     match='wrong shape[^$]*block_2/conv0/bias'):
    magenta.load_magenta_checkpoint(d)


def test_config_mismatch_refused(tiny_ckpt_dir, tmp_path):
  # experiment.json says wider networks than the checkpoint holds.
  d = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'c'),
                          experiment={'fmap_max': 32})
  with pytest.raises(magenta.CheckpointMismatchError, match='wrong shape'):
    magenta.load_magenta_checkpoint(d)


def test_not_a_checkpoint_dir(tmp_path):
  with pytest.raises(ValueError, match='experiment.json'):
    magenta.load_magenta_checkpoint(str(tmp_path))
  (tmp_path / 'experiment.json').write_text('{}')
  with pytest.raises(ValueError, match='stage_'):
    magenta.load_magenta_checkpoint(str(tmp_path))
  with pytest.raises(ValueError, match='does not exist'):
    gansynth_tf2.load(str(tmp_path / 'nothing'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match='not a gansynth_tf2 model dir'):
    gansynth_tf2.load(str(tmp_path / 'empty'))


# --- held-out: another original config -----------------------------------------
def _literal_original_generator(w, cfg, num_blocks, progress, z, one_hot):
  """Independent literal forward of the original generator (README recipe)."""
  def conv(x, name, padding, slope, act):
    k = w[name + '/conv2d/kernel']
    fan_in = np.prod(k.shape[:-1])
    scale = np.sqrt(2.0 / ((1.0 + slope**2) * fan_in))
    y = scale * tf.nn.conv2d(x, k, 1, padding) + w[name + '/bias']
    return act(y)

  def pn(x):
    return x / tf.sqrt(tf.reduce_mean(x * x, -1, keepdims=True) + 1e-8)

  def lrelu_pn(x):
    return pn(tf.nn.leaky_relu(x, 0.2))

  def up(x, s):  # tile + batch_to_space, as the original
    if s == 1:
      return x
    return tf.compat.v1.batch_to_space(tf.tile(x, [s * s, 1, 1, 1]),
                                       [[0, 0], [0, 0]], s)

  g = 'Generator/progressive_gan_generator/progressive_gan_block_%d/'
  sh, sw = cfg.start_resolution
  x = tf.concat([z, one_hot], 1)[:, None, None, :]
  x = pn(x)
  x = tf.pad(x, [[0, 0], [sh - 1, sh - 1], [sw - 1, sw - 1], [0, 0]])
  x = conv(x, g % 1 + 'conv0', 'VALID', 0.0, lrelu_pn)
  x = conv(x, g % 1 + 'conv1', 'SAME', 0.0, lrelu_pn)
  lods = [x]
  for b in range(2, num_blocks + 1):
    x = up(x, 2)
    x = conv(x, g % b + 'conv0', 'SAME', 0.0, lrelu_pn)
    x = conv(x, g % b + 'conv1', 'SAME', 0.0, lrelu_pn)
    lods.append(x)
  out = 0
  for b in range(1, num_blocks + 1):
    rgb = conv(lods[b - 1], g % b + 'to_rgb', 'SAME', 1.0, tf.tanh)
    rgb = up(rgb, 2**(cfg.num_resolutions - b))
    alpha = max(0.0, min(progress - (b - 2), b - progress))
    out += alpha * rgb
  return out.numpy()


def test_held_out_config_linear_lowres_partial_stage(tmp_path):
  """An original-layout checkpoint of another config: linear IF, 256x512,
  other widths, latent 32, stopped at stage 9 (6 of 7 blocks, transition)."""
  exp = json.load(open(os.path.join(os.path.dirname(__file__), 'data',
                                    'tiny_mel_ckpt', 'experiment.json')))
  exp.update({'data_type': 'linear', 'start_height': 4, 'start_width': 8,
              'fmap_base': 256, 'fmap_max': 12, 'latent_vector_size': 32,
              'stable_stage_num_images': 40, 'transition_stage_num_images': 24,
              'total_num_images': 1000})
  cfg = config_lib.Config({k: v for k, v in exp.items()
                           if k in config_lib.DEFAULTS})
  stage_id, num_blocks, global_step = 9, 6, 4 * 64 + 40 + 12  # progress 4.5
  rng = np.random.RandomState(7)
  tensors = {'global_step': np.int64(global_step),
             'Variable': np.float32(12.0)}
  names = {}
  names.update({k: s for k, (_, s) in
                magenta.generator_names(cfg, num_blocks).items()})
  for n, s in list(names.items()):
    names[n + magenta.EMA_SUFFIX] = s
  names.update({k: s for k, (_, s) in
                magenta.discriminator_names(cfg, num_blocks).items()})
  for n, s in names.items():
    scale = 0.05 if n.endswith('bias') or 'bias/' in n else 1.0
    tensors[n] = (rng.normal(size=s) * scale).astype(np.float32)
  root = tmp_path / 'linear_ckpt'
  (root / ('stage_%05d' % stage_id)).mkdir(parents=True)
  (root / 'stage_00003').mkdir()  # an older stage without checkpoint
  _save_v1_checkpoint(str(root / ('stage_%05d' % stage_id) / 'model.ckpt-308'),
                      tensors)
  (root / 'experiment.json').write_text(json.dumps(exp))

  m = magenta.load_magenta_checkpoint(str(root))
  assert m['num_blocks'] == num_blocks and m['progress'] == pytest.approx(4.5)
  z = rng.normal(size=(3, 32)).astype(np.float32)
  pitches = np.array([24, 60, 84])
  oh = tf.one_hot(pitches - 24, 61)
  ours = m['generator_ema']((z, oh)).numpy()
  assert ours.shape == (3, 256, 512, 2)
  ema = {k[:-len(magenta.EMA_SUFFIX)]: v for k, v in tensors.items()
         if k.endswith(magenta.EMA_SUFFIX)}
  ref = _literal_original_generator(ema, cfg, num_blocks, 4.5, z, oh)
  assert np.abs(ours - ref).max() <= NORM_TOL
  raw = {k: v for k, v in tensors.items() if k in ema}
  assert np.abs(ours - _literal_original_generator(
      raw, cfg, num_blocks, 4.5, z, oh)).max() > 0.01
  # The converted model writes and reloads with the same outputs and waves.
  out_dir = str(tmp_path / 'native')
  magenta.convert(str(root), out_dir)
  synth = gansynth_tf2.load(out_dir)
  # Rounding only: the synth runs the inference path (one-pass pixel norms),
  # on random weights of width 12 that amplify it.
  np.testing.assert_allclose(
      synth.generate_specgrams(pitches, z, normalized=True), ours, atol=2e-4)
  t = cfg.spec_transform()
  ref_waves = t.specgrams_to_waves(cfg.normalizer().denormalize(ref)).numpy()
  waves = synth.generate(pitches, z)
  assert waves.shape == (3, 64000)
  # Random weights give huge, noisy waves (peak ~ 1e2); compare relatively.
  rel = np.sqrt(np.mean((waves - ref_waves)**2) / np.mean(ref_waves**2))
  assert rel <= 1e-3


# --- unreadable files ----------------------------------------------------------
def _copy_with_data(tiny_ckpt_dir, dst, edit):
  shutil.copytree(tiny_ckpt_dir, dst)
  _, prefix = magenta.latest_stage(dst)
  data = prefix + '.data-00000-of-00001'
  with open(data, 'rb') as f:
    raw = bytearray(f.read())
  with open(data, 'wb') as f:
    f.write(edit(raw))
  return dst


def _flip(raw):
  raw[len(raw) // 5:len(raw) // 5 + 64] = bytes(b ^ 0xff for b in
                                                raw[len(raw) // 5:
                                                    len(raw) // 5 + 64])
  return raw


@pytest.mark.parametrize('edit', [_flip, lambda raw: raw[:1000]],
                         ids=['checksum', 'truncated'])
def test_corrupt_data_file_refused(tiny_ckpt_dir, tmp_path, edit):
  d = _copy_with_data(tiny_ckpt_dir, str(tmp_path / 'c'), edit)
  with pytest.raises(ValueError, match='corrupt checkpoint') as e:
    magenta.load_magenta_checkpoint(d)
  assert str(e.value).startswith(os.path.abspath(d)) and '\n' not in str(
      e.value)


@pytest.mark.parametrize('text', ['{"a": ', '[1, 2]', '"x"'])
def test_bad_experiment_json_refused(tiny_ckpt_dir, tmp_path, text):
  d = str(tmp_path / 'c')
  shutil.copytree(tiny_ckpt_dir, d)
  with open(os.path.join(d, 'experiment.json'), 'w') as f:
    f.write(text)
  with pytest.raises(ValueError, match='experiment.json: expected a JSON '
                     'object'):
    magenta.read_config(d)
  with pytest.raises(ValueError, match='experiment.json: expected a JSON '
                     'object'):
    gansynth_tf2.load(d)


def test_cli_convert_unwritable_output_is_one_line(tiny_ckpt_dir):
  res = subprocess.run(
      [sys.executable, '-m', 'gansynth_tools.convert_magenta_checkpoint',
       '--magenta_ckpt_dir=' + tiny_ckpt_dir,
       '--output_dir=/proc/gansynth_no/such_dir'],
      capture_output=True, text=True, timeout=300)
  assert res.returncode == 1, res.stderr[-2000:]
  assert 'Traceback' not in res.stderr
  assert res.stderr.strip().splitlines()[-1].startswith(
      'gansynth-convert: error: ')


@pytest.mark.parametrize('drop,experiment', [
    ('global_step', None), ('Variable', {'train_time_limit': 100.0})])
def test_missing_progress_counter_refused(tiny_ckpt_dir, tmp_path, drop,
                                          experiment):
  """Without the counter the blend position cannot be derived: refused, not
  silently converted at progress 0 (block 1 only)."""
  d = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'c'), drop=[drop],
                          experiment=experiment)
  with pytest.raises(magenta.CheckpointMismatchError,
                     match='1 missing variable[^$]*' + drop):
    magenta.load_magenta_checkpoint(d)
  # A non-progressive run does not need it (progress = num_blocks - 1).
  d = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'np'), drop=[drop],
                          experiment=dict(experiment or {},
                                          train_progressive=False))
  assert magenta.load_magenta_checkpoint(d)['progress'] == 6.0


@pytest.mark.parametrize('experiment,match', [
    ({'data_normalizer': 'specgrams_simple_normalizer'}, 'data_normalizer'),
    ({'data_normalizer': 'none'}, 'data_normalizer'),
    ({'simple_arch': True}, 'simple_arch')])
def test_unsupported_original_hparams_refused_before_writing(
    tiny_ckpt_dir, tmp_path, experiment, match):
  d = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'c'),
                          experiment=experiment)
  out = str(tmp_path / 'native')
  with pytest.raises(ValueError, match='experiment.json: ' + match):
    magenta.convert(d, out)
  assert not os.path.exists(out)
  with pytest.raises(ValueError, match=match):
    gansynth_tf2.load(d)


def test_stage_beyond_the_config_is_a_clear_error(tiny_ckpt_dir, tmp_path):
  d = str(tmp_path / 'c')
  shutil.copytree(tiny_ckpt_dir, d)
  os.rename(os.path.join(d, 'stage_00012'), os.path.join(d, 'stage_00013'))
  with pytest.raises(ValueError, match='stage_00013 does not fit') as e:
    magenta.load_magenta_checkpoint(d)
  assert str(e.value).startswith(os.path.abspath(d))


def test_bad_hparam_value_names_experiment_json(tiny_ckpt_dir, tmp_path):
  d = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'c'),
                          experiment={'data_type': 'wave'})
  with pytest.raises(ValueError, match='experiment.json: data_type must be'):
    gansynth_tf2.load(d)


def test_checkpoint_file_with_a_foreign_path_loads_this_dir(tiny_ckpt_dir,
                                                            tmp_path):
  """Real checkpoint files name the absolute path training wrote to; the
  checkpoint inside the given dir is loaded, even if that path exists."""
  foreign = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'foreign'),
                                replace={'global_step': np.int64(184)})
  _, foreign_prefix = magenta.latest_stage(foreign)
  d = str(tmp_path / 'c')
  shutil.copytree(tiny_ckpt_dir, d)
  for target in (foreign_prefix, '/nonexistent/train/stage_00012/model.ckpt-216'):
    with open(os.path.join(d, 'stage_00012', 'checkpoint'), 'w') as f:
      f.write('model_checkpoint_path: "%s"\n' % target)
    stage, prefix = magenta.latest_stage(d)
    assert stage == 12 and prefix == os.path.join(d, 'stage_00012',
                                                  'model.ckpt-216')
  assert magenta.load_magenta_checkpoint(d)['global_step'] == 216


def test_config_without_transition_stages_converts(tiny_ckpt_dir, tmp_path):
  """transition_stage_num_images 0 (no fade-in): the original's progress is
  the integer stage (max(0, -x / 0) = 0); was a ZeroDivisionError."""
  d = _rewrite_checkpoint(tiny_ckpt_dir, str(tmp_path / 'c'),
                          experiment={'transition_stage_num_images': 0})
  m = magenta.load_magenta_checkpoint(d)
  assert m['progress'] == 6.0
  assert m['config'].compute_progress(40, 7) == 2.0
