"""One-line error exit shared by the CLIs."""

import sys


def fail(prog, e):
  """One-line error and exit 1 for expected errors; re-raises bugs."""
  tf = sys.modules.get('tensorflow')
  expected = (ValueError, OSError) + ((tf.errors.OpError,) if tf else ())
  if not isinstance(e, expected):  # ValueError includes midi.MidiError
    raise e
  msg = ' '.join(str(getattr(e, 'message', None) or e).split())
  print('%s: error: %s' % (prog, msg[:500]), file=sys.stderr)
  sys.exit(1)
