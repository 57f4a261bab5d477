"""Shared fixtures: paths of the parity data and small models."""

import os

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# The package's environment defaults (oneDNN kernels on every x86 CPU, see
# gansynth_tf2/__init__.py) before any test module imports tensorflow, so the
# tests run the kernels a user's CLI run gets.
import gansynth_tf2  # pylint: disable=g-import-not-at-top,unused-import,wrong-import-position

import numpy as np  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
TINY_CKPT = os.path.join(DATA_DIR, 'tiny_mel_ckpt')

# cpu_fast's geometry (16x32 start, 4 resolutions, 128x256 mel/IF; 7 stages
# with tiny's schedule), put over tiny's widths by the run-loop tests that do
# not need the reference 128x1024 geometry (the parity tests check that one):
# a step at a quarter of the pixels, smaller STFTs of the synthetic notes
# (n_fft 1024, not 2048), and each stage's first step traces the train step
# (10-25 s on 2 cores), so 7 stages instead of 13. Also imported by
# test_distributed.py's subprocesses (tests/ is their sys.path[0]).
SMALL_GEOMETRY = {'start_height': 16, 'start_width': 32, 'num_resolutions': 4,
                  'mel_downscale': 2, 'overlap': 0.5}


@pytest.fixture(autouse=True)
def _same_random_state():
  """Each test starts from the same global random state (numpy, Python,
  TF, Keras), whichever tests ran before it on its xdist worker: an unseeded
  draw gives the same values in every run and on every machine."""
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(1234)


@pytest.fixture(scope='session')
def data_dir():
  return DATA_DIR


@pytest.fixture(scope='session')
def tiny_ckpt_dir():
  return TINY_CKPT


@pytest.fixture(scope='session')
def tiny_reference():
  return dict(np.load(os.path.join(DATA_DIR, 'tiny_mel_reference_2notes.npz')))


@pytest.fixture(scope='session')
def spec_reference():
  return dict(np.load(os.path.join(DATA_DIR, 'specgram_reference_1note.npz')))


@pytest.fixture(scope='session')
def tiny_model_dir(tmp_path_factory):
  """The tiny original checkpoint converted to a native model dir."""
  from gansynth_tf2 import magenta  # pylint: disable=g-import-not-at-top
  out = str(tmp_path_factory.mktemp('models') / 'tiny_converted')
  magenta.convert(TINY_CKPT, out)
  return out


@pytest.fixture(scope='session')
def random_tiny_model_dir(tmp_path_factory):
  """A random-init tiny-config model dir (no training; for plumbing tests)."""
  from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import model_io  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(7)  # the same weights whichever test asks first
  cfg = config_lib.load_config('tiny')
  g = networks.Generator(cfg).build_all()
  out = str(tmp_path_factory.mktemp('models') / 'tiny_random')
  model_io.save_model_dir(out, cfg, g)
  return out
