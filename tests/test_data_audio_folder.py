"""Audio-folder source: WAV/FLAC/OGG at 44.1 / 16 kHz, manifests, bad files."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from gansynth_tf2 import data
from gansynth_tf2.config import load_config
from gansynth_tf2.data import audio_folder
from gansynth_tf2.data import synthetic

N = 64000


def _note(pitch, rate, seconds=4.5):
  return synthetic.harmonic_note(pitch, rate, int(rate * seconds),
                                 num_harmonics=3, seed=pitch)


def _cfg(folder, **kw):
  values = {'dataset_name': 'audio_folder', 'train_data_path': str(folder),
            'shuffle_buffer_size': 4}
  values.update(kw)
  return load_config('tiny', values)


def _f0(wave, rate=16000):
  """Strongest spectral peak (the fundamental of these notes), Hz."""
  spec = np.abs(np.fft.rfft(wave[:32768] * np.hanning(32768)))
  k = int(np.argmax(spec))
  a, b, c = np.log(spec[k - 1:k + 2] + 1e-12)
  return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / 32768


# name, pitch, rate, subtype, stereo
FILES = [
    ('guitar_acoustic_001-060-100.wav', 60, 44100, 'PCM_16', True),
    ('guitar_acoustic_001-064-100.wav', 64, 16000, 'PCM_16', False),
    ('keyboard_electronic_002-067-075.flac', 67, 44100, 'PCM_24', True),
    ('keyboard_electronic_002-072-075.flac', 72, 16000, 'PCM_16', False),
    ('reed_acoustic_003-055-127.ogg', 55, 44100, 'VORBIS', False),
]


def _make_folder(folder):
  os.makedirs(folder, exist_ok=True)
  for name, pitch, rate, subtype, stereo in FILES:
    wave = _note(pitch, rate)
    if stereo:
      wave = np.stack([wave, 0.5 * wave], axis=1)  # mono mix = 0.75 wave
    sf.write(os.path.join(folder, name), wave, rate, subtype=subtype)
  return folder


def test_nsynth_named_files_decode_resample_and_label(tmp_path):
  folder = _make_folder(tmp_path / 'notes')
  exs = {int(e['pitch']): e for e in data.load_examples(_cfg(folder))}
  assert sorted(exs) == sorted(p for _, p, _, _, _ in FILES)
  for name, pitch, rate, subtype, stereo in FILES:
    e = exs[pitch]
    audio = e['audio'].numpy()
    assert audio.shape == (N,)
    # Pitch survives decoding + resampling.
    f0 = _f0(audio)
    assert abs(1200 * np.log2(f0 / synthetic.midi_to_hz(pitch))) < 10, name
    # Same wave as a reference resampler, no delay (OGG is lossy).
    ref = _note(pitch, 16000)[:N] * (0.75 if stereo else 1.0)
    tol = 0.05 if subtype == 'VORBIS' else 0.01
    assert np.abs(audio[200:-200] - ref[200:-200]).max() < tol, name
  e = exs[67]
  assert int(e['velocity']) == 75
  assert int(e['instrument_family']) == 4  # keyboard
  assert int(e['instrument_source']) == 1  # electronic
  assert int(exs[60]['instrument']) == int(exs[64]['instrument'])
  assert int(exs[60]['instrument']) != int(exs[67]['instrument'])


def _with_chunk_before_data(path):
  """Inserts an odd-sized LIST chunk (padded to even) before 'data'."""
  raw = open(path, 'rb').read()
  order = 'big' if raw[:4] == b'RIFX' else 'little'
  at = raw.index(b'data')
  extra = b'LIST' + (5).to_bytes(4, order) + b'INFOx' + b'\0'
  raw = raw[:at] + extra + raw[at:]
  raw = raw[:4] + (len(raw) - 8).to_bytes(4, order) + raw[8:]
  open(path, 'wb').write(raw)


@pytest.mark.parametrize('subtype,endian,container,atol', [
    ('PCM_16', 'LITTLE', 'WAV', 1e-4), ('PCM_24', 'LITTLE', 'WAVEX', 1e-6),
    ('PCM_32', 'LITTLE', 'WAV', 1e-6), ('DOUBLE', 'LITTLE', 'WAVEX', 1e-6),
    ('PCM_U8', 'LITTLE', 'WAVEX', 2e-2), ('PCM_16', 'BIG', 'WAV', 1e-4),
    ('PCM_24', 'BIG', 'WAV', 1e-6), ('PCM_32', 'BIG', 'WAV', 1e-6),
    ('FLOAT', 'BIG', 'WAV', 1e-6), ('DOUBLE', 'BIG', 'WAV', 1e-6),
    ('PCM_U8', 'BIG', 'WAV', 2e-2)])
def test_raw_wav_encodings_decode_exactly(tmp_path, subtype, endian,
                                          container, atol):
  # WAV data chunks are read as raw samples: tensorflow-io decodes neither
  # 32-bit PCM / double WAV nor big-endian RIFX, and gives 0 samples for a
  # WAV with an odd-sized chunk before the data (as written here).
  folder = tmp_path / (subtype + endian)
  os.makedirs(folder)
  ref = {}
  for pitch, rate, stereo in ((48, 16000, True), (55, 44100, False)):
    wave = 0.9 * _note(pitch, rate)
    name = folder / ('inst-%03d-100.wav' % pitch)
    sf.write(name, np.stack([wave, 0.5 * wave], 1) if stereo else wave, rate,
             subtype=subtype, endian=endian, format=container)
    ref[pitch] = 0.9 * _note(pitch, 16000)[:N] * (0.75 if stereo else 1.0)
  _with_chunk_before_data(folder / 'inst-048-100.wav')
  info = sf.info(folder / 'inst-048-100.wav')  # still a valid file
  assert info.subtype == subtype
  assert (info.endian == 'BIG') == (endian == 'BIG')
  exs = {int(e['pitch']): e['audio'].numpy()
         for e in data.load_examples(_cfg(folder))}
  assert sorted(exs) == [48, 55]
  # 16 kHz: the file's samples themselves.
  direct, _ = sf.read(folder / 'inst-048-100.wav', dtype='float64')
  np.testing.assert_allclose(exs[48], direct.mean(1)[:N], atol=1e-6)
  np.testing.assert_allclose(exs[48], ref[48], atol=atol)
  # 44.1 kHz: resampled like any other file.
  assert np.abs(exs[55][200:-200] - ref[55][200:-200]).max() < 0.01 + atol
  f0 = _f0(exs[55])
  assert abs(1200 * np.log2(f0 / synthetic.midi_to_hz(55))) < 10


def test_manifest_csv_pads_short_files_and_trains(tmp_path):
  folder = tmp_path / 'm'
  os.makedirs(folder)
  sf.write(folder / 'a.wav', _note(40, 44100, 1.0), 44100)  # 1 s: padded
  sf.write(folder / 'b.wav', _note(52, 16000, 5.0), 16000)  # 5 s: trimmed
  (folder / 'manifest.csv').write_text(
      'file,pitch,velocity,instrument_family,instrument_source\n'
      'a.wav,40,50,bass,acoustic\nb,52,100,3,0\n')
  exs = {int(e['pitch']): e for e in data.load_examples(_cfg(folder))}
  assert sorted(exs) == [40, 52]
  a = exs[40]['audio'].numpy()
  assert a.shape == (N,) and np.abs(a[:15000]).max() > 0.1
  assert np.abs(a[16100:]).max() == 0.0  # zero padding after 1 s
  assert int(exs[40]['instrument_family']) == 0
  assert int(exs[40]['velocity']) == 50
  ds = data.build_train_dataset(_cfg(folder), 2, seed=0)
  specs, labels = next(iter(ds))
  assert specs.shape == (2, 128, 1024, 2)
  assert sorted(np.argmax(labels, 1) + 24) == [40, 52]


def test_manifest_json_splits(tmp_path):
  folder = tmp_path / 'j'
  os.makedirs(folder / 'audio')
  meta = {}
  for i, (pitch, split) in enumerate([(40, 'train'), (41, 'train'),
                                      (42, 'valid'), (43, 'test')]):
    name = 'note_%d' % i
    sf.write(folder / 'audio' / (name + '.wav'), _note(pitch, 16000), 16000)
    meta[name] = {'pitch': pitch, 'velocity': 100, 'instrument': 7,
                  'instrument_family': 2, 'instrument_source': 0,
                  'sample_rate': 16000, 'split': split}
  (folder / 'examples.json').write_text(json.dumps(meta))
  cfg = _cfg(folder)

  def pitches(split):
    return sorted(int(e['pitch']) for e in data.load_examples(cfg,
                                                              split=split))

  assert pitches('train') == [40, 41]
  assert pitches('valid') == [42]
  assert pitches('test') == [43]


def _bad_folder(tmp_path, kind):
  folder = tmp_path / kind
  os.makedirs(folder)
  sf.write(folder / 'good-060-100.wav', _note(60, 16000), 16000)
  manifest = None
  if kind == 'unreadable_file':
    (folder / 'bad-061-100.wav').write_bytes(b'RIFF not really a wave file')
    bad = 'bad-061-100.wav'
  elif kind == 'undecodable_file':  # header fine, data cut short
    sf.write(folder / 'cut-062-100.wav', _note(62, 16000), 16000)
    raw = (folder / 'cut-062-100.wav').read_bytes()
    (folder / 'cut-062-100.wav').write_bytes(raw[:3000])
    bad = 'cut-062-100.wav'
  elif kind == 'no_pitch':
    sf.write(folder / 'mystery.wav', _note(63, 16000), 16000)
    bad = 'mystery.wav'
  elif kind == 'manifest_missing_file':
    manifest = 'file,pitch\ngood-060-100.wav,60\nghost.wav,64\n'
    bad = 'ghost.wav'
  elif kind == 'wrong_sample_rate':
    sf.write(folder / 'r.wav', _note(65, 44100), 44100)
    manifest = 'file,pitch,sample_rate\ngood-060-100.wav,60,16000\n' \
               'r.wav,65,16000\n'
    bad = 'r.wav'
  if manifest:
    (folder / 'manifest.csv').write_text(manifest)
  return folder, bad


_REASONS = {'unreadable_file': 'unreadable_file',
            'undecodable_file': 'unreadable_file',
            'no_pitch': 'missing_key',
            'manifest_missing_file': 'unreadable_file',
            'wrong_sample_rate': 'wrong_sample_rate'}


@pytest.mark.parametrize('kind', sorted(_REASONS))
def test_bad_files_are_named_or_skipped_and_counted(tmp_path, kind):
  folder, bad = _bad_folder(tmp_path, kind)
  with pytest.raises((ValueError, tf.errors.InvalidArgumentError)) as err:
    list(data.load_examples(_cfg(folder)))
  assert bad in str(err.value)
  assert 'skip_bad_examples' in str(err.value)
  stats = data.BadExampleStats()
  kept = [int(e['pitch']) for e in data.load_examples(
      _cfg(folder, skip_bad_examples=True), stats=stats)]
  assert kept == [60]
  assert stats.counts() == {_REASONS[kind]: 1}


def test_sharded_folder_is_a_partition(tmp_path):
  folder = tmp_path / 's'
  os.makedirs(folder)
  for p in range(40, 46):
    sf.write(folder / ('x-%03d-100.wav' % p), _note(p, 16000, 0.5), 16000)
  cfg = _cfg(folder)
  parts = [sorted(int(e['pitch']) for e in data.load_examples(
      cfg, num_shards=2, shard=k)) for k in range(2)]
  assert all(parts) and sorted(parts[0] + parts[1]) == list(range(40, 46))


def _scan_folder(tmp_path, names, manifest):
  folder = tmp_path / 'f'
  for name in names:
    os.makedirs((folder / name).parent, exist_ok=True)
    sf.write(folder / name, _note(60, 16000, 0.25), 16000)
  (folder / 'manifest.csv').write_text(manifest)
  return str(folder)


def test_manifest_names_match_paths_not_just_stems(tmp_path):
  folder = _scan_folder(
      tmp_path, ['a/note.wav', 'b/note.wav', 'c.wav', 'd.flac'],
      'file,pitch\nb/note,67\na/note.wav,60\nc,62\nd.wav,64\n')
  found = {os.path.relpath(e['path'], folder): e['pitch']
           for e in audio_folder.scan_audio_folder(folder, None)}
  assert found == {os.path.join('b', 'note.wav'): 67,
                   os.path.join('a', 'note.wav'): 60, 'c.wav': 62,
                   'd.flac': 64}
  (tmp_path / 'f' / 'manifest.csv').write_text('file,pitch\nc,62\nnote,60\n')
  with pytest.raises(ValueError, match=r'row 2: file .note. is ambiguous, '
                     r'it matches a.note\.wav, b.note\.wav'):
    audio_folder.scan_audio_folder(folder, None)


@pytest.mark.parametrize('bad_row,message', [
    ('a,128,100,train', 'row 2: pitch 128 is not a MIDI pitch 0-127'),
    ('a,-1,100,train', 'row 2: pitch -1 is not a MIDI pitch'),
    ('a,60,0,train', 'row 2: velocity 0 is not a MIDI velocity 1-127'),
    ('a,60,100,', 'row 2: split must be train, valid or test on every row'),
])
def test_manifest_values_are_checked(tmp_path, bad_row, message):
  folder = _scan_folder(tmp_path, ['a.wav', 'b.wav'],
                        'file,pitch,velocity,split\nb,61,100,train\n%s\n' %
                        bad_row)
  with pytest.raises(ValueError, match=message):
    audio_folder.scan_audio_folder(folder, 'train')
  stats = data.BadExampleStats()
  kept = audio_folder.scan_audio_folder(folder, 'train', True, stats)
  assert [e['pitch'] for e in kept] == [61]
  assert stats.counts() == {'missing_key': 1}
