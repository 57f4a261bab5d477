"""gansynth_tf2: GANSynth (Engel et al., ICLR 2019) in TensorFlow 2 / Keras 3."""

import os as _os
import sys as _sys

_TF_IMPORTED_FIRST = 'tensorflow' in _sys.modules
_ONEDNN_UNSET = 'TF_ENABLE_ONEDNN_OPTS' not in _os.environ
_os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
_os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# TensorFlow turns its oneDNN kernels on by default only on CPUs with
# AVX512_VNNI / AVX512_BF16 / AMX; elsewhere (AVX2 CPUs) convolutions fall back
# to Eigen, which runs this network at ~60% of the matmul speed. Measured on a
# 2-core AVX2 EPYC (interleaved rounds): full-size generation at batch 8
# 1.20-1.43 s with oneDNN, 1.82-2.23 s without; cpu_fast training 10.3-11.1
# images/s against 6.6. TF reads this once, when it is imported: it takes effect
# when gansynth_tf2 is imported before tensorflow (every CLI does), and an
# explicit TF_ENABLE_ONEDNN_OPTS=0 wins.
_os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')


def _cpu_has_onednn_by_default():
  """Whether TF turns oneDNN on by itself here (Linux: a CPU with AVX512_VNNI,
  AVX512_BF16, AVX_VNNI or AMX). None where that can't be read."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('flags'):
          flags = set(line.split(':', 1)[1].split())
          return bool(flags & {'avx512_vnni', 'avx512_bf16', 'avx_vnni',
                               'amx_tile', 'amx_int8', 'amx_bf16'})
  except OSError:
    pass
  return None


def _warn_if_onednn_left_off():
  """Warns when tensorflow, imported first, chose Eigen convolutions.

  TensorFlow's core decides on oneDNN when it is imported (the Python-side
  `IsMklEnabled` reads the variable later, separately, so it can't tell).
  """
  if not (_TF_IMPORTED_FIRST and _ONEDNN_UNSET and
          _sys.platform.startswith('linux')):
    return
  if _cpu_has_onednn_by_default() is False:
    import warnings  # pylint: disable=g-import-not-at-top
    warnings.warn(
        'gansynth_tf2 was imported after tensorflow, which then left its '
        'oneDNN kernels off on this CPU (no AVX512_VNNI/BF16 or AMX): '
        'convolutions run ~1.5x slower. Import gansynth_tf2 before '
        'tensorflow, or set TF_ENABLE_ONEDNN_OPTS=1 (or 0 to silence this).',
        stacklevel=3)


_warn_if_onednn_left_off()

__version__ = '0.1.0'


def load(path=None, **kwargs):
  """A `Synth` from a native model dir, a SavedModel or a Magenta ckpt dir.

  Without `path`, the model shipped in saved_models/. `kwargs` go to
  `synth.load` (batch_size, vocoder, ...).
  """
  from gansynth_tf2 import synth  # pylint: disable=g-import-not-at-top
  return synth.load(path, **kwargs)
