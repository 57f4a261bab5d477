"""TFDS nsynth source, read from a prepared data dir written at test time.

The dir is written in TFDS's own layout (features.json, dataset_info.json,
nsynth-<split>.tfrecord-00000-of-00001 encoded by TFDS's serializer), the same
layout `tfds build nsynth/gansynth_subset` leaves; nothing is downloaded.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf2 import data
from gansynth_tf2.config import load_config
from gansynth_tf2.data import synthetic
from gansynth_tf2.data import tfds_source


def _ex(pitch, family=2, source=0, audio=None):
  if audio is None:
    audio = synthetic.harmonic_note(pitch, seed=pitch)
  return {'audio': audio, 'pitch': pitch, 'velocity': 75, 'instrument': 9,
          'instrument_family': family, 'instrument_source': source}


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('tfds')
  synthetic.write_tfds_nsynth(root, [_ex(p) for p in (20, 30, 60, 84, 90)] +
                              [_ex(40, family=8, source=1)], 'train')
  synthetic.write_tfds_nsynth(root, [_ex(50)], 'valid')
  return str(root)


def _cfg(path, **kw):
  values = {'dataset_name': 'nsynth_tfds', 'tfds_data_dir': path,
            'shuffle_buffer_size': 4}
  values.update(kw)
  return load_config('tiny', values)


def test_layout_is_what_tfds_reads(tfds_dir):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  folder = tfds_source.find_prepared_dir(tfds_dir)
  assert folder.endswith('nsynth/gansynth_subset/2.3.3')
  builder = tfds.builder('nsynth/gansynth_subset', data_dir=tfds_dir)
  assert builder.info.splits['train'].num_examples == 6
  ex = next(iter(builder.as_dataset(split='valid')))
  assert int(ex['pitch']) == 50 and ex['audio'].shape == (64000,)


def test_examples_labels_and_filters(tfds_dir):
  cfg = _cfg(tfds_dir)
  exs = list(data.load_examples(cfg))
  assert sorted(int(e['pitch']) for e in exs) == [30, 40, 60, 84]
  e = [e for e in exs if int(e['pitch']) == 40][0]
  assert (int(e['instrument_family']), int(e['instrument_source']),
          int(e['velocity']), int(e['instrument'])) == (8, 1, 75, 9)
  np.testing.assert_allclose(e['audio'].numpy(),
                             synthetic.harmonic_note(40, seed=40), atol=1e-6)
  assert sorted(int(e['pitch']) for e in data.load_examples(
      _cfg(tfds_dir, instrument_sources=[0]))) == [30, 60, 84]
  assert [int(e['pitch']) for e in data.load_examples(cfg, split='valid')
         ] == [50]
  parts = [sorted(int(e['pitch']) for e in data.load_examples(
      cfg, num_shards=2, shard=k)) for k in range(2)]
  assert all(parts) and sorted(parts[0] + parts[1]) == [30, 40, 60, 84]


def test_train_batches(tfds_dir):
  ds = data.build_train_dataset(_cfg(tfds_dir), 2, seed=0)
  specs, labels = next(iter(ds))
  assert specs.shape == (2, 128, 1024, 2) and labels.shape == (2, 61)
  assert -1.0 <= float(tf.reduce_min(specs)) <= float(tf.reduce_max(specs)
                                                      ) <= 1.0
  assert set(np.argmax(labels, 1) + 24) <= {30, 40, 60, 84}


def test_errors(tfds_dir, tmp_path):
  with pytest.raises(ValueError, match='config needs sample_rate 22050'):
    data.load_examples(_cfg(tfds_dir, sample_rate=22050))
  with pytest.raises(ValueError, match='no prepared TFDS nsynth'):
    data.load_examples(_cfg(str(tmp_path)))
  with pytest.raises(ValueError, match="no split 'test'"):
    data.load_examples(_cfg(tfds_dir), split='test')


def test_bad_example_named_or_skipped(tmp_path):
  audio = np.zeros(64000, np.float32)
  audio[10] = np.inf
  synthetic.write_tfds_nsynth(tmp_path, [_ex(30), _ex(31, audio=audio),
                                         _ex(32)], 'train')
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'gansynth_subset/2.3.3/nsynth-train.tfrecord-'
                     r'00000-of-00001, record 1: audio holds NaN or Inf'):
    list(data.load_examples(_cfg(str(tmp_path))))
  stats = data.BadExampleStats()
  kept = sorted(int(e['pitch']) for e in data.load_examples(
      _cfg(str(tmp_path), skip_bad_examples=True), stats=stats))
  assert kept == [30, 32] and stats.counts() == {'non_finite_audio': 1}


def _copy(tfds_dir, tmp_path):
  dst = tmp_path / 'copy'
  shutil.copytree(tfds_dir, dst)
  return dst, dst / 'nsynth' / 'gansynth_subset' / '2.3.3'


def test_partly_copied_or_damaged_dir_is_a_one_line_error(tfds_dir, tmp_path):
  root, folder = _copy(tfds_dir, tmp_path)
  (folder / 'nsynth-train.tfrecord-00000-of-00001').unlink()
  for skip in (False, True):  # skip: TF's reader retried it forever
    with pytest.raises(ValueError, match=r'is incomplete: 1 of the 1 files '
                       r"of split 'train' are missing.*copy the whole"):
      data.load_examples(_cfg(str(root), skip_bad_examples=skip))
  assert [int(e['pitch']) for e in data.load_examples(
      _cfg(str(root)), split='valid')] == [50]
  (folder / 'dataset_info.json').write_text('{')  # half copied
  with pytest.raises(ValueError, match='cannot read the prepared TFDS '
                     'dataset in .*ParseError'):
    data.load_examples(_cfg(str(root)))


def test_truncated_shard_with_skip_bad_examples_ends(tfds_dir, tmp_path):
  """TFDS's cardinality assertion under ignore_errors raised on every retry:
  iterating never ended (run in a subprocess with a time limit)."""
  root, folder = _copy(tfds_dir, tmp_path)
  shard = folder / 'nsynth-train.tfrecord-00000-of-00001'
  raw = shard.read_bytes()
  shard.write_bytes(raw[:len(raw) // 2])  # records 3.. cut off
  code = ('import sys, gansynth_tf2\n'
          'from gansynth_tf2 import data\n'
          'from gansynth_tf2.config import load_config\n'
          'cfg = load_config("tiny", {"dataset_name": "nsynth_tfds", '
          '"tfds_data_dir": sys.argv[1], "skip_bad_examples": True})\n'
          'print("PITCHES", sorted(int(e["pitch"]) for e in '
          'data.load_examples(cfg, apply_filters=False)))\n')
  try:
    out = subprocess.run([sys.executable, '-c', code, str(root)],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ,
                                  TF_CPP_MIN_LOG_LEVEL='3'))
  except subprocess.TimeoutExpired:
    pytest.fail('reading a truncated TFDS shard with skip_bad_examples '
                'never ended')
  assert out.returncode == 0, out.stderr[-2000:]
  line = [l for l in out.stdout.splitlines() if l.startswith('PITCHES')][0]
  kept = eval(line.split(' ', 1)[1])  # pylint: disable=eval-used
  assert kept and set(kept) < {20, 30, 40, 60, 84, 90}


def _damaged(tfds_dir, tmp_path, how):
  root, folder = _copy(tfds_dir, tmp_path)
  shard = folder / 'nsynth-train.tfrecord-00000-of-00001'
  raw = bytearray(shard.read_bytes())
  size = len(raw) // 6  # 6 records of (nearly) the same size
  if how == 'truncated':
    raw = raw[:2 * size + 5000]  # record 2 cut short
  elif how == 'corrupt':
    raw[2 * size + 100] ^= 0xFF  # inside record 2: crc mismatch
  elif how == 'short':
    raw = raw[:_record_end(raw, 3)]  # cut after record 2: sizes add up
  shard.write_bytes(bytes(raw))
  return root, str(shard)


def _record_end(raw, n):
  end = 0
  for _ in range(n):
    end += 16 + int.from_bytes(raw[end:end + 8], 'little')
  return end


@pytest.mark.parametrize('how', ['truncated', 'corrupt', 'short'])
def test_damaged_shard_is_named_or_skipped_and_counted(tfds_dir, tmp_path,
                                                       how):
  """Without skip TF raised only "corrupted record at N" or "expected 6
  elements but contained only 2", naming no file or folder."""
  root, shard = _damaged(tfds_dir, tmp_path, how)
  with pytest.raises(tf.errors.InvalidArgumentError) as err:
    list(data.load_examples(_cfg(str(root)), apply_filters=False))
  msg = str(err.value)
  assert 'bad data in %s: ' % shard in msg, msg
  if how == 'short':
    assert 'the file holds 3 records, its dataset lists 6' in msg, msg
  else:
    assert 'corrupt or truncated data at record 2' in msg, msg
  stats = data.BadExampleStats()
  kept = [int(e['pitch']) for e in data.load_examples(
      _cfg(str(root), skip_bad_examples=True), apply_filters=False,
      stats=stats)]
  assert sorted(kept) == ([20, 30, 60] if how == 'short' else [20, 30])
  assert stats.counts() == {'corrupt_record': 3 if how == 'short' else 4}


def test_shard_removed_after_listing_is_skipped_not_retried(tfds_dir,
                                                            tmp_path):
  """With skip_bad_examples TF's reader retried a vanished shard forever."""
  root, folder = _copy(tfds_dir, tmp_path)
  shard = folder / 'nsynth-train.tfrecord-00000-of-00001'
  code = ('import os, sys, gansynth_tf2\n'
          'import tensorflow as tf\n'
          'from gansynth_tf2 import data\n'
          'from gansynth_tf2.config import load_config\n'
          'def cfg(skip):\n'
          '  return load_config("tiny", {"dataset_name": "nsynth_tfds", '
          '"tfds_data_dir": sys.argv[1], "skip_bad_examples": skip})\n'
          'stats = data.BadExampleStats()\n'
          'skipping = data.load_examples(cfg(True), stats=stats)\n'
          'strict = data.load_examples(cfg(False))\n'
          'os.remove(sys.argv[2])\n'
          'print("SKIP", list(skipping), stats.counts())\n'
          'try:\n'
          '  list(strict)\n'
          'except tf.errors.InvalidArgumentError as e:\n'
          '  print("ERROR", " ".join(e.message.split()))\n')
  try:
    out = subprocess.run([sys.executable, '-c', code, str(root), str(shard)],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ,
                                  TF_CPP_MIN_LOG_LEVEL='3'))
  except subprocess.TimeoutExpired:
    pytest.fail('a TFDS shard removed after the listing was retried forever')
  assert out.returncode == 0, out.stderr[-2000:]
  lines = {l.split(' ', 1)[0]: l for l in out.stdout.splitlines()}
  assert lines['SKIP'] == "SKIP [] {'unreadable_file': 6}", lines
  assert '%s: the file is gone' % shard in lines['ERROR'], lines


def test_data_dir_with_brackets_is_no_glob(tfds_dir, tmp_path):
  root = tmp_path / 'data[1]'
  shutil.copytree(tfds_dir, root)
  assert tfds_source.find_prepared_dir(str(root)).startswith(str(root))
  assert [int(e['pitch']) for e in data.load_examples(
      _cfg(str(root)), split='valid')] == [50]


@pytest.mark.parametrize('num_shards', [1, 4, 7])
def test_lost_records_counted_once_over_pipelines(tfds_dir, tmp_path,
                                                  num_shards):
  """With more pipelines than shard files each reads every record index of
  its share; a loss is counted by the pipelines owning the lost indexes."""
  from gansynth_tf2.data import checks  # pylint: disable=g-import-not-at-top
  for how, want_lost, want_kept in (('short', 3, [20, 30, 60]),
                                    ('corrupt', 4, [20, 30])):
    root, _ = _damaged(tfds_dir, tmp_path / how, how)
    lost, kept = 0, []
    for shard in range(num_shards):
      stats = checks.BadExampleStats()
      ds = checks.handle_bad_examples(tfds_source.nsynth_tfds_elements(
          str(root), 64000, 16000, num_shards=num_shards, shard=shard,
          skip_bad=True, stats=stats), True, stats)
      kept += [int(e['pitch']) for e in ds]
      lost += stats.total
    assert sorted(kept) == want_kept, how
    assert lost == want_lost, how

