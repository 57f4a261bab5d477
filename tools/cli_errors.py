"""One-line error exit and signal handling shared by the CLIs."""

import signal
import sys


def exit_on_sigterm():
  """SIGTERM (schedulers, `timeout`, `kill`) -> SystemExit(143), so the temp
  files and folders of interrupted atomic writes are removed, as on Ctrl-C."""
  signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def fail(prog, e):
  """One-line error and exit 1 for expected errors; re-raises bugs."""
  tf = sys.modules.get('tensorflow')
  expected = (ValueError, OSError) + ((tf.errors.OpError,) if tf else ())
  if not isinstance(e, expected):  # ValueError includes midi.MidiError
    raise e
  msg = ' '.join(str(getattr(e, 'message', None) or e).split())
  print('%s: error: %s' % (prog, msg[:500]), file=sys.stderr)
  sys.exit(1)
