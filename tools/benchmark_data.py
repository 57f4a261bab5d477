r"""Input-pipeline throughput: NSynth TFRecords -> normalized mel-IF batches.

  python tools/benchmark_data.py [--data=GLOB_OR_DIR] [--config=mel_prog_hires]
      [--batch_size=8] [--seconds=20] [--train_step_s=25]

Without --data, writes --num_examples synthetic 4 s notes to a temp folder.
Measures (1) reading + parsing + checking records (load_examples) and (2) the
whole training pipeline (build_train_dataset: + STFT, mel, IF, normalizer,
batching), in examples/s, beside the trainer's consumption at the final stage
(batch_size / --train_step_s; 25 s per step of 8 is the original's final
stage on this 2-core CPU). Prints a table, then one JSON line of figures.
"""

import json
import os
import shutil
import tempfile
import time

from absl import app
from absl import flags

_DATA = flags.DEFINE_string('data', None, 'NSynth TFRecords (file, glob or '
                            'folder); default: synthetic notes.')
_NUM = flags.DEFINE_integer('num_examples', 64, 'Synthetic notes to write.')
_CONFIG = flags.DEFINE_string('config', 'mel_prog_hires', 'Config name.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Batch size (final stage: 8).')
_SECONDS = flags.DEFINE_float('seconds', 20.0, 'Measuring time per row.')
_TRAIN_STEP_S = flags.DEFINE_float(
    'train_step_s', 25.0, 'Seconds per final-stage training step of '
    '--batch_size examples.')


def _rate(iterator, batch, seconds, warmup=2):
  for _ in range(warmup):
    next(iterator)
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    next(iterator)
    n += batch
  return n / (time.perf_counter() - start)


def main(argv):
  del argv
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  import gansynth_tf2  # pylint: disable=g-import-not-at-top,unused-import
  # ^ before tensorflow: the package's TF environment defaults (oneDNN).
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import data  # pylint: disable=g-import-not-at-top
  from gansynth_tf2.config import load_config  # pylint: disable=g-import-not-at-top
  from gansynth_tf2.data import synthetic  # pylint: disable=g-import-not-at-top
  from gansynth_tf2.data import tfrecord_writer  # pylint: disable=g-import-not-at-top
  tmp = None
  path = _DATA.value
  if not path:
    tmp = tempfile.mkdtemp(prefix='gansynth_bench_')
    path = os.path.join(tmp, 'nsynth-train.tfrecord')
    pitches = [24 + i % 61 for i in range(_NUM.value)]
    tfrecord_writer.write_nsynth_tfrecord(path, synthetic.note_examples(
        pitches))
  try:
    cfg = load_config(_CONFIG.value, {'dataset_name': 'nsynth_tfrecord',
                                      'train_data_path': path})
    batch = _BATCH.value
    reads = data.load_examples(cfg).repeat().batch(batch).prefetch(2)
    read_rate = _rate(iter(reads), batch, _SECONDS.value)
    full = data.build_train_dataset(cfg, batch, seed=0)
    full_rate = _rate(iter(full), batch, _SECONDS.value)
    trainer = batch / _TRAIN_STEP_S.value
    h, w = cfg.final_resolution
    rows = [
        ('read + parse + check records', read_rate),
        ('full pipeline -> [%d, %d, %d, %d] %s batches' % (
            batch, h, w, cfg.num_channels, cfg.data_type), full_rate),
        ('trainer, final stage (%.1f s/step)' % _TRAIN_STEP_S.value,
         trainer),
    ]
    print('%-52s %12s' % ('stage', 'examples/s'))
    for name, value in rows:
      print('%-52s %12.2f' % (name, value))
    print('pipeline / trainer consumption: %.1fx  (%d CPU threads visible, '
          'TF %s)' % (full_rate / trainer, os.cpu_count(), tf.__version__))
    print(json.dumps({
        'read_examples_per_s': round(read_rate, 2),
        'pipeline_examples_per_s': round(full_rate, 2),
        'trainer_final_stage_examples_per_s': round(trainer, 4),
        'pipeline_over_trainer': round(full_rate / trainer, 1),
        'batch_size': batch, 'seconds_per_row': _SECONDS.value,
        'synthetic_data': tmp is not None}))
  finally:
    if tmp:
      shutil.rmtree(tmp, ignore_errors=True)


def run():
  app.run(main)


if __name__ == '__main__':
  run()
