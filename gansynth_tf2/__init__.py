"""gansynth_tf2: GANSynth (Engel et al., ICLR 2019) in TensorFlow 2 / Keras 3."""

import os as _os

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

__version__ = '0.1.0'


def load(path=None, **kwargs):
  """A `Synth` from a native model dir, a SavedModel or a Magenta ckpt dir.

  Without `path`, the model shipped in saved_models/. `kwargs` go to
  `synth.load` (batch_size, vocoder, ...).
  """
  from gansynth_tf2 import synth  # pylint: disable=g-import-not-at-top
  return synth.load(path, **kwargs)
