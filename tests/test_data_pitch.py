"""YIN pitch check: silence is unvoiced, short notes keep their pitch."""

import numpy as np
import pytest

from gansynth_tf2.data import pitch

SR = 16000


def _tone(midi, seconds, total_s=4.0, noise=0.0):
  t = np.arange(int(SR * seconds)) / SR
  wave = 0.5 * np.sin(2 * np.pi * pitch.midi_to_hz(midi) * t)
  wave = np.pad(wave, (0, int(SR * total_s) - len(wave)))
  return wave + noise * np.random.RandomState(0).randn(len(wave))


def test_digital_silence_is_unvoiced():
  f0, voiced = pitch.estimate_f0(np.zeros(64000), SR)
  assert np.isnan(f0) and voiced == 0.0
  assert np.all(pitch.yin_frames(np.zeros((3, 2000)), 700) == 1.0)
  assert pitch.pitch_check(np.zeros(64000), SR, 60)[0] == 'silent'


@pytest.mark.parametrize('seconds', [0.5, 0.7, 0.9, 2.0])
@pytest.mark.parametrize('noise', [0.0, 1e-5])
def test_short_note_then_silence_has_its_pitch(seconds, noise):
  verdict, f0 = pitch.pitch_check(_tone(60, seconds, noise=noise), SR, 60)
  assert verdict == 'ok', (verdict, f0)
  assert abs(1200 * np.log2(f0 / pitch.midi_to_hz(60))) < 5


def test_noise_and_wrong_pitch_are_still_caught():
  noise = np.random.RandomState(1).uniform(-0.5, 0.5, 64000)
  assert pitch.pitch_check(noise, SR, 60)[0] == 'unpitched'
  assert pitch.pitch_check(_tone(67, 0.7), SR, 60)[0] == 'wrong_pitch'
