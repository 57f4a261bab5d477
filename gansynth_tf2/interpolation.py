"""Latent-space interpolation (numpy; no TensorFlow).

  lerp(a, b, t), slerp(a, b, t)              one pair, t in [0, 1]
  interpolate(anchors, steps, method)        [N, L] anchors -> [steps, L] path
  interpolate_at(anchors, anchor_t, t, ...)  anchors placed at times -> latents at times

Every function returns the anchors EXACTLY (bit for bit) where t lands on an
anchor, so a path's first and last latents are its end anchors.

slerp follows the original GANSynth (generate_util.slerp): the angle is the one
between the two directions, and the weights sin((1-t) w) / sin w and
sin(t w) / sin w multiply the unnormalized vectors. Nearly parallel vectors
(sin w ~ 0) fall back to lerp; exactly opposite ones have no unique great
circle and raise.
"""

import numbers

import numpy as np

METHODS = ('slerp', 'lerp')
MIN_SECS_PER_INSTRUMENT = 0.01  # anchor_times: shortest spacing of anchors


def lerp(a, b, t):
  """(1 - t) a + t b. a, b: [..., L]; t: scalar."""
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  return (1.0 - t) * a + t * b


def slerp(a, b, t, eps=1e-6):
  """Spherical interpolation of two vectors [L] (as the original GANSynth)."""
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  na, nb = np.linalg.norm(a), np.linalg.norm(b)
  if na == 0.0 or nb == 0.0:
    return lerp(a, b, t)
  cos = float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
  omega = np.arccos(cos)
  so = np.sin(omega)
  if so < eps:
    if cos < 0:
      raise ValueError('slerp between opposite vectors is undefined; use '
                       'lerp or other anchors')
    return lerp(a, b, t)
  return np.sin((1.0 - t) * omega) / so * a + np.sin(t * omega) / so * b


def check_integer(name, value, minimum):
  """`value` as an int >= `minimum` (whole floats ok; bools refused), or raise."""
  if (isinstance(value, numbers.Real) and
      not isinstance(value, (bool, np.bool_))):
    try:
      if value == int(value) and value >= minimum:
        return int(value)
    except (OverflowError, ValueError):  # inf, nan
      pass
  raise ValueError('%s must be an integer >= %d, got %r' % (name, minimum,
                                                           value))


def _pair(method):
  if method not in METHODS:
    raise ValueError('interpolation must be one of %s, got %r' %
                     (METHODS, method))
  return slerp if method == 'slerp' else lerp


def _check_anchors(anchors, min_count=1):
  anchors = np.asarray(anchors)
  if anchors.ndim != 2 or anchors.shape[0] < min_count:
    raise ValueError('anchors must have shape [N >= %d, latent_size], got %s'
                     % (min_count, anchors.shape))
  if not np.all(np.isfinite(anchors)):
    raise ValueError('anchors must be finite numbers')
  return anchors


def interpolate(anchors, steps, method='slerp'):
  """A path of `steps` latents through N anchors, evenly spaced.

  Position k of the path sits at t = k (N - 1) / (steps - 1) along the chain of
  anchors, so the first and last latents are anchors[0] and anchors[-1]
  exactly, and every anchor appears exactly when (steps - 1) is a multiple of
  (N - 1).

  Args:
    anchors: [N >= 2, L] latents.
    steps: number of latents on the path (>= 2).
    method: 'slerp' or 'lerp'.

  Returns:
    [steps, L] with the anchors' dtype (float32 for float32 anchors).
  """
  anchors = _check_anchors(anchors, 2)
  steps = check_integer('interpolation steps', steps, 2)
  n = anchors.shape[0]
  pos = np.linspace(0.0, float(n - 1), steps)
  pos[0], pos[-1] = 0.0, float(n - 1)
  return _at_positions(anchors, pos, _pair(method))


def _at_positions(anchors, pos, fn):
  """Latents at fractional anchor indices `pos` (clipped to the chain)."""
  n = anchors.shape[0]
  out = np.empty((len(pos), anchors.shape[1]), anchors.dtype)
  for k, p in enumerate(pos):
    p = min(max(float(p), 0.0), float(n - 1))
    i = min(int(np.floor(p)), n - 1)
    frac = p - i
    if frac == 0.0:
      out[k] = anchors[i]  # exact anchors
    else:
      out[k] = fn(anchors[i], anchors[i + 1], frac)
  return out


def interpolate_at(anchors, anchor_times, times, method='slerp'):
  """Latents at `times`, anchors placed at increasing `anchor_times`.

  Times before the first / after the last anchor get the end anchors. This is
  how MIDI rendering moves the timbre: instrument anchors every few seconds,
  each note's latent interpolated at its start time (the original's
  get_z_notes, without its edge cases).

  Args:
    anchors: [N >= 1, L].
    anchor_times: [N] strictly increasing.
    times: [M].
    method: 'slerp' or 'lerp'.

  Returns:
    [M, L].
  """
  anchors = _check_anchors(anchors, 1)
  anchor_times = np.asarray(anchor_times, np.float64).reshape(-1)
  if len(anchor_times) != anchors.shape[0]:
    raise ValueError('%d anchor times for %d anchors' % (len(anchor_times),
                                                         anchors.shape[0]))
  if np.any(np.diff(anchor_times) <= 0):
    raise ValueError('anchor_times must be strictly increasing')
  times = np.asarray(times, np.float64).reshape(-1)
  if anchors.shape[0] == 1:
    return np.repeat(anchors, len(times), axis=0)
  idx = np.arange(len(anchor_times), dtype=np.float64)
  pos = np.interp(times, anchor_times, idx)  # clipped at both ends
  return _at_positions(anchors, pos, _pair(method))


def anchor_times(total_seconds, secs_per_instrument):
  """Evenly spaced anchor times covering [0, total_seconds], >= 2 of them.

  Raises:
    ValueError: secs_per_instrument not finite and >= 0.01, or total_seconds
      not finite.
  """
  try:
    spi = float(secs_per_instrument)
  except (TypeError, ValueError):
    spi = float('nan')
  if not (np.isfinite(spi) and spi >= MIN_SECS_PER_INSTRUMENT):
    raise ValueError('secs_per_instrument must be a finite number of seconds '
                     '>= %g, got %r' % (MIN_SECS_PER_INSTRUMENT,
                                        secs_per_instrument))
  if not np.isfinite(float(total_seconds)):
    raise ValueError('total_seconds must be finite, got %r' % total_seconds)
  total = max(float(total_seconds), 1e-3)
  n = max(2, int(np.ceil(total / spi)) + 1)
  return np.linspace(0.0, total, n)
