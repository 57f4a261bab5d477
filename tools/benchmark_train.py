r"""Training throughput (images/s) per stage, against the original's figures.

  python -m gansynth_tools.benchmark_train [--config=mel_prog_hires]
      [--stages=0,6,12] [--batch_size=8] [--steps=0] [--warmup_steps=2]

For each stage: a fresh GAN of the config (random init, all blocks built),
images_seen set to the image count at which the stage starts in real training
(as the original's measurement did; only the blending weights depend on it),
one traced train step per stage, random "real" data (uniform in [-0.8, 0.8],
the original's benchmark stub), steps of one G update + EMA + one D update.
The figure is 8 / median seconds per step after `warmup_steps` steps (the
first includes tracing). Prints a table, then as its LAST line one JSON
object of the figures.

Original (timing_original_train.json, TF 2.15 graph mode, same 2-core CPU,
idle machine): 33.8 / 1.51 / 0.320 images/s at stages 0 / 6 / 12.
"""

import json
import os
import sys
import time

from absl import app
from absl import flags

_CONFIG = flags.DEFINE_string('config', 'mel_prog_hires', 'Config name.')
_HPARAMS = flags.DEFINE_string('hparams', '{}', 'JSON hparam overrides.')
_STAGES = flags.DEFINE_string('stages', '0,6,12',
                              'Comma list of stage ids (first,middle,final).')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Global batch size.')
_STEPS = flags.DEFINE_integer(
    'steps', 0, 'Timed steps per stage (0: 20 / 6 / 3 by stage cost).')
_WARMUP = flags.DEFINE_integer('warmup_steps', 2,
                               'Untimed steps first (the first traces).')
_JIT = flags.DEFINE_boolean('jit_compile', False,
                            'XLA-compile the train step.')

# timing_original_train.json (pooled runs A+B): images/s by stage.
ORIGINAL_IMAGES_PER_SEC = {0: 33.8, 6: 1.51, 12: 0.320}


def _fail(msg):
  print('benchmark_train: error: %s' % msg, file=sys.stderr)
  sys.exit(1)


def _default_steps(num_blocks):
  return 20 if num_blocks <= 2 else (6 if num_blocks <= 5 else 3)


def bench_stage(cfg, stage_id, batch_size, steps, warmup, jit):
  """Returns a dict of timings for one stage (fresh GAN)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import gan as gan_lib  # pylint: disable=g-import-not-at-top
  num_blocks, _ = cfg.stage_info(stage_id)
  start = cfg.stage_info(stage_id - 1)[1] if stage_id > 0 else 0
  t0 = time.time()
  gan = gan_lib.GAN(cfg, seed=0)
  gan.compile()
  gan.set_stage(stage_id)
  gan.images_seen.assign(start)
  build_s = time.time() - t0
  h, w = cfg.final_resolution
  real = tf.random.stateless_uniform([batch_size, h, w, cfg.num_channels],
                                     seed=[1, 2], minval=-0.8, maxval=0.8)
  labels = tf.one_hot(tf.random.stateless_uniform(
      [batch_size], seed=[3, 4], maxval=cfg.num_pitches, dtype=tf.int32),
                      cfg.num_pitches)
  step = tf.function(gan.train_step, jit_compile=jit)
  times, cpu = [], []
  for _ in range(warmup + steps):
    t, c = time.time(), time.process_time()
    out = step((real, labels))
    loss = float(out['d_loss'])
    times.append(time.time() - t)
    cpu.append(time.process_time() - c)
    if not np.isfinite(loss):
      raise ValueError('non-finite loss at stage %d' % stage_id)
  timed = times[warmup:]
  med = float(np.median(timed))
  return {'stage': stage_id, 'num_blocks': num_blocks,
          'cpu_s_per_step': float(np.median(cpu[warmup:])),
          'build_s': build_s, 'first_step_s': times[0],
          'median_step_s': med, 'min_step_s': float(np.min(timed)),
          'steps': len(timed), 'images_per_sec': batch_size / med}


def main(argv):
  if len(argv) > 1:
    _fail('unexpected arguments %s' % ' '.join(argv[1:]))
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top
  try:
    cfg = config_lib.load_config(_CONFIG.value, _HPARAMS.value)
    stages = [int(s) for s in _STAGES.value.split(',') if s.strip()]
    for s in stages:
      cfg.stage_info(s)
    if _BATCH.value < 1:
      raise ValueError('--batch_size must be positive')
  except ValueError as e:
    _fail(str(e).splitlines()[0])
  cfg = cfg.copy(batch_size_schedule=[int(_BATCH.value)])
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rows = []
  for s in stages:
    nb = cfg.stage_info(s)[0]
    steps = _STEPS.value or _default_steps(nb)
    rows.append(bench_stage(cfg, s, _BATCH.value, steps, _WARMUP.value,
                            _JIT.value))
    r = rows[-1]
    print('stage %2d done: %.3f s/step (%.3g images/s)' % (
        s, r['median_step_s'], r['images_per_sec']), flush=True)
  print()
  print('Training throughput, config %s, batch %d, TF %s, %d CPU cores%s' % (
      _CONFIG.value, _BATCH.value, tf.__version__, os.cpu_count(),
      ', XLA' if _JIT.value else ''))
  load = os.getloadavg()[0]
  print('1-minute load average at the end: %.2f (the original figures are '
        'from an idle machine; CPU s/step is the process CPU time)' % load)
  print('%-6s %-7s %-10s %-10s %-11s %-11s %-10s %-8s' % (
      'stage', 'blocks', 'first (s)', 's/step', 'CPU s/step', 'images/s',
      'original', 'speedup'))
  figures = {'config': _CONFIG.value, 'batch_size': _BATCH.value,
             'jit_compile': bool(_JIT.value),
             'load_average_1min': round(load, 2)}
  for r in rows:
    orig = ORIGINAL_IMAGES_PER_SEC.get(r['stage'])
    if _BATCH.value != 8 or _CONFIG.value != 'mel_prog_hires':
      orig = None
    print('%-6d %-7d %-10.1f %-10.3f %-11.3f %-11.3g %-10s %-8s' % (
        r['stage'], r['num_blocks'], r['first_step_s'],
        r['median_step_s'], r['cpu_s_per_step'], r['images_per_sec'],
        '%.3g' % orig if orig else '-',
        '%.2fx' % (r['images_per_sec'] / orig) if orig else '-'))
    key = 'stage%d' % r['stage']
    figures[key + '_images_per_sec'] = round(r['images_per_sec'], 4)
    figures[key + '_seconds_per_step'] = round(r['median_step_s'], 4)
    figures[key + '_first_step_seconds'] = round(r['first_step_s'], 2)
    figures[key + '_cpu_seconds_per_step'] = round(r['cpu_s_per_step'], 4)
    if orig:
      figures[key + '_original_images_per_sec'] = orig
  print(json.dumps(figures))


def run():
  app.run(main)


if __name__ == '__main__':
  run()
