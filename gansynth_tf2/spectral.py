"""Spectral transforms of GANSynth in TF ops (all traceable in a tf.function)
and `IFInversion`, the fast exact IF phase vocoder used for generation.

waves [B, T] <-> complex STFT [B, frames, bins] <-> specgrams [B, frames, bins, C]
with C = 2 (log magnitude, instantaneous frequency or phase) or 1 (log magnitude).

Geometry follows the original: n_fft = 2 x bins, hop = (1 - overlap) x n_fft,
all padding at the FRONT of the wave, the DC bin dropped (bins 1..n_fft/2, the
Nyquist bin kept), IF = time difference of the unwrapped phase / pi with the
first frame's phase kept, mel-IF = IF of the mel-projected unwrapped phase.

Representations (`representation=`):
  'mel'       channel 0 log mel power (log |X|^2 on mel bins), channel 1 mel IF
  'linear'    channel 0 log magnitude, channel 1 IF
  'phase'     channel 0 log magnitude, channel 1 phase / pi
  'magnitude' channel 0 log magnitude only (inverted with Griffin-Lim)
"""

import numpy as np
import tensorflow as tf

_MEL_BREAK_FREQUENCY_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0

REPRESENTATIONS = ('mel', 'linear', 'phase', 'magnitude')


# ---------------------------------------------------------------------------
# Mel matrices (numpy, float64, as the original builds them).
# ---------------------------------------------------------------------------
def hertz_to_mel(hz):
  return _MEL_HIGH_FREQUENCY_Q * np.log1p(np.asarray(hz, np.float64) /
                                          _MEL_BREAK_FREQUENCY_HERTZ)


def mel_to_hertz(mel):
  return _MEL_BREAK_FREQUENCY_HERTZ * np.expm1(np.asarray(mel, np.float64) /
                                               _MEL_HIGH_FREQUENCY_Q)


def linear_to_mel_weight_matrix(num_mel_bins, num_spectrogram_bins,
                                sample_rate, lower_edge_hertz,
                                upper_edge_hertz):
  """Triangular mel filterbank [num_spectrogram_bins, num_mel_bins], float64.

  HTK mel scale with triangles linear in mel; every band is widened to at
  least 1.5 linear bins; the first (lowest) spectrogram bin gets no weight.
  The linear bin frequencies are linspace(0, nyquist, num_spectrogram_bins).
  """
  if num_mel_bins <= 0 or num_spectrogram_bins <= 0 or sample_rate <= 0:
    raise ValueError('mel matrix sizes and sample_rate must be positive')
  if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2.0:
    raise ValueError('need 0 <= lower_edge_hertz < upper_edge_hertz <= '
                     'nyquist, got %r, %r' % (lower_edge_hertz,
                                               upper_edge_hertz))
  nyquist = sample_rate / 2.0
  freqs = np.linspace(0.0, nyquist, num_spectrogram_bins)[1:, None]
  edges = np.linspace(hertz_to_mel(lower_edge_hertz),
                      hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
  # Lower, center and upper edges are overlapping VIEWS of one array, and a
  # too-narrow band is widened in place, band after band; a widened edge is
  # therefore seen by the following bands too. This is what the original
  # computes, so we keep it.
  lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
  min_width = 1.5 * nyquist / float(num_spectrogram_bins)
  for i in range(num_mel_bins):
    c_hz = mel_to_hertz(center[i])
    if mel_to_hertz(upper[i]) - mel_to_hertz(lower[i]) < min_width:
      rhs = 0.5 * min_width / (c_hz + _MEL_BREAK_FREQUENCY_HERTZ)
      half = _MEL_HIGH_FREQUENCY_Q * np.log(rhs + np.sqrt(1.0 + rhs**2))
      lower[i] = center[i] - half
      upper[i] = center[i] + half
  lo_hz, c_hz, hi_hz = (mel_to_hertz(m)[None, :] for m in (lower, center,
                                                           upper))
  rising = (freqs - lo_hz) / (c_hz - lo_hz)
  falling = (hi_hz - freqs) / (hi_hz - c_hz)
  weights = np.maximum(0.0, np.minimum(rising, falling))
  return np.concatenate([np.zeros((1, num_mel_bins)), weights], axis=0)


def mel_to_linear_weight_matrix(l2mel):
  """Approximate inverse of a mel matrix: M^T diag(1 / colsum(M M^T))."""
  m_t = l2mel.T
  colsum = np.sum(l2mel @ m_t, axis=0)
  d = np.where(np.abs(colsum) > 1.0e-8, 1.0 / np.where(colsum == 0, 1, colsum),
               colsum)
  return m_t @ np.diag(d)


# ---------------------------------------------------------------------------
# Phase helpers.
# ---------------------------------------------------------------------------
def _diff(x, axis):
  n = x.shape[axis]
  if n is None:  # traced with an unknown size along `axis`
    n = tf.shape(x)[axis]
  return (tf.gather(x, tf.range(1, n), axis=axis) -
          tf.gather(x, tf.range(0, n - 1), axis=axis))


def unwrap(phase, axis=-2):
  """Unwraps phase along `axis` (as the original: correction on every step)."""
  dd = _diff(phase, axis)
  ddmod = tf.math.floormod(dd + np.pi, 2.0 * np.pi) - np.pi
  ddmod = tf.where((ddmod == -np.pi) & (dd > 0), tf.ones_like(ddmod) * np.pi,
                   ddmod)
  correction = tf.cumsum(ddmod - dd, axis=axis)
  zero = tf.zeros_like(tf.gather(phase, [0], axis=axis))
  return phase + tf.concat([zero, correction], axis=axis)


def instantaneous_frequency(phase, time_axis=-2):
  """IF: time difference of the unwrapped phase, first frame kept, / pi."""
  unwrapped = unwrap(phase, axis=time_axis)
  first = tf.gather(unwrapped, [0], axis=time_axis)
  return tf.concat([first, _diff(unwrapped, time_axis)], axis=time_axis) / np.pi


def polar_to_complex(magnitude, phase):
  return tf.complex(magnitude * tf.cos(phase), magnitude * tf.sin(phase))


# ---------------------------------------------------------------------------
# Input checks (static where the shape is known).
# ---------------------------------------------------------------------------
def check_float(x, name, shape):
  """`x` as a float32 tensor whose shape matches `shape`, or raise ValueError.

  Statically known sizes are checked here (None in `shape`: any); a traced
  tensor of unknown sizes gets a runtime shape check (tf.ensure_shape).
  Other float dtypes are cast; integer arrays (e.g. int16 PCM) are refused
  rather than guessed at.
  """
  dtype = None
  if tf.is_tensor(x):
    dtype = x.dtype
  else:
    x = np.asarray(x)
    try:
      dtype = tf.as_dtype(x.dtype)
    except TypeError:  # object arrays
      pass
  if dtype is None or not dtype.is_floating:
    hint = (' (scale int16 PCM by 1 / 32768)'
            if dtype is not None and dtype.is_integer else '')
    raise ValueError('%s must be a float array, got dtype %s%s' %
                     (name, getattr(dtype, 'name', x.dtype), hint))
  dims = tf.TensorShape(x.shape)
  if dims.rank is not None and (
      dims.rank != len(shape) or
      any(d is not None and e is not None and d != e
          for d, e in zip(dims.as_list(), shape))):
    raise ValueError('%s must have shape [%s], got %s' % (
        name, ', '.join('batch' if e is None else str(e) for e in shape),
        dims.as_list()))
  if isinstance(x, np.ndarray):
    return tf.convert_to_tensor(x.astype(np.float32, copy=False))
  x = tf.cast(x, tf.float32)
  if dims.rank is None or any(d is None and e is not None
                              for d, e in zip(dims.as_list(), shape)):
    # Traced with unknown sizes: checked when it runs (InvalidArgumentError
    # naming `name`), and the sizes become static (the frame count, the
    # bins) for what follows.
    msg = '%s must have shape [%s]' % (
        name, ', '.join('batch' if e is None else str(e) for e in shape))
    known = [k for k, e in enumerate(shape) if e is not None]
    size = tf.concat([tf.shape(x), tf.zeros([len(shape)], tf.int32)],
                     0)[:len(shape)]  # any rank: no index out of range
    ok = tf.logical_and(
        tf.equal(tf.rank(x), len(shape)),
        tf.reduce_all(tf.equal(tf.gather(size, known),
                               [shape[k] for k in known])))
    check = tf.debugging.Assert(ok, [msg, 'got', tf.shape(x)])
    with tf.control_dependencies([check]):
      x = tf.ensure_shape(tf.identity(x), shape)
  return x


# ---------------------------------------------------------------------------
# The transform.
# ---------------------------------------------------------------------------
class SpecgramTransform:
  """Waves <-> STFTs <-> GANSynth spectrograms for one geometry.

  Args:
    audio_length: samples per note (64000).
    sample_rate: Hz (16000).
    n_fft: FFT size = frame length = 2 x frequency bins (2048 for hi-freq-res).
    hop_length: frame step (n_fft / 4 for the original's overlap 0.75).
    mel: shorthand for representation='mel' (True) or 'linear' (False).
    representation: 'mel', 'linear', 'phase' or 'magnitude'.
    num_frames: time frames; default the smallest power of two that covers
      the audio (128 for hi-freq-res, 256 for 1024-point FFTs), which is what
      the original's spectrogram shapes are.
    mel_downscale: mel bins = linear bins // mel_downscale.
    log_eps: epsilon inside the logs (1e-6 as the original).
  """

  def __init__(self, audio_length=64000, sample_rate=16000, n_fft=2048,
               hop_length=512, mel=None, representation=None, num_frames=None,
               mel_downscale=1, log_eps=1.0e-6):
    if representation is None:
      representation = 'linear' if mel is False else 'mel'
    elif mel is not None and (mel != (representation == 'mel')):
      raise ValueError('mel=%r contradicts representation=%r' %
                       (mel, representation))
    if representation not in REPRESENTATIONS:
      raise ValueError('representation must be one of %s, got %r' %
                       (REPRESENTATIONS, representation))
    if n_fft <= 0 or n_fft & (n_fft - 1):
      raise ValueError('n_fft must be a power of 2, got %r' % n_fft)
    if not 0 < hop_length <= n_fft:
      raise ValueError('hop_length must be in (0, n_fft], got %r' % hop_length)
    self.audio_length = int(audio_length)
    self.sample_rate = int(sample_rate)
    self.n_fft = int(n_fft)
    self.hop_length = int(hop_length)
    self.representation = representation
    self.mel_downscale = int(mel_downscale)
    self.log_eps = float(log_eps)
    if num_frames is None:
      needed = -(-max(self.audio_length - self.n_fft, 0) // self.hop_length) + 1
      num_frames = 1 << (needed - 1).bit_length()
    self.num_frames = int(num_frames)
    covered = self.hop_length * (self.num_frames - 1) + self.n_fft
    if covered < self.audio_length:
      raise ValueError('%d frames of hop %d cover %d samples < audio_length %d'
                       % (self.num_frames, self.hop_length, covered,
                          self.audio_length))
    self.pad_left = covered - self.audio_length  # all padding at the front
    self.pad_right = 0
    self.num_bins = self.n_fft // 2
    self.num_mel_bins = self.num_bins // self.mel_downscale
    self._l2mel = None
    self._mel2l = None

  @property
  def num_channels(self):
    return 1 if self.representation == 'magnitude' else 2

  @property
  def spec_shape(self):
    """(frames, bins, channels) of `waves_to_specgrams` output."""
    bins = self.num_mel_bins if self.representation == 'mel' else self.num_bins
    return (self.num_frames, bins, self.num_channels)

  # --- matrices --------------------------------------------------------
  def linear_to_mel_matrix(self):
    """float64 [bins, mel_bins] (0 Hz .. Nyquist)."""
    if self._l2mel is None:
      self._l2mel = linear_to_mel_weight_matrix(
          self.num_mel_bins, self.num_bins, self.sample_rate, 0.0,
          self.sample_rate / 2.0)
    return self._l2mel

  def mel_to_linear_matrix(self):
    """float64 [mel_bins, bins]."""
    if self._mel2l is None:
      self._mel2l = mel_to_linear_weight_matrix(self.linear_to_mel_matrix())
    return self._mel2l

  def _safe_log(self, x):
    return tf.math.log(x + self.log_eps)

  # --- waves <-> stfts ---------------------------------------------------
  def waves_to_stfts(self, waves):
    """[B, audio_length] float -> complex64 [B, frames, bins] (no DC bin)."""
    waves = check_float(waves, 'waves', (None, self.audio_length))
    padded = tf.pad(waves, [[0, 0], [self.pad_left, self.pad_right]])
    stfts = tf.signal.stft(padded, frame_length=self.n_fft,
                           frame_step=self.hop_length, fft_length=self.n_fft,
                           pad_end=False)
    return stfts[:, :, 1:]

  def stfts_to_waves(self, stfts):
    """complex64 [B, frames, bins] -> [B, audio_length]."""
    stfts = tf.pad(stfts, [[0, 0], [0, 0], [1, 0]])  # zero DC bin
    waves = tf.signal.inverse_stft(
        stfts, frame_length=self.n_fft, frame_step=self.hop_length,
        fft_length=self.n_fft,
        window_fn=tf.signal.inverse_stft_window_fn(self.hop_length))
    return waves[:, self.pad_left:self.pad_left + self.audio_length]

  # --- stfts <-> linear specgrams ------------------------------------------
  def stfts_to_specgrams(self, stfts):
    """complex [B, T, F] -> [B, T, F, C] (linear frequency)."""
    logmag = self._safe_log(tf.abs(stfts))
    if self.representation == 'magnitude':
      return logmag[..., None]
    phase = tf.math.angle(stfts)
    if self.representation == 'phase':
      p = phase / np.pi
    else:
      p = instantaneous_frequency(phase)
    return tf.stack([logmag, p], axis=-1)

  def specgrams_to_stfts(self, specgrams):
    """[B, T, F, 2] (linear) -> complex [B, T, F]."""
    if self.representation == 'magnitude':
      raise ValueError('magnitude-only specgrams have no phase; use '
                       'griffin_lim() to invert them')
    specgrams = tf.convert_to_tensor(specgrams, tf.float32)
    mag = tf.exp(specgrams[..., 0])
    p = specgrams[..., 1]
    if self.representation == 'phase':
      phase = p * np.pi
    else:
      phase = tf.cumsum(p * np.pi, axis=-2)
    return polar_to_complex(mag, phase)

  # --- linear <-> mel ----------------------------------------------------
  def specgrams_to_melspecgrams(self, specgrams):
    """Linear (log mag, IF) [B,T,F,2] -> (log mel mag^2, mel IF) [B,T,M,2]."""
    specgrams = tf.convert_to_tensor(specgrams, tf.float32)
    l2mel = tf.constant(self.linear_to_mel_matrix(), tf.float32)
    mag2 = tf.exp(2.0 * specgrams[..., 0])
    phase = tf.cumsum(specgrams[..., 1] * np.pi, axis=-2)
    logmelmag2 = self._safe_log(tf.tensordot(mag2, l2mel, 1))
    mel_p = instantaneous_frequency(tf.tensordot(phase, l2mel, 1))
    return tf.stack([logmelmag2, mel_p], axis=-1)

  def melspecgrams_to_specgrams(self, melspecgrams):
    """(log mel mag^2, mel IF) [B,T,M,2] -> linear (log mag, IF) [B,T,F,2]."""
    melspecgrams = tf.convert_to_tensor(melspecgrams, tf.float32)
    mel2l = tf.constant(self.mel_to_linear_matrix(), tf.float32)
    mag2 = tf.tensordot(tf.exp(melspecgrams[..., 0]), mel2l, 1)
    logmag = 0.5 * self._safe_log(mag2)
    mel_phase = tf.cumsum(melspecgrams[..., 1] * np.pi, axis=-2)
    p = instantaneous_frequency(tf.tensordot(mel_phase, mel2l, 1))
    return tf.stack([logmag, p], axis=-1)

  # --- end to end ----------------------------------------------------------
  def waves_to_specgrams(self, waves):
    """[B, audio_length] -> [B, frames, bins, C] in this representation."""
    specgrams = self.stfts_to_specgrams(self.waves_to_stfts(waves))
    if self.representation == 'mel':
      specgrams = self.specgrams_to_melspecgrams(specgrams)
    return specgrams

  def to_linear_specgrams(self, specgrams):
    """This representation -> linear-frequency specgrams (IF or phase)."""
    if self.representation == 'mel':
      return self.melspecgrams_to_specgrams(specgrams)
    return tf.convert_to_tensor(specgrams, tf.float32)

  def log_magnitude(self, specgrams):
    """Linear-frequency log magnitude [B, frames, bins] of any representation."""
    specgrams = tf.convert_to_tensor(specgrams, tf.float32)
    if self.representation == 'mel':
      mel2l = tf.constant(self.mel_to_linear_matrix(), tf.float32)
      mag2 = tf.tensordot(tf.exp(specgrams[..., 0]), mel2l, 1)
      return 0.5 * self._safe_log(mag2)
    return specgrams[..., 0]

  def specgrams_to_waves(self, specgrams, griffin_lim_iters=64):
    """[B, frames, bins, C] -> [B, audio_length].

    Uses the phase channel (IF or phase) when there is one, Griffin-Lim with
    `griffin_lim_iters` iterations for magnitude-only specgrams.
    """
    specgrams = check_float(specgrams, 'specgrams',
                            (None,) + tuple(self.spec_shape))
    if self.representation == 'magnitude':
      return self.griffin_lim(tf.exp(self.log_magnitude(specgrams)),
                              griffin_lim_iters)
    return self.stfts_to_waves(
        self.specgrams_to_stfts(self.to_linear_specgrams(specgrams)))

  # --- Griffin-Lim ---------------------------------------------------------
  def griffin_lim(self, magnitude, num_iters=64, momentum=0.99, seed=0):
    """Fast Griffin-Lim (Perraudin et al. 2013) for this STFT geometry.

    Args:
      magnitude: float [B, frames, bins] linear magnitudes (no DC bin).
      num_iters: iterations (Python int; unrolled in a tf.while_loop).
      momentum: 0 gives plain Griffin-Lim; 0.99 the fast variant.
      seed: the deterministic initial random phase.

    Returns:
      waves [B, audio_length].
    """
    magnitude = check_float(magnitude, 'magnitude',
                            (None, self.num_frames, self.num_bins))
    mag = tf.pad(magnitude, [[0, 0], [0, 0], [1, 0]])  # DC bin
    mag_c = tf.complex(mag, tf.zeros_like(mag))
    phase = tf.random.stateless_uniform(tf.shape(mag), seed=[seed, 17],
                                        minval=-np.pi, maxval=np.pi)
    total = self.pad_left + self.audio_length + self.pad_right
    window = tf.signal.inverse_stft_window_fn(self.hop_length)
    front = tf.concat([tf.zeros([self.pad_left]),
                       tf.ones([total - self.pad_left])], 0)

    def istft(spec):
      w = tf.signal.inverse_stft(spec, self.n_fft, self.hop_length, self.n_fft,
                                 window_fn=window)
      return w[:, :total] * front  # the padding region is silent

    def stft(w):
      return tf.signal.stft(w, self.n_fft, self.hop_length, self.n_fft,
                            pad_end=False)

    def project(spec):
      return mag_c * tf.exp(tf.complex(tf.zeros_like(mag), tf.math.angle(spec)))

    spec = mag_c * tf.exp(tf.complex(tf.zeros_like(phase), phase))
    prev = tf.zeros_like(spec)
    # Momentum as in librosa's fast Griffin-Lim: t - m / (1 + m) * t_prev.
    alpha = tf.complex(tf.constant(momentum / (1.0 + momentum), tf.float32),
                       0.0)

    def body(i, spec, prev):
      rebuilt = stft(istft(spec))
      accel = rebuilt - alpha * prev if momentum else rebuilt
      return i + 1, project(accel), rebuilt

    _, spec, _ = tf.while_loop(lambda i, *_: i < num_iters, body,
                               (tf.constant(0), spec, prev))
    waves = istft(spec)
    return waves[:, self.pad_left:self.pad_left + self.audio_length]


def spectral_convergence(waves, magnitude, transform):
  """||  |STFT(waves)| - magnitude ||_F / || magnitude ||_F, per example."""
  est = tf.abs(transform.waves_to_stfts(waves))
  magnitude = tf.convert_to_tensor(magnitude, tf.float32)
  num = tf.norm(tf.reshape(est - magnitude, [tf.shape(est)[0], -1]), axis=-1)
  den = tf.norm(tf.reshape(magnitude, [tf.shape(est)[0], -1]), axis=-1)
  return num / den


def sparse_columns(matrix, max_nonzeros=8):
  """(indices int32 [cols, K], weights float32 [cols, K]) of the nonzeros of
  each column of `matrix` [rows, cols] (zero-weight padding), or None if a
  column has more than `max_nonzeros`."""
  matrix = np.asarray(matrix)
  nz = [np.flatnonzero(matrix[:, j]) for j in range(matrix.shape[1])]
  k = max(1, max(len(n) for n in nz))
  if k > max_nonzeros:
    return None
  idx = np.zeros((matrix.shape[1], k), np.int32)
  w = np.zeros((matrix.shape[1], k), np.float32)
  for j, n in enumerate(nz):
    idx[j, :len(n)] = n
    w[j, :len(n)] = matrix[n, j]
  return idx, w


class IFInversion:
  """The phase vocoder of `SpecgramTransform.specgrams_to_waves` for IF
  specgrams ('mel' or 'linear'), computed with less work; same math:

  * mel -> linear is a matrix with at most 2 nonzeros per column (all the
    configs here): a gather per nonzero instead of a dense [1024 x 1024]
    matmul (dense when a column has more than 8);
  * the original goes linear phase -> unwrap -> IF -> cumsum back to the
    unwrapped phase, which is the linear phase plus multiples of 2 pi
    (telescoping sum): the phase is used directly (float rounding only);
  * exp(0.5 log(mag^2 + eps)) = sqrt(mag^2 + eps);
  * the phase cumsum over the frames as one matmul with a lower-triangular
    matrix of ones (the same sums; TF's Cumsum along a middle axis is slow).
  """

  def __init__(self, transform):
    if transform.representation not in ('mel', 'linear'):
      raise ValueError('IFInversion needs IF specgrams, got %r' %
                       transform.representation)
    self.transform = transform
    self.mel = transform.representation == 'mel'
    self._tril = np.tril(np.ones((transform.num_frames,) * 2, np.float32))
    self._mel2l = None
    self._sparse = None
    if self.mel:
      mel2l = transform.mel_to_linear_matrix()
      self._sparse = sparse_columns(mel2l)
      if self._sparse is None:
        self._mel2l = mel2l.astype(np.float32)

  def _to_linear(self, x):
    """x [..., mel_bins] @ mel_to_linear [mel_bins, bins]."""
    if self._sparse is None:
      return tf.tensordot(x, tf.constant(self._mel2l), 1)
    idx, w = self._sparse
    out = None
    for k in range(idx.shape[1]):
      term = tf.gather(x, idx[:, k], axis=-1) * tf.constant(w[:, k])
      out = term if out is None else out + term
    return out

  def __call__(self, specgrams):
    t = self.transform
    s = check_float(specgrams, 'specgrams', (None,) + tuple(t.spec_shape))
    # cumsum over frames: phase[t] = sum_{u <= t} pi IF[u]
    phase = tf.einsum('tu,buf->btf', tf.constant(self._tril),
                      s[..., 1] * np.pi)
    if self.mel:
      mag = tf.sqrt(self._to_linear(tf.exp(s[..., 0])) + t.log_eps)
      phase = self._to_linear(phase)
    else:
      mag = tf.exp(s[..., 0])
    return t.stfts_to_waves(tf.complex(mag * tf.cos(phase),
                                       mag * tf.sin(phase)))


class Normalizer:
  """The original's prespecified normalizer, per channel.

  normalize(x) = clip(a x + b, -1, 1); denormalize(y) = (y - b) / a.
  """

  def __init__(self, a, b):
    self.a = np.asarray(a, np.float64)
    self.b = np.asarray(b, np.float64)

  def normalize(self, specgrams):
    a = tf.constant(self.a, tf.float32)
    b = tf.constant(self.b, tf.float32)
    return tf.clip_by_value(a * specgrams + b, -1.0, 1.0)

  def denormalize(self, specgrams):
    a = tf.constant(self.a, tf.float32)
    b = tf.constant(self.b, tf.float32)
    return (specgrams - b) / a
