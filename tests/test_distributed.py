"""Training under tf.distribute: Mirrored on 2 logical CPUs, 2-process MWMS.

Each case runs in fresh subprocesses (logical devices and multi-worker
collectives must be configured before TensorFlow initializes); this file is
also the subprocesses' script (`python tests/test_distributed.py ROLE ...`).
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.abspath(__file__)
REPO = os.path.dirname(os.path.dirname(HERE))
STEP_KEYS = ('g_loss', 'd_loss', 'gradient_penalty', 'real_ac_loss',
             'fake_ac_loss', 'd_real', 'd_fake')


def _env(**extra):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONHASHSEED='0')
  env.pop('TF_CONFIG', None)
  env.update(extra)
  return env


def _tiny(seed):
  """tiny's widths on cpu_fast's 128x256 geometry (conftest.SMALL_GEOMETRY):
  the 2-process MWMS test went from 142 to 83 s on 2 busy cores."""
  from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top
  from conftest import SMALL_GEOMETRY  # pylint: disable=g-import-not-at-top
  return config_lib.load_config('tiny', dict(
      SMALL_GEOMETRY, dataset_name='synthetic_tones', seed=seed))


def _weights(trainer):
  g = trainer.gan
  out = {}
  for prefix, net in (('g', g.generator), ('d', g.discriminator),
                      ('ema', g.generator_ema)):
    for i, v in enumerate(net.weights):
      out['%s/%03d' % (prefix, i)] = v.numpy()
  return out


# -----------------------------------------------------------------------------
# Subprocess roles.
# -----------------------------------------------------------------------------
def role_mirrored(out_dir, images):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  from gansynth_tf2 import training  # pylint: disable=g-import-not-at-top
  cfg = _tiny(7).copy(save_summaries_num_images=16)
  results = {}
  runs = (
      # One device, discriminator minibatch statistics over groups of 4:
      # the same statistics as 2 replicas of 4.
      ('single_grouped', tf.distribute.get_strategy(), 2),
      ('mirrored', tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1']), 1),
  )
  for name, strategy, groups in runs:
    # EMA audio/spectrogram summaries (cross-replica) under Mirrored too.
    tr = training.Trainer(cfg, os.path.join(out_dir, name), strategy=strategy,
                          minibatch_groups=groups,
                          summaries=name == 'mirrored', log=lambda s: None)
    res = tr.train(stop_after_images=images)
    results[name] = {
        'replicas': strategy.num_replicas_in_sync,
        'history': [{k: h[k] for k in STEP_KEYS + ('images_seen',)}
                    for h in res['history']]}
    np.savez(os.path.join(out_dir, name + '.npz'), **_weights(tr))
  with open(os.path.join(out_dir, 'results.json'), 'w') as f:
    json.dump(results, f)


def role_fit_mirrored(out_dir):
  """keras fit() under Mirrored on 2 logical CPUs: the logged losses are
  the global means, as on one device."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  from gansynth_tf2 import gan as gan_lib  # pylint: disable=g-import-not-at-top
  cfg = _tiny(3)
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  rng = np.random.RandomState(0)
  real = rng.uniform(-0.8, 0.8, (8,) + cfg.final_resolution +
                     (cfg.num_channels,)).astype(np.float32)
  labels = np.eye(cfg.num_pitches, dtype=np.float32)[
      rng.randint(0, cfg.num_pitches, 8)]
  ds = tf.data.Dataset.from_tensors((real, labels)).repeat()
  with strategy.scope():
    gan = gan_lib.GAN(cfg, seed=3)
    gan.compile()
  gan.set_stage(0)
  # The reference: one device, minibatch statistics over groups of 4 (as 2
  # replicas of 4), same weights and seed (same random draws).
  single = gan_lib.GAN(cfg, seed=3, minibatch_groups=2)
  single.compile()
  single.set_stage(0)
  for v, x in zip(single.weights, gan.weights):
    v.assign(x.numpy())
  want = {k: float(v) for k, v in
          single.train_step((tf.constant(real), tf.constant(labels))).items()}
  hist = gan.fit(ds, steps_per_epoch=1, epochs=1, verbose=0,
                 shuffle=False).history
  got = {k: float(v[-1]) for k, v in hist.items() if k in want}
  with open(os.path.join(out_dir, 'fit.json'), 'w') as f:
    json.dump({'want': want, 'got': got,
               'replicas': strategy.num_replicas_in_sync}, f)


def role_mwms_worker(out_dir, images):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  strategy = tf.distribute.MultiWorkerMirroredStrategy()
  from gansynth_tf2 import training  # pylint: disable=g-import-not-at-top
  cfg = _tiny(11)
  task = json.loads(os.environ['TF_CONFIG'])['task']['index']
  tr = training.Trainer(cfg, os.path.join(out_dir, 'run'), strategy=strategy,
                        summaries=False)
  res = tr.train(stop_after_images=images)
  np.savez(os.path.join(out_dir, 'worker%d.npz' % task), **_weights(tr))
  with open(os.path.join(out_dir, 'worker%d.json' % task), 'w') as f:
    json.dump({'replicas': strategy.num_replicas_in_sync,
               'is_chief': tr.is_chief, 'images_seen': res['images_seen'],
               'history': [{k: h[k] for k in STEP_KEYS}
                           for h in res['history']]}, f)


# -----------------------------------------------------------------------------
# Tests.
# -----------------------------------------------------------------------------
def _run(args, timeout, env=None):
  proc = subprocess.run([sys.executable, HERE] + args, cwd=REPO,
                        env=env or _env(), capture_output=True, text=True,
                        timeout=timeout, check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return proc


@pytest.mark.timeout(900)
def test_mirrored_two_cpus_matches_single_device(tmp_path):
  images = 32  # stages 0 and 1 (a transition): 4 steps of 8
  _run(['mirrored', str(tmp_path), str(images)], timeout=900)
  with open(tmp_path / 'results.json') as f:
    res = json.load(f)
  assert res['mirrored']['replicas'] == 2
  single, mirrored = res['single_grouped'], res['mirrored']
  assert len(single['history']) == len(mirrored['history']) == images // 8
  for a, b in zip(single['history'], mirrored['history']):
    assert a['images_seen'] == b['images_seen']
    for k in STEP_KEYS:
      assert np.isfinite(a[k]) and np.isfinite(b[k])
      np.testing.assert_allclose(b[k], a[k], rtol=2e-3, atol=2e-4,
                                 err_msg='%s at %d' % (k, a['images_seen']))
  # Losses move over the run (not a constant trajectory).
  assert len({round(h['d_loss'], 6) for h in mirrored['history']}) > 1
  wa = np.load(tmp_path / 'single_grouped.npz')
  wb = np.load(tmp_path / 'mirrored.npz')
  assert sorted(wa.files) == sorted(wb.files)
  total = close = 0
  for k in wa.files:
    diff = np.abs(wa[k] - wb[k])
    total += diff.size
    close += int(np.sum(diff <= 1e-4 + 1e-3 * np.abs(wa[k])))
  # Adam's first steps move each weight by about +-lr whatever the gradient
  # size, so a gradient within rounding of 0 may flip; nearly all agree.
  assert close / total > 0.995, close / total
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tags = set()
  for f in (tmp_path / 'mirrored' / 'summaries').glob('events.*'):
    for e in tf.compat.v1.train.summary_iterator(str(f)):
      tags.update(v.tag for v in e.summary.value)
  assert {'ema_fake_waves', 'ema_fake_specgrams_magnitude', 'd_loss'} <= tags


@pytest.mark.timeout(600)
def test_keras_fit_under_mirrored_logs_global_means(tmp_path):
  _run(['fit_mirrored', str(tmp_path)], timeout=600)
  with open(tmp_path / 'fit.json') as f:
    res = json.load(f)
  assert res['replicas'] == 2
  for k in ('g_loss', 'd_real', 'fake_ac_loss'):
    np.testing.assert_allclose(res['got'][k], res['want'][k], rtol=1e-4,
                               err_msg=k)


def _free_ports(n):
  socks = []
  for _ in range(n):
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    socks.append(s)
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


@pytest.mark.timeout(900)
def test_multi_worker_two_processes_identical_weights(tmp_path):
  images = 24  # stage 0 and half of stage 1
  ports = _free_ports(2)
  cluster = {'worker': ['127.0.0.1:%d' % p for p in ports]}
  procs = []
  for i in range(2):
    env = _env(TF_CONFIG=json.dumps({'cluster': cluster,
                                     'task': {'type': 'worker', 'index': i}}))
    procs.append(subprocess.Popen(
        [sys.executable, HERE, 'mwms_worker', str(tmp_path), str(images)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True))
  outs = []
  try:
    for p in procs:
      outs.append(p.communicate(timeout=840)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-4000:]
  info = []
  for i in range(2):
    with open(tmp_path / ('worker%d.json' % i)) as f:
      info.append(json.load(f))
  assert [x['replicas'] for x in info] == [2, 2]
  assert [x['is_chief'] for x in info] == [True, False]
  assert info[0]['images_seen'] == info[1]['images_seen'] == images
  assert info[0]['history'] == info[1]['history']  # global (reduced) losses
  for h in info[0]['history']:
    assert all(np.isfinite(v) for v in h.values())
  w0 = np.load(tmp_path / 'worker0.npz')
  w1 = np.load(tmp_path / 'worker1.npz')
  assert sorted(w0.files) == sorted(w1.files)
  for k in w0.files:
    np.testing.assert_array_equal(w0[k], w1[k], err_msg=k)
  # The chief wrote the run; the other worker's temporary checkpoint is gone.
  run = tmp_path / 'run'
  assert (run / 'model.json').is_file()
  assert (run / 'checkpoints' / 'checkpoint').is_file()
  assert not os.listdir(run / '.worker_tmp') if (
      run / '.worker_tmp').exists() else True
  # The chief's checkpoint holds the trained weights.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import model_io  # pylint: disable=g-import-not-at-top
  m = model_io.load_model_dir(str(run), load_generator=True)
  for i, v in enumerate(m['generator'].weights):
    np.testing.assert_array_equal(v.numpy(), w0['g/%03d' % i])
  del tf


if __name__ == '__main__':
  role = sys.argv[1]
  if role == 'fit_mirrored':
    role_fit_mirrored(sys.argv[2])
  else:
    {'mirrored': role_mirrored,
     'mwms_worker': role_mwms_worker}[role](sys.argv[2], int(sys.argv[3]))
