"""The package's TensorFlow environment defaults, in a fresh interpreter."""

import os
import platform
import subprocess
import sys

import pytest

_PROBE = ('import gansynth_tf2, tensorflow; '
          'from tensorflow.python.util import _pywrap_util_port as p; '
          'print(p.IsMklEnabled())')


def _onednn_in_subprocess(value):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('TF_ENABLE_ONEDNN_OPTS', None)
  if value is not None:
    env['TF_ENABLE_ONEDNN_OPTS'] = value
  out = subprocess.run([sys.executable, '-c', _PROBE], env=env, check=True,
                       capture_output=True, text=True, timeout=300)
  return out.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(
    not sys.platform.startswith('linux') or
    platform.machine().lower() not in ('x86_64', 'amd64'),
    reason='TF pip wheels have oneDNN kernels on x86-64 Linux only')
def test_importing_the_package_first_turns_onednn_on_unless_told_not_to():
  # TF leaves oneDNN off on AVX2-only CPUs (Eigen convolutions, ~1.4x slower
  # generation there); the package turns it on, an explicit 0 still wins.
  assert _onednn_in_subprocess(None) == 'True'
  assert _onednn_in_subprocess('0') == 'False'
