"""The GANSynth paper's sample-quality metrics, in numpy (no TF needed).

Each function states its shapes. The definitions follow Engel et al. (2019),
sec. 4.2, which borrows them from image GANs:

  pitch accuracy     share of notes whose classifier argmax is the requested pitch
  pitch entropy      mean over notes of H(p(y|x)) (nats): how sure the classifier is
  Inception Score    exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over ALL
                     notes (Salimans et al. 2016; the "classifier score")
  FID                Frechet distance of Gaussians fitted to classifier features of
                     two sets (Heusel et al. 2017), on ALL features given
  NDB / JSD          k-means bins of the reference set; number of bins whose share
                     differs between the sets by a two-proportion z-test, and the
                     Jensen-Shannon divergence of the two bin histograms
                     (Richardson & Weiss 2018)
"""

import numpy as np


def _as_probs(probs, name='probs'):
  probs = np.asarray(probs, np.float64)
  if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
    raise ValueError('%s must have shape [N, classes] with N, classes > 0, got '
                     '%s' % (name, probs.shape))
  if not np.all(np.isfinite(probs)) or np.any(probs < -1e-6):
    raise ValueError('%s must be finite and non-negative' % name)
  sums = probs.sum(axis=1)
  if np.any(np.abs(sums - 1.0) > 1e-3):
    raise ValueError('%s rows must sum to 1 (softmax outputs), got sums in '
                     '[%g, %g]' % (name, sums.min(), sums.max()))
  probs = np.clip(probs, 0.0, None)
  return probs / probs.sum(axis=1, keepdims=True)


def softmax(logits):
  """Row softmax. logits [N, K] -> probabilities [N, K] (float64)."""
  logits = np.asarray(logits, np.float64)
  z = logits - logits.max(axis=-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=-1, keepdims=True)


def pitch_hits(probs, labels, tolerance=0):
  """Per note: classified as its requested pitch (bool [N]).

  Args:
    probs: [N, K] class probabilities (or logits: only the argmax is used).
    labels: [N] int class indices (MIDI pitch - lowest pitch).
    tolerance: a note counts as correct when |argmax - label| <= tolerance
      (classes are semitones, so tolerance=1 accepts a neighbouring semitone,
      the original evaluation's `threshold=1`).
  """
  probs = np.asarray(probs)
  labels = np.asarray(labels).reshape(-1)
  if probs.ndim != 2 or probs.shape[0] != labels.shape[0] or not len(labels):
    raise ValueError('probs [N, K] and labels [N] must match and be non-empty,'
                     ' got %s and %s' % (probs.shape, labels.shape))
  pred = np.argmax(probs, axis=1)
  return np.abs(pred - labels.astype(np.int64)) <= tolerance


def pitch_accuracy(probs, labels, tolerance=0):
  """Share of notes classified as their requested pitch (see `pitch_hits`).

  Returns:
    float in [0, 1].
  """
  return float(np.mean(pitch_hits(probs, labels, tolerance)))


def octave_of(pitch):
  """'24-35' for MIDI 24..35 (C1..B1), '36-47' for 36..47, ...: C octaves."""
  lo = 12 * (int(pitch) // 12)
  return '%d-%d' % (lo, lo + 11)


def share_by_octave(hits, pitches):
  """Share of True in `hits` per C octave of `pitches`.

  Args:
    hits: [N] bool (a note passed), e.g. f0 within 50 cents.
    pitches: [N] MIDI pitches of the notes.

  Returns:
    dict octave label ('24-35', see `octave_of`) -> {'share': float in [0, 1],
    'num_notes': int}, octaves in pitch order, only those with notes.
  """
  hits = np.asarray(hits, bool).reshape(-1)
  pitches = np.asarray(pitches).reshape(-1)
  if hits.shape != pitches.shape:
    raise ValueError('hits [N] and pitches [N] must match, got %s and %s' %
                     (hits.shape, pitches.shape))
  octaves = pitches.astype(np.int64) // 12
  out = {}
  for o in np.unique(octaves):  # sorted
    sel = octaves == o
    out[octave_of(12 * o)] = {'share': float(hits[sel].mean()),
                              'num_notes': int(sel.sum())}
  return out


def pitch_entropy(probs):
  """Mean entropy (nats) of the classifier's pitch distribution per note.

  Args:
    probs: [N, K] class probabilities, rows summing to 1.

  Returns:
    float: mean_n -sum_k p_nk log p_nk; 0 for confident one-hot predictions,
    log(K) for uniform ones.
  """
  p = _as_probs(probs)
  plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
  return float(np.mean(-plogp.sum(axis=1)))


def inception_score(probs):
  """Inception (classifier) Score over all notes.

  Args:
    probs: [N, K] class probabilities p(y|x_n), rows summing to 1.

  Returns:
    float exp(mean_n KL(p(y|x_n) || p(y))) with p(y) = mean_n p(y|x_n).
    In [1, K]: K for confident predictions spread evenly over K classes, 1
    when every note gets the same distribution (e.g. uniform).
  """
  p = _as_probs(probs)
  marginal = p.mean(axis=0, keepdims=True)
  safe = lambda x: np.where(x > 0, x, 1.0)
  kl = np.where(p > 0, p * (np.log(safe(p)) - np.log(safe(marginal))), 0.0)
  return float(np.exp(np.mean(kl.sum(axis=1))))


def feature_statistics(features):
  """Mean [D] and unbiased covariance [D, D] (float64) of features [N, D]."""
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or f.shape[0] < 2:
    raise ValueError('features must have shape [N, D] with N >= 2, got %s' %
                     (f.shape,))
  if not np.all(np.isfinite(f)):
    raise ValueError('features contain NaN or Inf')
  return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1],
                                                          f.shape[1])


def _psd_sqrt(m):
  w, v = np.linalg.eigh((m + m.T) / 2.0)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2):
  """Frechet distance of N(mu1, sigma1) and N(mu2, sigma2).

  Args:
    mu1, mu2: [D] means. sigma1, sigma2: [D, D] symmetric PSD covariances.

  Returns:
    float ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).
    Tr((s1 s2)^(1/2)) is computed as sum sqrt(eig(s1^(1/2) s2 s1^(1/2))), which
    is exact for singular covariances too (fewer notes than dimensions).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  d = mu1.shape[-1] if mu1.ndim == 1 else -1
  if (mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or
      s2.shape != (d, d)):
    raise ValueError('FID statistics must be mu [D] and sigma [D, D] of one D, '
                     'got %s, %s, %s, %s' % (mu1.shape, s1.shape, mu2.shape,
                                             s2.shape))
  r1 = _psd_sqrt(s1)
  cross = np.linalg.eigvalsh(r1 @ ((s2 + s2.T) / 2.0) @ r1)
  tr_sqrt = float(np.sum(np.sqrt(np.clip(cross, 0.0, None))))
  diff = mu1 - mu2
  fid = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
  return max(fid, 0.0)


def frechet_distance(features1, features2):
  """FID of two feature sets: [N1, D] and [N2, D] -> float (all rows used)."""
  f1 = np.asarray(features1)
  f2 = np.asarray(features2)
  if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
    raise ValueError('feature sets must be [N1, D] and [N2, D], got %s and %s'
                     % (f1.shape, f2.shape))
  return frechet_distance_from_statistics(*feature_statistics(f1),
                                          *feature_statistics(f2))


def js_divergence(p, q):
  """Jensen-Shannon divergence (nats, in [0, log 2]) of histograms [K], [K]."""
  p = np.asarray(p, np.float64)
  q = np.asarray(q, np.float64)
  if p.shape != q.shape or p.ndim != 1 or p.sum() <= 0 or q.sum() <= 0:
    raise ValueError('histograms must be two non-empty [K] of one K, got %s '
                     'and %s' % (p.shape, q.shape))
  p, q = p / p.sum(), q / q.sum()
  m = (p + q) / 2.0

  def kl(a, b):
    nz = a > 0
    return float(np.sum(a[nz] * np.log(a[nz] / b[nz])))

  return max(0.0, 0.5 * kl(p, m) + 0.5 * kl(q, m))


class NDB:
  """Number of statistically Different Bins (Richardson & Weiss 2018).

  Fit on the reference (real) set: k-means with `k` clusters on its features
  (flattened spectrograms; see `report.ndb_features`). Then for any other set,
  each sample goes to its nearest centroid, and each bin's share of the other
  set is compared with the reference share by a two-sided two-proportion
  z-test (pooled proportion) at significance `alpha`.

  Args:
    reference: [N, D] float features of the reference set, N >= k.
    k: number of bins (50 in the paper).
    alpha: significance level of each bin's test.
    seed: k-means initialization seed.
  """

  def __init__(self, reference, k=50, alpha=0.05, seed=0):
    from sklearn import cluster  # pylint: disable=g-import-not-at-top
    ref = np.asarray(reference, np.float32)
    if ref.ndim != 2 or not np.all(np.isfinite(ref)):
      raise ValueError('NDB reference must be a finite [N, D] array, got %s' %
                       (ref.shape,))
    k = int(k)
    if k < 2:
      raise ValueError('NDB needs k >= 2 bins, got %d' % k)
    if ref.shape[0] < k:
      raise ValueError('NDB with k=%d bins needs at least %d reference notes, '
                       'got %d (lower --ndb_k or give more real notes)' %
                       (k, k, ref.shape[0]))
    self.k = k
    self.alpha = float(alpha)
    self.kmeans = cluster.KMeans(n_clusters=k, n_init=3, random_state=seed)
    labels = self.kmeans.fit_predict(ref)
    self.num_reference = ref.shape[0]
    self.reference_counts = np.bincount(labels, minlength=k)

  def bin_counts(self, samples):
    """Counts per bin [k] of samples [M, D]."""
    s = np.asarray(samples, np.float32)
    if s.ndim != 2 or s.shape[1] != self.kmeans.cluster_centers_.shape[1]:
      raise ValueError('NDB samples must be [M, %d], got %s' %
                       (self.kmeans.cluster_centers_.shape[1], s.shape))
    if not np.all(np.isfinite(s)):
      raise ValueError('NDB samples contain NaN or Inf')
    return np.bincount(self.kmeans.predict(s), minlength=self.k)

  def evaluate(self, samples):
    """NDB of samples [M, D] against the reference.

    Returns:
      dict: k, num_different_bins (int), share_different_bins (NDB / k),
      js_divergence (nats) of the two bin histograms, alpha, num_samples.
    """
    counts = self.bin_counts(samples)
    return ndb_from_counts(self.reference_counts, counts, self.alpha)


def ndb_from_counts(reference_counts, sample_counts, alpha=0.05):
  """NDB statistics of two bin histograms [k] and [k] (see `NDB`)."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  rc = np.asarray(reference_counts, np.float64)
  sc = np.asarray(sample_counts, np.float64)
  if rc.shape != sc.shape or rc.ndim != 1:
    raise ValueError('bin counts must be two [k] arrays of one k')
  n1, n2 = rc.sum(), sc.sum()
  if n1 <= 0 or n2 <= 0:
    raise ValueError('NDB needs non-empty sets')
  p1, p2 = rc / n1, sc / n2
  pooled = (rc + sc) / (n1 + n2)
  se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
  with np.errstate(divide='ignore', invalid='ignore'):
    z = np.where(se > 0, (p1 - p2) / np.where(se > 0, se, 1.0), 0.0)
  p_values = 2.0 * stats.norm.sf(np.abs(z))
  different = int(np.sum(p_values < alpha))
  return {'k': int(len(rc)), 'num_different_bins': different,
          'share_different_bins': different / float(len(rc)),
          'js_divergence': js_divergence(rc, sc), 'alpha': float(alpha),
          'num_samples': int(n2)}


def cents(f_hz, ref_hz):
  """1200 log2(f / ref), elementwise; NaN where f <= 0."""
  f = np.asarray(f_hz, np.float64)
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.where(f > 0, 1200.0 * np.log2(np.where(f > 0, f, 1.0) /
                                            np.asarray(ref_hz, np.float64)),
                    np.nan)


def midi_to_hz(midi):
  return 440.0 * 2.0 ** ((np.asarray(midi, np.float64) - 69.0) / 12.0)


__all__ = ['softmax', 'pitch_hits', 'pitch_accuracy', 'octave_of',
           'share_by_octave', 'pitch_entropy', 'inception_score',
           'feature_statistics', 'frechet_distance',
           'frechet_distance_from_statistics', 'js_divergence', 'NDB',
           'ndb_from_counts', 'cents', 'midi_to_hz']
