"""Stage loop, exact resume, NaN stop, SIGKILL resume and the CLI (tiny)."""

import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import gansynth_tf2
from gansynth_tf2 import config as config_lib
from gansynth_tf2 import model_io
from gansynth_tf2 import training
from conftest import SMALL_GEOMETRY

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(**overrides):
  values = {'dataset_name': 'synthetic_tones', 'seed': 3}
  values.update(overrides)
  return config_lib.load_config('tiny', values)


def _quiet(_):
  pass


def _checkpoint_values(root):
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(os.path.join(root, 'checkpoints')))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if 'save_counter' not in n and not n.startswith('_CHECKPOINTABLE')}


# -----------------------------------------------------------------------------
# In-process.
# -----------------------------------------------------------------------------
def test_strategy_names():
  assert training.make_strategy('default') is tf.distribute.get_strategy()
  # This CPU-only machine: auto is the default strategy.
  assert training.make_strategy('auto').num_replicas_in_sync == 1
  with pytest.raises(training.TrainingError, match='--strategy'):
    training.make_strategy('gpu_cluster')


def test_resume_is_exact_across_stage_boundaries(tmp_path):
  # Both runs in one single-threaded subprocess (tests/resume_scenario.py: the
  # default thread pools are not bit-reproducible from run to run).
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, 'tests', 'resume_scenario.py'),
       str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=900,
      env=_env(), check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  with open(tmp_path / 'results.json') as f:
    results = json.load(f)
  (res,) = results['straight']
  assert res['images_seen'] == 32 and res['status'] == 'stopped'
  assert [h['stage_id'] for h in res['history']] == [0, 0, 1, 1]
  for h in res['history']:
    assert all(np.isfinite(v) for v in h.values())
  assert len({h['d_loss'] for h in res['history']}) == 4
  # Stopped mid-stage 0, then exactly at the 0 -> 1 boundary, then finished.
  assert [(r['images_seen'], r['stage_id']) for r in results['pieces']] == [
      (8, 0), (16, 0), (32, 1)]
  # The same per-step losses, and the same final checkpoint, bit for bit:
  # weights, EMA shadows, Adam's slots and step counts.
  pieces_history = sum((r['history'] for r in results['pieces']), [])
  assert pieces_history == res['history']
  straight, pieces = str(tmp_path / 'straight'), str(tmp_path / 'pieces')
  a, b = _checkpoint_values(straight), _checkpoint_values(pieces)
  assert sorted(a) == sorted(b)
  assert any('g_optimizer' in k for k in a) and any('generator_ema' in k
                                                    for k in a)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  info = model_io.read_info(pieces)
  assert info['images_seen'] == 32 and info['num_blocks'] == 2
  assert not info['complete']


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  cfg = _tiny(save_checkpoint_num_images=8, **SMALL_GEOMETRY)
  good = training.make_dataset_fn(cfg)

  def poisoned(batch_size, seed, ctx, start_images, global_batch):
    ds = good(batch_size, seed, ctx, start_images, global_batch)

    def poison(e, xy):  # NaN "spectrograms" from image 16 (stage 1) on
      bad = start_images + e * global_batch >= 16
      return tf.where(bad, xy[0] * np.float32('nan'), xy[0]), xy[1]
    return ds.enumerate().map(poison)

  root = str(tmp_path / 'run')
  with pytest.raises(training.TrainingDivergedError,
                     match=r'diverged at 16 images.*non-finite'):
    training.train(cfg, root, strategy='default', summaries=False,
                   dataset_fn=poisoned, log=_quiet)
  assert os.path.basename(tf.train.latest_checkpoint(
      os.path.join(root, 'checkpoints'))) == 'ckpt-16'
  info = model_io.read_info(root)
  assert info['images_seen'] == 16
  synth = gansynth_tf2.load(root)
  specs = synth.generate_specgrams([60], seed=0, normalized=True)
  assert np.all(np.isfinite(specs))


def test_non_progressive_trains_all_blocks(tmp_path):
  cfg = _tiny(train_progressive=False, total_num_images=16, **SMALL_GEOMETRY)
  root = str(tmp_path / 'run')
  res = training.train(cfg, root, strategy='default', summaries=False,
                       log=_quiet)
  assert res['status'] == 'complete' and res['images_seen'] == 16
  assert [h['stage_id'] for h in res['history']] == [6, 6]
  assert [h['progress'] for h in res['history']] == [3.0, 3.0]
  info = model_io.read_info(root)
  assert info['num_blocks'] == 4 and info['complete']


def test_signal_on_the_last_step_still_records_complete(tmp_path):
  cfg = _tiny(train_progressive=False, total_num_images=16, **SMALL_GEOMETRY)
  root = str(tmp_path / 'run')

  def log(line):  # SIGTERM arrives while the final step is being logged
    if 'images 16/16' in line:
      os.kill(os.getpid(), signal.SIGTERM)
  res = training.train(cfg, root, strategy='default', summaries=False,
                       log=log)
  assert res['signal'] == signal.SIGTERM and res['images_seen'] == 16
  info = model_io.read_info(root)
  assert info['images_seen'] == 16 and info['complete']


@pytest.mark.timeout(900)
def test_pitch_accuracy_rises_on_tones(tmp_path):
  """Stage 0 on tones of 4 pitches: the AC classifier learns the real
  pitches and the generator's fakes become classifiable (61-way chance is
  0.016; 4-way 0.25). Longer runs: see the module notes."""
  n = 3200
  cfg = _tiny(stable_stage_num_images=n, transition_stage_num_images=n,
              total_num_images=n, seed=1, save_checkpoint_num_images=10**9,
              save_summaries_num_images=10**9)
  pitches = [36, 48, 60, 72]

  def tones(batch_size, seed, ctx, start_images, global_batch):
    # 384 distinct notes, rendered once and cached: rendering them and their
    # STFTs at the full 128x1024 cost 0.3 s per batch of 8 on 2 busy cores,
    # so 48 batches instead of 400 (the test went from 247 to 197 s there).
    return training.synthetic_dataset(
        cfg, batch_size, seed, ctx, start_images, 'tones', global_batch,
        pitches=pitches).take(48).cache().repeat()

  res = training.train(cfg, str(tmp_path / 'run'), strategy='default',
                       dataset_fn=tones, summaries=False, log=_quiet)
  h = res['history']
  assert len(h) == n // 8
  k = len(h) // 10

  def window(key, part):
    return float(np.mean([x[key] for x in part]))
  first, last = h[:k], h[-k:]
  print('pitch accuracy, first/last %d images: fake AC %.3f -> %.3f, real AC '
        '%.3f -> %.3f, fake AC loss %.3f -> %.3f' % (
            8 * k, window('fake_ac_accuracy', first),
            window('fake_ac_accuracy', last), window('real_ac_accuracy', first),
            window('real_ac_accuracy', last), window('fake_ac_loss', first),
            window('fake_ac_loss', last)))
  assert window('real_ac_accuracy', last) >= 0.4
  assert window('fake_ac_loss', last) < 2.0 < window('fake_ac_loss', first)
  assert window('fake_ac_accuracy', last) >= 0.15
  assert window('fake_ac_accuracy', last) > window('fake_ac_accuracy',
                                                   first) + 0.1


def test_resume_refuses_other_architecture(tmp_path):
  root = tmp_path / 'run'
  root.mkdir()
  config_lib.load_config('tiny', {'fmap_max': 32}).to_json(
      str(root / 'experiment.json'))
  # Killed before its first checkpoint: nothing to protect, a fresh start.
  trainer = training.Trainer(_tiny(), str(root), strategy='default',
                             log=_quiet)
  assert trainer.restored_from is None
  assert config_lib.load_config(str(root / 'experiment.json')).fmap_max != 32
  config_lib.load_config('tiny', {'fmap_max': 32}).to_json(
      str(root / 'experiment.json'))
  tf.train.Checkpoint(v=tf.Variable(1.0)).save(
      str(root / 'checkpoints' / 'ckpt'))
  with pytest.raises(training.TrainingError, match='fmap_max'):
    training.Trainer(_tiny(), str(root), strategy='default', log=_quiet)


# -----------------------------------------------------------------------------
# The CLI (subprocesses).
# -----------------------------------------------------------------------------
def _cli():
  exe = shutil.which('gansynth-train')
  return [exe] if exe else [sys.executable, '-m', 'gansynth_tools.train']


def _env():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('TF_CONFIG', None)
  return env


def _tone(pitch, seed, n=64000, sr=16000):
  rng = np.random.RandomState(seed)
  t = np.arange(n) / sr
  f0 = 440.0 * 2 ** ((pitch - 69) / 12.0)
  w = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.28)) / k
          for k in range(1, 6) if k * f0 < sr / 2)
  w = w * np.exp(-t / 1.0) * np.minimum(1, t / 0.005)
  return (0.8 * w / np.abs(w).max()).astype(np.float32)


def write_nsynth_tfrecord(path, pitches, instruments=(0, 1)):
  """NSynth-format records of harmonic tones (all NSynth keys)."""
  def i64(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

  def byt(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[s.encode() for s in v]))

  with tf.io.TFRecordWriter(path) as w:
    for inst in instruments:
      for p in pitches:
        name = 'keyboard_acoustic_%03d' % inst
        feats = {
            'note': i64([inst * 1000 + p]),
            'note_str': byt(['%s-%03d-100' % (name, p)]),
            'instrument': i64([inst]), 'instrument_str': byt([name]),
            'pitch': i64([p]), 'velocity': i64([100]),
            'sample_rate': i64([16000]),
            'audio': tf.train.Feature(float_list=tf.train.FloatList(
                value=_tone(p, inst * 1000 + p))),
            'qualities': i64([0] * 10), 'qualities_str': byt([]),
            'instrument_family': i64([4]),
            'instrument_family_str': byt(['keyboard']),
            'instrument_source': i64([0]),
            'instrument_source_str': byt(['acoustic']),
        }
        w.write(tf.train.Example(features=tf.train.Features(
            feature=feats)).SerializeToString())


@pytest.fixture(scope='module')
def tone_records(tmp_path_factory):
  d = tmp_path_factory.mktemp('nsynth')
  write_nsynth_tfrecord(str(d / 'nsynth-train.tfrecord'),
                        [36, 43, 48, 55, 60, 67, 72, 79])
  return str(d / '*train*.tfrecord')


@pytest.mark.parametrize('args,needle', [
    (['--config=no_such_config'], 'Unknown config'),
    (['--config=tiny', '--hparams={oops'], '--hparams must be a JSON'),
    (['--config=tiny', '--hparams={"no_such_hparam": 1}'], 'no_such_hparam'),
    (['--config=tiny', '--strategy=gpus'], '--strategy must be one of'),
    (['--config=tiny', '--hparams={"train_data_path": "/nonexistent/*x*"}'],
     'no files match'),
    (['--config=tiny', '--no_such_flag=1'], 'no_such_flag'),
    (['--config=tiny', '--hparams={"train_time_limit": 60}'],
     'train_time_limit'),
    (['--config=tiny', '--hparams={"train_progressive": "false"}'],
     'train_progressive must be true or false'),
    (['--config=tiny', '--hparams={"total_num_images": 0}'],
     'total_num_images must be an integer > 0'),
    (['--config=tiny', '--hparams={"batch_size_schedule": [0]}'],
     'batch_size_schedule must be a non-empty list of positive integers'),
])
def test_cli_bad_input_one_line_error(tmp_path, args, needle):
  root = tmp_path / 'run'
  proc = subprocess.run(_cli() + ['--train_root_dir=%s' % root] + args,
                        env=_env(), capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode != 0
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith('gansynth-train: error:') and needle in lines[0]
  assert not root.exists()  # nothing half-written


def test_cli_data_error_says_what_is_wrong(tmp_path, tone_records):
  # The pipeline's own message, not TF's "Graph execution error:".
  root = tmp_path / 'run'
  hparams = {'train_data_path': tone_records, 'min_pitch': 90,
             'max_pitch': 100}
  proc = subprocess.run(
      _cli() + ['--config=tiny', '--train_root_dir=%s' % root,
                '--hparams=%s' % json.dumps(hparams)],
      env=_env(), capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 1
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('gansynth-train: error:') and (
      'no training examples in %s' % tone_records in last and
      'pitch 90-100' in last), proc.stderr[-2000:]
  assert not root.exists()


# The kill test's run: SMALL_GEOMETRY's 7 stages of 16 images.
_KILL_GEOMETRY = dict(SMALL_GEOMETRY, total_num_images=112,
                      save_summaries_num_images=32)


def _start(root, records, seed=1):
  hparams = dict(_KILL_GEOMETRY, train_data_path=records,
                 save_checkpoint_num_images=8, seed=seed,
                 shuffle_buffer_size=16)
  return subprocess.Popen(
      _cli() + ['--config=tiny', '--train_root_dir=%s' % root,
                '--hparams=%s' % json.dumps(hparams), '--strategy=auto',
                '--log_every_secs=0'],
      env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      bufsize=1)


def _read_until(proc, predicate, lines):
  for line in proc.stdout:
    lines.append(line)
    if predicate(line):
      return True
  return False


def _images(line):
  if '| images ' not in line:
    return None
  return int(line.split('| images ')[1].split('/')[0])


@pytest.mark.timeout(600)
def test_cli_sigterm_saves_and_exits(tmp_path):
  root = tmp_path / 'run'
  hparams = {'dataset_name': 'synthetic_tones', 'seed': 2}
  proc = subprocess.Popen(
      _cli() + ['--config=tiny', '--train_root_dir=%s' % root,
                '--hparams=%s' % json.dumps(hparams), '--log_every_secs=0'],
      env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      bufsize=1)
  log = []
  try:
    assert _read_until(proc, lambda l: (_images(l) or 0) >= 8, log), log
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
  finally:
    if proc.poll() is None:
      proc.kill()
  log.append(out)
  assert proc.returncode == 128 + signal.SIGTERM, ''.join(log)[-2000:]
  assert 'stopped by signal' in out
  info = model_io.read_info(str(root))
  assert 8 <= info['images_seen'] < 208 and not info['complete']
  assert os.path.basename(tf.train.latest_checkpoint(
      str(root / 'checkpoints'))) == 'ckpt-%d' % info['images_seen']


@pytest.mark.timeout(1500)
def test_cli_sigkill_twice_resumes_and_finishes(tmp_path, tone_records):
  """Trains a tiny model through all 7 stages (`_KILL_GEOMETRY`) on
  NSynth-format tone records, killed with SIGKILL twice at random moments,
  and finishes with a loadable model."""
  rng = random.Random(os.getpid())
  root = tmp_path / 'run'
  log = []
  seen_before = []
  for kill in range(2):
    proc = _start(root, tone_records)
    try:
      # Wait until training has moved past a random number of images (at
      # least one checkpoint interval into this run), then a random delay.
      target = rng.choice([24, 32, 40]) + 40 * kill
      ok = _read_until(proc, lambda l, t=target: (_images(l) or 0) >= t, log)
      assert ok, ''.join(log[-30:])
      time.sleep(rng.uniform(0.0, 2.0))
    finally:
      proc.send_signal(signal.SIGKILL)
      proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # What the kill left loads, and holds a checkpoint from this run.
    info = model_io.read_info(str(root))
    seen_before.append(info['images_seen'])
    synth = gansynth_tf2.load(str(root))
    assert np.all(np.isfinite(synth.generate_specgrams([48], seed=0,
                                                       normalized=True)))
  assert seen_before[1] > seen_before[0] >= 16
  proc = _start(root, tone_records)
  out, _ = proc.communicate(timeout=1200)
  log.append(out)
  assert proc.returncode == 0, out[-3000:]
  text = ''.join(log)
  assert text.count('resuming from') == 2
  for s in range(7):
    assert 'stage %d/6:' % s in text, s
  info = model_io.read_info(str(root))
  assert info['complete'] and info['images_seen'] == 112
  assert info['num_blocks'] == 4 and info['progress'] == 3.0
  with open(root / 'experiment.json') as f:
    assert json.load(f)['train_data_path'] == tone_records
  synth = gansynth_tf2.load(str(root))
  waves = synth.generate([36, 60, 79], seed=1)
  assert waves.shape == (3, 64000) and np.all(np.isfinite(waves))
  # TensorBoard: scalars every step, EMA audio and spectrograms every 32.
  tags = set()
  for f in glob.glob(str(root / 'summaries' / 'events.*')):
    for e in tf.compat.v1.train.summary_iterator(f):
      tags.update(v.tag for v in e.summary.value)
  for tag in ('g_loss', 'd_loss', 'gradient_penalty', 'real_score_penalty',
              'real_ac_loss', 'fake_ac_loss', 'progress', 'stage_id',
              'images_per_sec', 'ema_fake_waves',
              'ema_fake_specgrams_magnitude', 'ema_fake_specgrams_if'):
    assert tag in tags, (tag, sorted(tags))


def test_init_from_a_packaged_model_continues_its_weights(tmp_path):
  """--init_from: a new run starts from a model dir's G, EMA and D and its
  images seen (how training continues on a fresh machine from saved_models/)."""
  cfg = _tiny(train_progressive=False, total_num_images=64, **SMALL_GEOMETRY)
  first = str(tmp_path / 'first')
  training.train(cfg, first, strategy='default', summaries=False,
                 stop_after_images=16, log=_quiet)
  m = model_io.load_model_dir(first, load_generator=True,
                              load_discriminator=True)
  packaged = str(tmp_path / 'packaged')
  model_io.save_model_dir(packaged, m['config'], m['generator_ema'],
                          generator=m['generator'],
                          discriminator=m['discriminator'],
                          images_seen=m['info']['images_seen'])
  t = training.Trainer(cfg, str(tmp_path / 'second'), strategy='default',
                       summaries=False, log=_quiet, init_from=packaged)
  assert t.images_seen == 16
  for mine, theirs in ((t.gan.generator, m['generator']),
                       (t.gan.generator_ema, m['generator_ema']),
                       (t.gan.discriminator, m['discriminator'])):
    for a, b in zip(mine.weights, theirs.weights):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  # The EMA differs from the raw generator (so the right copies went where).
  assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in
             zip(t.gan.generator.weights, t.gan.generator_ema.weights))
  res = t.train(stop_after_images=32)
  assert res['images_seen'] == 32
  # EMA-only dirs and other architectures are refused with a clear error.
  ema_only = str(tmp_path / 'ema_only')
  model_io.save_model_dir(ema_only, m['config'], m['generator_ema'])
  with pytest.raises(training.TrainingError, match='only the EMA generator'):
    training.Trainer(cfg, str(tmp_path / 'third'), strategy='default',
                     summaries=False, log=_quiet, init_from=ema_only)
  with pytest.raises(training.TrainingError, match='fmap_max'):
    training.Trainer(cfg.copy(fmap_max=8), str(tmp_path / 'fourth'),
                     strategy='default', summaries=False, log=_quiet,
                     init_from=packaged)
  # A projection discriminator may start from one without: the shared
  # weights are copied, the new projection starts at zero and then learns.
  t = training.Trainer(cfg.copy(discriminator_projection=True),
                       str(tmp_path / 'fifth'), strategy='default',
                       summaries=False, log=_quiet, init_from=packaged)
  d = t.gan.discriminator
  proj = d.projection.kernel
  assert not np.any(proj.numpy())
  shared = [v for v in d.weights if v is not proj]
  assert len(shared) == len(m['discriminator'].weights)
  for a, b in zip(shared, m['discriminator'].weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  t.train(stop_after_images=24)
  assert np.all(np.isfinite(proj.numpy())) and np.any(proj.numpy())
  # So may a generator with per-pitch frequency biases: same output at the
  # start (the biases are zero), and the biases then learn.
  t = training.Trainer(cfg.copy(generator_pitch_bias_blocks=2),
                       str(tmp_path / 'sixth'), strategy='default',
                       summaries=False, log=_quiet, init_from=packaged)
  for mine, theirs in ((t.gan.generator, m['generator']),
                       (t.gan.generator_ema, m['generator_ema'])):
    bias = mine.pitch_bias_weights
    assert len(bias) == 2 and not any(np.any(w.numpy()) for w in bias)
    z = tf.random.stateless_normal([2, cfg.latent_vector_size], seed=[1, 2])
    y = tf.one_hot([0, cfg.num_pitches - 1], cfg.num_pitches)
    np.testing.assert_array_equal(mine((z, y)).numpy(),
                                  theirs((z, y)).numpy())
  t.train(stop_after_images=24)
  assert all(np.any(w.numpy()) for w in t.gan.generator.pitch_bias_weights)


def test_resume_takes_learning_rates_from_the_config(tmp_path):
  """A resumed run may change the learning rates (--hparams); Adam's slots
  and step count come back from the checkpoint."""
  cfg = _tiny(train_progressive=False, total_num_images=64, **SMALL_GEOMETRY)
  root = str(tmp_path / 'run')
  training.train(cfg, root, strategy='default', summaries=False,
                 stop_after_images=16, log=_quiet)
  same = training.Trainer(cfg, root, strategy='default', summaries=False,
                          log=_quiet)
  g_steps = int(same.gan.g_optimizer.iterations.numpy())
  assert g_steps > 0
  lines = []
  t = training.Trainer(cfg.copy(generator_learning_rate=3e-3,
                                discriminator_learning_rate=5e-4), root,
                       strategy='default', summaries=False, log=lines.append)
  assert int(t.gan.g_optimizer.iterations.numpy()) == g_steps
  assert float(t.gan.g_optimizer.learning_rate.numpy()) == pytest.approx(3e-3)
  assert float(t.gan.d_optimizer.learning_rate.numpy()) == pytest.approx(5e-4)
  assert any('generator_learning_rate' in s and '0.003' in s for s in lines)
  # Same config: nothing changed, nothing logged.
  assert float(same.gan.g_optimizer.learning_rate.numpy()) == pytest.approx(
      float(cfg.generator_learning_rate))
