"""Synth argument checks: bad pitches, seeds, truncation, batch sizes, shapes."""

import numpy as np
import pytest

from gansynth_tf2 import synth as synth_lib


@pytest.fixture(scope='module')
def synth(random_tiny_model_dir):
  return synth_lib.load(random_tiny_model_dir)


def test_pitch_range_is_checked_before_the_int32_cast():
  for bad, shown in [([2**32 + 60], '4294967356'), ([1e10], '10000000000'),
                     (np.array([2**40 + 60], np.int64), '1099511627836')]:
    with pytest.raises(ValueError, match=r'\[%s\] outside' % shown):
      synth_lib.check_pitches(bad, (24, 84))
  for bad in ([60.5], [float('nan')], [float('inf')]):
    with pytest.raises(ValueError, match='pitches must be integers'):
      synth_lib.check_pitches(bad, (24, 84))
  p = synth_lib.check_pitches([60.0, np.uint8(24), 84], (24, 84))
  assert p.dtype == np.int32 and p.tolist() == [60, 24, 84]


def test_pitches_of_the_wrong_type(synth):
  for bad in (['60'], '60,64', None, [True], [[60], [60, 64]]):
    with pytest.raises(ValueError, match='pitches must be'):
      synth.generate_specgrams(bad, seed=0)


def test_bad_seed_and_truncation(synth):
  for bad in (1.5, 'a', -1, 2**33):
    with pytest.raises(ValueError, match='seed must be'):
      synth.generate_specgrams([60], seed=bad)
  for bad in (None, 'x', float('nan'), 0, 1.5):
    with pytest.raises(ValueError, match='truncation must be in'):
      synth.generate_specgrams([60], seed=0, truncation=bad)


def test_bad_batch_sizes(synth, random_tiny_model_dir):
  for bad in (0, -1, 1.5, True, '2'):
    with pytest.raises(ValueError, match='batch_size must be an integer >= 1'):
      synth.generate_specgrams([60, 61], seed=0, batch_size=bad)
    with pytest.raises(ValueError, match='batch_size must be an integer >= 1'):
      synth_lib.load(random_tiny_model_dir, batch_size=bad)
  for bad in (2.5, 1, True):
    with pytest.raises(ValueError, match='steps must be an integer >= 2'):
      synth.interpolation_latents(bad, seed=0)
    with pytest.raises(ValueError, match='num_anchors must be an integer'):
      synth.interpolation_latents(3, num_anchors=bad, seed=0)
  calls = []
  synth.generate_specgrams([60] * 3, seed=0, batch_size=2.0, normalized=True,
                           progress=lambda d, n: calls.append((d, n)))
  assert calls == [(2, 3), (3, 3)]


def test_specgrams_to_waves_checks_the_shape(synth):
  frames, bins, channels = synth.transform.spec_shape
  for shape in ((frames, bins, channels), (1, frames // 2, bins, channels),
                (1, frames, bins, 1)):
    with pytest.raises(ValueError, match=r'specgrams must have shape '
                       r'\[batch, %d, %d, %d\]' % (frames, bins, channels)):
      synth.specgrams_to_waves(np.zeros(shape, np.float32))
  w = synth.specgrams_to_waves(np.zeros((1, frames, bins, channels)))
  assert w.shape == (1, synth.audio_length)
