"""A small YIN f0 estimator (numpy) to check that rendered notes are pitched.

  estimate_f0(wave [T], sample_rate) -> (f0 Hz (nan if unvoiced),
                                         voiced fraction of sounding frames)
  pitch_check(wave, sample_rate, midi_pitch) -> 'ok' | 'silent' |
                                                 'unpitched' | 'wrong_pitch'
  voiced_f0(wave, sample_rate) -> ('ok' | 'silent' | 'unpitched', f0 Hz)
  estimate_midi_pitch(wave, sample_rate) -> (MIDI pitch or None,
                                             'ok' | 'silent' | 'unpitched',
                                             f0 Hz)
"""

import numpy as np


def _next_pow2(n):
  return 1 << (int(n) - 1).bit_length()


def yin_frames(frames, tau_max):
  """Cumulative mean normalized difference, frames [F, W + tau_max] -> [F, tau_max].

  A digitally silent frame has no period: its row is all 1 (unvoiced).
  """
  frames = np.asarray(frames, np.float64)
  num, total = frames.shape
  w = total - tau_max
  n_fft = _next_pow2(total + w)
  head = np.zeros_like(frames)
  head[:, :w] = frames[:, :w]
  # acf[tau] = sum_{j<w} x_j x_{j+tau}
  acf = np.fft.irfft(np.conj(np.fft.rfft(head, n_fft)) *
                     np.fft.rfft(frames, n_fft), n_fft)[:, :tau_max]
  energy0 = np.sum(frames[:, :w] ** 2, axis=1, keepdims=True)
  sq = np.concatenate([np.zeros((num, 1)), np.cumsum(frames ** 2, axis=1)], 1)
  taus = np.arange(tau_max)
  energy_tau = sq[:, taus + w] - sq[:, taus]
  diff = np.maximum(energy0 + energy_tau - 2.0 * acf, 0.0)
  diff[:, 0] = 0.0
  cum = np.cumsum(diff[:, 1:], axis=1)
  cmndf = np.ones_like(diff)
  cmndf[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
  cmndf[np.sum(frames ** 2, axis=1) <= 1e-20] = 1.0
  return cmndf


def estimate_f0(wave, sample_rate, fmin=25.0, fmax=2500.0, threshold=0.2,
                start_s=0.15, duration_s=1.2, window=1024, num_frames=12):
  """Median YIN f0 of the held part of a note.

  Args:
    wave: float [T] mono.
    sample_rate: Hz.
    start_s, duration_s: the segment analysed (skips the attack).

  Frames over 60 dB below the loudest one (silence after a short note) are
  left out.

  Returns:
    (f0 in Hz or nan, fraction of the other frames that were voiced).
  """
  wave = np.asarray(wave, np.float64).reshape(-1)
  tau_max = int(np.ceil(sample_rate / fmin)) + 2
  tau_min = max(int(np.floor(sample_rate / fmax)), 2)
  start = int(start_s * sample_rate)
  stop = min(len(wave), start + int(duration_s * sample_rate))
  span = window + tau_max
  if stop - start < span:
    start, stop = 0, len(wave)
  if stop - start < span:
    return float('nan'), 0.0
  starts = np.linspace(start, stop - span, num_frames).astype(int)
  frames = np.stack([wave[s:s + span] for s in starts])
  rms = np.sqrt(np.mean(frames[:, :window] ** 2, axis=1))
  frames = frames[rms > max(1e-3 * np.max(rms), 1e-10)]
  if not len(frames):
    return float('nan'), 0.0
  cmndf = yin_frames(frames, tau_max)
  f0s = []
  for row in cmndf:
    below = np.nonzero(row[tau_min:tau_max - 1] < threshold)[0]
    if not below.size:
      continue
    tau = below[0] + tau_min
    while tau + 1 < tau_max - 1 and row[tau + 1] < row[tau]:
      tau += 1  # walk down to the local minimum
    a, b, c = row[tau - 1], row[tau], row[tau + 1]
    den = a - 2 * b + c
    shift = 0.5 * (a - c) / den if den > 0 else 0.0
    f0s.append(sample_rate / (tau + shift))
  if not f0s:
    return float('nan'), 0.0
  return float(np.median(f0s)), len(f0s) / float(len(frames))


def midi_to_hz(pitch):
  return 440.0 * 2.0 ** ((float(pitch) - 69.0) / 12.0)


def hz_to_midi(hz):
  return 69.0 + 12.0 * np.log2(hz / 440.0)


SILENCE_DB = -60.0  # a note whose peak is at most this (dBFS) is silent


def voiced_f0(wave, sample_rate, silence_db=SILENCE_DB, min_voiced=0.5):
  """('ok' | 'silent' | 'unpitched', median YIN f0 Hz or nan) of a note.

  Silent: peak at most `silence_db` dBFS. Unpitched: under `min_voiced` of
  the YIN frames are periodic (or no f0).
  """
  wave = np.asarray(wave, np.float64).reshape(-1)
  peak = np.max(np.abs(wave)) if wave.size else 0.0
  if peak <= 10.0 ** (silence_db / 20.0):
    return 'silent', float('nan')
  f0, voiced = estimate_f0(wave / peak, sample_rate)
  if not voiced >= min_voiced or not np.isfinite(f0):
    return 'unpitched', f0
  return 'ok', f0


def estimate_midi_pitch(wave, sample_rate, silence_db=SILENCE_DB,
                        min_voiced=0.5):
  """The MIDI pitch nearest to a note's median YIN f0 (unlabelled audio).

  Returns (pitch or None, 'ok' | 'silent' | 'unpitched', f0 Hz or nan), by
  `voiced_f0`.
  """
  verdict, f0 = voiced_f0(wave, sample_rate, silence_db, min_voiced)
  if verdict != 'ok':
    return None, verdict, f0
  return int(np.round(hz_to_midi(f0))), 'ok', f0


def pitch_check(wave, sample_rate, midi_pitch, silence_db=SILENCE_DB,
                max_cents=50.0, min_voiced=0.5):
  """Classifies a rendered note: 'ok', 'silent', 'unpitched', 'wrong_pitch'.

  Silent and unpitched: see `voiced_f0`. Wrong pitch: the median f0 is more
  than `max_cents` from the MIDI pitch (octave errors included).
  """
  verdict, f0 = voiced_f0(wave, sample_rate, silence_db, min_voiced)
  if verdict != 'ok':
    return verdict, f0
  cents = 100.0 * abs(hz_to_midi(f0) - midi_pitch)
  return ('ok' if cents <= max_cents else 'wrong_pitch'), f0
