"""A folder of audio files (WAV/FLAC/OGG, any rate, mono or stereo) -> elements.

Pitch (and optionally velocity, instrument, family, source, split,
sample_rate) comes from a manifest in the folder:
  manifest.csv   header row with `file` (path relative to the folder, with
                 or without extension, or a unique file name) and `pitch`
                 (MIDI 0-127), optional `velocity` (1-127, default 100),
                 `instrument`, `instrument_family`, `instrument_source`
                 (ids or NSynth names), `split` (train/valid/test, then on
                 every row), `sample_rate`;
  manifest.json  a list of such objects, or an object keyed by file/note
                 name (NSynth's examples.json, also read as examples.json);
otherwise from NSynth-style file names `<family>_<source>_<nnn>-<pitch>-
<velocity>.wav`, or `<anything>-<pitch>-<velocity>.wav`. With
`estimate_pitch` (gansynth-build-dataset --estimate_pitch), a file that has
neither gets the MIDI pitch nearest to its median f0 (YIN, data.pitch; or
CREPE-tiny / pyin, eval.f0), velocity 100 and its sub-folder as instrument.

The folder is scanned once in Python (soundfile reads only the headers, and
each WAV's data chunk is located); decoding, down-mixing and resampling run
in the tf.data graph: WAV samples read raw from the data chunk, FLAC / OGG
decoded and everything resampled with tensorflow-io (nothing of
tensorflow-io reaches exported models). A file that cannot be read or has
no pitch is an error naming it, or is skipped and counted with skip_bad.
"""

import csv
import json
import os
import re

import numpy as np
import tensorflow as tf

from gansynth_tf2.data import checks
from gansynth_tf2.data import nsynth_format
from gansynth_tf2.data import pitch as pitch_lib

AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.oga')
MANIFESTS = ('manifest.csv', 'manifest.json', 'examples.json')
_GENERIC_NAME = re.compile(r'^(?P<inst>.+)-(?P<pitch>\d{1,3})-(?P<vel>\d{1,3})$')

# Decoder ids of the in-graph decode switch. FLAC and OGG: tensorflow-io.
# WAV (RIFF or big-endian RIFX, plain or WAVE_FORMAT_EXTENSIBLE): its data
# chunk, located at scan time, read as raw samples (exact, every sample
# width; tensorflow-io decodes neither 32-bit PCM, double, RIFX, nor a WAV
# with an odd-sized chunk before the data: 0 samples).
FLAC16, FLAC24, VORBIS = range(3)
_DECODERS = {  # _decoder_key -> (decoder id, scale to [-1, 1])
    ('FLAC', 'PCM_16'): (FLAC16, 1.0 / 32768),
    ('FLAC', 'PCM_24'): (FLAC24, 2.0**-31),
    ('OGG', 'VORBIS'): (VORBIS, 1.0),
}
_RAW_IDS = {}  # decoder id -> (sample type, little endian, bytes per sample)
for _subtype, _kind, _width, _scale in (
    ('PCM_U8', 'uint8', 1, 1.0 / 128), ('PCM_16', 'int16', 2, 1.0 / 32768),
    ('PCM_24', 'int24', 3, 2.0**-31), ('PCM_32', 'int32', 4, 2.0**-31),
    ('FLOAT', 'float32', 4, 1.0), ('DOUBLE', 'float64', 8, 1.0)):
  for _little in (True, False):
    _id = 3 + len(_RAW_IDS)
    _RAW_IDS[_id] = (_kind, _little, _width)
    for _container in ('WAV', 'WAVEX'):
      _DECODERS[(_container, _subtype, _little)] = (_id, _scale)
del _subtype, _kind, _width, _scale, _little, _id, _container


def _decoder_key(info):
  """soundfile info -> key of _DECODERS."""
  if info.format in ('WAV', 'WAVEX'):
    return (info.format, info.subtype, info.endian != 'BIG')
  return (info.format, info.subtype)


_SPLITS = ('train', 'valid', 'test')
_NAME_KEYS = ('file', 'path', 'filename', 'audio', 'note_str', 'name')
_PITCH_KEYS = ('pitch', 'midi_pitch', 'midi')


def wav_data_chunk(path):
  """(byte offset, byte length) of a RIFF (or big-endian RIFX) WAVE file's
  'data' chunk; ValueError when there is none or the file is cut short."""
  with open(path, 'rb') as f:
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b'RIFF', b'RIFX') or (
        head[8:12] != b'WAVE'):
      raise ValueError('no RIFF/RIFX WAVE header')
    order = 'big' if head[:4] == b'RIFX' else 'little'
    size = os.fstat(f.fileno()).st_size
    while True:
      chunk = f.read(8)
      if len(chunk) < 8:
        raise ValueError('no data chunk in the WAV file')
      cid, n = chunk[:4], int.from_bytes(chunk[4:], order)
      if cid == b'data':
        rest = size - f.tell()
        if n in (0, 0xFFFFFFFF):  # size left open by a streaming writer
          return f.tell(), rest
        if n > rest:
          raise ValueError('truncated WAV file: its data chunk declares %d '
                           'bytes, the file holds %d' % (n, rest))
        return f.tell(), n
      f.seek(n + (n & 1), 1)  # chunks are word-aligned


def _read_manifest(folder):
  """(manifest path, [row dicts]) or (None, None)."""
  for name in MANIFESTS:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
      continue
    try:
      if name.endswith('.csv'):
        with open(path, newline='') as f:
          rows = [dict(r) for r in csv.DictReader(f)]
      else:
        with open(path) as f:
          data = json.load(f)
        if isinstance(data, dict):
          rows = [dict(v, note_str=k) if 'file' not in v else dict(v)
                  for k, v in data.items()]
        else:
          rows = [dict(r) for r in data]
    except (OSError, ValueError, TypeError, AttributeError) as e:
      raise ValueError('cannot read manifest %s: %s' % (path, e)) from None
    return path, rows
  return None, None


def _field(row, keys):
  for k in keys:
    if row.get(k) not in (None, ''):
      return row[k]
  return None


def _as_id(value, names, what, where):
  if value in (None, ''):
    return -1
  if isinstance(value, str) and not value.lstrip('-').isdigit():
    if value not in names:
      raise ValueError('%s: unknown %s %r' % (where, what, value))
    return names.index(value)
  return int(value)


def _range_error(meta):
  """Why a note's pitch / velocity is out of MIDI range, or None (a pitch
  None is still to be estimated)."""
  if meta['pitch'] is not None and not 0 <= meta['pitch'] <= 127:
    return 'pitch %d is not a MIDI pitch 0-127' % meta['pitch']
  if not 1 <= meta['velocity'] <= 127:
    return 'velocity %d is not a MIDI velocity 1-127' % meta['velocity']
  return None


def _file_index(files, folder):
  """({relative path: [path]}, {... without extension}, {stem: [path]})."""
  index = ({}, {}, {})
  for f in files:
    rel = os.path.relpath(f, folder)
    for table, key in ((0, rel), (1, os.path.splitext(rel)[0]),
                       (2, os.path.splitext(os.path.basename(rel))[0])):
      index[table].setdefault(key, []).append(f)
  return index


def _find_file(name, index):
  """A manifest's file name -> [matching paths] (one unless ambiguous).

  The path relative to the folder, else that path with any audio extension,
  else (a name without folder part) any file of that stem.
  """
  rel = os.path.normpath(name.replace('/', os.sep))
  stem = (os.path.splitext(rel)[0] if rel.lower().endswith(AUDIO_EXTENSIONS)
          else rel)
  found = index[0].get(rel) or index[1].get(stem)
  if not found and os.sep not in rel:
    found = index[2].get(stem)
  return found or []


def _meta_from_name(stem):
  meta = nsynth_format.parse_note_str(stem)
  if meta:
    return meta
  m = _GENERIC_NAME.match(stem)
  if m:
    return {'instrument_str': m.group('inst'), 'pitch': int(m.group('pitch')),
            'velocity': int(m.group('vel')), 'instrument_family': -1,
            'instrument_source': -1}
  return None


PITCH_TRACKERS = ('yin', 'crepe_tiny', 'pyin')


def _estimate_pitch(wave, sample_rate, tracker):
  """(MIDI pitch or None, 'ok' | 'silent' | 'unpitched') of a mono note.

  'yin' (or True): data.pitch.estimate_midi_pitch. 'crepe_tiny' / 'pyin'
  (eval.f0): the median f0 of the frames of confidence >= 0.5 in the note's
  first 3 s, unpitched when fewer than half of its sounding frames are.
  """
  if tracker in (True, 'yin'):
    found, verdict, _ = pitch_lib.estimate_midi_pitch(wave, sample_rate)
    return found, verdict
  from gansynth_tf2.eval import f0 as f0_lib  # pylint: disable=g-import-not-at-top
  wave = np.asarray(wave, np.float32)
  peak = float(np.max(np.abs(wave))) if wave.size else 0.0
  if peak <= 10.0 ** (pitch_lib.SILENCE_DB / 20.0):
    return None, 'silent'
  wave = wave[:int(3.0 * sample_rate)] / peak
  _, f0, conf, _ = f0_lib.track(wave[None], sample_rate, tracker, 0.02)
  voiced = (conf[0] >= 0.5) & (f0[0] > 0)
  if voiced.sum() < max(3, 0.5 * len(voiced)):
    return None, 'unpitched'
  return int(np.round(pitch_lib.hz_to_midi(np.median(f0[0][voiced])))), 'ok'


def scan_audio_folder(folder, split='train', skip_bad=False, stats=None,
                      estimate_pitch=False):
  """Python scan: [entry dict] for the files of `split` (None: all files).

  Each entry: path, sample_rate, channels, frames, decoder, scale, pitch,
  velocity, instrument, instrument_str, instrument_family, instrument_source,
  split (the manifest's, or None); `pitch_estimated` True where
  `estimate_pitch` gave the pitch (read from the audio: a file without a
  pitch in the manifest or its name). estimate_pitch: False, True or 'yin',
  'crepe_tiny' or 'pyin' (the f0 tracker).

  Raises:
    ValueError: a file is unreadable / unsupported / without pitch (or,
      with estimate_pitch, silent or unpitched), the manifest names a missing
      file or states another sample rate (unless skip_bad: then printed and
      counted in `stats`).
  """
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  if estimate_pitch not in (False, True) + PITCH_TRACKERS:
    raise ValueError('estimate_pitch must be False, True or one of %s, got %r'
                     % (PITCH_TRACKERS, estimate_pitch))
  folder = os.fspath(folder or '')
  if not os.path.isdir(folder):
    raise ValueError('audio folder %r does not exist' % folder)
  files = []
  for root, _, names in os.walk(folder):
    for n in sorted(names):
      if n.lower().endswith(AUDIO_EXTENSIONS) and not n.startswith('.'):
        files.append(os.path.join(root, n))
  files.sort()
  manifest, rows = _read_manifest(folder)
  index = _file_index(files, folder) if rows is not None else None
  problems = []

  def bad(reason, msg):
    if not skip_bad:
      raise ValueError(msg + checks._HINT)  # pylint: disable=protected-access
    print('gansynth data: skipping ' + msg, flush=True)
    problems.append(msg)
    if stats is not None:
      stats.add(reason, 1)

  pending = []  # (path, meta, stated rate)
  if rows is not None:
    has_split = any('split' in r for r in rows)
    if not has_split and split not in (None, 'train'):
      raise ValueError('manifest %s has no split column; all its files are '
                       'split "train"' % manifest)
    for i, row in enumerate(rows):
      where = '%s row %d' % (manifest, i + 1)
      row_split = str(row.get('split') or '')
      if has_split and row_split not in _SPLITS:
        bad(checks.MISSING_KEY, '%s: split must be train, valid or test on '
            'every row, got %r' % (where, row_split))
        continue
      if has_split and split is not None and row_split != split:
        continue
      name = _field(row, _NAME_KEYS)
      pitch = _field(row, _PITCH_KEYS)
      if name is None or (pitch is None and not estimate_pitch):
        bad(checks.MISSING_KEY, '%s: needs a file name (%s) and a pitch' %
            (where, '/'.join(_NAME_KEYS[:3])))
        continue
      name = str(name)
      found = _find_file(name, index)
      if len(found) != 1:
        bad(checks.UNREADABLE, '%s: audio file %r not found in %s' % (
            where, name, folder) if not found else
            '%s: file %r is ambiguous, it matches %s (give the path)' % (
                where, name, ', '.join(
                    os.path.relpath(f, folder) for f in found)))
        continue
      path = found[0]
      velocity = _field(row, ('velocity',))
      try:
        meta = {
            'pitch': int(pitch) if pitch is not None else None,
            'velocity': int(velocity) if velocity is not None else 100,
            'instrument_str': str(_field(row, ('instrument_str',)) or
                                  _field(row, ('instrument',)) or ''),
            'instrument_family': _as_id(
                _field(row, ('instrument_family', 'family')),
                nsynth_format.INSTRUMENT_FAMILIES, 'instrument family',
                where),
            'instrument_source': _as_id(
                _field(row, ('instrument_source', 'source')),
                nsynth_format.INSTRUMENT_SOURCES, 'instrument source',
                where),
        }
        meta['split'] = str(row['split']) if row.get('split') else None
        inst = _field(row, ('instrument',))
        if inst is not None and str(inst).lstrip('-').isdigit():
          meta['instrument'] = int(inst)
        rate = _field(row, ('sample_rate',))
        rate = int(rate) if rate is not None else None
      except ValueError as e:
        bad(checks.MISSING_KEY, '%s: %s' % (where, e))
        continue
      if _range_error(meta):
        bad(checks.MISSING_KEY, '%s: %s' % (where, _range_error(meta)))
        continue
      pending.append((path, meta, rate))
  else:
    if split not in (None, 'train'):
      raise ValueError('audio folder %s has no manifest with a split column;'
                       ' all its files are split "train"' % folder)
    for path in files:
      stem = os.path.splitext(os.path.basename(path))[0]
      meta = _meta_from_name(stem)
      if meta is None and estimate_pitch:
        inst = os.path.relpath(os.path.dirname(path), folder)
        meta = {'instrument_str': (os.path.basename(os.path.abspath(folder))
                                   if inst == '.' else
                                   inst.replace(os.sep, '/')),
                'pitch': None, 'velocity': 100, 'instrument_family': -1,
                'instrument_source': -1}
      if meta is None:
        bad(checks.MISSING_KEY, 'no pitch for %s: add it to a manifest.csv '
            '(file,pitch,...), name it <instrument>-<pitch>-<velocity>, or '
            'let gansynth-build-dataset --estimate_pitch read it from the '
            'audio' % path)
        continue
      if _range_error(meta):
        bad(checks.MISSING_KEY, '%s: %s' % (path, _range_error(meta)))
        continue
      meta['split'] = None
      pending.append((path, meta, None))
  names = sorted({m['instrument_str'] for _, m, _ in pending})
  entries = []
  for path, meta, stated_rate in pending:
    try:
      info = sf.info(path)
    except Exception as e:  # pylint: disable=broad-except
      bad(checks.UNREADABLE, 'cannot read audio file %s: %s' % (path, e))
      continue
    key = _decoder_key(info)
    if key not in _DECODERS:
      bad(checks.UNREADABLE, 'unsupported audio encoding %s/%s in %s (use '
          'WAV 8/16/24/32-bit or float/double, FLAC 16/24-bit, or OGG '
          'Vorbis)' % (info.format, info.subtype, path))
      continue
    if stated_rate is not None and stated_rate != info.samplerate:
      bad(checks.WRONG_RATE, 'manifest says sample_rate %d for %s, the file '
          'is %d Hz' % (stated_rate, path, info.samplerate))
      continue
    if meta['pitch'] is None:  # estimate_pitch
      try:
        wave, _ = sf.read(path, dtype='float32', always_2d=True)
      except Exception as ex:  # pylint: disable=broad-except
        bad(checks.UNREADABLE, 'cannot read audio file %s: %s' % (path, ex))
        continue
      found, verdict = _estimate_pitch(wave.mean(axis=1), info.samplerate,
                                       estimate_pitch)
      if found is None or not 0 <= found <= 127:
        bad(checks.MISSING_KEY, 'no pitch for %s: its audio is %s '
            '(estimate_pitch found no MIDI pitch)' % (
                path, verdict if found is None else 'out of MIDI range'))
        continue
      meta = dict(meta, pitch=found, pitch_estimated=True)
    decoder, scale = _DECODERS[key]
    offset = nbytes = 0
    if decoder in _RAW_IDS:
      try:
        offset, nbytes = wav_data_chunk(path)
      except (OSError, ValueError) as ex:
        bad(checks.UNREADABLE, 'cannot read audio file %s: %s' % (path, ex))
        continue
      frame = _RAW_IDS[decoder][2] * int(info.channels)
      nbytes -= nbytes % frame
    e = dict(meta, path=path, sample_rate=int(info.samplerate),
             channels=int(info.channels), frames=int(info.frames),
             decoder=decoder, scale=scale, offset=offset, nbytes=nbytes)
    e.setdefault('instrument', names.index(meta['instrument_str']))
    entries.append(e)
  if not entries:
    raise ValueError('no usable audio files in %s%s' % (
        folder, ' (%d skipped)' % len(problems) if problems else ''))
  return entries


_DELAYS = {}


def resampler_delay(rate_in, rate_out):
  """Output samples of delay that tensorflow-io's resampler adds (measured)."""
  from tensorflow_io.python.ops import core_ops  # pylint: disable=g-import-not-at-top
  key = (int(rate_in), int(rate_out))
  if key not in _DELAYS:
    n = int(rate_in)  # one second, impulse in the middle
    x = np.zeros([n, 1], np.float32)
    x[n // 2] = 1.0
    with tf.init_scope():
      y = core_ops.io_audio_resample(x, rate_in=np.int64(rate_in),
                                     rate_out=np.int64(rate_out)).numpy()
    peak = int(np.argmax(np.abs(y[:, 0])))
    _DELAYS[key] = max(peak - int(round(n // 2 * rate_out / rate_in)), 0)
  return _DELAYS[key]


def decode_audio(path, decoder, scale, offset=0, nbytes=0, channels=1):
  """File -> mono float32 [num_samples] (raw WAV or tensorflow-io decoders).

  offset / nbytes / channels: the data chunk of a WAV (raw decoders).
  """
  import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top
  data = tf.io.read_file(path)

  def as_float(x):
    return tf.cast(x, tf.float32)

  def raw(decoder_id):
    kind, little_endian, _ = _RAW_IDS[decoder_id]
    chunk = tf.strings.substr(data, tf.cast(offset, tf.int32),
                              tf.cast(nbytes, tf.int32))
    if kind == 'int24':  # 3 bytes -> the top 3 bytes of an int32
      b = tf.cast(tf.reshape(tf.io.decode_raw(chunk, tf.uint8), [-1, 3]),
                  tf.int32)
      lo, mid, hi = ((b[:, 0], b[:, 1], b[:, 2]) if little_endian
                     else (b[:, 2], b[:, 1], b[:, 0]))
      pcm = tf.bitwise.bitwise_or(
          tf.bitwise.bitwise_or(tf.bitwise.left_shift(lo, 8),
                                tf.bitwise.left_shift(mid, 16)),
          tf.bitwise.left_shift(hi, 24))
    else:
      pcm = tf.io.decode_raw(chunk, tf.as_dtype(kind),
                             little_endian=little_endian)
    pcm = as_float(tf.reshape(pcm, [-1, tf.cast(channels, tf.int32)]))
    return pcm - 128.0 if kind == 'uint8' else pcm

  branches = [
      lambda: as_float(tfio.audio.decode_flac(data, dtype=tf.int16)),
      lambda: as_float(tfio.audio.decode_flac(data, dtype=tf.int32)),
      lambda: tfio.audio.decode_vorbis(data),
  ] + [lambda i=i: raw(i) for i in sorted(_RAW_IDS)]  # ids 3.. in order
  audio = tf.switch_case(tf.cast(decoder, tf.int32), branches)
  audio = tf.reshape(audio, [tf.shape(audio)[0], -1])
  return tf.reduce_mean(audio, axis=1) * tf.cast(scale, tf.float32)


def resample(audio, rate_in, rate_out, delay):
  """[n] at rate_in -> [ceil(n * rate_out / rate_in)], delay removed."""
  from tensorflow_io.python.ops import core_ops  # pylint: disable=g-import-not-at-top
  rate_in = tf.cast(rate_in, tf.int64)
  rate_out = tf.cast(rate_out, tf.int64)
  n = tf.cast(tf.shape(audio)[0], tf.int64)
  n_out = (n * rate_out + rate_in - 1) // rate_in
  delay = tf.cast(delay, tf.int64)

  def convert():
    pad_in = (delay + 2) * rate_in // rate_out + 2
    x = tf.pad(audio, [[0, pad_in]])[:, None]
    y = core_ops.io_audio_resample(x, rate_in=rate_in, rate_out=rate_out)
    return y[delay:delay + n_out, 0]

  return tf.cond(tf.equal(rate_in, rate_out), lambda: audio, convert)


def audio_folder_elements(folder, audio_length, sample_rate, split='train',
                          num_shards=1, shard=0, shuffle_files=False,
                          seed=None, deterministic=True, skip_bad=False,
                          stats=None):
  """Checked example elements of an audio folder (see checks).

  Audio is decoded, down-mixed to mono, resampled to `sample_rate`, then
  padded to `audio_length` (longer audio is trimmed later); a file
  tensorflow-io cannot decode is reported by name.
  """
  entries = scan_audio_folder(folder, split, skip_bad, stats)
  entries = entries[shard::num_shards] if num_shards > 1 else entries
  if not entries:
    raise ValueError('audio folder %s: no files for input pipeline %d of %d'
                     % (folder, shard, num_shards))
  for e in entries:
    e['delay'] = resampler_delay(e['sample_rate'], sample_rate)
  cols = {k: [e[k] for e in entries] for k in (
      'path', 'decoder', 'scale', 'sample_rate', 'delay', 'pitch', 'velocity',
      'instrument', 'instrument_family', 'instrument_source', 'offset',
      'nbytes', 'channels')}
  cols['index'] = list(range(len(entries)))
  files_ds = tf.data.Dataset.from_tensor_slices(
      {k: tf.constant(v, tf.float32 if k == 'scale' else
                      (tf.string if k == 'path' else tf.int64))
       for k, v in cols.items()})
  if shuffle_files and len(entries) > 1:
    files_ds = files_ds.shuffle(len(entries), seed=seed,
                                reshuffle_each_iteration=True)

  def load(f):
    audio = decode_audio(f['path'], f['decoder'], f['scale'], f['offset'],
                         f['nbytes'], f['channels'])
    audio = resample(audio, f['sample_rate'], sample_rate, f['delay'])
    n = tf.shape(audio)[0]
    audio = tf.cond(n > 0, lambda: tf.pad(
        audio, [[0, tf.maximum(audio_length - n, 0)]]), lambda: audio)
    el = {'audio': audio}
    for k in nsynth_format.SCALAR_KEYS:
      el[k] = tf.cast(f[k], tf.int32)
    el.update(checks.default_extras(f['path'], f['index']))
    return checks.check_example(el, audio_length)

  def stream(f):
    # 0 or 1 decoded element, then an end marker that knows which.
    one = tf.data.Dataset.from_tensors(f).map(load).ignore_errors()
    marker = dict(checks.default_extras(f['path'], -1),
                  audio=tf.zeros([0], tf.float32),
                  **{k: tf.constant(0, tf.int32)
                     for k in nsynth_format.SCALAR_KEYS})
    both = one.concatenate(tf.data.Dataset.from_tensors(marker))

    def count(n, el):
      is_end = el['index'] < 0
      el = dict(el)
      failed = tf.logical_and(is_end, tf.equal(n, 0))
      el['lost'] = tf.where(failed, tf.constant(1, tf.int64), el['lost'])
      el['lost_reason'] = tf.where(failed, checks.UNREADABLE,
                                   el['lost_reason'])
      el['lost_detail'] = tf.where(
          failed, tf.constant('tensorflow-io cannot decode this audio file'),
          el['lost_detail'])
      return n + 1, el

    return both.scan(tf.constant(0, tf.int64), count)

  return files_ds.interleave(stream, cycle_length=4, block_length=1,
                             num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=deterministic)
