"""NSynth TFRecord source, the training pipeline, and bad-data handling."""

import gzip
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf2 import data
from gansynth_tf2.config import load_config
from gansynth_tf2.data import nsynth_format
from gansynth_tf2.data import synthetic
from gansynth_tf2.data import tfrecord_writer

SR = 16000
N = 64000


def _example(pitch, audio=None, family=0, source=0, velocity=100, **kw):
  if audio is None:
    audio = synthetic.harmonic_note(pitch, SR, N, velocity, seed=pitch)
  return nsynth_format.make_example(
      audio, pitch, velocity, kw.pop('sample_rate', SR), instrument=pitch,
      instrument_str='x', instrument_family=family, instrument_source=source,
      **kw)


def _write(path, examples, compression=''):
  tfrecord_writer.write_nsynth_tfrecord(path, examples, compression)
  return str(path)


def _cfg(path, **kw):
  values = {'dataset_name': 'nsynth_tfrecord', 'train_data_path': str(path),
            'shuffle_buffer_size': 8}
  values.update(kw)
  return load_config('tiny', values)


# A small geometry (32 x 256 specgrams of 4096 samples) for the tests that
# only need batches, not full-size spectrograms.
SMALL = {'num_resolutions': 5, 'audio_length': 4096}


def _pitches(ds):
  return sorted(int(ex['pitch']) for ex in ds)


def test_batches_shapes_labels_range_and_values(tmp_path):
  pitches = [20, 24, 60, 84, 85, 100]  # 20, 85, 100 are out of range
  path = _write(tmp_path / 'nsynth-train.tfrecord',
                [_example(p) for p in pitches])
  cfg = _cfg(path)
  ds = data.build_train_dataset(cfg, batch_size=2, seed=3)
  assert ds.element_spec[0].shape == (2, 128, 1024, 2)
  assert ds.element_spec[1].shape == (2, 61)
  transform, norm = cfg.spec_transform(), cfg.normalizer()
  seen = set()
  refs = {}
  for specs, labels in ds.take(3):  # 2 passes over the 3 kept notes
    specs, labels = specs.numpy(), labels.numpy()
    assert specs.dtype == np.float32 and labels.dtype == np.float32
    assert specs.min() >= -1.0 and specs.max() <= 1.0
    np.testing.assert_array_equal(labels.sum(1), 1.0)
    for spec, label in zip(specs, labels):
      pitch = int(np.argmax(label)) + 24  # label = pitch - min_pitch
      seen.add(pitch)
      if pitch not in refs:
        wave = synthetic.harmonic_note(pitch, SR, N, 100, seed=pitch)
        refs[pitch] = norm.normalize(
            transform.waves_to_specgrams(wave[None]))[0].numpy()
      np.testing.assert_allclose(spec, refs[pitch], atol=2e-4)
  assert seen == {24, 60, 84}


def test_load_examples_gzip_glob_keys_and_filters(tmp_path):
  _write(tmp_path / 'a-train.tfrecord', [_example(30, family=2, source=0),
                                         _example(40, family=3, source=1)])
  _write(tmp_path / 'b-train.tfrecord.gz',
         [_example(50, family=3, source=0, velocity=25),
          _example(61, family=8, source=2)], 'GZIP')
  with open(tmp_path / 'b-train.tfrecord.gz', 'rb') as f:
    assert f.read(2) == b'\x1f\x8b'
  cfg = _cfg(tmp_path / '*-train.tfrecord*')
  exs = list(data.load_examples(cfg))
  assert sorted(int(e['pitch']) for e in exs) == [30, 40, 50, 61]
  for e in exs:
    assert set(e) == set(nsynth_format.EXAMPLE_KEYS)
    assert e['audio'].shape == (N,) and e['audio'].dtype == tf.float32
    assert e['pitch'].dtype == tf.int32
  assert _pitches(data.load_examples(_cfg(
      tmp_path / '*', instrument_sources=['acoustic']))) == [30, 50]
  assert _pitches(data.load_examples(_cfg(
      tmp_path / '*', instrument_families=['guitar', 8]))) == [40, 50, 61]
  assert _pitches(data.load_examples(_cfg(
      tmp_path / '*', velocities=[25]))) == [50]
  assert _pitches(data.load_examples(_cfg(
      tmp_path / '*', min_pitch=35, max_pitch=55))) == [40, 50]
  # Longer audio is trimmed to audio_length.
  assert all(e['audio'].shape == (32000,) for e in data.load_examples(
      _cfg(tmp_path / '*', audio_length=32000)))


def test_folder_path_selects_split_files(tmp_path):
  for split, pitches in (('train', [30, 31, 32]), ('valid', [40]),
                         ('test', [50])):
    with tfrecord_writer.ShardedTFRecordWriter(tmp_path, split, 2) as w:
      for p in pitches:
        w.write(_example(p).SerializeToString())
  names = sorted(os.listdir(tmp_path))
  assert 'nsynth-train.tfrecord-00001-of-00002' in names
  assert 'nsynth-valid.tfrecord-00000-of-00001' in names  # empty shard gone
  cfg = _cfg(tmp_path)
  assert _pitches(data.load_examples(cfg)) == [30, 31, 32]
  assert _pitches(data.load_examples(cfg, split='valid')) == [40]
  assert _pitches(data.load_examples(cfg, split='test')) == [50]


@pytest.mark.parametrize('num_files', [1, 3])
def test_sharding_is_a_partition(tmp_path, num_files):
  pitches = list(range(30, 42))
  for i in range(num_files):
    _write(tmp_path / ('f%d-train.tfrecord' % i),
           [_example(p) for p in pitches[i::num_files]])
  cfg = _cfg(tmp_path / '*')
  parts = [_pitches(data.load_examples(cfg, num_shards=3, shard=k))
           for k in range(3)]
  assert all(parts)
  assert sorted(sum(parts, [])) == pitches


def test_input_context_and_distribute_datasets_from_function(tmp_path):
  path = _write(tmp_path / 'nsynth-train.tfrecord',
                [_example(p) for p in (30, 31, 32, 33)])
  code = textwrap.dedent('''
      import sys, tensorflow as tf
      cpu = tf.config.list_physical_devices('CPU')[0]
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
      from gansynth_tf2 import data
      from gansynth_tf2.config import load_config
      cfg = load_config('tiny', {'train_data_path': sys.argv[1],
                                 'dataset_name': 'nsynth_tfrecord',
                                 'num_resolutions': 5, 'audio_length': 4096})
      strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
      seen = []
      def fn(ctx):
        seen.append((ctx.num_input_pipelines, ctx.input_pipeline_id))
        return data.build_train_dataset(
            cfg, ctx.get_per_replica_batch_size(2), seed=0,
            input_context=ctx)
      dist = strategy.distribute_datasets_from_function(fn)
      specs, labels = next(iter(dist))
      parts = strategy.experimental_local_results(specs)
      print('OK', seen, [tuple(p.shape) for p in parts])
  ''')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  out = subprocess.run([sys.executable, '-c', code, path], env=env,
                       capture_output=True, text=True, timeout=240)
  assert out.returncode == 0, out.stderr[-2000:]
  line = [l for l in out.stdout.splitlines() if l.startswith('OK')][0]
  assert '[(1, 0)]' in line  # one worker: one pipeline
  assert line.count('(1, 32, 256, 2)') == 2  # per-replica batch 1


def test_deterministic_with_seed(tmp_path):
  path = _write(tmp_path / 'nsynth-train.tfrecord',
                [_example(p) for p in range(30, 40)])

  def labels(seed):
    cfg = _cfg(path, deterministic_data=True, seed=seed, **SMALL)
    ds = data.build_train_dataset(cfg, 3)
    return [np.argmax(l, 1).tolist() for _, l in ds.take(2)]

  first = labels(7)
  assert first == labels(7)
  assert first != labels(8)


def test_no_examples_after_filters_is_a_clear_error(tmp_path):
  path = _write(tmp_path / 'nsynth-train.tfrecord', [_example(100)])
  ds = data.build_train_dataset(_cfg(path, **SMALL), 1)
  with pytest.raises(tf.errors.InvalidArgumentError, match='no training '
                     'examples.*after filters'):
    next(iter(ds))
  # The path read is named, not the config's (here unused) train_data_path.
  ds = data.build_train_dataset(_cfg(tmp_path / 'unused', **SMALL), 1,
                                path=path)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='no training examples in %s ' % path):
    next(iter(ds))


def test_missing_files_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match='no files match'):
    data.load_examples(_cfg(tmp_path / 'nothing-*.tfrecord'))
  with pytest.raises(ValueError, match='no \\*train\\*tfrecord\\* files'):
    data.load_examples(_cfg(tmp_path))
  missing = str(tmp_path / 'gone.tfrecord')
  with pytest.raises(ValueError, match='cannot read TFRecord file .*gone'):
    data.load_examples(_cfg(missing))


# --- bad data -----------------------------------------------------------
def _raw_example(features):
  """An Example from {key: tf.train.Feature} (to build broken records)."""
  return tf.train.Example(features=tf.train.Features(feature=features))


def _without(example, key):
  ex = tf.train.Example()
  ex.CopyFrom(example)
  del ex.features.feature[key]
  return ex


def _bad_record(kind):
  good = _example(45)
  if kind == 'missing_key':
    return _without(good, 'pitch').SerializeToString()
  if kind == 'wrong_audio_length':
    return _example(45, audio=np.zeros(1000, np.float32)).SerializeToString()
  if kind == 'wrong_sample_rate':
    return _example(45, sample_rate=44100).SerializeToString()
  if kind == 'non_finite_audio':
    audio = np.zeros(N, np.float32)
    audio[5] = np.nan
    return _example(45, audio=audio).SerializeToString()
  if kind == 'not_an_example':
    return b'\x07\xff\xff garbage that is no protobuf'
  if kind == 'wrong_dtype':
    ex = _without(good, 'audio')
    ex.features.feature['audio'].int64_list.value.extend([1] * N)
    return ex.SerializeToString()
  raise ValueError(kind)


_RECORD_CASES = {
    'missing_key': ('missing_key', 'missing or malformed key.*pitch'),
    'wrong_audio_length': ('wrong_audio_length', 'audio has 1000 samples'),
    'wrong_sample_rate': ('wrong_sample_rate', 'sample_rate 44100'),
    'non_finite_audio': ('non_finite_audio', 'NaN'),
    'not_an_example': ('unparseable_record', 'could not be parsed'),
    'wrong_dtype': ('unparseable_record', 'could not be parsed'),
}


@pytest.mark.parametrize('kind', sorted(_RECORD_CASES))
def test_bad_record_raises_naming_file_and_index_or_is_skipped(tmp_path,
                                                               kind):
  records = [_example(p).SerializeToString() for p in (30, 31)]
  records += [_bad_record(kind)]
  records += [_example(p).SerializeToString() for p in (33, 34)]
  path = _write(tmp_path / 'nsynth-train.tfrecord', records)
  reason, pattern = _RECORD_CASES[kind]
  with pytest.raises(tf.errors.InvalidArgumentError) as err:
    list(data.load_examples(_cfg(path)))
  msg = str(err.value)
  assert path in msg and 'record 2' in msg, msg
  assert __import__('re').search(pattern, msg), msg
  assert 'skip_bad_examples' in msg
  stats = data.BadExampleStats()
  kept = _pitches(data.load_examples(_cfg(path, skip_bad_examples=True),
                                     stats=stats))
  assert kept == [30, 31, 33, 34]
  assert stats.counts() == {reason: 1}


def _corrupt_file(tmp_path, how):
  records = [_example(p).SerializeToString() for p in (30, 31, 32, 33)]
  path = _write(tmp_path / 'nsynth-train.tfrecord', records)
  raw = bytearray(open(path, 'rb').read())
  size = len(raw) // 4
  if how == 'corrupt_record':
    raw[2 * size + 100] ^= 0xFF  # inside record 2's data: crc mismatch
  elif how == 'truncated_file':
    raw = raw[:2 * size + 5000]  # record 2 cut short
  elif how == 'corrupt_gzip':
    os.remove(path)
    path = path + '.gz'
    raw = bytearray(gzip.compress(bytes(raw)))
    raw[len(raw) // 2:len(raw) // 2 + 64] = b'\0' * 64
  with open(path, 'wb') as f:
    f.write(bytes(raw))
  return path


@pytest.mark.parametrize('how', ['corrupt_record', 'truncated_file',
                                 'corrupt_gzip'])
def test_corrupt_file_raises_naming_file_or_is_skipped(tmp_path, how):
  path = _corrupt_file(tmp_path, how)
  with pytest.raises(tf.errors.InvalidArgumentError) as err:
    list(data.load_examples(_cfg(path)))
  msg = str(err.value)
  assert path in msg and 'corrupt or truncated data at record' in msg, msg
  # Not 'the file has 1234""': tf.strings.format quotes string arguments.
  assert __import__('re').search(r'the file has \d+( uncompressed, mod '
                                 r'2\^32)? \(records after it are lost\)',
                                 msg), msg
  if how != 'corrupt_gzip':
    assert 'at record 2' in msg, msg
  stats = data.BadExampleStats()
  kept = _pitches(data.load_examples(_cfg(path, skip_bad_examples=True),
                                     stats=stats))
  assert kept == [30, 31][:len(kept)] and set(stats.counts()) == {
      'corrupt_record'}
  if how != 'corrupt_gzip':
    assert kept == [30, 31]


def test_unreadable_file_in_list_is_error_or_skipped(tmp_path):
  good = _write(tmp_path / 'a-train.tfrecord', [_example(30)])
  gone = str(tmp_path / 'b-train.tfrecord')
  cfg = _cfg(good + ',' + gone)
  with pytest.raises(ValueError, match='cannot read TFRecord file .*b-train'):
    data.load_examples(cfg)
  stats = data.BadExampleStats()
  kept = _pitches(data.load_examples(_cfg(good + ',' + gone,
                                          skip_bad_examples=True),
                                     stats=stats))
  assert kept == [30] and stats.counts() == {'unreadable_file': 1}


def test_literal_brackets_in_path_are_no_glob(tmp_path):
  """tf.io.gfile.glob reads data[1] as data1: an existing path is literal."""
  folder = tmp_path / 'data[1]'
  folder.mkdir()
  (tmp_path / 'data1').mkdir()
  _write(tmp_path / 'data1' / 'nsynth-train.tfrecord', [_example(50)])
  path = _write(folder / 'nsynth-train.tfrecord', [_example(30)])
  assert _pitches(data.load_examples(_cfg(folder))) == [30]
  assert _pitches(data.load_examples(_cfg(path))) == [30]
  assert _pitches(data.load_examples(_cfg(path + ','))) == [30]
  # A pattern inside a folder that exists as written: the folder is literal.
  assert _pitches(data.load_examples(_cfg(folder / '*train*'))) == [30]
  # A real pattern is still a glob.
  _write(tmp_path / 'x-a-train.tfrecord', [_example(40)])
  _write(tmp_path / 'x-b-train.tfrecord', [_example(41)])
  assert _pitches(data.load_examples(
      _cfg(tmp_path / 'x-[ab]-train.tfrecord'))) == [40, 41]


def test_folder_where_a_file_is_expected_is_a_one_line_error(tmp_path):
  good = _write(tmp_path / 'a-train.tfrecord', [_example(30)])
  (tmp_path / 'b-train.tfrecord').mkdir()
  for path in (tmp_path, tmp_path / '*-train.tfrecord'):
    with pytest.raises(ValueError) as err:
      data.load_examples(_cfg(path))
    msg = str(err.value)
    assert 'cannot read TFRecord file %s' % (tmp_path / 'b-train.tfrecord'
                                             ) in msg and '\n' not in msg
  stats = data.BadExampleStats()
  assert _pitches(data.load_examples(_cfg(tmp_path, skip_bad_examples=True),
                                     stats=stats)) == [30]
  assert stats.counts() == {'unreadable_file': 1}
  # Replaced by a folder after the listing: named, not read as corrupt.
  ds = data.load_examples(_cfg(good))
  os.remove(good)
  os.mkdir(good)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='a-train.tfrecord: the file cannot be opened'):
    list(ds)


_AFTER_LISTING_HEAD = textwrap.dedent('''
    import os, sys
    import gansynth_tf2
    import tensorflow as tf
    from gansynth_tf2 import data
    from gansynth_tf2.config import load_config
    a, b = sys.argv[1:3]
    def cfg(path, skip):
      return load_config('tiny', {'dataset_name': 'nsynth_tfrecord',
                                  'train_data_path': path,
                                  'skip_bad_examples': skip})
    stats = data.BadExampleStats()
''')
_AFTER_LISTING_TAIL = textwrap.dedent('''
    try:
      list(strict)
      print('NO ERROR')
    except tf.errors.InvalidArgumentError as e:
      print('ERROR', ' '.join(e.message.split()))
    print('SKIP', sorted(int(e['pitch']) for e in skipping), stats.counts())
''')


def _run_after_listing(body, a, b, what, wrap=()):
  """Runs HEAD + `body` (builds `strict` and `skipping` datasets, then
  changes the files) + TAIL (reads both) in a subprocess with a time limit:
  {first word of each output line: the line}."""
  code = _AFTER_LISTING_HEAD + textwrap.dedent(body) + _AFTER_LISTING_TAIL
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  try:
    out = subprocess.run(list(wrap) + [sys.executable, '-c', code, a, b],
                         env=env, capture_output=True, text=True,
                         timeout=120)
  except subprocess.TimeoutExpired:
    pytest.fail('reading a TFRecord file %s after the listing hung' % what)
  assert out.returncode == 0, out.stderr[-2000:]
  return {l.split(' ', 1)[0]: l for l in out.stdout.splitlines()}


def test_file_made_unreadable_after_listing_is_an_error_not_a_hang(tmp_path):
  """A file TF cannot open (permission denied) was retried forever by the
  reader. Root reads any file: the child then runs without the
  CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH capabilities (capsh)."""
  import shutil  # pylint: disable=g-import-not-at-top
  wrap = []
  if os.geteuid() == 0:
    if not shutil.which('capsh'):
      pytest.skip('running as root without capsh: permissions not enforced')
    wrap = ['capsh', '--drop=cap_dac_override,cap_dac_read_search', '--',
            '-c', 'exec "$0" "$@"']
  a = _write(tmp_path / 'a-train.tfrecord', [_example(30)])
  b = _write(tmp_path / 'b-train.tfrecord', [_example(40)])
  lines = _run_after_listing('''
      strict = data.load_examples(cfg(a + ',' + b, False))
      skipping = data.load_examples(cfg(a + ',' + b, True), stats=stats)
      os.chmod(b, 0)
      try:
        open(b, 'rb')
        print('READABLE')
      except PermissionError:
        pass
  ''', a, b, 'made unreadable', wrap)
  assert 'READABLE' not in lines, 'permissions not enforced'
  assert 'b-train.tfrecord: the file cannot be opened' in lines['ERROR'], lines
  assert lines['SKIP'] == "SKIP [30] {'unreadable_file': 1}", lines


def test_skipped_examples_never_reach_batches(tmp_path):
  records = [_example(30).SerializeToString(), _bad_record('non_finite_audio'),
             _example(31).SerializeToString()]
  path = _write(tmp_path / 'nsynth-train.tfrecord', records)
  stats = data.BadExampleStats()
  ds = data.build_train_dataset(_cfg(path, skip_bad_examples=True, **SMALL),
                                2, stats=stats)
  for specs, labels in ds.take(3):
    assert np.isfinite(specs.numpy()).all()
    assert sorted(np.argmax(labels, 1) + 24) == [30, 31]
  assert stats.counts()['non_finite_audio'] >= 1


def test_file_removed_after_listing_is_an_error_not_a_hang(tmp_path):
  """TF's reader retried a file it could not open forever under the
  source's ignore_errors: removing (or rebuilding) the data while training
  hung the pipeline, SIGTERM included. Run in a subprocess with a limit."""
  a = _write(tmp_path / 'a-train.tfrecord', [_example(30), _example(31)])
  b = _write(tmp_path / 'b-train.tfrecord', [_example(40)])
  lines = _run_after_listing('''
      strict = data.load_examples(cfg(a, False))
      skipping = data.load_examples(cfg(a + ',' + b, True), stats=stats)
      print('BEFORE', sorted(int(e['pitch']) for e in skipping))
      os.remove(a)
  ''', a, b, 'removed')
  assert lines['BEFORE'] == 'BEFORE [30, 31, 40]'
  assert 'a-train.tfrecord' in lines['ERROR'], lines
  assert 'the file is gone' in lines['ERROR'], lines
  assert lines['SKIP'] == "SKIP [40] {'unreadable_file': 1}", lines


