"""A wheel (non-editable install) carries the configs and the shipped model."""

import os
import shutil
import subprocess
import sys
import zipfile

from gansynth_tf2 import synth as synth_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = synth_lib.DEFAULT_MODEL_DIRS[0]
SOURCES = ('setup.py', 'setup.cfg', 'README.md', 'gansynth_tf2', 'configs',
           'tools', 'saved_models')


def _files(root):
  for d, _, names in os.walk(root):
    for n in names:
      if '__pycache__' not in d:
        yield os.path.relpath(os.path.join(d, n), root)


def test_wheel_carries_the_shipped_model(tmp_path):
  src = tmp_path / 'src'
  for name in SOURCES:  # a copy: the build writes build/ and *.egg-info
    path = os.path.join(REPO, name)
    if os.path.isdir(path):
      shutil.copytree(path, src / name,
                      ignore=shutil.ignore_patterns('__pycache__'))
    else:
      os.makedirs(src, exist_ok=True)
      shutil.copy(path, src / name)
  subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                  '--no-build-isolation', str(src), '-w', str(tmp_path)],
                 check=True, timeout=600, capture_output=True)
  wheel, = [p for p in os.listdir(tmp_path) if p.endswith('.whl')]
  with zipfile.ZipFile(tmp_path / wheel) as z:
    names = set(z.namelist())
    z.extractall(tmp_path / 'site')
  want = ['gansynth_tf2/saved_models/gansynth_sf_cpu_fast/' + f
          for f in _files(SHIPPED)]
  want += ['gansynth_tf2/configs/' + f for f in os.listdir(
      os.path.join(REPO, 'configs')) if f.endswith('.json')]
  missing = [f for f in want if f not in names]
  assert not missing, missing
  # Installed like that, the default model is the packaged one.
  site = str(tmp_path / 'site')
  env = dict(os.environ, PYTHONPATH=site, TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('GANSYNTH_MODEL', None)
  out = subprocess.run(
      [sys.executable, '-c', 'from gansynth_tf2 import synth; '
       'print(synth.__file__); print(synth.default_model_path())'],
      cwd=str(tmp_path), env=env, check=True, capture_output=True, text=True,
      timeout=300).stdout.split()
  assert out[0].startswith(site), out
  assert out[1] == os.path.join(site, 'gansynth_tf2', 'saved_models',
                                'gansynth_sf_cpu_fast'), out
