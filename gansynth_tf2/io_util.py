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


@contextlib.contextmanager
def atomic_dir(path):
  """Yields a temp folder next to `path`; replaces `path` with it on success."""
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
