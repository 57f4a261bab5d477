r"""Trains the pitch classifier that gansynth-eval's metrics use.

  python -m gansynth_tools.train_pitch_classifier \
      --train_data='DATA/*train*' --eval_data='DATA/*valid*' \
      --output_dir=saved_models/pitch_classifier

Reads NSynth-format TFRecords (what gansynth-build-dataset writes), computes
each note's front-end spectrogram once (gansynth_tf2/eval/pitch_classifier.py),
trains the small CNN with Adam, keeps the epoch with the best held-out
accuracy, prints it and writes the classifier dir atomically. Held-out notes:
--eval_data, or else a --heldout_fraction of the instruments of --train_data
(whole instruments, so the accuracy is on timbres never seen; random notes when
the records have no instrument ids). A few thousand notes train in ~10-20
minutes on 2 CPU cores.
"""

import os
import time

from absl import app
from absl import flags

from gansynth_tools import cli_errors

_TRAIN = flags.DEFINE_string('train_data', None, 'NSynth-format TFRecords '
                             '(glob, comma list, file or folder).')
_EVAL = flags.DEFINE_string('eval_data', None, 'Held-out TFRecords (default: '
                            'hold out instruments of --train_data).')
_OUT = flags.DEFINE_string('output_dir', None, 'Classifier dir to write.')
_HELDOUT = flags.DEFINE_float('heldout_fraction', 0.15, 'Share of instruments '
                              'held out when there is no --eval_data.')
_PITCHES = flags.DEFINE_string('pitch_range', '24-84', 'lo-hi MIDI classes; '
                               'notes outside are skipped.')
_EPOCHS = flags.DEFINE_integer('epochs', 10, 'Training epochs.')
_BATCH = flags.DEFINE_integer('batch_size', 32, 'Batch size.')
_LR = flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate (cosine '
                         'decay to 0).')
_MAX_NOTES = flags.DEFINE_integer('max_notes', None, 'Use at most this many '
                                  'training notes (random).')
_REPR = flags.DEFINE_enum('representation', 'mel_if', ['mel_if', 'log_mel'],
                          'Front-end channels.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed.')
_TIME_LIMIT = flags.DEFINE_float('time_limit_s', None, 'Stop after the epoch '
                                 'that passes this many seconds of training.')


def _range(text):
  try:
    lo, hi = (int(v) for v in text.split('-'))
  except ValueError:
    raise ValueError('--pitch_range must look like 24-84, got %r' %
                     text) from None
  if not 0 <= lo <= hi <= 127:
    raise ValueError('--pitch_range must be lo-hi within 0..127, got %r' %
                     text)
  return lo, hi


def load_specgrams(pattern, front_end, pitch_range, log):
  """All notes of `pattern` -> (specgrams [N, ...], pitches [N], inst [N])."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gansynth_tf2.eval import real_data  # pylint: disable=g-import-not-at-top
  specs, pitches, insts = [], [], []
  start = time.time()
  for batch in real_data.iter_notes(
      pattern, batch_size=32, pitch_range=pitch_range,
      audio_length=front_end.params['audio_length'],
      sample_rate=front_end.params['sample_rate']):
    specs.append(front_end(batch['audio']))
    pitches.append(batch['pitch'])
    insts.append(batch['instrument'])
    n = sum(len(p) for p in pitches)
    if len(pitches) % 20 == 0:
      log('  %d notes read (%.0f s)' % (n, time.time() - start))
  if not specs:
    raise ValueError('no notes with pitch in %d..%d in %s' %
                     (pitch_range[0], pitch_range[1], pattern))
  return (np.concatenate(specs), np.concatenate(pitches),
          np.concatenate(insts))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('unexpected arguments: %s' % ' '.join(argv[1:]))
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  log = lambda s: print(s, flush=True)
  try:
    if not _TRAIN.value or not _OUT.value:
      raise ValueError('--train_data and --output_dir are required')
    if _EPOCHS.value < 1 or _BATCH.value < 1:
      raise ValueError('--epochs and --batch_size must be >= 1')
    if not 0.0 < _HELDOUT.value < 1.0:
      raise ValueError('--heldout_fraction must be in (0, 1)')
    if _MAX_NOTES.value is not None and _MAX_NOTES.value < 1:
      raise ValueError('--max_notes must be >= 1, got %d' % _MAX_NOTES.value)
    import numpy as np  # pylint: disable=g-import-not-at-top
    from gansynth_tf2 import io_util  # pylint: disable=g-import-not-at-top
    from gansynth_tf2.eval import pitch_classifier  # pylint: disable=g-import-not-at-top
    from gansynth_tf2.eval import real_data  # pylint: disable=g-import-not-at-top
    lo, hi = _range(_PITCHES.value)
    # The output folder is checked before the (long) training, and may not be
    # or hold the input data (it is replaced as a whole).
    inputs = real_data.list_files(_TRAIN.value)
    if _EVAL.value:
      inputs += real_data.list_files(_EVAL.value)
    io_util.check_output_dir(_OUT.value, pitch_classifier.PARAMS_JSON,
                             protect=inputs)
    params = pitch_classifier.make_params(min_pitch=lo, max_pitch=hi,
                                          representation=_REPR.value)
    front_end = pitch_classifier.FrontEnd(params)
    log('Reading %s' % _TRAIN.value)
    x, p, inst = load_specgrams(_TRAIN.value, front_end, (lo, hi), log)
    rng = np.random.RandomState(_SEED.value)
    if _EVAL.value:
      log('Reading %s' % _EVAL.value)
      xv, pv, _ = load_specgrams(_EVAL.value, front_end, (lo, hi), log)
      heldout = 'eval_data'
    else:
      ids = np.unique(inst)
      if len(ids) >= 3 and ids[0] >= 0:
        n_out = max(1, int(round(_HELDOUT.value * len(ids))))
        out_ids = rng.choice(ids, n_out, replace=False)
        val = np.isin(inst, out_ids)
        heldout = 'instruments %s of train_data' % sorted(
            int(i) for i in out_ids)
      else:
        val = rng.rand(len(p)) < _HELDOUT.value
        heldout = 'random %.0f%% of train_data notes' % (100 * _HELDOUT.value)
      if val.all() or not val.any():
        raise ValueError('too few notes to hold some out (%d)' % len(p))
      x, xv, p, pv = x[~val], x[val], p[~val], p[val]
    if _MAX_NOTES.value and len(x) > _MAX_NOTES.value:
      keep = np.sort(rng.choice(len(x), _MAX_NOTES.value, replace=False))
      x, p = x[keep], p[keep]
    log('Training on %d notes, held out: %d (%s)' % (len(x), len(xv), heldout))
    clf = pitch_classifier.train(
        x, p, xv, pv, params=params, epochs=_EPOCHS.value,
        batch_size=_BATCH.value, learning_rate=_LR.value, seed=_SEED.value,
        time_limit_s=_TIME_LIMIT.value, verbose=0, log=log)
    clf.info.update({'train_data': _TRAIN.value, 'heldout': heldout,
                     'pitch_classes_seen': int(len(np.unique(p)))})
    clf.save(_OUT.value, protect=inputs)
  except Exception as e:  # pylint: disable=broad-except
    cli_errors.fail('train_pitch_classifier', e)  # one line for ValueError, OSError, tf errors
  log('Held-out accuracy %.4f (%d notes, best epoch %d); wrote %s' %
      (clf.info['heldout_accuracy'], clf.info['num_heldout_notes'],
       clf.info['best_epoch'], _OUT.value))


def run():
  cli_errors.exit_on_sigterm()
  app.run(main)


if __name__ == '__main__':
  run()
