"""Subprocess of test_training's exact-resume test (not collected by pytest).

`python tests/resume_scenario.py OUT_DIR` trains the tiny config (cpu_fast's
geometry) to 32 images twice under OUT_DIR: `straight` in one call, `pieces`
in three calls stopping at 8, 16 (the stage 0 -> 1 boundary) and 32 images,
and writes each call's result to OUT_DIR/results.json.

TensorFlow runs on one intra-op and one inter-op thread here: with the
default pools the straight and pieces runs differed in 2 of 9 local runs of
the in-process test and in one CI run (EMA shadows by 2.3e-6; Adam's second
moments of one conv by up to 12%, relative: the first, sign-like Adam steps
amplify a rounding difference), never in 20 pairs run later in one process,
and 60 repeated gradient evaluations were bit-identical: presumably float
rounding that depends on thread scheduling. One thread of each kind takes the
scheduling out, so the test asks for bit-exact equality.
"""

import json
import os
import sys

import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from gansynth_tf2 import training  # pylint: disable=g-import-not-at-top,wrong-import-position
from conftest import SMALL_GEOMETRY  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(out_dir):
  cfg = config_lib.load_config('tiny', dict(
      SMALL_GEOMETRY, dataset_name='synthetic_tones', seed=3))
  results = {}
  for name, stops in (('straight', (32,)), ('pieces', (8, 16, 32))):
    results[name] = []
    for stop in stops:
      res = training.train(cfg, os.path.join(out_dir, name),
                           strategy='default', summaries=False,
                           stop_after_images=stop, log=lambda _: None)
      results[name].append({k: res[k] for k in
                            ('status', 'images_seen', 'stage_id', 'history')})
  with open(os.path.join(out_dir, 'results.json'), 'w') as f:
    json.dump(results, f)


if __name__ == '__main__':
  main(sys.argv[1])
