"""gansynth_tf2: GANSynth (Engel et al., ICLR 2019) in TensorFlow 2 / Keras 3."""

import os as _os

_os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
_os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

__version__ = '0.1.0'


def load(path=None, **kwargs):
  """A `Synth` from a native model dir, a SavedModel or a Magenta ckpt dir.

  Without `path`, the model shipped in saved_models/. `kwargs` go to
  `synth.load` (batch_size, vocoder, ...).
  """
  from gansynth_tf2 import synth  # pylint: disable=g-import-not-at-top
  return synth.load(path, **kwargs)
