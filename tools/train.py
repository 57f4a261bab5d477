r"""Trains GANSynth progressively; a restart with the same dir resumes.

  gansynth-train --config=mel_prog_hires --train_root_dir=runs/mel \
      --hparams='{"train_data_path": "nsynth/*train*"}' [--strategy=auto]

--config is a configs/ name (or a JSON file); --hparams overrides any
original hparam name (JSON object). Data comes from the hparams dataset_name
('nsynth_tfrecord' + train_data_path, 'nsynth_tfds' + tfds_data_dir,
'audio_folder' + train_data_path, or 'synthetic_tones' / 'synthetic_noise').
--strategy: auto (TPU if one resolves, multi-worker if TF_CONFIG lists
several workers, Mirrored if >1 GPU, else default), default, mirrored,
multi_worker (TF_CONFIG), tpu (--tpu=NAME). TensorBoard: --logdir=DIR.

Exit status: 0 done (or stopped by --stop_after_images), 1 bad input or a
training error, 3 training diverged (NaN/Inf; the last good checkpoint is
kept), 130 / 143 stopped by SIGINT / SIGTERM (after saving a checkpoint).
"""

import os
import re
import sys

from absl import app
from absl import flags
from absl import logging

_CONFIG = flags.DEFINE_string('config', 'mel_prog_hires',
                              'Config name (configs/) or JSON file.')
_ROOT = flags.DEFINE_string('train_root_dir', None,
                            'Run folder (created; resumed from).')
_HPARAMS = flags.DEFINE_string('hparams', '{}',
                               'JSON object of hparam overrides.')
_STRATEGY = flags.DEFINE_string(
    'strategy', 'auto', 'auto|default|mirrored|multi_worker|tpu.')
_TPU = flags.DEFINE_string('tpu', None, 'TPU name or address (--strategy=tpu '
                           'or auto).')
_STOP = flags.DEFINE_integer(
    'stop_after_images', None,
    'Stop (with a checkpoint) once this many images are seen in total.')
_INIT_FROM = flags.DEFINE_string(
    'init_from', None, 'Start a NEW run from a native model dir holding the '
    'raw generator and discriminator (package_model --with_discriminator, '
    'e.g. the shipped model): weights and images seen, fresh optimizers. '
    'Ignored when --train_root_dir already has a checkpoint (it resumes).')
_LOG_SECS = flags.DEFINE_float('log_every_secs', 30.0,
                               'Seconds between progress lines.')
_FAKE_LABELS = flags.DEFINE_string(
    'fake_labels', 'real', "Generator labels: 'real' (drawn from the real "
    "batch's pitches) or 'uniform' (uniform over the pitch range).")

PROG = 'gansynth-train'
STRATEGIES = ('auto', 'default', 'mirrored', 'multi_worker', 'tpu')


def _one_line(e):
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def _op_error_cause(message):
  """The line of a TF error message that says what went wrong: the text of
  a failed assertion (the data pipeline's checks), else the last line that
  is not TF's boilerplate ("Graph execution error:", node names)."""
  m = re.search(r'assertion failed: \[(.*?)\]\s*(\[\[|$)', message, re.S)
  if m:
    return ' '.join(m.group(1).split())
  lines = [l.strip() for l in message.splitlines() if l.strip() and not (
      l.strip().startswith(('[[', 'Detected at node', '<stack traces')) or
      l.strip() == 'Graph execution error:')]
  return lines[-1] if lines else _one_line(message)


def _fail(msg, code=1):
  print('%s: error: %s' % (PROG, msg), file=sys.stderr, flush=True)
  sys.exit(code)


def main(argv):
  if len(argv) > 1:
    _fail('unexpected arguments %s' % ' '.join(argv[1:]))
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  logging.set_verbosity(logging.WARNING)  # no INFO lines from TF's saver
  from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top
  try:
    # Checks that need no TensorFlow first (fast errors).
    if _STRATEGY.value not in STRATEGIES:
      raise ValueError('--strategy must be one of %s, got %r' %
                       ('|'.join(STRATEGIES), _STRATEGY.value))
    if _FAKE_LABELS.value not in ('real', 'uniform'):
      raise ValueError("--fake_labels must be 'real' or 'uniform', got %r" %
                       _FAKE_LABELS.value)
    cfg = config_lib.load_config(_CONFIG.value, _HPARAMS.value)
    root = _ROOT.value
    if not root:
      raise ValueError('--train_root_dir is required')
    if os.path.exists(root) and not os.path.isdir(root):
      raise ValueError('--train_root_dir %s is not a folder' % root)
    if _STOP.value is not None and _STOP.value <= 0:
      raise ValueError('--stop_after_images must be positive')
    from gansynth_tf2 import training  # pylint: disable=g-import-not-at-top
    result = training.train(
        cfg, root, strategy=_STRATEGY.value, tpu=_TPU.value,
        stop_after_images=_STOP.value, log_every_secs=_LOG_SECS.value,
        fake_labels=_FAKE_LABELS.value, init_from=_INIT_FROM.value)
  except (ValueError, OSError) as e:
    # TrainingDivergedError is a ValueError: its own exit status.
    diverged = type(e).__name__ == 'TrainingDivergedError'
    _fail(_one_line(e), 3 if diverged else 1)
  except Exception as e:  # pylint: disable=broad-except
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if isinstance(e, tf.errors.OpError):
      _fail('%s: %s' % (type(e).__name__, _op_error_cause(e.message)))
    raise
  print('%s: %s at %d images; model: %s' % (
      PROG, result['status'], result['images_seen'], os.path.abspath(root)),
        flush=True)
  if result['status'] == 'interrupted':
    sys.exit(128 + int(result['signal']))  # the shell's code for the signal


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).splitlines()[0] if str(e) else 'bad flags', 2)


def run():
  app.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  run()
