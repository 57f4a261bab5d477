r"""Where generation time goes: per-op times of the inference graph.

  python -m gansynth_tools.profile_generate [--config=mel_prog_hires]
      [--batch_size=8] [--traces=3]

Builds the full-size generator (random init, non-zero biases as in a trained
model, so grappler fuses the bias adds as it does there), freezes the
`waves(latents, pitches)` graph that `Synth` runs, and runs it in a TF1
session with FULL_TRACE: the kernel time of every node, averaged over
`traces` runs, summed by layer (block_N_conv0 / conv1 / to_rgb, inversion)
and by op type. Kernel times of ops that ran at the same time (two cores,
inter-op parallelism) overlap, so the sum exceeds the wall time. Prints the
tables, then as its LAST line one JSON object of the figures.
"""

import collections
import json
import os
import re
import time

from absl import app
from absl import flags

_CONFIG = flags.DEFINE_string('config', 'mel_prog_hires', 'Config name.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Notes per call.')
_TRACES = flags.DEFINE_integer('traces', 3, 'Traced runs averaged.')
_TOP = flags.DEFINE_integer('top', 20, 'Rows printed per table.')

_LAYER = re.compile(r'(block_\d+_(?:conv0|conv1|to_rgb))')


def _layer_of(node_name):
  m = _LAYER.search(node_name)
  if m:
    return m.group(1)
  return 'inversion and rest' if '/' in node_name else 'top level'


def _op_of(timeline_label):
  m = re.search(r'= (\w+)\(', timeline_label or '')
  return m.group(1) if m else '?'


def profile(config_name, batch_size, traces, seed=0):
  """{'wall_s', 'by_layer', 'by_op', 'by_layer_op'} of one frozen graph."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.framework import convert_to_constants  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  import keras  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import synth as synth_lib  # pylint: disable=g-import-not-at-top

  keras.utils.set_random_seed(seed)
  cfg = config_lib.load_config(config_name)
  gen = networks.Generator(cfg).build_all()
  rng = np.random.RandomState(seed)
  for v in gen.weights:  # zero biases would be folded away when frozen
    if v.path.endswith('bias'):
      v.assign(rng.normal(0.0, 0.1, v.shape).astype(np.float32))
  synth = synth_lib.Synth(cfg, gen, batch_size=batch_size)
  lo, hi = synth.pitch_range
  z = synth.sample_latents(batch_size, seed)
  p = np.linspace(lo + 12, hi - 12, batch_size).astype(np.int32)
  fn = synth._fns['waves'].get_concrete_function(  # pylint: disable=protected-access
      tf.constant(z), tf.constant(p))
  frozen = convert_to_constants.convert_variables_to_constants_v2(fn)
  graph = tf.Graph()
  with graph.as_default():
    tf.import_graph_def(frozen.graph.as_graph_def(), name='')
  sess = tf.compat.v1.Session(graph=graph)
  feed = {frozen.inputs[0].name: z, frozen.inputs[1].name: p}
  fetch = [t.name for t in frozen.outputs]
  for _ in range(3):
    sess.run(fetch, feed)
  walls = []
  for _ in range(5):
    t0 = time.perf_counter()
    sess.run(fetch, feed)
    walls.append(time.perf_counter() - t0)
  by_layer, by_op, by_layer_op = (collections.Counter() for _ in range(3))
  options = tf.compat.v1.RunOptions(
      trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
  for _ in range(traces):
    meta = tf.compat.v1.RunMetadata()
    sess.run(fetch, feed, options=options, run_metadata=meta)
    for dev in meta.step_stats.dev_stats:
      for ns in dev.node_stats:
        dt = (ns.op_end_rel_micros - ns.op_start_rel_micros) / 1e6 / traces
        layer, op = _layer_of(ns.node_name), _op_of(ns.timeline_label)
        by_layer[layer] += dt
        by_op[op] += dt
        by_layer_op['%s %s' % (layer, op)] += dt
  return {'wall_s': sorted(walls)[len(walls) // 2],
          'by_layer': dict(by_layer), 'by_op': dict(by_op),
          'by_layer_op': dict(by_layer_op)}


def _table(title, counts, top):
  total = sum(counts.values())
  print('--- %s (kernel seconds, sum %.3f)' % (title, total))
  for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
    print('  %-48s %7.4f  %5.1f%%' % (k, v, 100.0 * v / total))


def main(argv):
  del argv
  if _BATCH.value < 1 or _TRACES.value < 1:
    raise app.UsageError('--batch_size and --traces must be >= 1')
  r = profile(_CONFIG.value, _BATCH.value, _TRACES.value)
  print('%s, batch %d: wall %.3f s per call (median of 5, frozen graph)'
        % (_CONFIG.value, _BATCH.value, r['wall_s']))
  _table('by layer', r['by_layer'], _TOP.value)
  _table('by op type', r['by_op'], _TOP.value)
  _table('by layer and op type', r['by_layer_op'], _TOP.value)
  print(json.dumps({'config': _CONFIG.value, 'batch_size': _BATCH.value,
                    **{k: ({kk: round(vv, 6) for kk, vv in v.items()}
                           if isinstance(v, dict) else v)
                       for k, v in r.items()}}))


def run():
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  app.run(main)


if __name__ == '__main__':
  run()
