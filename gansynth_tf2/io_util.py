"""Crash-safe file writing: write to a temp file in the same folder, then rename."""

import contextlib
import io
import os
import shutil
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temp path next to `path`; renames it onto `path` on success."""
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                             suffix='.tmp', dir=folder)
  os.close(fd)
  try:
    yield tmp
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def atomic_write_text(path, text):
  with atomic_path(path) as tmp:
    with open(tmp, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())


def atomic_write_bytes(path, data):
  with atomic_path(path) as tmp:
    with open(tmp, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())


def check_output_dir(path, marker, protect=()):
  """Raises ValueError unless a new output dir may be written at `path`.

  An existing `path` may be replaced only when it is an empty folder or holds
  `marker`, a file every output of this kind has (an earlier output;
  `marker=None`: the caller decided), and never when it is or holds one of
  the `protect` paths (the inputs).
  """
  real = os.path.realpath(os.fspath(path))
  for p in protect:
    p = os.path.realpath(os.fspath(p))
    if os.path.commonpath([real, p]) == real:
      raise ValueError('output %s %s the input %s: choose another output '
                       'folder' % (path, 'is' if p == real else 'holds', p))
  if os.path.lexists(real) and not os.path.isdir(real):
    raise ValueError('output %s exists and is not a folder' % path)
  if (marker and os.path.isdir(real) and os.listdir(real) and
      not os.path.exists(os.path.join(real, marker))):
    raise ValueError('output %s is a non-empty folder without %s (not an '
                     'earlier output of this kind): refusing to replace it; '
                     'choose a new or empty folder' % (path, marker))


@contextlib.contextmanager
def atomic_dir(path, marker, protect=()):
  """Yields a temp folder next to `path`; replaces `path` with it on success.

  `check_output_dir(path, marker, protect)` runs first.
  """
  check_output_dir(path, marker, protect)
  path = os.path.abspath(os.fspath(path))
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.' + os.path.basename(path) + '.',
                         suffix='.tmp', dir=parent)
  try:
    yield tmp
    os.chmod(tmp, 0o755)
    if os.path.isdir(path):
      old = tmp + '.old'
      os.replace(path, old)
      os.replace(tmp, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def write_wav(path, wave, sample_rate):
  """Writes a mono float wave as 16-bit PCM WAV, atomically. wave: [T]."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  wave = np.asarray(wave, dtype=np.float32).reshape(-1)
  buf = io.BytesIO()
  sf.write(buf, np.clip(wave, -1.0, 1.0), int(sample_rate), subtype='PCM_16',
           format='WAV')
  atomic_write_bytes(path, buf.getvalue())


def jsonable(x):
  """json.dump `default=` for numpy scalars and arrays."""
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError('not JSON serializable: %r' % (x,))
