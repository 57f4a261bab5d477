"""Synthetic pitched notes and NSynth-layout files of them (tests, benchmark).

Every note is a decaying harmonic tone whose f0 is the MIDI pitch, so its
measured pitch matches its label.
"""

import os

import numpy as np

from gansynth_tf2.data import nsynth_format


def midi_to_hz(pitch):
  return 440.0 * 2.0 ** ((np.asarray(pitch, np.float64) - 69.0) / 12.0)


def harmonic_note(pitch, sample_rate=16000, num_samples=64000, velocity=100,
                  num_harmonics=6, decay_s=1.5, release_at=None, seed=0):
  """A float32 [num_samples] note at MIDI `pitch` (peak ~ velocity / 127)."""
  rng = np.random.RandomState(seed)
  t = np.arange(num_samples) / float(sample_rate)
  f0 = float(midi_to_hz(pitch))
  wave = np.zeros(num_samples)
  for k in range(1, num_harmonics + 1):
    if k * f0 >= sample_rate / 2:
      break
    wave += np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k
  env = np.exp(-t / decay_s) * np.minimum(1.0, t / 0.005)
  if release_at is not None:
    env *= np.where(t < release_at, 1.0, np.exp(-(t - release_at) / 0.1))
  wave *= env
  wave *= 0.8 * (velocity / 127.0) / max(np.abs(wave).max(), 1e-9)
  return wave.astype(np.float32)


def note_examples(pitches, sample_rate=16000, num_samples=64000,
                  velocities=(100,), instruments=(0,), families=(0,),
                  sources=(0,)):
  """NSynth `tf.train.Example`s for each (instrument, pitch, velocity)."""
  out = []
  for inst, fam, src in zip(instruments, families, sources):
    for p in pitches:
      for v in velocities:
        name = '%s_%s_%03d' % (nsynth_format.INSTRUMENT_FAMILIES[fam],
                               nsynth_format.INSTRUMENT_SOURCES[src], inst)
        audio = harmonic_note(p, sample_rate, num_samples, v,
                              seed=inst * 1000 + p)
        out.append(nsynth_format.make_example(
            audio, p, v, sample_rate, instrument=inst, instrument_str=name,
            instrument_family=fam, instrument_source=src, note=len(out)))
  return out


def write_tfds_nsynth(data_dir, examples, split='train',
                      config='gansynth_subset'):
  """Writes dict examples as a prepared TFDS `nsynth/<config>` in data_dir.

  Args:
    examples: dicts with audio float32 [64000], pitch, velocity, instrument,
      instrument_family, instrument_source (the pipeline's example keys).

  Returns:
    The version folder written (holding dataset_info.json).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core import example_serializer  # pylint: disable=g-import-not-at-top
  builder = tfds.builder('nsynth/' + config, data_dir=os.fspath(data_dir))
  feats = builder.info.features
  serializer = example_serializer.ExampleSerializer(
      feats.get_serialized_info())
  folder = os.fspath(builder.data_dir)
  tf.io.gfile.makedirs(folder)
  template = tfds.core.ShardedFileTemplate(
      data_dir=folder, template='{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}',
      dataset_name='nsynth', split=split, filetype_suffix='tfrecord')
  path = os.path.join(folder, 'nsynth-%s.tfrecord-00000-of-00001' % split)
  n = 0
  with tf.io.TFRecordWriter(path) as w:
    for i, ex in enumerate(examples):
      record = {
          'id': 'note_%d' % i,
          'audio': np.asarray(ex['audio'], np.float32),
          'pitch': int(ex['pitch']),
          'velocity': int(ex['velocity']),
          'instrument': {'label': int(ex['instrument']),
                         'family': int(ex['instrument_family']),
                         'source': int(ex['instrument_source'])},
          'qualities': {q: False for q in feats['qualities'].keys()},
      }
      w.write(serializer.serialize_example(feats.encode_example(record)))
      n += 1
  splits = dict(builder.info.splits) if builder.info.splits else {}
  splits[split] = tfds.core.SplitInfo(
      name=split, shard_lengths=[n], num_bytes=os.path.getsize(path),
      filename_template=template)
  builder.info.set_splits(tfds.core.SplitDict(list(splits.values())))
  builder.info.features.save_config(folder)
  builder.info.write_dataset_info_json(folder)
  return folder


# ---------------------------------------------------------------------------
# A minimal SoundFont 2 writer (one looped mono sample per preset).
# ---------------------------------------------------------------------------
def _chunk(cid, data):
  import struct  # pylint: disable=g-import-not-at-top
  data = bytes(data)
  pad = b'\0' if len(data) % 2 else b''
  return cid + struct.pack('<I', len(data)) + data + pad


def _list(kind, chunks):
  return _chunk(b'LIST', kind + b''.join(chunks))


def _name(text):
  return text.encode('ascii')[:19].ljust(20, b'\0')


def looped_wave(kind, root_pitch=69, period=100, seconds=1.0, seed=0):
  """(int16 samples, sample_rate, loop start, loop end) of one sample kind.

  'harmonic' (saw-like, 6 harmonics), 'odd' (square-like), 'noise',
  'silent'; the rate makes `period` samples one cycle of `root_pitch`, so
  the loop (whole periods) plays exactly in tune.
  """
  rate = int(round(float(midi_to_hz(root_pitch)) * period))
  n = int(seconds * rate) // period * period
  t = np.arange(n)
  if kind == 'harmonic':
    w = sum(np.sin(2 * np.pi * k * t / period) / k for k in range(1, 7))
  elif kind == 'odd':
    w = sum(np.sin(2 * np.pi * k * t / period) / k for k in (1, 3, 5, 7))
  elif kind == 'noise':
    w = np.random.RandomState(seed).uniform(-1, 1, n)
  elif kind == 'silent':
    w = np.zeros(n)
  else:
    raise ValueError('unknown sample kind %r' % kind)
  w = 0.7 * w / max(np.abs(w).max(), 1e-9)
  return (np.round(w * 32767).astype('<i2'), rate, period * (n // period // 10),
          n)


def write_sf2(path, presets, root_pitch=69):
  """Writes a tiny SoundFont 2: one preset per (program, name, kind).

  Args:
    path: the .sf2 to write.
    presets: [(program, preset name, sample kind)] in bank 0; kinds as in
      `looped_wave`.
  """
  import struct  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import io_util  # pylint: disable=g-import-not-at-top
  smpl, shdr, phdr, pbag, pgen, inst, ibag, igen = (bytearray() for _ in
                                                     range(8))
  for i, (program, name, kind) in enumerate(presets):
    data, rate, loop_start, n = looped_wave(kind, root_pitch, seed=i)
    start = len(smpl) // 2
    smpl += data.tobytes() + b'\0' * 92  # 46 zero points after each sample
    shdr += _name(name) + struct.pack('<IIIIIBbHH', start, start + n,
                                      start + loop_start, start + n, rate,
                                      root_pitch, 0, 0, 1)
    inst += _name(name) + struct.pack('<H', i)
    ibag += struct.pack('<HH', 4 * i, 0)
    igen += struct.pack('<HBB', 43, 0, 127)       # keyRange 0-127
    igen += struct.pack('<Hh', 38, -1200)         # releaseVolEnv 0.5 s
    igen += struct.pack('<HH', 54, 1)             # sampleModes: loop
    igen += struct.pack('<HH', 53, i)             # sampleID
    phdr += _name(name) + struct.pack('<HHHIII', program, 0, i, 0, 0, 0)
    pbag += struct.pack('<HH', i, 0)
    pgen += struct.pack('<HH', 41, i)             # instrument
  k = len(presets)
  shdr += _name('EOS') + struct.pack('<IIIIIBbHH', 0, 0, 0, 0, 0, 0, 0, 0, 0)
  inst += _name('EOI') + struct.pack('<H', k)
  ibag += struct.pack('<HH', 4 * k, 0)
  igen += struct.pack('<HH', 0, 0)
  phdr += _name('EOP') + struct.pack('<HHHIII', 255, 255, k, 0, 0, 0)
  pbag += struct.pack('<HH', k, 0)
  pgen += struct.pack('<HH', 0, 0)
  mod_end = b'\0' * 10
  info = _list(b'INFO', [_chunk(b'ifil', struct.pack('<HH', 2, 1)),
                         _chunk(b'isng', b'EMU8000\0'),
                         _chunk(b'INAM', b'gansynth test font\0\0')])
  sdta = _list(b'sdta', [_chunk(b'smpl', smpl)])
  pdta = _list(b'pdta', [
      _chunk(b'phdr', phdr), _chunk(b'pbag', pbag), _chunk(b'pmod', mod_end),
      _chunk(b'pgen', pgen), _chunk(b'inst', inst), _chunk(b'ibag', ibag),
      _chunk(b'imod', mod_end), _chunk(b'igen', igen),
      _chunk(b'shdr', shdr)])
  io_util.atomic_write_bytes(path, _chunk(b'RIFF', b'sfbk' + info + sdta +
                                          pdta))
  return path
