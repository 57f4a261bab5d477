"""Synthetic pitched notes with known f0 (for tests and sanity checks)."""

import numpy as np


def harmonic_notes(pitches, sample_rate=16000, audio_length=64000, seed=0,
                   detune_cents=0.0, hold_seconds=3.0, noise=0.0):
  """Harmonic tones at MIDI `pitches`, each with a random timbre.

  Args:
    pitches: [N] MIDI numbers.
    sample_rate, audio_length: output geometry.
    seed: timbre (harmonic amplitudes, decay, phases) randomness.
    detune_cents: scalar or [N]: f0 = 440 * 2^((pitch - 69 + cents/100) / 12).
    hold_seconds: note-off time; a fast release follows (as NSynth notes).
    noise: white noise level added (relative to peak 1).

  Returns:
    float32 [N, audio_length], peak amplitude <= ~0.8.
  """
  pitches = np.asarray(pitches, np.float64).reshape(-1)
  detune = np.broadcast_to(np.asarray(detune_cents, np.float64),
                           pitches.shape)
  rng = np.random.RandomState(seed)
  t = np.arange(audio_length) / float(sample_rate)
  out = np.zeros((len(pitches), audio_length), np.float32)
  nyquist = sample_rate / 2.0
  for i, (p, c) in enumerate(zip(pitches, detune)):
    f0 = 440.0 * 2.0 ** ((p - 69.0 + c / 100.0) / 12.0)
    slope = rng.uniform(0.3, 0.8)
    decay = rng.uniform(0.0, 0.6)
    wave = np.zeros(audio_length)
    for h in range(1, 30):
      if f0 * h >= nyquist * 0.95:
        break
      amp = slope ** (h - 1) * rng.uniform(0.5, 1.0)
      wave += amp * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    env = np.minimum(1.0, t / 0.01) * np.exp(-decay * t)
    env *= np.where(t < hold_seconds, 1.0, np.exp(-(t - hold_seconds) * 10.0))
    wave *= env
    wave *= 0.8 / max(1e-9, np.abs(wave).max())
    if noise:
      wave += noise * rng.randn(audio_length)
    out[i] = wave
  return out
