"""TFDS `nsynth` (gansynth_subset, full, ...) prepared in a data dir -> elements.

The prepared folder is opened with `tfds.builder_from_directory`, so any
prepared nsynth config/version works without downloading and without
Apache Beam. Its shard files are read like raw TFRecords (tfrecord_source:
each file its own stream, corrupt / truncated / vanished files named by file
and record, its record count checked against dataset_info.json) and decoded
by TFDS's features; each example is checked for audio length / NaN (see
checks), and the dataset's audio sample rate must equal the config's.
"""

import os

import tensorflow as tf

from gansynth_tf2.data import tfrecord_source

_PREFERRED = ('gansynth_subset', 'full')


def _version_key(name):
  try:
    return tuple(int(p) for p in name.split('.'))
  except ValueError:
    return (-1,)


def _subdirs(folder):
  if not tf.io.gfile.isdir(folder):
    return []
  return [n.rstrip('/') for n in tf.io.gfile.listdir(folder)
          if tf.io.gfile.isdir(os.path.join(folder, n))]


def find_prepared_dir(data_dir, name=None):
  """The folder holding dataset_info.json of a prepared nsynth config.

  Args:
    data_dir: a TFDS data_dir (holding nsynth/), the nsynth/ folder, a config
      folder or the version folder itself.
    name: 'nsynth/<config>' or '<config>' (optionally ':<version>') to pick;
      default gansynth_subset, then full, then any prepared config.

  Raises:
    ValueError: nothing prepared there.
  """
  if not data_dir:
    raise ValueError('no TFDS data dir given (set tfds_data_dir)')
  data_dir = os.fspath(data_dir)
  if tf.io.gfile.exists(os.path.join(data_dir, 'dataset_info.json')):
    return data_dir
  root = data_dir
  if tf.io.gfile.isdir(os.path.join(data_dir, 'nsynth')):
    root = os.path.join(data_dir, 'nsynth')
  want_config, want_version = None, None
  if name:
    spec = name.split('/', 1)[-1]
    want_config, _, want_version = spec.partition(':')
  found = []
  # listdir, not glob: a data dir named e.g. data[1] is no pattern.
  infos = []
  for config in sorted(_subdirs(root)):
    for version in sorted(_subdirs(os.path.join(root, config))):
      version_dir = os.path.join(root, config, version)
      if tf.io.gfile.exists(os.path.join(version_dir, 'dataset_info.json')):
        infos.append((config, version, version_dir))
  for config, version, version_dir in infos:
    if want_config and config != want_config:
      continue
    if want_version and want_version not in ('*', version) and not (
        want_version.endswith('*') and version.startswith(
            want_version.rstrip('*'))):
      continue
    found.append((config, version, version_dir))
  if not found:
    raise ValueError('no prepared TFDS nsynth%s in %s (expected '
                     '<data_dir>/nsynth/<config>/<version>/dataset_info.json)'
                     % ('/' + name if name else '', data_dir))

  def rank(item):
    config, version, _ = item
    pref = (_PREFERRED.index(config) if config in _PREFERRED
            else len(_PREFERRED))
    return (pref, tuple(-v for v in _version_key(version)))

  return sorted(found, key=rank)[0][2]


def nsynth_tfds_elements(data_dir, audio_length, sample_rate, split='train',
                         name=None, num_shards=1, shard=0,
                         shuffle_files=False, seed=None, deterministic=True,
                         skip_bad=False, stats=None):
  """Checked example elements of a prepared TFDS nsynth split.

  Args: as tfrecord_source.nsynth_tfrecord_elements, with `data_dir` and
    `name` as `find_prepared_dir`.

  Returns:
    tf.data.Dataset of checked elements (see checks).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  folder = find_prepared_dir(data_dir, name)
  try:
    builder = tfds.builder_from_directory(folder)
  except Exception as e:  # pylint: disable=broad-except
    # e.g. a half-copied dataset_info.json (protobuf ParseError), files of
    # an old TFDS: one line, not a traceback.
    raise ValueError('cannot read the prepared TFDS dataset in %s: %s: %s' %
                     (folder, type(e).__name__, ' '.join(str(e).split())
                      )) from None
  rate = getattr(builder.info.features['audio'], 'sample_rate', None)
  if rate is not None and int(rate) != int(sample_rate):
    raise ValueError('TFDS %s has audio at %d Hz, the config needs '
                     'sample_rate %d' % (folder, rate, sample_rate))
  if split not in builder.info.splits:
    raise ValueError('TFDS %s has no split %r (it has %s)' %
                     (folder, split, sorted(builder.info.splits)))
  split_info = builder.info.splits[split]
  # A partly copied dir: TF's reader would fail late (a NotFoundError), and
  # under ignore_errors (skip_bad) retry the missing file forever.
  paths = [os.fspath(p) for p in split_info.filepaths]
  missing = [p for p in paths if not tf.io.gfile.exists(p)]
  if missing:
    raise ValueError(
        'TFDS %s is incomplete: %d of the %d files of split %r are missing '
        '(e.g. %s); copy the whole prepared folder (tfds build '
        'nsynth/gansynth_subset writes it)' %
        (folder, len(missing), len(paths), split, missing[0]))
  fmt = getattr(builder.info, 'file_format', None)
  fmt = getattr(fmt, 'value', fmt)
  if fmt not in (None, 'tfrecord'):
    raise ValueError('TFDS %s holds %s files; only tfrecord is read (tfds '
                     'build --file_format=tfrecord)' % (folder, fmt))
  # The shard files are read as TFRecords, each as its own stream (see
  # tfrecord_source): a corrupt or truncated shard, or one removed or made
  # unreadable while training, is named with its record index (or skipped
  # and counted) instead of TF's bare "corrupted record at N" or a reader
  # that retries it forever.
  lengths = list(split_info.shard_lengths or [])
  features = builder.info.features

  def fields(ex):
    inst = ex['instrument']
    el = {'audio': tf.reshape(tf.cast(ex['audio'], tf.float32), [-1]),
          'pitch': tf.cast(ex['pitch'], tf.int32),
          'velocity': tf.cast(ex['velocity'], tf.int32),
          'instrument': tf.cast(inst['label'], tf.int32),
          'instrument_family': tf.cast(inst['family'], tf.int32),
          'instrument_source': tf.cast(inst['source'], tf.int32)}
    return el, None, None

  return tfrecord_source.tfrecord_elements(
      paths, audio_length, features.deserialize_example, fields,
      records=lengths if len(lengths) == len(paths) else None,
      num_shards=num_shards, shard=shard, shuffle_files=shuffle_files,
      seed=seed, deterministic=deterministic, skip_bad=skip_bad, stats=stats,
      where='TFDS %s[%s]' % (folder, split))
