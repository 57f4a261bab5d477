"""Metrics of gansynth_tf2.eval.metrics against closed forms (numpy only)."""

import math

import numpy as np
import pytest

from gansynth_tf2.eval import metrics
from gansynth_tf2.eval import report


# --- FID -----------------------------------------------------------------------
def test_fid_of_a_set_with_itself_is_zero():
  x = np.random.RandomState(0).randn(500, 16) @ np.random.RandomState(1).randn(
      16, 16)
  assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_a_shifted_set_is_the_squared_shift():
  # Same covariance, mean moved by c in each of d dims: FID = d c^2 exactly.
  x = np.random.RandomState(0).randn(400, 8)
  for c in (0.5, 2.0):
    assert metrics.frechet_distance(x, x + c) == pytest.approx(8 * c * c,
                                                               rel=1e-6)


def test_fid_of_scaled_set_matches_closed_form():
  # Covariance s^2 S vs S, same mean: Tr(S) (1 + s^2 - 2 s) = Tr(S) (s - 1)^2.
  x = np.random.RandomState(3).randn(300, 6) * np.arange(1, 7)
  x = x - x.mean(0)
  s = 3.0
  tr = np.trace(np.cov(x, rowvar=False))
  assert metrics.frechet_distance(x, s * x) == pytest.approx(
      tr * (s - 1) ** 2, rel=1e-6)


def test_fid_from_statistics_closed_form_diagonal_and_general():
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
  got = metrics.frechet_distance_from_statistics(mu1, np.diag(v1), mu2,
                                                 np.diag(v2))
  assert got == pytest.approx(want, rel=1e-9)
  # A rotation of both covariances leaves the distance unchanged.
  q, _ = np.linalg.qr(np.random.RandomState(0).randn(3, 3))
  got_rot = metrics.frechet_distance_from_statistics(
      q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
  assert got_rot == pytest.approx(want, rel=1e-7)
  # Versus scipy's matrix square root on a general pair.
  from scipy import linalg
  a = np.random.RandomState(1).randn(5, 5)
  b = np.random.RandomState(2).randn(5, 5)
  s1, s2 = a @ a.T, b @ b.T
  ref = np.trace(s1 + s2 - 2 * np.real(linalg.sqrtm(s1 @ s2)))
  assert metrics.frechet_distance_from_statistics(
      np.zeros(5), s1, np.zeros(5), s2) == pytest.approx(ref, rel=1e-6)


def test_fid_uses_all_rows_and_handles_fewer_rows_than_dims():
  x = np.random.RandomState(0).randn(64, 16)
  y = x.copy()
  y[40:] += 5.0  # only rows after the first batch differ
  assert metrics.frechet_distance(x, y) > 1.0
  small = np.random.RandomState(1).randn(10, 128)  # singular covariance
  assert metrics.frechet_distance(small, small) == pytest.approx(0.0, abs=1e-6)
  assert metrics.frechet_distance(small, small + 1) == pytest.approx(
      128.0, rel=1e-6)


def test_fid_bad_inputs():
  with pytest.raises(ValueError, match='D'):
    metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
  with pytest.raises(ValueError, match='N >= 2'):
    metrics.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
  with pytest.raises(ValueError, match='NaN'):
    metrics.frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3)))


# --- Inception Score, entropy, accuracy -------------------------------------------
def test_inception_score_closed_forms():
  k = 7
  one_hot = np.eye(k)[np.arange(70) % k]
  assert metrics.inception_score(one_hot) == pytest.approx(k, rel=1e-9)
  uniform = np.full((50, k), 1.0 / k)
  assert metrics.inception_score(uniform) == pytest.approx(1.0, rel=1e-9)
  same_class = np.eye(k)[np.zeros(30, int)]
  assert metrics.inception_score(same_class) == pytest.approx(1.0, rel=1e-9)
  # Two classes used evenly out of 7: IS = 2.
  two = np.eye(k)[np.arange(40) % 2]
  assert metrics.inception_score(two) == pytest.approx(2.0, rel=1e-9)
  soft = metrics.softmax(np.random.RandomState(0).randn(100, k))
  assert 1.0 <= metrics.inception_score(soft) <= k


def test_pitch_entropy_and_accuracy():
  k = 61
  assert metrics.pitch_entropy(np.eye(k)[[0, 5, 9]]) == pytest.approx(0.0)
  assert metrics.pitch_entropy(np.full((4, k), 1.0 / k)) == pytest.approx(
      math.log(k))
  probs = np.eye(k)[[10, 11, 13, 20]]
  labels = np.array([10, 10, 10, 10])
  assert metrics.pitch_accuracy(probs, labels) == 0.25
  assert metrics.pitch_accuracy(probs, labels, tolerance=1) == 0.5
  with pytest.raises(ValueError, match='sum to 1'):
    metrics.pitch_entropy(np.ones((3, k)))
  with pytest.raises(ValueError, match='match'):
    metrics.pitch_accuracy(probs, labels[:2])


def test_share_by_octave_splits_at_c():
  pitches = np.array([24, 35, 36, 47, 48, 60, 84])
  hits = np.array([1, 0, 1, 1, 0, 1, 1], bool)
  got = metrics.share_by_octave(hits, pitches)
  assert list(got) == ['24-35', '36-47', '48-59', '60-71', '84-95']
  assert got['24-35'] == {'share': 0.5, 'num_notes': 2}
  assert got['36-47'] == {'share': 1.0, 'num_notes': 2}
  assert got['48-59'] == {'share': 0.0, 'num_notes': 1}
  # The note-weighted mean of the octaves is the overall share.
  total = sum(v['share'] * v['num_notes'] for v in got.values())
  assert total / len(pitches) == pytest.approx(hits.mean())
  assert metrics.octave_of(59) == '48-59' and metrics.octave_of(21) == '12-23'
  with pytest.raises(ValueError, match='match'):
    metrics.share_by_octave(hits[:3], pitches)


# --- NDB and JS -----------------------------------------------------------------
def _clusters(n, centers, seed):
  rng = np.random.RandomState(seed)
  idx = rng.randint(0, len(centers), n)
  return centers[idx] + 0.1 * rng.randn(n, centers.shape[1])


def test_ndb_identical_sets_have_no_different_bins():
  centers = np.random.RandomState(0).randn(10, 20) * 5
  ref = _clusters(600, centers, 1)
  ndb = metrics.NDB(ref, k=10, seed=0)
  r = ndb.evaluate(ref)
  assert r['num_different_bins'] == 0
  assert r['js_divergence'] == pytest.approx(0.0, abs=1e-12)
  # Another draw of the same distribution: few if any different bins.
  r2 = ndb.evaluate(_clusters(600, centers, 2))
  assert r2['num_different_bins'] <= 2
  assert r2['js_divergence'] < 0.02


def test_ndb_disjoint_and_collapsed_sets_have_many_different_bins():
  centers = np.random.RandomState(0).randn(10, 20) * 5
  ref = _clusters(600, centers, 1)
  ndb = metrics.NDB(ref, k=10, seed=0)
  far = _clusters(600, centers + 100.0, 3)  # all land in one or few bins
  r = ndb.evaluate(far)
  assert r['num_different_bins'] >= 8
  assert r['js_divergence'] > 0.3
  collapsed = _clusters(600, centers[:2], 4)  # mode collapse: 2 of 10 modes
  r = ndb.evaluate(collapsed)
  assert r['num_different_bins'] >= 8
  assert r['share_different_bins'] == r['num_different_bins'] / 10.0


def test_ndb_z_test_closed_form():
  # Bin 0: 50/100 vs 30/100; pooled 0.4, se = sqrt(.4 .6 .02) = 0.0693: z=2.89.
  r = metrics.ndb_from_counts([50, 50], [30, 70])
  assert r['num_different_bins'] == 2
  r = metrics.ndb_from_counts([50, 50], [45, 55])  # z = 0.71: not different
  assert r['num_different_bins'] == 0
  assert metrics.js_divergence([1, 0], [0, 1]) == pytest.approx(math.log(2))
  assert metrics.js_divergence([1, 2], [2, 4]) == pytest.approx(0.0)


def test_ndb_bad_inputs():
  with pytest.raises(ValueError, match='at least 50 reference'):
    metrics.NDB(np.zeros((10, 4)), k=50)
  ndb = metrics.NDB(np.random.RandomState(0).randn(30, 4), k=3)
  with pytest.raises(ValueError, match=r'\[M, 4\]'):
    ndb.evaluate(np.zeros((5, 3)))


def test_parse_pitches():
  assert report.parse_pitches('24-26') == [24, 25, 26]
  assert report.parse_pitches('60,64, 67') == [60, 64, 67]
  assert report.parse_pitches('24-25,60') == [24, 25, 60]
  assert report.parse_pitches('') == list(range(24, 85))
  for text in ('24-84', '24-26,60', '40,52,64-66'):
    assert report.format_pitches(report.parse_pitches(text)) == text
  for bad in ('x', '30-20', '200', '-'):
    with pytest.raises(ValueError, match='pitches'):
      report.parse_pitches(bad)
