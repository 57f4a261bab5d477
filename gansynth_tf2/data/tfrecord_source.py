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
    if not part:
      continue
    if tf.io.gfile.isdir(part):
      # listdir, not glob: a folder named e.g. data[1] is no pattern.
      found = sorted(os.path.join(part, n.rstrip('/'))
                     for n in tf.io.gfile.listdir(part)
                     if split in n and 'tfrecord' in n and
                     not n.startswith('.'))
      if not found:
        raise ValueError('no *%s*tfrecord* files in folder %s' % (split, part))
      files.extend(found)
    elif any(c in part for c in '*?[') and not tf.io.gfile.exists(part):
      # An existing path is used as is (e.g. .../data[1]/x.tfrecord): glob
      # would read its [1] as a character class.
      folder, name = os.path.split(part)
      if folder and tf.io.gfile.isdir(folder):
        # The folder exists as written: its [ ] are literal, not a class.
        folder = _glob_escape(folder).numpy().decode()
      found = sorted(tf.io.gfile.glob(os.path.join(folder, name)))
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


def _opens(path):
  """Dataset of one bool: `path` (string tensor) can be opened and read now.

  TF's reader does not move past a file it cannot open: under ignore_errors
  it retries it forever. The probe reads one byte in a map, whose error
  only drops that element (gone, permission denied, a folder).
  """
  def probe(p):
    return tf.data.FixedLengthRecordDataset(p, 1, buffer_size=1).take(
        1).reduce(tf.constant(True), lambda ok, _: ok)

  return tf.data.Dataset.from_tensors(path).map(probe).ignore_errors(
  ).concatenate(tf.data.Dataset.from_tensors(tf.constant(False))).take(1)


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


def _nsynth_fields(sample_rate):
  """values of `_parse` -> (example fields, present, rates) for checks."""
  def fields(values):
    el = {'audio': values['audio']}
    present = {}
    for k in nsynth_format.SCALAR_KEYS:
      v = values[k]
      present[k] = tf.equal(tf.size(v), 1)
      el[k] = tf.cast(tf.reshape(tf.pad(v, [[0, 1]])[:1], []), tf.int32)
    present['audio'] = tf.size(values['audio']) > 0
    rate = values['sample_rate']
    has_rate = tf.equal(tf.size(rate), 1)
    rate = tf.where(has_rate, tf.reshape(tf.pad(rate, [[0, 1]])[:1], []),
                    tf.constant(sample_rate, tf.int64))
    return el, present, (rate, tf.constant(sample_rate, tf.int64))

  return fields


def _blank_values(parse):
  """A function making zeros shaped like `parse`'s output (None dims: 0)."""
  out = tf.function(parse).get_concrete_function(
      tf.TensorSpec([], tf.string)).structured_outputs

  def blank():
    return tf.nest.map_structure(
        lambda t: tf.zeros([d or 0 for d in t.shape.as_list()] if
                           t.shape.rank is not None else [0], t.dtype), out)

  return blank


def _file_stream(path, compression, expected, modulus, records, num_shards,
                 shard, audio_length, parse, fields):
  """One file -> checked elements + one end-of-file marker (index -1).

  `parse` (serialized record -> values; may raise: the record is then
  reported as unparseable) and `fields` (values -> (example fields,
  present or None, rates or None), see checks.check_example) read a record;
  `records` is the file's record count, -1 when unknown.
  """
  path = tf.convert_to_tensor(path, tf.string)
  expected = tf.convert_to_tensor(expected, tf.int64)
  modulus = tf.convert_to_tensor(modulus, tf.int64)
  records = tf.convert_to_tensor(records, tf.int64)

  # The file is probed each time it is opened (see _opens): a file removed,
  # replaced or made unreadable after the listing (e.g. by rebuilding the
  # dataset while training) reads as no records and is reported at the end
  # marker, instead of hanging the pipeline.
  def read(opened):
    raw = tf.data.TFRecordDataset(path, compression_type=compression,
                                  buffer_size=_READ_BUFFER)
    raw = raw.take(tf.where(opened, tf.constant(-1, tf.int64), 0))
    # Corruption ends the stream (TF's reader gives up on the file);
    # detected at the end marker from the byte count.
    raw = raw.ignore_errors().enumerate().map(lambda i, r: (i, r, opened))
    return raw.concatenate(tf.data.Dataset.from_tensors(
        (tf.constant(-1, tf.int64), tf.constant('', tf.string), opened)))

  def count(state, elem):
    i, rec, opened = elem
    nread, nbytes = state
    is_rec = i >= 0
    size = tf.cast(tf.strings.length(rec), tf.int64) + _RECORD_OVERHEAD
    nbytes += tf.where(is_rec, size, tf.constant(0, tf.int64))
    nread += tf.cast(is_rec, tf.int64)
    return (nread, nbytes), (i, rec, nread, nbytes, opened)

  zero = tf.constant(0, tf.int64)
  stream = _opens(path).flat_map(read).scan((zero, zero), count)
  if num_shards > 1:
    stream = stream.filter(
        lambda i, r, n, b, o: tf.logical_or(i < 0, i % num_shards == shard))
  # Order matters for the gap scan below: deterministic even when the
  # pipeline is not (this overrides tf.data.Options.deterministic).
  # The end marker is not parsed (its blank record may not parse).
  blank = _blank_values(parse)
  stream = stream.map(
      lambda i, r, n, b, o: (i, n, b, tf.cond(i >= 0, lambda: parse(r),
                                              blank), o),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  # Records that are no Example (or hold a key of the wrong dtype) fail to
  # parse: dropped here, found below as a gap in the indexes.
  stream = stream.ignore_errors()

  def gaps(expected_next, elem):
    i, nread, nbytes, values, opened = elem
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
    return new_next, (i, nread, nbytes, values, lost, lost_detail, opened)

  stream = stream.scan(tf.constant(shard, tf.int64), gaps)

  def _owned(x):
    """How many of the record indexes [0, x) this pipeline reads."""
    if num_shards == 1:
      return x
    return tf.maximum((x - shard + num_shards - 1) // num_shards, 0)

  def to_element(i, nread, nbytes, values, lost, lost_detail, opened):
    el, present, rates = fields(values)
    el.update(checks.default_extras(path, i))
    el['lost'] = lost
    el['lost_reason'] = tf.constant(checks.UNPARSEABLE, tf.int32)
    el['lost_detail'] = lost_detail
    # At the end marker: do the records' bytes add up to the file size, and
    # (when known) are all its records there?
    total = tf.where(modulus > 0, nbytes % tf.maximum(modulus, 1), nbytes)
    corrupt = tf.logical_and(i < 0, tf.not_equal(total, expected))
    corrupt_detail = tf.strings.join([tf.strings.format(
        'corrupt or truncated data at record {}: the {} records before it '
        'hold {} bytes, the file has {}', (nread, nread, total, expected)),
                                      tf.where(modulus > 0,
                                               ' uncompressed, mod 2^32', ''),
                                      ' (records after it are lost)'])
    short = tf.logical_and(tf.logical_and(i < 0, records >= 0),
                           tf.not_equal(nread, records))
    short_detail = tf.strings.format(
        'the file holds {} records, its dataset lists {} (truncated or '
        'replaced)', (nread, records))
    corrupt_detail = tf.where(corrupt, corrupt_detail, short_detail)
    # Counted once over the pipelines that share the file's records: each
    # counts its own missing indexes; with none known missing, the one that
    # owns record `nread` counts 1.
    missing = tf.where(records > nread, _owned(records) - _owned(nread),
                       tf.cast(tf.equal(nread % num_shards, shard), tf.int64))
    corrupt = tf.logical_and(tf.logical_or(corrupt, short), missing > 0)
    el['lost'] = tf.where(corrupt, tf.maximum(lost, missing), el['lost'])
    el['lost_reason'] = tf.where(corrupt, checks.CORRUPT, el['lost_reason'])
    el['lost_detail'] = tf.where(
        corrupt, tf.where(lost > 0, lost_detail + '; ' + corrupt_detail,
                          corrupt_detail), el['lost_detail'])
    # At the end marker: could the file be opened at all this pass?
    unopened = tf.logical_and(i < 0, tf.logical_not(opened))
    gone_detail = tf.cond(
        unopened, lambda: tf.where(
            _exists(path),
            'the file cannot be opened now (made unreadable or replaced by '
            'a folder after the training data was listed)',
            'the file is gone (removed or moved after the training data was '
            'listed)'), lambda: tf.constant(''))
    unopened_lost = tf.where(records > 0, _owned(records),
                             tf.constant(int(shard == 0), tf.int64))
    unopened = tf.logical_and(unopened, unopened_lost > 0)
    el['lost'] = tf.where(unopened, unopened_lost, el['lost'])
    el['lost_reason'] = tf.where(unopened, checks.UNREADABLE,
                                 el['lost_reason'])
    el['lost_detail'] = tf.where(unopened, gone_detail, el['lost_detail'])
    return checks.check_example(el, audio_length, rates=rates,
                                present=present)

  return stream.map(to_element)


def tfrecord_elements(files, audio_length, parse, fields, records=None,
                      num_shards=1, shard=0, shuffle_files=False, seed=None,
                      deterministic=True, skip_bad=False, stats=None,
                      where=None):
  """Checked example elements of TFRecord `files` (see `_file_stream`).

  Args:
    files: TFRecord files, gzip or not.
    audio_length: samples each example needs (longer audio is trimmed later).
    parse, fields: read a record (see `_file_stream`).
    records: optional record count of each file (a shorter file is bad).
    where: what the files were listed from, for errors (default: a file).
    num_shards, shard: this input pipeline's share (files when there are
      enough of them, else records).
    shuffle_files: reshuffle the file order on every pass.
    skip_bad: count unreadable files instead of raising.

  Returns:
    tf.data.Dataset of checked elements (see checks), not yet handled.
  """
  if records is None:
    records = [-1] * len(files)
  infos = []
  kept = []
  for f, n in zip(files, records):
    try:
      infos.append(file_info(f) + (n,))
      kept.append(f)
    except (OSError, tf.errors.OpError) as e:
      msg = 'cannot read TFRecord file %s: %s' % (
          f, ' '.join(str(getattr(e, 'message', e)).split()))
      if not skip_bad:
        raise ValueError(msg + checks._HINT) from None  # pylint: disable=protected-access
      print('gansynth data: skipping ' + msg, flush=True)
      if stats is not None:
        stats.add(checks.UNREADABLE, 1)
  if not kept:
    raise ValueError('no readable TFRecord files in %s (%d listed)' % (
        where or files[0], len(files)))
  record_shards, record_shard = num_shards, shard
  if num_shards > 1 and len(kept) >= num_shards:
    kept, infos = kept[shard::num_shards], infos[shard::num_shards]
    record_shards, record_shard = 1, 0
  comp, exp, mod, num = [list(t) for t in zip(*infos)]
  files_ds = tf.data.Dataset.from_tensor_slices(
      (kept, comp, tf.constant(exp, tf.int64), tf.constant(mod, tf.int64),
       tf.constant(num, tf.int64)))
  if shuffle_files and len(kept) > 1:
    files_ds = files_ds.shuffle(len(kept), seed=seed,
                                reshuffle_each_iteration=True)

  def stream(f, c, e, m, n):
    return _file_stream(f, c, e, m, n, record_shards, record_shard,
                        audio_length, parse, fields)

  if len(kept) == 1:
    return stream(*[t[0] for t in (kept, comp, exp, mod, num)])
  return files_ds.interleave(stream, cycle_length=min(len(kept), 8),
                             block_length=1,
                             num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=deterministic)


def nsynth_tfrecord_elements(path, audio_length, sample_rate, split='train',
                             num_shards=1, shard=0, shuffle_files=False,
                             seed=None, deterministic=True, skip_bad=False,
                             stats=None):
  """Checked example elements of raw NSynth TFRecords.

  Args: as `tfrecord_elements`, and
    path: file, glob, comma list or folder (see `list_files`).
    sample_rate: the config's rate; a record's `sample_rate` must match.
    split: which files of a folder.
  """
  return tfrecord_elements(
      list_files(path, split), audio_length, _parse,
      _nsynth_fields(sample_rate), num_shards=num_shards, shard=shard,
      shuffle_files=shuffle_files, seed=seed, deterministic=deterministic,
      skip_bad=skip_bad, stats=stats, where=path)
