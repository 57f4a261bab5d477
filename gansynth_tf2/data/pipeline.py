"""The training input pipeline: source -> checks -> filters -> waves -> batches.

  load_examples(config, ...)  -> {audio [audio_length] float32, pitch int32,
                                  velocity, instrument, instrument_family,
                                  instrument_source (int32 scalars)}
  build_train_dataset(config, batch_size, seed, input_context)
                              -> (normalized specgrams float32 [B, H, W, C],
                                  one-hot pitch labels float32 [B, num_pitches])

Pitch classes as the original: label = pitch - min_pitch (24), depth
num_pitches (61); pitches outside [min_pitch, max_pitch] are filtered out.
"""

import tensorflow as tf

from gansynth_tf2.data import checks
from gansynth_tf2.data import nsynth_format

SOURCES = ('nsynth_tfrecord', 'nsynth_tfds', 'audio_folder')


def _names_to_ids(values, names, what):
  """[int or name] -> [int]; None stays None."""
  if values is None:
    return None
  if isinstance(values, (int, str)):
    values = [values]
  ids = []
  for v in values:
    if isinstance(v, str) and not v.isdigit():
      if v not in names:
        raise ValueError('unknown %s %r; expected one of %s or an integer' %
                         (what, v, list(names)))
      ids.append(names.index(v))
    else:
      ids.append(int(v))
  return ids


def _elements(config, source, path, split, num_shards, shard, shuffle_files,
              seed, deterministic, skip_bad, stats, tfds_name):
  """Checked elements (see checks) of one source."""
  audio_length = int(config.audio_length)
  sample_rate = int(config.sample_rate)
  if source == 'nsynth_tfrecord':
    from gansynth_tf2.data import tfrecord_source  # pylint: disable=g-import-not-at-top
    return tfrecord_source.nsynth_tfrecord_elements(
        path or config.train_data_path, audio_length, sample_rate, split=split,
        num_shards=num_shards, shard=shard, shuffle_files=shuffle_files,
        seed=seed, deterministic=deterministic, skip_bad=skip_bad, stats=stats)
  if source == 'nsynth_tfds':
    from gansynth_tf2.data import tfds_source  # pylint: disable=g-import-not-at-top
    return tfds_source.nsynth_tfds_elements(
        path or config.tfds_data_dir, audio_length, sample_rate, split=split,
        name=tfds_name, num_shards=num_shards, shard=shard,
        shuffle_files=shuffle_files, seed=seed, deterministic=deterministic,
        skip_bad=skip_bad, stats=stats)
  if source == 'audio_folder':
    from gansynth_tf2.data import audio_folder  # pylint: disable=g-import-not-at-top
    return audio_folder.audio_folder_elements(
        path or config.train_data_path, audio_length, sample_rate,
        split=split, num_shards=num_shards, shard=shard,
        shuffle_files=shuffle_files, seed=seed, deterministic=deterministic,
        skip_bad=skip_bad, stats=stats)
  raise ValueError('dataset_name must be one of %s, got %r' % (SOURCES,
                                                              source))


def load_examples(config, path=None, split='train', source=None,
                  apply_filters=True, num_shards=1, shard=0,
                  shuffle_files=False, seed=None, deterministic=True,
                  skip_bad_examples=None, stats=None, tfds_name=None):
  """Example dicts of a data source, checked, filtered, trimmed/padded.

  Args:
    config: a `Config` (dataset_name, train_data_path, tfds_data_dir,
      audio_length, sample_rate, min/max_pitch, instrument_sources,
      instrument_families, velocities, skip_bad_examples).
    path: overrides train_data_path (tfrecord, audio_folder) or
      tfds_data_dir (nsynth_tfds).
    split: 'train', 'valid' or 'test' (files of a folder, TFDS split, or
      the audio-folder manifest's split column when it has one).
    source: overrides config.dataset_name.
    apply_filters: keep only pitches in [min_pitch, max_pitch] and the
      configured instrument sources / families / velocities.
    num_shards, shard: this input pipeline's share of the data.
    shuffle_files: reshuffle file order on every pass (seeded by `seed`).
    skip_bad_examples: overrides config.skip_bad_examples: drop and count
      bad examples instead of raising.
    stats: a `checks.BadExampleStats` counting skipped examples.
    tfds_name: TFDS dataset/config (default: the nsynth config prepared in
      tfds_data_dir, gansynth_subset first).

  Returns:
    tf.data.Dataset of {audio float32 [audio_length], pitch, velocity,
    instrument, instrument_family, instrument_source (int32 scalars)}.
  """
  source = source or config.dataset_name
  skip = bool(config.skip_bad_examples if skip_bad_examples is None
              else skip_bad_examples)
  audio_length = int(config.audio_length)
  ds = _elements(config, source, path, split, int(num_shards), int(shard),
                 shuffle_files, seed, deterministic, skip, stats, tfds_name)
  ds = checks.handle_bad_examples(ds, skip, stats)
  ds = ds.map(lambda el: {k: el[k] for k in nsynth_format.EXAMPLE_KEYS})
  if apply_filters:
    ds = ds.filter(_filter_fn(config))

  def trim_or_pad(ex):
    ex = dict(ex)
    audio = ex['audio'][:audio_length]
    audio = tf.pad(audio, [[0, audio_length - tf.shape(audio)[0]]])
    ex['audio'] = tf.ensure_shape(audio, [audio_length])
    return ex

  return ds.map(trim_or_pad)


def _filter_fn(config):
  lo, hi = config.pitch_range
  sources = _names_to_ids(config.instrument_sources,
                          nsynth_format.INSTRUMENT_SOURCES, 'instrument source')
  families = _names_to_ids(config.instrument_families,
                           nsynth_format.INSTRUMENT_FAMILIES,
                           'instrument family')
  velocities = _names_to_ids(config.velocities, (), 'velocity')

  def keep(ex):
    ok = tf.logical_and(ex['pitch'] >= lo, ex['pitch'] <= hi)
    for key, allowed in (('instrument_source', sources),
                         ('instrument_family', families),
                         ('velocity', velocities)):
      if allowed is not None:
        ok = tf.logical_and(ok, tf.reduce_any(tf.equal(
            ex[key], tf.constant(allowed, tf.int32))))
    return ok

  return keep


def one_hot_labels(config, pitch):
  """pitch int [...] -> float32 [..., num_pitches] (label = pitch - min)."""
  return tf.one_hot(tf.cast(pitch, tf.int32) - int(config.min_pitch),
                    config.num_pitches, dtype=tf.float32)


def waves_to_batch_fn(config):
  """(waves [B, T], pitch [B]) -> (normalized specgrams [B,H,W,C], labels)."""
  transform = config.spec_transform()
  normalizer = config.normalizer()
  h, w = config.final_resolution
  c = config.num_channels

  def fn(waves, pitch):
    specs = normalizer.normalize(transform.waves_to_specgrams(waves))
    specs = tf.ensure_shape(specs, [None, h, w, c])
    return specs, one_hot_labels(config, pitch)

  return fn


def build_train_dataset(config, batch_size, seed=None, input_context=None,
                        stats=None, path=None):
  """The infinite training dataset of (normalized specgrams, one-hot labels).

  Args:
    config: a `Config`; the source is config.dataset_name ('nsynth_tfrecord'
      with train_data_path a path/glob/folder of NSynth TFRecords, gzip or
      not; 'nsynth_tfds' with tfds_data_dir; 'audio_folder' with
      train_data_path a folder). Also uses shuffle_buffer_size,
      cache_dataset (True: in memory, or a file path), deterministic_data,
      skip_bad_examples, seed and the filters of `load_examples`.
    batch_size: examples per batch (per replica under `input_context`).
    seed: shuffle seed (default config.seed; 0 when deterministic_data).
    input_context: a `tf.distribute.InputContext`; this pipeline then reads
      its 1/num_input_pipelines share.
    stats: optional `checks.BadExampleStats` (skipped-example counts).
    path: overrides train_data_path / tfds_data_dir.

  Returns:
    tf.data.Dataset, repeated, of (float32 [batch_size, H, W, C] in [-1, 1],
    float32 [batch_size, num_pitches]); drop_remainder batches.
  """
  deterministic = bool(config.deterministic_data)
  if seed is None:
    seed = config.seed
  if seed is None and deterministic:
    seed = 0
  num_shards, shard = 1, 0
  if input_context is not None:
    num_shards = int(input_context.num_input_pipelines)
    shard = int(input_context.input_pipeline_id)
  ds = load_examples(config, path=path, num_shards=num_shards, shard=shard,
                     shuffle_files=True, seed=seed,
                     deterministic=deterministic, stats=stats)
  ds = ds.map(lambda ex: (ex['audio'], ex['pitch']))
  cache = config.cache_dataset
  if cache:
    ds = ds.cache(cache if isinstance(cache, str) else '')
  if int(config.shuffle_buffer_size or 0) > 1:
    ds = ds.shuffle(int(config.shuffle_buffer_size), seed=seed,
                    reshuffle_each_iteration=True)
  ds = ds.repeat()
  ds = ds.batch(int(batch_size), drop_remainder=True)
  ds = ds.map(waves_to_batch_fn(config), num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=deterministic)
  ds = ds.concatenate(_empty_data_error(ds.element_spec, config, path))
  options = tf.data.Options()
  options.deterministic = deterministic
  if input_context is not None:
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF)
  ds = ds.with_options(options)
  return ds.prefetch(tf.data.AUTOTUNE)


def _empty_data_error(spec, config, path=None):
  """A dataset that raises when reached: repeat() ended, i.e. no examples."""
  where = path or {'nsynth_tfds': config.tfds_data_dir}.get(
      config.dataset_name, config.train_data_path)
  msg = ('no training examples in %s (dataset_name %s) after filters (pitch '
         '%d-%d, instrument_sources %s, instrument_families %s, velocities '
         '%s) and bad-example skipping' % (
             where, config.dataset_name, config.min_pitch, config.max_pitch,
             config.instrument_sources, config.instrument_families,
             config.velocities))

  def fail(_):
    check = tf.debugging.Assert(tf.constant(False), [msg])
    with tf.control_dependencies([check]):
      return tf.nest.map_structure(
          lambda s: tf.zeros([d if d is not None else 0 for d in s.shape],
                             s.dtype), spec)

  return tf.data.Dataset.from_tensors(0).map(fail)
