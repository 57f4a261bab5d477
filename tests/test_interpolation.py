"""Latent interpolation: lerp / slerp, exact endpoints, time anchors, morphs."""

import numpy as np
import pytest

from gansynth_tf2 import interpolation
from gansynth_tf2 import synth as synth_lib


@pytest.fixture(scope='module')
def anchors():
  return np.random.RandomState(0).normal(size=(3, 256)).astype(np.float32)


@pytest.mark.parametrize('method', ['slerp', 'lerp'])
@pytest.mark.parametrize('steps', [2, 5, 8])
def test_endpoints_equal_anchors(anchors, method, steps):
  path = interpolation.interpolate(anchors[:2], steps, method)
  assert path.shape == (steps, 256) and path.dtype == np.float32
  np.testing.assert_array_equal(path[0], anchors[0])
  np.testing.assert_array_equal(path[-1], anchors[1])


@pytest.mark.parametrize('method', ['slerp', 'lerp'])
def test_every_anchor_on_the_path(anchors, method):
  path = interpolation.interpolate(anchors, 9, method)  # (9-1) % (3-1) == 0
  for k, i in [(0, 0), (4, 1), (8, 2)]:
    np.testing.assert_array_equal(path[k], anchors[i])


def test_lerp_midpoint_and_slerp_properties(anchors):
  a, b = anchors[0].astype(np.float64), anchors[1].astype(np.float64)
  np.testing.assert_allclose(interpolation.lerp(a, b, 0.5), (a + b) / 2)
  # slerp of equal-norm vectors stays on their sphere and bisects the angle.
  u = a / np.linalg.norm(a) * 16.0
  v = b / np.linalg.norm(b) * 16.0
  m = interpolation.slerp(u, v, 0.5)
  assert np.linalg.norm(m) == pytest.approx(16.0, rel=1e-9)
  cos = lambda x, y: np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y)
  assert cos(m, u) == pytest.approx(cos(m, v), rel=1e-9)
  # The original's formula.
  omega = np.arccos(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)))
  t = 0.3
  want = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
  np.testing.assert_allclose(interpolation.slerp(a, b, t), want, rtol=1e-12)
  # Parallel vectors fall back to lerp; opposite ones are refused.
  np.testing.assert_allclose(interpolation.slerp(a, 2 * a, 0.5), 1.5 * a)
  with pytest.raises(ValueError, match='opposite'):
    interpolation.slerp(a, -a, 0.5)


def test_bad_arguments(anchors):
  for bad in (1, 2.5, True, '3', None, float('nan')):
    with pytest.raises(ValueError, match='steps must be an integer >= 2'):
      interpolation.interpolate(anchors, bad)
  assert interpolation.interpolate(anchors, 3.0).shape == (3, 256)
  with pytest.raises(ValueError, match='interpolation must be'):
    interpolation.interpolate(anchors, 3, 'cubic')
  with pytest.raises(ValueError, match='anchors must have shape'):
    interpolation.interpolate(anchors[0], 3)
  with pytest.raises(ValueError, match='finite'):
    interpolation.interpolate(np.full((2, 4), np.nan), 3)


def test_interpolate_at_times(anchors):
  times = [0.0, 3.0, 6.0]
  z = interpolation.interpolate_at(anchors, times, [-1.0, 0.0, 1.5, 3.0, 6.0,
                                                    99.0], 'lerp')
  np.testing.assert_array_equal(z[0], anchors[0])  # before: first anchor
  np.testing.assert_array_equal(z[1], anchors[0])
  np.testing.assert_allclose(z[2], (anchors[0] + anchors[1]) / 2, rtol=1e-6)
  np.testing.assert_array_equal(z[3], anchors[1])
  np.testing.assert_array_equal(z[4], anchors[2])
  np.testing.assert_array_equal(z[5], anchors[2])  # after: last anchor
  with pytest.raises(ValueError, match='increasing'):
    interpolation.interpolate_at(anchors, [0.0, 0.0, 1.0], [0.5])


def test_anchor_times():
  t = interpolation.anchor_times(10.0, 6.0)
  assert t[0] == 0.0 and t[-1] == 10.0 and len(t) == 3
  assert len(interpolation.anchor_times(0.5, 6.0)) == 2
  assert len(interpolation.anchor_times(10.0, 0.01)) == 1001
  for bad in (0.0, -1.0, 1e-3, np.nan, np.inf):
    with pytest.raises(ValueError, match='secs_per_instrument must be'):
      interpolation.anchor_times(10.0, bad)


def test_synth_interpolation_endpoints_are_the_anchor_notes(tiny_model_dir,
                                                             anchors):
  s = synth_lib.load(tiny_model_dir)
  waves, z, p = s.interpolate(5, anchors=anchors[:2], pitches=60,
                              method='slerp')
  assert waves.shape == (5, s.audio_length) and list(p) == [60] * 5
  np.testing.assert_array_equal(z[0], anchors[0])
  np.testing.assert_array_equal(z[-1], anchors[1])
  ends = s.generate([60, 60], anchors[:2])
  # The latents are bit-equal (above); the notes equal up to float rounding,
  # which depends on the batch (oneDNN picks conv algorithms by batch size:
  # up to ~4e-5 on waves of peak ~1 for a batch of 5 vs 2).
  np.testing.assert_allclose(waves[[0, -1]], ends, atol=2e-4)
  assert np.abs(waves[2] - waves[0]).max() > 1e-3  # the middle differs
  # Anchors drawn from a seed are reproducible.
  _, z1, _ = s.interpolate(3, num_anchors=3, seed=4, pitches=[48, 60, 72])
  np.testing.assert_array_equal(z1, s.sample_latents(3, 4))
  with pytest.raises(ValueError, match='pitches for 4'):
    s.interpolate(4, seed=0, pitches=[60, 62])
