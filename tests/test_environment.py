"""The package's TensorFlow environment defaults, in fresh interpreters.

Which convolution kernels really ran is read from oneDNN's own log
(ONEDNN_VERBOSE=1): TF's Python-side `IsMklEnabled` reads the variable lazily
and separately from the core, so it can't tell.
"""

import os
import platform
import subprocess
import sys

import pytest

_PROBE = '''
import sys
if sys.argv[1] == 'package_first':
  import gansynth_tf2
import tensorflow as tf
import gansynth_tf2
conv = tf.function(lambda x: tf.nn.conv2d(x, tf.ones([3, 3, 4, 4]), 1, 'SAME'))
print('conv sum', float(tf.reduce_sum(conv(tf.ones([1, 8, 8, 4])))))
'''

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith('linux') or
    platform.machine().lower() not in ('x86_64', 'amd64'),
    reason='TF pip wheels have oneDNN kernels on x86-64 Linux only')


def _run_probe(order, onednn_opts):
  """-> (a oneDNN convolution ran, the package warned about oneDNN)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', ONEDNN_VERBOSE='1')
  env.pop('TF_ENABLE_ONEDNN_OPTS', None)
  if onednn_opts is not None:
    env['TF_ENABLE_ONEDNN_OPTS'] = onednn_opts
  out = subprocess.run([sys.executable, '-c', _PROBE, order], env=env,
                       check=True, capture_output=True, text=True,
                       timeout=300)
  # 3x3 ones over 4 channels of ones, SAME on 8x8: each output channel sums
  # 4 * (6*6*9 + 4*6*6 + 4*4) = 4 * 484.
  assert 'conv sum %.1f' % (4 * 4 * 484) in out.stdout
  ran = any(line.startswith('onednn_verbose') and ',exec,' in line and
            ',convolution,' in line for line in out.stdout.splitlines())
  warned = 'gansynth_tf2 was imported after tensorflow' in out.stderr
  return ran, warned


def test_importing_the_package_first_runs_onednn_convs_unless_told_not_to():
  # TF leaves oneDNN off on AVX2-only CPUs (Eigen convolutions, ~1.4x slower
  # generation there); the package turns it on, an explicit 0 still wins.
  assert _run_probe('package_first', None) == (True, False)
  assert _run_probe('package_first', '0') == (False, False)


def test_importing_tensorflow_first_warns_exactly_when_onednn_stayed_off():
  # Too late to turn it on: TF decided at its import (on by itself only on
  # AVX512_VNNI / BF16 / AMX CPUs). The warning must match what really ran.
  ran, warned = _run_probe('tensorflow_first', None)
  assert warned == (not ran)
  assert _run_probe('tensorflow_first', '1') == (True, False)
