r"""Time the ORIGINAL Magenta GANSynth generation on THIS machine (batch 8).

`tools/benchmark_generate.py` compares our generation with the original's
figures in `timing_original.json`, measured once on one CPU. Machines of a
pool differ (AVX-512 vs AVX2 cores run TF 2-3x apart), so a fair speed-up
needs the original timed on the same machine at the same time. This script
does that with the original's own code, which it does NOT contain: point it
at an unpacked `magenta==2.1.4` wheel and run it in a separate Python with the
original's stack (TF 2.15, as the reference data was produced), e.g.

  python3.11 -m venv /tmp/orig && /tmp/orig/bin/pip install \
      tensorflow-cpu==2.15.1 tf-slim==1.1.0 tensorflow-gan==2.1.0 \
      tensorflow-probability==0.23.0 numpy==1.26.4 absl-py scipy
  pip download --no-deps magenta==2.1.4 -d /tmp/w && \
      python -m zipfile -e /tmp/w/magenta-2.1.4-py3-none-any.whl /tmp/magenta_src
  /tmp/orig/bin/python tools/benchmark_original.py --magenta_src=/tmp/magenta_src \
      --output_json=/tmp/timing_original_here.json
  python tools/benchmark_generate.py --original_json=/tmp/timing_original_here.json

What it runs is the procedure of the reference README: the full-size
`mel_prog_hires` graph (`lib_model.Model(12, 8, flags)`, final stage) with
random weights saved at global_step 11,000,000, then `Model.load_from_path`
and `generate_samples_from_z` on 8 fixed latents. The same run-time shims as
the reference (none touches model or maths code): `magenta/__init__` and
`tensorflow_datasets` are replaced by empty modules, `inspect.getargspec` is
re-added for tensorflow-gan 2.1.0, `DataHelper.provide_data` returns random
data (NSynth is never read), and `data_to_waves` records its input so the
network forward and the inversion can be timed apart. The JSON has the keys
of `timing_original.json`.
"""

import collections
import inspect
import json
import os
import sys
import tempfile
import time
import types

from absl import app
from absl import flags

_SRC = flags.DEFINE_string('magenta_src', None, 'Folder holding the '
                           '`magenta/` package (an unpacked magenta wheel).')
_REPEATS = flags.DEFINE_integer('repeats', 10, 'Timed calls after the first.')
_OUT = flags.DEFINE_string('output_json', None, 'Write the figures here.')
_EXPERIMENT = flags.DEFINE_string(
    'experiment_json', None, 'The mel_prog_hires experiment dict; default: '
    'tests/data or ../shared/reference copy.')
_BATCH = 8
_PITCHES = [36, 42, 48, 54, 60, 66, 72, 78]


def _experiment_path():
  if _EXPERIMENT.value:
    return _EXPERIMENT.value
  here = os.path.dirname(os.path.abspath(__file__))
  for p in (os.path.join(here, '..', '..', 'shared', 'reference',
                         'magenta_gansynth', 'experiment_mel_prog_hires.json'),
            os.path.join(here, '..', 'tests', 'data',
                         'variables_mel_prog_hires.json')):
    if os.path.isfile(p):
      return p
  raise FileNotFoundError('no mel_prog_hires experiment json: pass '
                          '--experiment_json')


def _load_experiment():
  with open(_experiment_path()) as f:
    d = json.load(f)
  return d.get('experiment_json', d)  # variables_*.json nests it


def _install_shims(src):
  """Run-time shims of the reference README (no model or maths code)."""
  pkg = os.path.join(src, 'magenta')
  if not os.path.isdir(os.path.join(pkg, 'models', 'gansynth')):
    raise FileNotFoundError('--magenta_src=%s: expected magenta/models/'
                            'gansynth inside (an unpacked magenta wheel)' % src)
  magenta = types.ModuleType('magenta')
  magenta.__path__ = [pkg]
  sys.modules['magenta'] = magenta
  sys.modules['tensorflow_datasets'] = types.ModuleType('tensorflow_datasets')
  if not hasattr(inspect, 'getargspec'):
    arg_spec = collections.namedtuple('ArgSpec',
                                      'args varargs keywords defaults')

    def getargspec(fn):
      s = inspect.getfullargspec(fn)
      return arg_spec(s.args, s.varargs, s.varkw, s.defaults)
    inspect.getargspec = getargspec


def _cpu_s():
  t = os.times()
  return t.user + t.system


def _time_calls(fn, repeats):
  wall, cpu = [], []
  for _ in range(repeats + 1):
    t, c = time.perf_counter(), _cpu_s()
    fn()
    wall.append(time.perf_counter() - t)
    cpu.append(_cpu_s() - c)
  subsequent = wall[1:]
  return {'first_call_s': wall[0], 'subsequent_s': subsequent,
          'median_subsequent_s': sorted(subsequent)[len(subsequent) // 2],
          'min_subsequent_s': min(subsequent),
          'process_cpu_s_first': cpu[0], 'process_cpu_s_subsequent': cpu[1:]}


def main(argv):
  del argv
  if not _SRC.value:
    raise app.UsageError('--magenta_src is required')
  _install_shims(_SRC.value)
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tf.disable_v2_behavior()
  # pylint: disable=g-import-not-at-top
  from magenta.models.gansynth.lib import data_helpers
  from magenta.models.gansynth.lib import flags as lib_flags
  from magenta.models.gansynth.lib import model as lib_model
  # pylint: enable=g-import-not-at-top

  def provide_data(self, batch_size):
    x = tf.random.uniform([batch_size, 128, 1024, 2], -0.8, 0.8)
    return x, self.provide_one_hot_labels(batch_size)
  data_helpers.DataHelper.provide_data = provide_data
  recorded = []
  to_waves = data_helpers.DataMelHelper.data_to_waves

  def data_to_waves(self, data):
    recorded.append(data)
    return to_waves(self, data)
  data_helpers.DataMelHelper.data_to_waves = data_to_waves

  exp = _load_experiment()
  root = tempfile.mkdtemp(prefix='gansynth_original_')
  exp['train_root_dir'] = root
  with open(os.path.join(root, 'experiment.json'), 'w') as f:
    json.dump(exp, f)
  with tf.Graph().as_default():
    fl = lib_flags.Flags()
    fl.load(dict(exp))
    lib_model.set_flags(fl)
    m = lib_model.Model(12, _BATCH, fl)
    m.sess.run(tf.global_variables_initializer())
    m.sess.run(tf.train.get_or_create_global_step().assign(11000000))
    stage = os.path.join(root, 'stage_00012')
    os.makedirs(stage)
    m.saver.save(m.sess, os.path.join(stage, 'model.ckpt'),
                 global_step=11000000)
    m.sess.close()

  tf.reset_default_graph()
  recorded.clear()
  t = time.perf_counter()
  m = lib_model.Model.load_from_path(root)
  load_s = time.perf_counter() - t
  fake_data = recorded[-1]  # the generate placeholder path is built last
  z = np.random.RandomState(0).normal(size=[_BATCH, 256]).astype(np.float32)
  feed = {m.labels_ph: m._pitches_to_labels(_PITCHES), m.noises_ph: z}  # pylint: disable=protected-access
  specgrams = m.sess.run(fake_data, feed)
  loadavg_before = list(os.getloadavg())
  results = {
      'description': 'ORIGINAL magenta GANSynth (magenta 2.1.4 source, TF %s '
                     'graph mode), full-size mel_prog_hires, random init, '
                     'batch 8, measured by tools/benchmark_original.py on '
                     'this machine.' % tf.__version__,
      'cpu_flags_avx512': 'avx512f' in open('/proc/cpuinfo').read(),
      'loadavg_before': loadavg_before,
      'load_from_path_s (graph build incl. training graph + restore)': load_s,
      'end_to_end_generate_samples_from_z': _time_calls(
          lambda: m.generate_samples_from_z(z, _PITCHES), _REPEATS.value),
      'network_forward_only (z,pitch -> denormalized mel/IF specgram)':
          _time_calls(lambda: m.sess.run(fake_data, feed), _REPEATS.value),
      'spectral_inversion_only (mel/IF specgram -> waveform, '
      'melspecgrams_to_waves)': _time_calls(
          lambda: m.sess.run(m.fake_waves_ph, {fake_data: specgrams}),
          _REPEATS.value),
      'loadavg_after': list(os.getloadavg()),
  }
  for k, v in results.items():
    if isinstance(v, dict):
      print('%-70s median %.3f s (first %.3f)' % (
          k, v['median_subsequent_s'], v['first_call_s']))
  if _OUT.value:
    tmp = _OUT.value + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(results, f, indent=1)
    os.replace(tmp, _OUT.value)
  print(json.dumps({k: (v['median_subsequent_s'] if isinstance(v, dict) else v)
                    for k, v in results.items() if k != 'description'}))


if __name__ == '__main__':
  app.run(main)
