"""Raw NSynth-format TFRecords (gzip or not) -> checked example elements.

Every file is read as its own stream so that problems are named by file and
record index:
  * a record that is not a tf.train.Example, or has a key of the wrong dtype,
    is dropped by the parser and found as a gap in the record indexes;
  * corrupt or truncated bytes end TF's reader early, which is found by
    comparing the bytes the records account for with the file's size (for
    gzip files: with the gzip trailer's uncompressed size);
  * missing keys, short audio, a wrong `sample_rate`, NaN audio: see checks.
"""

import os

import tensorflow as tf

from gansynth_tf2.data import checks
from gansynth_tf2.data import nsynth_format

_RECORD_OVERHEAD = 16  # length (8) + length crc (4) + data crc (4)
_READ_BUFFER = 4 << 20


def list_files(path, split='train'):
  """TFRecord files of `path`: a file, a glob, a comma list, or a folder.

  A folder gives its files whose name holds `split` and 'tfrecord'
  (e.g. nsynth-train.tfrecord, train-00000-of-00004.tfrecord.gz).

  Raises:
    ValueError: nothing matches.
  """
  if not path:
    raise ValueError('no TFRecord path given (set train_data_path)')
  files = []
  for part in str(path).split(','):
    part = part.strip()
    if tf.io.gfile.isdir(part):
      found = sorted(f for f in tf.io.gfile.glob(os.path.join(part, '*'))
                     if split in os.path.basename(f) and
                     'tfrecord' in os.path.basename(f) and
                     not os.path.basename(f).startswith('.'))
      if not found:
        raise ValueError('no *%s*tfrecord* files in folder %s' % (split, part))
      files.extend(found)
    elif any(c in part for c in '*?['):
      found = sorted(tf.io.gfile.glob(part))
      if not found:
        raise ValueError('no files match %s' % part)
      files.extend(found)
    else:
      files.append(part)
  return files


def file_info(path):
  """(compression '' or 'GZIP', expected uncompressed bytes, modulus).

  The byte count is what a healthy file's records add up to; for gzip it is
  the trailer's ISIZE, i.e. the size modulo 2**32 (the modulus returned).

  Raises:
    OSError: the file cannot be opened.
  """
  size = tf.io.gfile.stat(path).length
  with tf.io.gfile.GFile(path, 'rb') as f:
    head = f.read(2)
    if head == b'\x1f\x8b':
      f.seek(max(size - 4, 0))
      return 'GZIP', int.from_bytes(f.read(4), 'little'), 1 << 32
  return '', int(size), 0


def _glob_escape(path):
  """`path` as a pattern that matches only itself (fnmatch escapes)."""
  return tf.strings.regex_replace(path, r'([\\*?\[])', r'\\\1')


def _exists(path):
  """bool scalar tensor: the file `path` (string tensor) exists now."""
  return tf.greater(tf.size(tf.io.matching_files(_glob_escape(path))), 0)


def _parse(serialized):
  """Record -> {key: values [n]} (empty when missing); raises only when it
  is no Example or a key has another dtype."""
  spec = {'audio': tf.io.VarLenFeature(tf.float32),
          'sample_rate': tf.io.VarLenFeature(tf.int64)}
  for k in nsynth_format.SCALAR_KEYS:
    spec[k] = tf.io.VarLenFeature(tf.int64)
  feats = tf.io.parse_single_example(serialized, spec)
  values = {k: v.values for k, v in feats.items()}
  return values


def _file_stream(path, compression, expected, modulus, num_shards, shard,
                 audio_length, sample_rate):
  """One file -> checked elements + one end-of-file marker (index -1)."""
  path = tf.convert_to_tensor(path, tf.string)
  expected = tf.convert_to_tensor(expected, tf.int64)
  modulus = tf.convert_to_tensor(modulus, tf.int64)
  # TF's reader does not move past a file it cannot open: under
  # ignore_errors it would retry it forever (a file removed or replaced
  # after the listing, e.g. by rebuilding the dataset while training, hung
  # the pipeline). So the file is looked up each time it is opened; a gone
  # file reads as no records and is reported at the end marker.
  raw = tf.data.Dataset.from_tensors(path).filter(_exists).flat_map(
      lambda p: tf.data.TFRecordDataset(p, compression_type=compression,
                                        buffer_size=_READ_BUFFER))
  # Corruption ends the stream (TF's reader gives up on the file); detected
  # at the end marker from the byte count.
  raw = raw.ignore_errors().enumerate()
  end = tf.data.Dataset.from_tensors((tf.constant(-1, tf.int64),
                                      tf.constant('', tf.string)))

  def count(state, elem):
    i, rec = elem
    nread, nbytes = state
    is_rec = i >= 0
    size = tf.cast(tf.strings.length(rec), tf.int64) + _RECORD_OVERHEAD
    nbytes += tf.where(is_rec, size, tf.constant(0, tf.int64))
    nread += tf.cast(is_rec, tf.int64)
    return (nread, nbytes), (i, rec, nread, nbytes)

  zero = tf.constant(0, tf.int64)
  stream = raw.concatenate(end).scan((zero, zero), count)
  if num_shards > 1:
    stream = stream.filter(
        lambda i, r, n, b: tf.logical_or(i < 0, i % num_shards == shard))
  # Order matters for the gap scan below: deterministic even when the
  # pipeline is not (this overrides tf.data.Options.deterministic).
  stream = stream.map(lambda i, r, n, b: (i, n, b, _parse(r)),
                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  # At the end marker: is the file still there?
  stream = stream.map(lambda i, n, b, v: (i, n, b, v, tf.cond(
      i < 0, lambda: tf.logical_not(_exists(path)),
      lambda: tf.constant(False))))
  # Records that are no Example (or hold a key of the wrong dtype) fail to
  # parse: dropped here, found below as a gap in the indexes.
  stream = stream.ignore_errors()

  def gaps(expected_next, elem):
    i, nread, nbytes, values, gone = elem
    is_end = i < 0
    # Index this element should have had; at the end: the first index past
    # the last record read that belongs to this shard.
    last = tf.where(is_end, nread, i)
    lost = tf.maximum((last - expected_next + num_shards - 1) // num_shards,
                      zero)
    which = tf.where(
        last - expected_next <= num_shards,
        tf.strings.format('record {}', expected_next),
        tf.strings.format('records {} to {}', (expected_next, last - 1)))
    lost_detail = which + (' could not be parsed as tf.train.Example with '
                           'NSynth keys (wrong dtype or not an Example)')
    new_next = tf.where(is_end, expected_next, i + num_shards)
    return new_next, (i, nread, nbytes, values, lost, lost_detail, gone)

  stream = stream.scan(tf.constant(shard, tf.int64), gaps)

  def to_element(i, nread, nbytes, values, lost, lost_detail, gone):
    el = {'audio': values['audio']}
    present = {}
    for k in nsynth_format.SCALAR_KEYS:
      v = values[k]
      present[k] = tf.equal(tf.size(v), 1)
      el[k] = tf.cast(tf.reshape(tf.pad(v, [[0, 1]])[:1], []), tf.int32)
    present['audio'] = tf.size(values['audio']) > 0
    el.update(checks.default_extras(path, i))
    el['lost'] = lost
    el['lost_reason'] = tf.constant(checks.UNPARSEABLE, tf.int32)
    el['lost_detail'] = lost_detail
    # At the end marker: do the records' bytes add up to the file size?
    total = tf.where(modulus > 0, nbytes % tf.maximum(modulus, 1), nbytes)
    corrupt = tf.logical_and(i < 0, tf.not_equal(total, expected))
    corrupt_detail = tf.strings.format(
        'corrupt or truncated data at record {}: the {} records before it '
        'hold {} bytes, the file has {}{} (records after it are lost)',
        (nread, nread, total, expected,
         tf.where(modulus > 0, ' uncompressed, mod 2^32', '')))
    el['lost'] = tf.where(corrupt, tf.maximum(lost, 1), el['lost'])
    el['lost_reason'] = tf.where(corrupt, checks.CORRUPT, el['lost_reason'])
    el['lost_detail'] = tf.where(
        corrupt, tf.where(lost > 0, lost_detail + '; ' + corrupt_detail,
                          corrupt_detail), el['lost_detail'])
    gone_detail = tf.strings.format(
        'the file is gone (removed or moved after the training data was '
        'listed; {} records were read from it this pass)', nread)
    el['lost'] = tf.where(gone, tf.maximum(lost, 1), el['lost'])
    el['lost_reason'] = tf.where(gone, checks.UNREADABLE, el['lost_reason'])
    el['lost_detail'] = tf.where(gone, gone_detail, el['lost_detail'])
    rate = values['sample_rate']
    has_rate = tf.equal(tf.size(rate), 1)
    rate = tf.where(has_rate, tf.reshape(tf.pad(rate, [[0, 1]])[:1], []),
                    tf.constant(sample_rate, tf.int64))
    return checks.check_example(
        el, audio_length, rates=(rate, tf.constant(sample_rate, tf.int64)),
        present=present)

  return stream.map(to_element)


def nsynth_tfrecord_elements(path, audio_length, sample_rate, split='train',
                             num_shards=1, shard=0, shuffle_files=False,
                             seed=None, deterministic=True, skip_bad=False,
                             stats=None):
  """Checked example elements of raw NSynth TFRecords.

  Args:
    path: file, glob, comma list or folder (see `list_files`).
    audio_length: samples each example needs (longer audio is trimmed later).
    sample_rate: the config's rate; a record's `sample_rate` must match.
    split: which files of a folder.
    num_shards, shard: this input pipeline's share (files when there are
      enough of them, else records).
    shuffle_files: reshuffle the file order on every pass.
    skip_bad: count unreadable files instead of raising.

  Returns:
    tf.data.Dataset of checked elements (see checks), not yet handled.
  """
  files = list_files(path, split)
  infos = []
  kept = []
  for f in files:
    try:
      infos.append(file_info(f))
      kept.append(f)
    except (OSError, tf.errors.OpError) as e:
      msg = 'cannot read TFRecord file %s: %s' % (f, getattr(e, 'message', e))
      if not skip_bad:
        raise ValueError(msg + checks._HINT) from None  # pylint: disable=protected-access
      print('gansynth data: skipping ' + msg, flush=True)
      if stats is not None:
        stats.add(checks.UNREADABLE, 1)
  if not kept:
    raise ValueError('no readable TFRecord files in %s' % path)
  record_shards, record_shard = num_shards, shard
  if num_shards > 1 and len(kept) >= num_shards:
    kept, infos = kept[shard::num_shards], infos[shard::num_shards]
    record_shards, record_shard = 1, 0
  comp = [c for c, _, _ in infos]
  exp = [e for _, e, _ in infos]
  mod = [m for _, _, m in infos]
  files_ds = tf.data.Dataset.from_tensor_slices(
      (kept, comp, tf.constant(exp, tf.int64), tf.constant(mod, tf.int64)))
  if shuffle_files and len(kept) > 1:
    files_ds = files_ds.shuffle(len(kept), seed=seed,
                                reshuffle_each_iteration=True)

  def stream(f, c, e, m):
    return _file_stream(f, c, e, m, record_shards, record_shard,
                        audio_length, sample_rate)

  if len(kept) == 1:
    return stream(*[t[0] for t in (kept, comp, exp, mod)])
  return files_ds.interleave(stream, cycle_length=min(len(kept), 8),
                             block_length=1,
                             num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=deterministic)
