"""GANSynth training data: sources, the tf.data pipeline, dataset builders.

  build_train_dataset(config, batch_size, seed=None, input_context=None,
                      stats=None, path=None)
      -> infinite tf.data.Dataset of (normalized specgrams float32
         [batch_size, H, W, C] in [-1, 1], one-hot labels float32
         [batch_size, num_pitches]); drop_remainder batches; the source is
         config.dataset_name: 'nsynth_tfrecord' (train_data_path: file, glob
         or folder of NSynth TFRecords, gzip or not), 'nsynth_tfds'
         (tfds_data_dir) or 'audio_folder' (train_data_path: a folder).
         With a tf.distribute.InputContext it reads its share and batch_size
         is the per-replica batch (strategy.distribute_datasets_from_function).
  load_examples(config, path=None, split='train', source=None, ...)
      -> tf.data.Dataset of {audio float32 [audio_length], pitch int32,
         velocity int32, instrument int32, instrument_family int32,
         instrument_source int32}
  BadExampleStats()  counts of skipped bad examples (skip_bad_examples=True).
  build_from_soundfont(...), build_from_audio_folder(...)  (data.builder)
      -> NSynth-format TFRecord dataset folders.

Labels as the original: label = pitch - min_pitch, depth num_pitches.
Importing this package imports nothing heavy; the names above load their
modules (TensorFlow; tensorflow-io and FluidSynth only where used) on use.
"""

import importlib

_EXPORTS = {
    'BadExampleStats': 'checks',
    'build_train_dataset': 'pipeline',
    'load_examples': 'pipeline',
    'one_hot_labels': 'pipeline',
    'SOURCES': 'pipeline',
    'build_from_soundfont': 'builder',
    'build_from_audio_folder': 'builder',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name in _EXPORTS:
    module = importlib.import_module('gansynth_tf2.data.' + _EXPORTS[name])
    return getattr(module, name)
  raise AttributeError('module %r has no attribute %r' % (__name__, name))
