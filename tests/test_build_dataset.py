"""gansynth-build-dataset: a tiny SoundFont written here -> NSynth TFRecords."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from gansynth_tf2 import data
from gansynth_tf2.config import load_config
from gansynth_tf2.data import builder
from gansynth_tf2.data import nsynth_format
from gansynth_tf2.data import synthetic

NSYNTH_KEYS = {'note', 'note_str', 'instrument', 'instrument_str', 'pitch',
               'velocity', 'sample_rate', 'audio', 'qualities',
               'qualities_str', 'instrument_family', 'instrument_family_str',
               'instrument_source', 'instrument_source_str'}
PITCHES = [24, 36, 48, 60, 72, 84]


@pytest.fixture(scope='module')
def font(tmp_path_factory):
  path = tmp_path_factory.mktemp('font') / 'tiny.sf2'
  synthetic.write_sf2(str(path), [(0, 'Saw', 'harmonic'), (5, 'Mute', 'silent'),
                                  (24, 'Square', 'odd'),
                                  (118, 'Noise', 'noise')])
  return str(path)


@pytest.fixture(scope='module')
def built(font, tmp_path_factory):
  out = str(tmp_path_factory.mktemp('ds') / 'set')
  summary = builder.build_from_soundfont(
      font, out, programs=[0, 5, 7, 24, 118], pitches=PITCHES,
      velocities=[50, 127], progress=False)
  return out, summary


def _records(pattern):
  out = []
  for path in sorted(glob.glob(pattern)):
    for raw in tf.data.TFRecordDataset(path):
      out.append(tf.train.Example.FromString(raw.numpy()))
  return out


def _f0(wave, rate=16000):
  """Fundamental (strongest peak) of the held part, Hz; independent of YIN."""
  seg = wave[3200:3200 + 32768] * np.hanning(32768)
  spec = np.abs(np.fft.rfft(seg))
  k = int(np.argmax(spec))
  a, b, c = np.log(spec[k - 1:k + 2] + 1e-12)
  return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / 32768


def test_records_keys_audio_and_pitch(built):
  out, summary = built
  names = sorted(os.listdir(out))
  for split in ('train', 'valid', 'test'):
    assert any(split in n and 'tfrecord' in n for n in names), names
  assert 'summary.json' in names
  assert not [n for n in names if n.startswith('.')]  # no temp files left
  records = _records(os.path.join(out, '*.tfrecord*'))
  assert len(records) == summary['kept'] == 2 * len(PITCHES) * 2
  for ex in records:
    f = ex.features.feature
    assert set(f) == NSYNTH_KEYS
    audio = np.array(f['audio'].float_list.value, np.float32)
    assert audio.shape == (64000,)
    assert f['sample_rate'].int64_list.value[0] == 16000
    assert np.abs(audio).max() <= 1.0 and np.abs(audio).max() > 0.01
    pitch = f['pitch'].int64_list.value[0]
    cents = 1200 * np.log2(_f0(audio) / synthetic.midi_to_hz(pitch))
    assert abs(cents) < 30, (pitch, cents)
    # 3 s hold then release: sound at 2.9 s, silence at the very end.
    assert np.abs(audio[46000:47000]).max() > 0.01
    assert np.abs(audio[-1000:]).max() < 1e-3
    prog = f['instrument'].int64_list.value[0]
    assert prog in (0, 24)
    assert f['instrument_str'].bytes_list.value[0].decode() == (
        'keyboard_acoustic_000' if prog == 0 else 'guitar_acoustic_024')
    assert f['note_str'].bytes_list.value[0].decode().endswith(
        '-%03d-%03d' % (pitch, f['velocity'].int64_list.value[0]))


def test_summary_counts_and_split_by_note(built):
  out, summary = built
  with open(os.path.join(out, 'summary.json')) as f:
    on_disk = json.load(f)
  assert on_disk == json.loads(json.dumps(summary))
  assert summary['missing_programs'] == [7]
  assert summary['dropped'] == {'silent': 12, 'unpitched': 12,
                                'wrong_pitch': 0}
  assert sum(summary['splits'].values()) == summary['kept'] == 24
  notes = {}
  for split in ('train', 'valid', 'test'):
    for ex in _records(os.path.join(out, '*%s*' % split)):
      f = ex.features.feature
      key = (f['instrument'].int64_list.value[0],
             f['pitch'].int64_list.value[0],
             f['velocity'].int64_list.value[0])
      assert key not in notes  # each note in exactly one split
      notes[key] = split
  for prog in (0, 24):  # instruments overlap across splits
    assert {s for (p, _, _), s in notes.items() if p == prog} == {
        'train', 'valid', 'test'}
  assert summary['splits'] == {'train': 20, 'valid': 2, 'test': 2}


def test_feeds_the_training_pipeline(built):
  out, _ = built
  cfg = load_config('tiny', {'dataset_name': 'nsynth_tfrecord',
                             'train_data_path': out,
                             'shuffle_buffer_size': 4})
  specs, labels = next(iter(data.build_train_dataset(cfg, 4, seed=0)))
  assert specs.shape == (4, 128, 1024, 2)
  assert set(np.argmax(labels, 1) + 24) <= set(PITCHES)


def test_split_is_seeded_and_stable():
  keys = [(p, v) for p in range(24, 85) for v in (25, 50, 75, 100, 127)]
  a = builder.split_notes(keys, 3, (0.8, 0.1, 0.1), seed=0)
  assert a == builder.split_notes(keys, 3, (0.8, 0.1, 0.1), seed=0)
  assert a != builder.split_notes(keys, 3, (0.8, 0.1, 0.1), seed=1)
  counts = [a.count(s) for s in ('train', 'valid', 'test')]
  assert sum(counts) == 305
  assert all(abs(c - 305 * f) < 1 for c, f in zip(counts, (0.8, 0.1, 0.1)))


@pytest.mark.parametrize('fractions', [(0, 0.5, 0.5), (0.5, 0, 0.5),
                                       (0.5, 0.5, 0), (0, 0, 1)])
def test_split_of_fraction_zero_is_empty(fractions):
  for n in (1, 2, 3, 7, 21):
    a = builder.split_notes(list(range(n)), 0, fractions, seed=0)
    for split, f in zip(('train', 'valid', 'test'), fractions):
      assert abs(a.count(split) - n * f / sum(fractions)) < 1, (n, split)
      if not f:
        assert split not in a, (n, fractions)


def test_two_workers_same_notes(font, tmp_path):
  out = str(tmp_path / 'w2')
  summary = builder.build_from_soundfont(
      font, out, programs=[0, 24], pitches=[48, 60], velocities=[100],
      num_workers=2, progress=False)
  assert summary['kept'] == 4 and summary['dropped']['silent'] == 0
  assert len(_records(os.path.join(out, '*.tfrecord*'))) == 4


def _cli(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run(
      [sys.executable, '-m', 'gansynth_tools.build_dataset'] + list(args),
      capture_output=True, text=True, env=env, timeout=300)


def test_cli_soundfont_and_errors(font, tmp_path):
  out = str(tmp_path / 'cli')
  res = _cli('--soundfont=' + font, '--output_dir=' + out, '--programs=0',
             '--pitches=60-62', '--velocities=100', '--sample_rate=16000',
             '--noprogress')
  assert res.returncode == 0, res.stderr[-2000:]
  assert 'Wrote 3 notes' in res.stdout
  assert len(_records(os.path.join(out, '*.tfrecord*'))) == 3
  # Errors: one line, non-zero exit, nothing left behind.
  bad = [
      (['--soundfont=' + font, '--output_dir=' + out], 'not empty'),
      (['--soundfont=/no/such.sf2', '--output_dir=' + out + '2'],
       'does not exist'),
      (['--soundfont=' + font, '--output_dir=' + out + '3',
        '--pitches=60-x'], '--pitches must be'),
      (['--soundfont=' + font, '--output_dir=' + out + '4',
        '--programs=7'], 'none of the programs 7'),
      (['--output_dir=' + out + '5'], 'exactly one of'),
      (['--soundfont=' + font, '--output_dir=' + out + '6',
        '--examples_per_shard=0'], 'examples_per_shard must be >= 1'),
  ]
  for args, pattern in bad:
    res = _cli(*args + ['--noprogress'])
    assert res.returncode != 0
    lines = [l for l in res.stderr.splitlines() if 'error' in l]
    assert len(lines) == 1 and pattern in lines[0], res.stderr[-1500:]
  for suffix in '23456':
    assert not os.path.exists(out + suffix)
  assert not [n for n in os.listdir(tmp_path) if n.startswith('.')]


def test_audio_folder_mode(tmp_path):
  src = tmp_path / 'wavs'
  os.makedirs(src)
  for p in (40, 52, 64):
    for inst in ('flute_acoustic_001', 'reed_acoustic_002'):
      wave = synthetic.harmonic_note(p, 44100, 44100 * 2, num_harmonics=3)
      sf.write(src / ('%s-%03d-100.wav' % (inst, p)), wave, 44100)
  sf.write(src / 'noise_acoustic_003-050-100.wav',
           np.random.RandomState(0).uniform(-.5, .5, 32000), 16000)
  out = str(tmp_path / 'out')
  res = _cli('--audio_folder=' + str(src), '--output_dir=' + out,
             '--noprogress')
  assert res.returncode == 0, res.stderr[-2000:]
  with open(os.path.join(out, 'summary.json')) as f:
    summary = json.load(f)
  assert summary['kept'] == 6 and summary['dropped']['unpitched'] == 1
  records = _records(os.path.join(out, '*.tfrecord*'))
  for ex in records:
    f = ex.features.feature
    audio = np.array(f['audio'].float_list.value, np.float32)
    assert audio.shape == (64000,)
    assert nsynth_format.INSTRUMENT_FAMILIES[
        f['instrument_family'].int64_list.value[0]] in ('flute', 'reed')
    pitch = f['pitch'].int64_list.value[0]
    assert abs(1200 * np.log2(_f0(audio) / synthetic.midi_to_hz(pitch))) < 30


def test_audio_folder_estimate_pitch(tmp_path):
  """Unlabelled files: without --estimate_pitch an error naming the file
  and the flag; with it each file gets the MIDI pitch of its f0 and its
  sub-folder as instrument; noise and silence are named (or skipped)."""
  src = tmp_path / 'samples'
  truth = {}
  for inst, pitches in (('flute', (36, 53)), ('organ/low', (29, 67, 84))):
    os.makedirs(src / inst)
    for p in pitches:
      name = 'take %d.wav' % (100 - p)  # names hold no pitch
      wave = synthetic.harmonic_note(p, 44100, 44100 * 2, num_harmonics=4,
                                     seed=p)
      wave = np.stack([wave, 0.5 * wave], axis=1)  # stereo
      sf.write(src / inst / name, wave, 44100)
      truth[(inst, name)] = p
  out = str(tmp_path / 'out')
  res = _cli('--audio_folder=' + str(src), '--output_dir=' + out,
             '--noprogress')
  assert res.returncode == 1
  assert 'no pitch for' in res.stderr and '--estimate_pitch' in res.stderr
  summary = builder.build_from_audio_folder(
      str(src), out, progress=False, estimate_pitch=True)
  assert summary['pitch_estimated'] == 5 and summary['kept'] == 5
  got = {}
  for ex in _records(os.path.join(out, '*.tfrecord*')):
    f = ex.features.feature
    inst = f['instrument_str'].bytes_list.value[0].decode()
    got.setdefault(inst, []).append(f['pitch'].int64_list.value[0])
    assert f['velocity'].int64_list.value[0] == 100
  assert {k: sorted(v) for k, v in got.items()} == {
      'flute': [36, 53], 'organ/low': [29, 67, 84]}
  # Noise and silence have no pitch: named, or skipped with skip_bad.
  sf.write(src / 'flute' / 'breath.wav',
           np.random.RandomState(0).uniform(-.5, .5, 32000), 16000)
  sf.write(src / 'flute' / 'gap.wav', np.zeros(32000), 16000)
  with pytest.raises(ValueError, match='breath.wav: its audio is unpitched'):
    builder.build_from_audio_folder(str(src), str(tmp_path / 'o2'),
                                    progress=False, estimate_pitch=True)
  summary = builder.build_from_audio_folder(
      str(src), str(tmp_path / 'o3'), progress=False, estimate_pitch=True,
      skip_bad_examples=True)
  assert summary['kept'] == 5 and summary['unreadable'] == 2


def test_estimate_pitch_fills_only_manifest_rows_without_pitch(tmp_path):
  src = tmp_path / 'lib'
  os.makedirs(src)
  for name, p in (('a.wav', 45), ('b.wav', 62), ('c.wav', 70)):
    sf.write(src / name, synthetic.harmonic_note(p, 16000, 32000, seed=p),
             16000)
  with open(src / 'manifest.csv', 'w') as f:  # c.wav's pitch is stated
    f.write('file,pitch,velocity,instrument\na.wav,,90,lib\nb.wav,,,lib\n'
            'c.wav,70,127,lib\n')
  with pytest.raises(ValueError, match='needs a file name'):
    builder.build_from_audio_folder(str(src), str(tmp_path / 'o1'),
                                    progress=False)
  summary = builder.build_from_audio_folder(
      str(src), str(tmp_path / 'o2'), progress=False, estimate_pitch=True,
      split_fractions=(1.0, 0.0, 0.0))
  assert summary['pitch_estimated'] == 2 and summary['kept'] == 3
  got = {}
  for ex in _records(os.path.join(tmp_path, 'o2', '*.tfrecord*')):
    f = ex.features.feature
    got[f['pitch'].int64_list.value[0]] = f['velocity'].int64_list.value[0]
  assert got == {45: 90, 62: 100, 70: 127}


def test_estimate_pitch_with_crepe_and_cli(tmp_path):
  src = tmp_path / 'takes'
  os.makedirs(src)
  for i, p in enumerate((40, 57, 76)):
    sf.write(src / ('%d.wav' % i),
             synthetic.harmonic_note(p, 22050, 22050 * 2, num_harmonics=5,
                                     seed=p), 22050)
  sf.write(src / 'hiss.wav',
           np.random.RandomState(1).uniform(-.5, .5, 44100), 22050)
  out = str(tmp_path / 'out')
  res = _cli('--audio_folder=' + str(src), '--output_dir=' + out,
             '--noprogress', '--estimate_pitch', '--pitch_tracker=crepe_tiny',
             '--skip_bad_examples', '--split=1,0,0')
  assert res.returncode == 0, res.stderr[-2000:]
  pitches = sorted(ex.features.feature['pitch'].int64_list.value[0]
                   for ex in _records(os.path.join(out, '*.tfrecord*')))
  assert pitches == [40, 57, 76]
  res = _cli('--audio_folder=' + str(src), '--output_dir=' + out + '2',
             '--pitch_tracker=pyin')
  assert res.returncode == 1 and '--estimate_pitch' in res.stderr


def _tone_folder(folder, names):
  """Short C4 tones under the given names (for check_pitch=False builds)."""
  os.makedirs(folder, exist_ok=True)
  wave = synthetic.harmonic_note(60, 16000, 4000, num_harmonics=2)
  for name in names:
    sf.write(os.path.join(folder, name), wave, 16000)
  return folder


def _splits(folder, out, **kw):
  builder.build_from_audio_folder(folder, out, check_pitch=False,
                                  progress=False, **kw)
  return {ex.features.feature['note_str'].bytes_list.value[0].decode(): s
          for s in ('train', 'valid', 'test')
          for ex in _records(os.path.join(out, 'nsynth-%s*' % s))}


def test_audio_folder_split_depends_only_on_the_notes(tmp_path, monkeypatch):
  names = ['%s-%03d-100.wav' % (i, p) for i in ('mallet', 'organ')
           for p in range(48, 60)]
  _tone_folder(tmp_path / 'many', names)
  monkeypatch.chdir(tmp_path)
  base = _splits('many', 'o1')
  assert len(base) == 24 and set(base.values()) == {'train', 'valid', 'test'}
  assert _splits(str(tmp_path / 'many') + '/', 'o2') == base
  _tone_folder(tmp_path / 'sub' / 'copy', names)
  assert _splits('sub/copy', 'o3') == base
  # Another instrument (sorted first) leaves the others' splits alone.
  _tone_folder(tmp_path / 'many', ['bass-050-100.wav'])
  more = _splits('many', 'o4')
  assert {k: v for k, v in more.items() if not k.startswith('bass')} == base


def _manifest_folder(tmp_path, manifest):
  folder = _tone_folder(tmp_path / 'm', ['x-060-100.wav', 'x-062-100.wav'])
  (folder / 'manifest.csv').write_text(manifest)
  return str(folder)


@pytest.mark.parametrize('rows,message', [
    ('x-060-100,60,train\nx-062-100,62,\n', "row 2: split must be"),
    ('x-060-100,60,\nx-062-100,62,validation\n', "row 1: split must be"),
    ('x-060-100,60,train\nx-062-100,62,validation\n',
     "row 2: split must be train, valid or test on every row, got "
     "'validation'"),
])
def test_audio_folder_bad_split_cells_are_one_line_errors(tmp_path, rows,
                                                          message):
  folder = _manifest_folder(tmp_path, 'file,pitch,split\n' + rows)
  with pytest.raises(ValueError, match=message):
    builder.build_from_audio_folder(folder, str(tmp_path / 'out'),
                                    check_pitch=False, progress=False)
  assert not os.path.exists(tmp_path / 'out')


@pytest.mark.parametrize('name,message', [
    ('x-200-100.wav', 'pitch 200 is not a MIDI pitch 0-127'),
    ('x-061-999.wav', 'velocity 999 is not a MIDI velocity 1-127'),
    ('x-062-000.wav', 'velocity 0 is not a MIDI velocity 1-127')])
def test_audio_folder_rejects_out_of_range_pitch_and_velocity(tmp_path, name,
                                                             message):
  folder = str(_tone_folder(tmp_path / 'b', ['x-060-100.wav', name]))
  out = str(tmp_path / 'out')
  with pytest.raises(ValueError, match=message):
    builder.build_from_audio_folder(folder, out, check_pitch=False,
                                    progress=False)
  summary = builder.build_from_audio_folder(
      folder, out, check_pitch=False, skip_bad_examples=True, progress=False)
  assert summary['kept'] == 1 and summary['unreadable'] == 1
  assert [ex.features.feature['pitch'].int64_list.value[0]
          for ex in _records(os.path.join(out, '*.tfrecord*'))] == [60]


def test_examples_per_shard_must_be_positive(tmp_path):
  folder = _tone_folder(tmp_path / 'e', ['x-060-100.wav'])
  with pytest.raises(ValueError, match='examples_per_shard must be >= 1'):
    builder.build_from_audio_folder(str(folder), str(tmp_path / 'out'),
                                    examples_per_shard=0, progress=False)


def test_overwrite_replaces_only_an_earlier_dataset(tmp_path):
  folder = _tone_folder(str(tmp_path / 'audio'), ['org-060-100.wav',
                                                   'org-062-100.wav'])
  out = str(tmp_path / 'data')
  build = lambda o: builder.build_from_audio_folder(  # pylint: disable=g-long-lambda
      folder, o, check_pitch=False, progress=False, overwrite=True)
  build(out)
  build(out)  # an earlier dataset: replaced
  assert os.path.isfile(os.path.join(out, 'summary.json'))
  notes = tmp_path / 'notes'
  notes.mkdir()
  (notes / 'mine.txt').write_text('keep me')
  with pytest.raises(ValueError, match='without summary.json'):
    build(str(notes))
  for o, msg in ((folder, 'is the input'), (str(tmp_path), 'holds the input')):
    with pytest.raises(ValueError, match=msg):
      build(o)
  assert sorted(os.listdir(folder)) == ['org-060-100.wav', 'org-062-100.wav']
  assert (notes / 'mine.txt').read_text() == 'keep me'
