"""Crash-safe outputs: what an output folder may replace, and cleanup on kill."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from gansynth_tf2 import io_util


def _tree(path):
  return sorted(os.path.relpath(os.path.join(d, f), path)
                for d, _, files in os.walk(path) for f in files)


def test_output_folder_rules(tmp_path):
  model = tmp_path / 'model'
  (model / 'weights').mkdir(parents=True)
  (model / 'model.json').write_text('{}')
  (model / 'weights' / 'w').write_text('w')
  foreign = tmp_path / 'notes'
  foreign.mkdir()
  (foreign / 'mine.txt').write_text('keep me')
  check = io_util.check_output_dir
  check(tmp_path / 'new', 'model.json')              # absent: fine
  (tmp_path / 'empty').mkdir()
  check(tmp_path / 'empty', 'model.json')            # empty: fine
  check(model, 'model.json')                         # an earlier output
  check(foreign, None)                               # the caller decided
  with pytest.raises(ValueError, match='non-empty folder without model.json'):
    check(foreign, 'model.json')
  with pytest.raises(ValueError, match='is the input'):
    check(model, 'model.json', protect=[model])
  with pytest.raises(ValueError, match='holds the input'):
    check(tmp_path, None, protect=[model / 'weights' / 'w'])
  (tmp_path / 'file').write_text('x')
  with pytest.raises(ValueError, match='not a folder'):
    check(tmp_path / 'file', None)
  before = _tree(tmp_path)
  for path, marker, protect in ((foreign, 'model.json', ()),
                                (tmp_path, 'model.json', [model])):
    with pytest.raises(ValueError):
      with io_util.atomic_dir(path, marker, protect) as tmp:
        open(os.path.join(tmp, 'model.json'), 'w').close()
  assert _tree(tmp_path) == before


def test_sigterm_removes_the_temp_folder_of_an_atomic_write(tmp_path):
  # Every CLI but training (which has its own handler) installs this.
  script = textwrap.dedent('''
      import os, sys, time
      from gansynth_tf2 import io_util
      from gansynth_tools import cli_errors
      cli_errors.exit_on_sigterm()
      with io_util.atomic_dir(sys.argv[1], 'done.txt') as tmp:
        open(os.path.join(tmp, 'half.bin'), 'wb').write(b'x' * 1000)
        print('writing', flush=True)
        time.sleep(60)
      ''')
  out = tmp_path / 'out'
  proc = subprocess.Popen([sys.executable, '-c', script, str(out)],
                          stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == 'writing'
  assert [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=60) == 128 + signal.SIGTERM
  assert os.listdir(tmp_path) == []


def test_a_model_dir_never_replaces_a_training_run_or_its_input(tmp_path):
  from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import model_io  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  cfg = config_lib.load_config('tiny')
  g = networks.Generator(cfg).build_all()
  run = tmp_path / 'run'
  (run / 'checkpoints').mkdir(parents=True)
  (run / 'model.json').write_text('{}')  # a training run has one too
  with pytest.raises(ValueError, match='training run'):
    model_io.save_model_dir(str(run), cfg, g)
  with pytest.raises(ValueError, match='holds the input'):
    model_io.save_model_dir(str(tmp_path), cfg, g, protect=[str(run)])
  assert sorted(os.listdir(run)) == ['checkpoints', 'model.json']
  out = model_io.save_model_dir(str(tmp_path / 'm'), cfg, g)
  model_io.save_model_dir(out, cfg, g)  # replacing an earlier model: fine
  assert model_io.is_model_dir(out)
