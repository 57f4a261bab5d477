"""Reading notes from NSynth-format TFRecords for evaluation and the classifier.

Only the keys evaluation needs are parsed: `audio` (float [num_samples]),
`pitch` (MIDI int64), and when present `sample_rate`, `instrument`. Files may be
plain or gzip-compressed TFRecords (detected from their first bytes).
"""

import os

import numpy as np
import tensorflow as tf

_GZIP_MAGIC = b'\x1f\x8b'


def list_files(pattern):
  """Files of `pattern`: a file, a glob, a comma list of those, or a folder.

  A folder gives every file in it whose name holds 'tfrecord'.

  Raises:
    ValueError: nothing matches, or a named file does not exist.
  """
  if not pattern:
    raise ValueError('no TFRecord path given')
  files = []
  for part in str(pattern).split(','):
    part = part.strip()
    if not part:
      continue
    if tf.io.gfile.isdir(part):
      found = sorted(f for f in tf.io.gfile.glob(os.path.join(part, '*'))
                     if 'tfrecord' in os.path.basename(f) and
                     not os.path.basename(f).startswith('.'))
    elif any(c in part for c in '*?['):
      found = sorted(f for f in tf.io.gfile.glob(part)
                     if not tf.io.gfile.isdir(f))
    else:
      if not tf.io.gfile.exists(part):
        raise ValueError('TFRecord file %s does not exist' % part)
      found = [part]
    if not found:
      raise ValueError('no TFRecord files match %s' % part)
    files.extend(found)
  return files


def _compression(path):
  with tf.io.gfile.GFile(path, 'rb') as f:
    return 'GZIP' if f.read(2) == _GZIP_MAGIC else ''


def _read_error(path, e):
  """ValueError naming `path` for a TensorFlow error reading it (a corrupt
  record, or a file that cannot be opened: a dangling link, no permission)."""
  what = ('corrupt TFRecord file' if isinstance(e, tf.errors.DataLossError)
          else 'cannot read TFRecord file')
  return ValueError('%s: %s: %s' % (path, what,
                                    e.message.splitlines()[0][:200]))


def _records(path):
  return tf.data.TFRecordDataset(path, compression_type=_compression(path),
                                 buffer_size=4 << 20)


def _parse_spec(with_audio):
  spec = {'pitch': tf.io.FixedLenFeature([], tf.int64),
          'sample_rate': tf.io.FixedLenFeature([], tf.int64, default_value=-1),
          'instrument': tf.io.FixedLenFeature([], tf.int64, default_value=-1)}
  if with_audio:
    spec['audio'] = tf.io.VarLenFeature(tf.float32)
  return spec


def _parse_batch(serialized, with_audio, path):
  try:
    return tf.io.parse_example(serialized, _parse_spec(with_audio))
  except tf.errors.InvalidArgumentError as e:
    raise ValueError('%s: records are not NSynth-format tf.train.Examples with'
                     ' an int64 `pitch` and float `audio`: %s' %
                     (path, e.message.splitlines()[0][:300])) from None


def _fix_audio(sparse, audio_length, path):
  """SparseTensor audio [B, ?] -> float32 [B, audio_length] (pad / trim)."""
  dense = tf.sparse.to_dense(sparse).numpy()
  lengths = np.bincount(sparse.indices[:, 0].numpy(),
                        minlength=dense.shape[0])
  if np.any(lengths == 0):
    raise ValueError('%s: a record has no audio' % path)
  out = np.zeros((dense.shape[0], audio_length), np.float32)
  n = min(audio_length, dense.shape[1])
  out[:, :n] = dense[:, :n]  # a shorter note is zero-padded
  if not np.all(np.isfinite(out)):
    raise ValueError('%s: audio holds NaN or Inf' % path)
  return out


def _check_rate(rates, sample_rate, path):
  bad = sorted(set(int(r) for r in rates if r >= 0 and r != sample_rate))
  if bad:
    raise ValueError('%s: sample_rate %s, expected %d' % (path, bad,
                                                          sample_rate))


def index_pitches(files, batch_size=256):
  """Pitch of every record: int64 [R] and its (file index, record index)."""
  pitches, where = [], []
  for fi, path in enumerate(files):
    try:
      ri = 0
      for batch in _records(path).batch(batch_size):
        p = _parse_batch(batch, False, path)['pitch'].numpy()
        pitches.append(p)
        where.extend((fi, ri + j) for j in range(len(p)))
        ri += len(p)
    except tf.errors.OpError as e:
      raise _read_error(path, e) from None
  if not pitches:
    return np.zeros([0], np.int64), []
  return np.concatenate(pitches), where


def iter_notes(pattern, batch_size=32, pitch_range=None, audio_length=64000,
               sample_rate=16000):
  """Streams every note of `pattern` in file order.

  Yields:
    dicts of numpy arrays: audio float32 [B, audio_length] (zero-padded or
    trimmed), pitch int32 [B], instrument int32 [B] (-1 when absent).
    Notes outside `pitch_range` (lo, hi inclusive) are skipped.
  """
  for path in list_files(pattern):
    try:
      for batch in _records(path).batch(batch_size):
        ex = _parse_batch(batch, True, path)
        _check_rate(ex['sample_rate'].numpy(), sample_rate, path)
        pitch = ex['pitch'].numpy().astype(np.int32)
        keep = np.ones(len(pitch), bool)
        if pitch_range is not None:
          keep = (pitch >= pitch_range[0]) & (pitch <= pitch_range[1])
        if not keep.any():
          continue
        audio = _fix_audio(ex['audio'], audio_length, path)
        yield {'audio': audio[keep], 'pitch': pitch[keep],
               'instrument': ex['instrument'].numpy().astype(np.int32)[keep]}
    except tf.errors.OpError as e:
      raise _read_error(path, e) from None


def read_notes(pattern, pitch_range=None, max_notes=None, seed=0,
               audio_length=64000, sample_rate=16000, pitches=None):
  """A uniformly random subset of the notes of `pattern` (all without max).

  Notes are kept when their pitch is within `pitch_range` (lo, hi inclusive)
  and, when `pitches` (a list of MIDI numbers) is given, one of `pitches`.

  Two passes: pitches of every record first, then the audio of the chosen
  ones, so that files ordered by instrument or pitch are sampled fairly.

  Returns:
    dict: audio float32 [N, audio_length], pitch int32 [N], instrument int32
    [N], in file order.

  Raises:
    ValueError: no files, unreadable records, wrong sample rate, or no note in
    `pitch_range`.
  """
  files = list_files(pattern)
  allowed = pitches
  record_pitches, where = index_pitches(files)
  ok = np.ones(len(record_pitches), bool)
  if pitch_range is not None:
    ok &= (record_pitches >= pitch_range[0]) & (record_pitches <=
                                                pitch_range[1])
  if allowed is not None:
    ok &= np.isin(record_pitches, np.asarray(list(allowed)))
  idx = np.flatnonzero(ok)
  if not len(idx):
    raise ValueError('no notes with the requested pitches in %s (%d records)'
                     % (pattern, len(record_pitches)))
  if max_notes is not None and len(idx) > max_notes:
    idx = np.sort(np.random.RandomState(seed).choice(idx, int(max_notes),
                                                     replace=False))
  chosen = {}
  for i in idx:
    chosen.setdefault(where[i][0], set()).add(where[i][1])
  out = {'audio': [], 'pitch': [], 'instrument': []}
  for fi, path in enumerate(files):
    want = chosen.get(fi)
    if not want:
      continue
    keep = tf.constant(sorted(want), tf.int64)

    def wanted(i, unused_record, keep=keep):
      return tf.reduce_any(tf.equal(i, keep))

    def record_only(unused_i, record):
      return record

    try:
      ds = _records(path).enumerate().filter(wanted).map(record_only)
      for batch in ds.batch(64):
        ex = _parse_batch(batch, True, path)
        _check_rate(ex['sample_rate'].numpy(), sample_rate, path)
        out['audio'].append(_fix_audio(ex['audio'], audio_length, path))
        out['pitch'].append(ex['pitch'].numpy().astype(np.int32))
        out['instrument'].append(ex['instrument'].numpy().astype(np.int32))
    except tf.errors.OpError as e:
      raise _read_error(path, e) from None
  return {k: np.concatenate(v) for k, v in out.items()}


def write_notes(path, audio, pitches, sample_rate=16000, instruments=None):
  """Writes notes as an NSynth-format TFRecord (for tests and small sets).

  Args:
    audio: float [N, T]. pitches: [N] MIDI. instruments: [N] or None.
  """
  from gansynth_tf2 import io_util  # pylint: disable=g-import-not-at-top
  audio = np.asarray(audio, np.float32)
  pitches = np.asarray(pitches).reshape(-1)
  if audio.ndim != 2 or audio.shape[0] != pitches.shape[0]:
    raise ValueError('audio [N, T] and pitches [N] must match')
  if instruments is None:
    instruments = np.zeros(len(pitches), np.int64)

  def i64(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

  with io_util.atomic_path(path) as tmp:
    with tf.io.TFRecordWriter(tmp) as w:
      for a, p, inst in zip(audio, pitches, instruments):
        feats = {'audio': tf.train.Feature(
                     float_list=tf.train.FloatList(value=a)),
                 'pitch': i64(p), 'velocity': i64(100),
                 'sample_rate': i64(sample_rate), 'instrument': i64(inst),
                 'note_str': tf.train.Feature(bytes_list=tf.train.BytesList(
                     value=[b'synthetic_%03d-%03d-100' % (inst, p)]))}
        w.write(tf.train.Example(features=tf.train.Features(
            feature=feats)).SerializeToString())
  return path
