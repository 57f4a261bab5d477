"""gansynth-eval and the classifier trainer end to end, the report, the reader.

A tiny random model (tiny config), synthetic harmonic notes written as
NSynth-format TFRecords, a classifier trained by the tool, a JSON report.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf2.eval import pitch_classifier as pc
from gansynth_tf2.eval import real_data
from gansynth_tf2.eval import report
from gansynth_tf2.eval import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PITCHES = [40, 52, 64, 76]


def _run(module, *args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, '-m', module] + list(args),
                        capture_output=True, text=True, timeout=timeout,
                        cwd=REPO, env=env, check=False)


def _error_line(proc):
  lines = [l for l in proc.stderr.splitlines() if 'error:' in l]
  assert lines, proc.stderr[-2000:]
  return lines[-1]


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp('eval_data')
  train_p = np.tile(PITCHES, 6)
  real_data.write_notes(str(d / 'syn-train.tfrecord'),
                        synthetic.harmonic_notes(train_p, seed=5), train_p,
                        instruments=np.repeat(np.arange(6), len(PITCHES)))
  valid_p = np.tile(PITCHES, 5)
  real_data.write_notes(str(d / 'syn-valid.tfrecord'),
                        synthetic.harmonic_notes(valid_p, seed=6), valid_p,
                        instruments=np.repeat(np.arange(5), len(PITCHES)))
  return d


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
  from gansynth_tf2 import model_io  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  from gansynth_tf2.config import load_config  # pylint: disable=g-import-not-at-top
  path = str(tmp_path_factory.mktemp('model') / 'tiny')
  cfg = load_config('tiny')
  model_io.save_model_dir(path, cfg, networks.Generator(cfg).build_all())
  return path


@pytest.fixture(scope='module')
def classifier_dir(data_dir):
  out = str(data_dir / 'classifier')
  proc = _run('gansynth_tools.train_pitch_classifier',
              '--train_data=%s' % (data_dir / '*train*'),
              '--output_dir=%s' % out, '--epochs=2')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Held-out accuracy' in proc.stdout
  return out


def test_train_tool_writes_a_classifier_with_heldout_accuracy(classifier_dir):
  with open(os.path.join(classifier_dir, pc.PARAMS_JSON)) as f:
    desc = json.load(f)
  info = desc['info']
  assert info['num_train_notes'] == 20 and info['num_heldout_notes'] == 4
  assert 0.0 <= info['heldout_accuracy'] <= 1.0
  assert info['heldout'].startswith('instruments')
  assert pc.load(classifier_dir).pitch_range == (24, 84)


def test_eval_cli_end_to_end_writes_every_key(data_dir, tiny_model,
                                              classifier_dir):
  out = str(data_dir / 'report.json')
  proc = _run('gansynth_tools.evaluate', '--model=%s' % tiny_model,
              '--real_data=%s' % (data_dir / '*valid*'),
              '--classifier=%s' % classifier_dir, '--num_samples=8',
              '--ndb_k=3', '--output_json=%s' % out)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out) as f:
    rep = json.load(f)
  assert rep['format'] == report.FORMAT
  assert rep['model'] == tiny_model
  assert rep['settings']['num_samples'] == 8
  assert rep['settings']['pitches'] == '24-84'
  for section in ('generated', 'real'):
    assert set(report.METRIC_KEYS) <= set(rep[section]), section
    for k in report.METRIC_KEYS:
      if k != 'f0_median_abs_cents':  # None when no note is voiced
        assert rep[section][k] is not None, (section, k)
    assert rep[section]['num_notes'] == 8
    assert rep[section]['ndb_k'] == 3
    # Per-octave breakdowns: the notes of each octave add up to all notes and
    # their note-weighted shares to the overall figure.
    for key, overall in (('pitch_accuracy_by_octave', 'pitch_accuracy'),
                         ('f0_within_50_cents_by_octave',
                          'f0_within_50_cents')):
      octaves = rep[section][key]
      assert sum(v['num_notes'] for v in octaves.values()) == 8, key
      assert sum(v['share'] * v['num_notes'] for v in octaves.values()) / 8 \
          == pytest.approx(rep[section][overall]), key
  real, gen = rep['real'], rep['generated']
  # Real synthetic tones: the f0 check passes them all; an untrained
  # generator's noise does not come close.
  assert real['f0_within_50_cents'] == 1.0
  assert gen['f0_within_50_cents'] <= 0.5
  assert gen['fid'] > real['fid']
  assert rep['classifier_info']['heldout_accuracy'] is not None
  assert not [f for f in os.listdir(data_dir) if f.startswith('.report')]


def test_eval_cli_bad_inputs_fail_with_one_line_and_no_output(
    data_dir, classifier_dir):
  out = str(data_dir / 'bad.json')
  proc = _run('gansynth_tools.evaluate', '--classifier=%s' % classifier_dir,
              '--output_json=%s' % out)
  assert proc.returncode != 0
  assert '--real_data is required' in _error_line(proc)
  proc = _run('gansynth_tools.evaluate', '--real_only',
              '--real_data=%s' % (data_dir / 'nothing*'),
              '--classifier=%s' % classifier_dir, '--output_json=%s' % out)
  assert proc.returncode != 0
  assert 'no TFRecord files match' in _error_line(proc)
  assert not os.path.exists(out)
  # A folder as the report path: refused before anything is evaluated.
  proc = _run('gansynth_tools.evaluate', '--real_only',
              '--real_data=%s' % (data_dir / '*'),
              '--classifier=%s' % classifier_dir,
              '--output_json=%s' % data_dir)
  assert proc.returncode != 0
  assert 'is a folder; expected a file path' in _error_line(proc)


@pytest.fixture(scope='module')
def quick_classifier():
  p = np.tile(PITCHES, 3)
  params = pc.make_params()
  x = pc.FrontEnd(params)(synthetic.harmonic_notes(p, seed=9))
  return pc.train(x, p, params=params, epochs=1, verbose=0,
                  log=lambda s: None)


def test_real_only_report_and_pitch_filter(data_dir, quick_classifier):
  rep = report.evaluate(str(data_dir / '*valid*'), quick_classifier,
                        num_samples=4, pitches=[40, 64], ndb_k=2,
                        f0_tracker='none', log=lambda s: None)
  assert rep['generated'] is None
  assert rep['real']['num_notes'] == 4
  assert rep['settings']['pitches'] == '40,64'
  assert rep['real']['f0_within_50_cents'] is None
  assert rep['real']['ndb_k'] == 2


def test_report_bad_inputs(data_dir, quick_classifier, tiny_model):
  pattern = str(data_dir / '*valid*')
  quiet = lambda s: None
  with pytest.raises(ValueError, match='outside the classifier'):
    report.evaluate(pattern, quick_classifier, pitches=[20, 40], log=quiet)
  with pytest.raises(ValueError, match='lower --ndb_k'):
    report.evaluate(pattern, quick_classifier, num_samples=100, ndb_k=50,
                    log=quiet)
  with pytest.raises(ValueError, match='no notes with the requested'):
    report.evaluate(pattern, quick_classifier, pitches=[41], log=quiet)
  with pytest.raises(ValueError, match='num_samples'):
    report.evaluate(pattern, quick_classifier, num_samples=1, log=quiet)
  import gansynth_tf2  # pylint: disable=g-import-not-at-top
  synth = gansynth_tf2.load(tiny_model)
  synth.pitch_range = (40, 60)  # a model with a narrower range
  with pytest.raises(ValueError, match='outside the model'):
    report.evaluate(pattern, quick_classifier, synth=synth, pitches=[40, 64],
                    log=quiet)


def test_report_names_a_model_that_generates_nan(data_dir, quick_classifier):
  class NanSynth:
    pitch_range, sample_rate = (24, 84), 16000

    def generate(self, pitches, seed=None):
      del seed
      waves = np.zeros((len(pitches), 64000), np.float32)
      waves[0, 100] = np.nan
      return waves

  with pytest.raises(ValueError, match=r'model m1 generated NaN or Inf audio '
                     r'for 1 of 4 notes'):
    report.evaluate(str(data_dir / '*valid*'), quick_classifier,
                    synth=NanSynth(), num_samples=4, pitches=[40, 64],
                    ndb_k=0, f0_tracker='none', log=lambda s: None,
                    model_path='m1')


def test_report_checks_the_seed_first(data_dir, quick_classifier):
  for bad in (2**32 - 1, -1, 1.5):
    with pytest.raises(ValueError, match=r'--seed must be an integer'):
      report.evaluate(str(data_dir / '*valid*'), quick_classifier,
                      num_samples=4, pitches=[40, 64], ndb_k=0, seed=bad,
                      f0_tracker='none', log=lambda s: None)


# --- the TFRecord reader ----------------------------------------------------------
def test_read_notes_samples_across_files_and_filters(tmp_path):
  for i in range(3):  # files ordered by pitch: a prefix would be biased
    p = np.full(10, 30 + 10 * i)
    real_data.write_notes(str(tmp_path / ('part%d.tfrecord' % i)),
                          np.random.RandomState(i).randn(10, 100), p)
  notes = real_data.read_notes(str(tmp_path), max_notes=12, seed=0,
                               audio_length=120)
  assert notes['audio'].shape == (12, 120)
  assert np.all(notes['audio'][:, 100:] == 0)  # zero-padded
  assert set(notes['pitch'].tolist()) == {30, 40, 50}
  notes = real_data.read_notes(str(tmp_path / 'part*'), pitch_range=(35, 45),
                               audio_length=50)
  assert notes['pitch'].tolist() == [40] * 10
  assert notes['audio'].shape == (10, 50)  # trimmed
  notes = real_data.read_notes(
      '%s,%s' % (tmp_path / 'part0.tfrecord', tmp_path / 'part2.tfrecord'),
      pitches=[50], audio_length=100)
  assert len(notes['pitch']) == 10


def test_reader_bad_inputs(tmp_path):
  with pytest.raises(ValueError, match='does not exist'):
    real_data.read_notes(str(tmp_path / 'missing.tfrecord'))
  with pytest.raises(ValueError, match='no TFRecord files match'):
    real_data.read_notes(str(tmp_path / 'none*'))
  path = str(tmp_path / 'sr.tfrecord')
  real_data.write_notes(path, np.zeros((2, 100)), [60, 61], sample_rate=22050)
  with pytest.raises(ValueError, match='sample_rate'):
    real_data.read_notes(path, audio_length=100)
  path = str(tmp_path / 'nopitch.tfrecord')
  with tf.io.TFRecordWriter(path) as w:
    w.write(tf.train.Example().SerializeToString())
  with pytest.raises(ValueError, match='not NSynth-format'):
    real_data.read_notes(path)
  path = str(tmp_path / 'corrupt.tfrecord')
  real_data.write_notes(path, np.zeros((3, 1000)), [60, 61, 62])
  with open(path, 'r+b') as f:
    f.seek(200)
    f.write(b'\xff' * 16)
  with pytest.raises(ValueError, match='corrupt'):
    real_data.read_notes(path, audio_length=1000)
  # A glob that matches a file that cannot be opened (a dangling link): a
  # ValueError naming it, not TensorFlow's NotFoundError.
  os.symlink(str(tmp_path / 'gone.tfrecord'), str(tmp_path / 'x-valid.tfrecord'))
  with pytest.raises(ValueError, match='x-valid.tfrecord: cannot read'):
    real_data.read_notes(str(tmp_path / '*valid*'))
  with pytest.raises(ValueError, match='x-valid.tfrecord: cannot read'):
    next(real_data.iter_notes(str(tmp_path / '*valid*')))


def test_train_tool_unreadable_data_is_a_one_line_error(tmp_path):
  os.symlink(str(tmp_path / 'gone.tfrecord'), str(tmp_path / 'x-train.tfrecord'))
  out = str(tmp_path / 'clf')
  proc = _run('gansynth_tools.train_pitch_classifier',
              '--train_data=%s' % (tmp_path / '*train*'),
              '--output_dir=%s' % out)
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  assert 'x-train.tfrecord: cannot read' in _error_line(proc)
  assert not os.path.exists(out)


def test_train_tool_bad_max_notes_is_refused_before_reading(data_dir):
  out = str(data_dir / 'clf_max_notes')
  for bad in ('-5', '0'):
    proc = _run('gansynth_tools.train_pitch_classifier',
                '--train_data=%s' % (data_dir / '*train*'),
                '--output_dir=%s' % out, '--max_notes=%s' % bad)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert '--max_notes must be >= 1' in _error_line(proc)
    assert 'Reading' not in proc.stdout
  assert not os.path.exists(out)


def test_train_tool_checks_its_output_dir_first_and_keeps_its_input(tmp_path):
  p = np.tile(PITCHES, 3)
  # An earlier classifier dir that also holds the training data: replacing it
  # would delete the data.
  clf_dir = tmp_path / 'clf'
  clf_dir.mkdir()
  (clf_dir / pc.PARAMS_JSON).write_text('{}')
  data = clf_dir / 'syn-train.tfrecord'
  real_data.write_notes(str(data), synthetic.harmonic_notes(p, seed=1), p,
                        instruments=np.repeat(np.arange(3), len(PITCHES)))
  proc = _run('gansynth_tools.train_pitch_classifier',
              '--train_data=%s' % data, '--output_dir=%s' % clf_dir,
              '--epochs=1')
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert 'holds the input' in _error_line(proc)
  assert 'Reading' not in proc.stdout  # refused before any work
  assert data.exists()
  # A non-empty folder of something else: refused before training.
  other = tmp_path / 'other'
  other.mkdir()
  (other / 'notes.txt').write_text('mine')
  proc = _run('gansynth_tools.train_pitch_classifier',
              '--train_data=%s' % data, '--output_dir=%s' % other,
              '--epochs=1')
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert 'non-empty folder' in _error_line(proc)
  assert 'Reading' not in proc.stdout
  assert os.listdir(other) == ['notes.txt']


def test_eval_cli_refuses_a_report_path_that_replaces_an_input(tmp_path):
  p = np.array(PITCHES)
  data = tmp_path / 'syn-test.tfrecord'
  real_data.write_notes(str(data), synthetic.harmonic_notes(p, seed=1), p)
  before = data.read_bytes()
  clf_dir = tmp_path / 'clf'
  clf_dir.mkdir()
  (clf_dir / pc.PARAMS_JSON).write_text('{"format": "mine"}')
  common = ['--real_only', '--real_data=%s' % (tmp_path / '*test*'),
            '--classifier=%s' % clf_dir]
  # The report would overwrite the real data, or the classifier description.
  for out in (data, clf_dir / pc.PARAMS_JSON):
    proc = _run('gansynth_tools.evaluate', '--output_json=%s' % out, *common)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'would replace the input' in _error_line(proc)
  assert data.read_bytes() == before
  assert (clf_dir / pc.PARAMS_JSON).read_text() == '{"format": "mine"}'
  # A report path under a file: refused before anything is evaluated.
  proc = _run('gansynth_tools.evaluate', '--output_json=%s' % (data / 'r.json'),
              *common)
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert 'is not a folder' in _error_line(proc)


def test_eval_cli_default_pitches_are_the_classifiers_range(tmp_path):
  # A classifier of 36..72 (untrained: only the plumbing is checked) and real
  # notes 40..76: without --pitches the classifier's range is evaluated (the
  # flag's old fixed default 24-84 was refused as outside the classifier).
  clf_dir = str(tmp_path / 'clf')
  pc.PitchClassifier(pc.make_params(min_pitch=36, max_pitch=72)).save(clf_dir)
  p = np.tile(PITCHES, 2)
  real_data.write_notes(str(tmp_path / 'syn-test.tfrecord'),
                        synthetic.harmonic_notes(p, seed=1), p)
  out = str(tmp_path / 'r.json')
  proc = _run('gansynth_tools.evaluate', '--real_only',
              '--real_data=%s' % (tmp_path / '*test*'),
              '--classifier=%s' % clf_dir, '--num_samples=3', '--ndb_k=0',
              '--f0_tracker=none', '--output_json=%s' % out)
  assert proc.returncode == 0, proc.stderr[-2000:]
  with open(out) as f:
    rep = json.load(f)
  assert rep['settings']['pitches'] == '36-72'
  assert rep['real']['num_notes'] == 3
