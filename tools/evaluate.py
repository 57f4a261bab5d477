r"""Evaluates a GANSynth model with the paper's metrics; writes a JSON report.

  gansynth-eval --model=MODEL --real_data='DATA/*valid*' \
      --classifier=saved_models/pitch_classifier --output_json=report.json

  gansynth-eval --real_only --real_data='DATA/*valid*' \
      --classifier=saved_models/pitch_classifier --output_json=real.json

Up to 2 x --num_samples real notes with --pitches are read and split in two
halves: the reference (of FID and NDB) and the comparison set (the real-data
ceiling). The model generates one note per comparison note at its pitch.
Both sets get: pitch accuracy, pitch entropy, Inception Score, FID on the pitch
classifier's features (all notes), NDB (k-means, --ndb_k bins, on log-mel
spectrograms: number of statistically different bins and JS divergence), and
the share of notes whose f0 (CREPE tiny, or pyin) is within 50 cents of the
requested pitch. See gansynth_tf2/eval/report.py for the definitions.

--model accepts a native model dir, an exported SavedModel or an original
Magenta checkpoint dir; without it, the model shipped in saved_models/.
"""

import os

from absl import app
from absl import flags

from gansynth_tools import cli_errors

_MODEL = flags.DEFINE_string('model', None, 'Model (native dir, SavedModel or '
                             'Magenta dir); default: the shipped model.')
_REAL = flags.DEFINE_string('real_data', None, 'NSynth-format TFRecords of '
                            'real notes: glob, comma list, file or folder.')
_CLASSIFIER = flags.DEFINE_string('classifier', None, 'Pitch classifier dir '
                                  '(tools/train_pitch_classifier.py).')
_NUM = flags.DEFINE_integer('num_samples', 1000, 'Notes per evaluated set; '
                            'twice as many real notes are read.')
_PITCHES = flags.DEFINE_string('pitches', None, 'MIDI pitches: 24-84 or '
                               '60,64,67; default: the classifier\'s range '
                               '(within the model\'s).')
_SEED = flags.DEFINE_integer('seed', 0, 'Sampling, split and latent seed.')
_OUT = flags.DEFINE_string('output_json', None, 'Report to write (atomic).')
_NDB_K = flags.DEFINE_integer('ndb_k', 50, 'NDB k-means bins (0: no NDB).')
_F0 = flags.DEFINE_enum('f0_tracker', 'auto', ['auto', 'crepe_tiny', 'pyin',
                                               'none'],
                        'f0 tracker (auto: crepe_tiny when installed).')
_REAL_ONLY = flags.DEFINE_bool('real_only', False, 'Evaluate the real data '
                               'only (the ceiling), no model.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Generation batch size.')


def _check_not_an_input(out, inputs):
  """Refuses an --output_json that would replace an input file (a real-data
  TFRecord, or a file of the classifier or model)."""
  real = os.path.realpath(out)
  if not os.path.exists(real):
    return
  for p in inputs:
    rp = os.path.realpath(p)
    if os.path.commonpath([real, rp]) == rp:
      raise ValueError('--output_json %s would replace the input %s: choose '
                       'another report path' % (out, real))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('unexpected arguments: %s' % ' '.join(argv[1:]))
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  try:
    if not _REAL.value:
      raise ValueError('--real_data is required (NSynth-format TFRecords)')
    if not _CLASSIFIER.value:
      raise ValueError('--classifier is required (a dir written by '
                       'train_pitch_classifier)')
    if not _OUT.value:
      raise ValueError('--output_json is required')
    out_parent = os.path.dirname(os.path.abspath(_OUT.value))
    if os.path.isdir(_OUT.value):
      raise ValueError('--output_json %s is a folder; expected a file path '
                       '(e.g. %s/report.json)' % (_OUT.value, _OUT.value))
    if os.path.lexists(out_parent) and not os.path.isdir(out_parent):
      raise ValueError('--output_json %s: %s is not a folder' % (
          _OUT.value, out_parent))
    if os.path.isdir(out_parent) and not os.access(out_parent, os.W_OK):
      raise ValueError('--output_json %s: folder %s is not writable' % (
          _OUT.value, out_parent))
    if _REAL_ONLY.value and _MODEL.value:
      raise ValueError('--real_only and --model exclude each other')
    if _BATCH.value < 1:
      raise ValueError('--batch_size must be >= 1')
    from gansynth_tf2.eval import pitch_classifier  # pylint: disable=g-import-not-at-top
    from gansynth_tf2.eval import real_data  # pylint: disable=g-import-not-at-top
    from gansynth_tf2.eval import report  # pylint: disable=g-import-not-at-top
    model_path = None
    if not _REAL_ONLY.value:
      from gansynth_tf2 import synth as synth_lib  # pylint: disable=g-import-not-at-top
      model_path = _MODEL.value or synth_lib.default_model_path()
    _check_not_an_input(_OUT.value, real_data.list_files(_REAL.value) +
                        [_CLASSIFIER.value] + ([model_path] if model_path
                                               else []))
    clf = pitch_classifier.load(_CLASSIFIER.value)
    synth = None
    default_range = clf.pitch_range
    if not _REAL_ONLY.value:
      synth = synth_lib.load(model_path, batch_size=_BATCH.value)
      lo, hi = synth.pitch_range
      default_range = (max(lo, default_range[0]), min(hi, default_range[1]))
      if default_range[0] > default_range[1]:
        raise ValueError('the model\'s pitches %d..%d and the classifier\'s '
                         '%d..%d do not overlap' % (lo, hi, *clf.pitch_range))
    pitches = report.parse_pitches(_PITCHES.value, default_range)
    result = report.evaluate(
        _REAL.value, clf, synth=synth, num_samples=_NUM.value,
        pitches=pitches, seed=_SEED.value, ndb_k=_NDB_K.value,
        f0_tracker=_F0.value, model_path=model_path,
        classifier_path=_CLASSIFIER.value,
        log=lambda s: print(s, flush=True))
    report.write_report(result, _OUT.value)
  except Exception as e:  # pylint: disable=broad-except
    cli_errors.fail('gansynth-eval', e)  # one line for ValueError, OSError, tf errors
  print('Wrote %s' % _OUT.value)


def run():
  cli_errors.exit_on_sigterm()
  app.run(main)


if __name__ == '__main__':
  run()
