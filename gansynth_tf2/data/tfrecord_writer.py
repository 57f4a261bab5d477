"""Writes NSynth-format TFRecords in shards: <prefix>-<split>.tfrecord-i-of-n.

Files are written under temporary names and renamed when the writer closes
without error, so a crash leaves no file that looks complete. Examples go
round-robin over `num_shards` shards; with fewer examples than shards the
empty shards are dropped and the names carry the real count.
"""

import os

import tensorflow as tf


def shard_name(prefix, split, index, count, compression=''):
  suffix = '.gz' if compression == 'GZIP' else ''
  return '%s-%s.tfrecord-%05d-of-%05d%s' % (prefix, split, index, count,
                                            suffix)


class ShardedTFRecordWriter:
  """Round-robin writer of serialized records into `folder`.

  Usage:
    with ShardedTFRecordWriter(folder, 'train', num_shards=4) as w:
      w.write(example.SerializeToString())
    w.paths  # the final file names
  """

  def __init__(self, folder, split, num_shards=1, prefix='nsynth',
               compression=''):
    if num_shards < 1:
      raise ValueError('num_shards must be >= 1, got %r' % num_shards)
    self.folder = os.fspath(folder)
    self.split = split
    self.prefix = prefix
    self.compression = compression
    self.num_shards = int(num_shards)
    self.count = 0
    self.counts = [0] * self.num_shards
    self.paths = []
    tf.io.gfile.makedirs(self.folder)
    self._tmp = [os.path.join(self.folder, '.%s-%s.%05d.tmp' % (prefix, split,
                                                                 i))
                 for i in range(self.num_shards)]
    options = tf.io.TFRecordOptions(compression_type=compression or None)
    self._writers = [tf.io.TFRecordWriter(p, options) for p in self._tmp]

  def write(self, serialized):
    i = self.count % self.num_shards
    self._writers[i].write(serialized)
    self.counts[i] += 1
    self.count += 1

  def close(self, commit=True):
    for w in self._writers:
      w.close()
    self._writers = []
    kept = [i for i in range(self.num_shards) if self.counts[i]]
    if not commit:
      kept = []
    for i, tmp in enumerate(self._tmp):
      if i not in kept:
        tf.io.gfile.remove(tmp)
    self.paths = []
    for j, i in enumerate(kept):
      path = os.path.join(self.folder, shard_name(self.prefix, self.split, j,
                                                  len(kept),
                                                  self.compression))
      tf.io.gfile.rename(self._tmp[i], path, overwrite=True)
      self.paths.append(path)
    return self.paths

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if self._writers:
      self.close(commit=exc_type is None)
    return False


def write_nsynth_tfrecord(path, examples, compression=''):
  """Writes `tf.train.Example`s (or serialized bytes) to one file, atomically."""
  from gansynth_tf2 import io_util  # pylint: disable=g-import-not-at-top
  options = tf.io.TFRecordOptions(compression_type=compression or None)
  n = 0
  with io_util.atomic_path(path) as tmp:
    with tf.io.TFRecordWriter(tmp, options) as w:
      for ex in examples:
        w.write(ex if isinstance(ex, bytes) else ex.SerializeToString())
        n += 1
  return n
