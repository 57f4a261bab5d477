"""The evaluation report of a model, with real data as the ceiling.

Protocol (`evaluate`):
  1. Up to 2 N real notes with the requested pitches are drawn at random from
     the real TFRecords and split at random into a REFERENCE half and a
     COMPARISON half (N notes each, N = --num_samples or less).
  2. The model generates one note per comparison note, at the same pitch
     (so both sets have the same size and pitch histogram), latents from
     `seed`.
  3. Each of the two sets (generated, real comparison) gets every metric; the
     set-vs-set ones (FID, NDB) are measured against the REFERENCE half. The
     real comparison half is the ceiling: what a perfect model would score with
     this classifier, this many notes and these pitches.

Metrics per set (keys of report['generated'] and report['real']):
  num_notes
  pitch_accuracy                     classifier argmax == requested pitch
  pitch_accuracy_within_1_semitone   |argmax - pitch| <= 1 (original threshold)
  pitch_entropy                      mean entropy of p(pitch|x), nats
  inception_score                    exp E KL(p(y|x) || p(y)), all notes
  fid                                Frechet distance of classifier features
                                     ('features' layer, all notes) to the
                                     reference half
  ndb_k, ndb_num_different_bins, ndb_share_different_bins, ndb_js_divergence
                                     k-means (k bins) on reference log-mel
                                     spectrograms (see `ndb_features`),
                                     two-proportion z-tests at alpha 0.05
  f0_tracker, f0_within_50_cents, f0_within_50_cents_any_octave,
  f0_voiced_share, f0_median_abs_cents
                                     independent f0 check (see f0.py); the
                                     any-octave share forgives the tracker's
                                     octave errors
Breakdowns per C octave of the requested pitch (BREAKDOWN_KEYS; each a dict
'24-35' -> {'share', 'num_notes'}, see metrics.share_by_octave): where in the
range a model loses its pitch.
  pitch_accuracy_by_octave           classifier argmax == requested pitch
  f0_within_50_cents_by_octave       None without an f0 tracker
"""

import datetime
import time

import numpy as np

from gansynth_tf2 import io_util
from gansynth_tf2.eval import f0 as f0_lib
from gansynth_tf2.eval import metrics
from gansynth_tf2.eval import real_data

FORMAT = 'gansynth_tf2.eval_report'
VERSION = 1
METRIC_KEYS = (
    'num_notes', 'pitch_accuracy', 'pitch_accuracy_within_1_semitone',
    'pitch_entropy', 'inception_score', 'fid', 'ndb_k',
    'ndb_num_different_bins', 'ndb_share_different_bins', 'ndb_js_divergence',
    'f0_tracker', 'f0_within_50_cents', 'f0_within_50_cents_any_octave',
    'f0_voiced_share', 'f0_median_abs_cents')
BREAKDOWN_KEYS = ('pitch_accuracy_by_octave', 'f0_within_50_cents_by_octave')
NDB_POOL = (8, 8)  # frames x mel bins averaged into one NDB feature


class NDBFeatures:
  """waves [N, 64000] -> float32 [N, D] features for NDB.

  The normalized log-mel power of the GANSynth transform (n_fft 2048, hop 512,
  1024 mel bins, 128 frames), NOT peak-normalized (loudness is part of the
  distribution), averaged over `pool` = (frames, bins) blocks and flattened:
  D = (128 / 8) * (1024 / 8) = 2048.
  """

  def __init__(self, audio_length=64000, sample_rate=16000, pool=NDB_POOL):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from gansynth_tf2 import spectral  # pylint: disable=g-import-not-at-top
    self.audio_length = int(audio_length)
    t = spectral.SpecgramTransform(audio_length=audio_length,
                                   sample_rate=sample_rate, n_fft=2048,
                                   hop_length=512, representation='mel')
    frames, bins, _ = t.spec_shape
    pf, pb = pool
    l2mel = tf.constant(t.linear_to_mel_matrix(), tf.float32)
    a, b = 0.0661371661726, 0.113718730221  # the original's normalizer

    def fn(waves):
      mag2 = tf.abs(t.waves_to_stfts(waves)) ** 2
      logmel = tf.math.log(tf.tensordot(mag2, l2mel, 1) + 1e-6)
      x = tf.clip_by_value(a * logmel + b, -1.0, 1.0)
      x = tf.reshape(x, [-1, frames // pf, pf, bins // pb, pb])
      return tf.reshape(tf.reduce_mean(x, axis=[2, 4]), [tf.shape(x)[0], -1])

    self._fn = tf.function(fn, input_signature=[
        tf.TensorSpec([None, self.audio_length], tf.float32)])

  def __call__(self, waves, batch_size=32):
    waves = np.asarray(waves, np.float32)
    n = self.audio_length
    if waves.shape[1] < n:
      waves = np.pad(waves, [[0, 0], [0, n - waves.shape[1]]])
    waves = waves[:, :n]
    return np.concatenate([self._fn(waves[i:i + batch_size]).numpy()
                           for i in range(0, len(waves), batch_size)])


def parse_pitches(text, default_range=(24, 84)):
  """'24-84', '60,64,67' or '24-30,60' -> sorted list of MIDI numbers."""
  if text is None or str(text).strip() == '':
    return list(range(default_range[0], default_range[1] + 1))
  out = set()
  for part in str(text).split(','):
    part = part.strip()
    try:
      if '-' in part:
        lo, hi = (int(v) for v in part.split('-'))
        if hi < lo:
          raise ValueError
        out.update(range(lo, hi + 1))
      else:
        out.add(int(part))
    except ValueError:
      raise ValueError('--pitches must look like 24-84 or 60,64,67, got %r' %
                       text) from None
  if not out or min(out) < 0 or max(out) > 127:
    raise ValueError('--pitches must be MIDI numbers 0..127, got %r' % text)
  return sorted(out)


def format_pitches(pitches):
  """[24, 25, 26, 60] -> '24-26,60' (the inverse of parse_pitches)."""
  ps = sorted(set(int(p) for p in pitches))
  parts, start = [], None
  for i, p in enumerate(ps):
    if start is None:
      start = p
    if i + 1 == len(ps) or ps[i + 1] != p + 1:
      parts.append(str(start) if start == p else '%d-%d' % (start, p))
      start = None
  return ','.join(parts)


def set_metrics(waves, pitches, classifier, reference, ndb, ndb_featurizer,
                f0_tracker='auto', sample_rate=16000, log=print, name='set'):
  """Every metric of one set of notes (see the module docstring).

  Args:
    waves: float32 [N, T]. pitches: [N] requested MIDI pitches.
    classifier: a PitchClassifier.
    reference: classifier.predict(...) dict of the reference half (its
      'features' [M, D] are the FID reference).
    ndb: a metrics.NDB fitted on the reference half (or None to skip).
    ndb_featurizer: NDBFeatures.
    f0_tracker: 'auto', 'crepe_tiny', 'pyin' or 'none'.

  Returns:
    dict with METRIC_KEYS and BREAKDOWN_KEYS.
  """
  start = time.time()
  pred = classifier.predict(waves)
  labels = classifier.labels(pitches)
  out = {
      'num_notes': int(len(waves)),
      'pitch_accuracy': metrics.pitch_accuracy(pred['probs'], labels),
      'pitch_accuracy_within_1_semitone': metrics.pitch_accuracy(
          pred['probs'], labels, tolerance=1),
      'pitch_entropy': metrics.pitch_entropy(pred['probs']),
      'inception_score': metrics.inception_score(pred['probs']),
      'fid': metrics.frechet_distance(pred['features'], reference['features']),
      'pitch_accuracy_by_octave': metrics.share_by_octave(
          metrics.pitch_hits(pred['probs'], labels), pitches),
  }
  if ndb is not None:
    r = ndb.evaluate(ndb_featurizer(waves))
    out.update({'ndb_k': r['k'], 'ndb_num_different_bins':
                r['num_different_bins'], 'ndb_share_different_bins':
                r['share_different_bins'], 'ndb_js_divergence':
                r['js_divergence']})
  else:
    out.update({k: None for k in ('ndb_k', 'ndb_num_different_bins',
                                  'ndb_share_different_bins',
                                  'ndb_js_divergence')})
  if f0_tracker != 'none':
    r = f0_lib.f0_check(waves, pitches, sample_rate=sample_rate,
                        tracker=f0_tracker)
    out.update({'f0_tracker': r['tracker'],
                'f0_within_50_cents': r['share_within'],
                'f0_within_50_cents_any_octave': r['share_within_any_octave'],
                'f0_voiced_share': r['share_voiced'],
                'f0_median_abs_cents': r['median_abs_cents'],
                'f0_within_50_cents_by_octave': metrics.share_by_octave(
                    r['within'], pitches)})
  else:
    out.update({'f0_tracker': None, 'f0_within_50_cents': None,
                'f0_within_50_cents_any_octave': None,
                'f0_voiced_share': None, 'f0_median_abs_cents': None,
                'f0_within_50_cents_by_octave': None})
  log('%s: %d notes, %.1f s: %s' % (name, len(waves), time.time() - start,
                                     ', '.join('%s=%s' % (k, _short(out[k]))
                                               for k in METRIC_KEYS[1:])))
  if out['f0_within_50_cents_by_octave']:
    log('%s: f0 within 50 cents by octave: %s' % (name, ', '.join(
        '%s %.2f (%d)' % (o, v['share'], v['num_notes'])
        for o, v in out['f0_within_50_cents_by_octave'].items())))
  return out


def _short(v):
  return ('%.4g' % v) if isinstance(v, float) else str(v)


def evaluate(real_pattern, classifier, synth=None, num_samples=1000,
             pitches=None, seed=0, ndb_k=50, f0_tracker='auto', log=print,
             model_path=None, classifier_path=None):
  """The report dict (see the module docstring).

  Args:
    real_pattern: NSynth-format TFRecords (glob, comma list, file or folder).
    classifier: a PitchClassifier.
    synth: a gansynth_tf2 Synth, or None for the real-data ceiling only.
    num_samples: notes per set (N); 2 N real notes are read when available.
    pitches: list of MIDI pitches to evaluate (default: the classifier's
      range); must lie within the classifier's and the model's ranges.
    seed: real-note sampling, split and latents.
    ndb_k: NDB bins; the reference half needs >= ndb_k notes.
    f0_tracker: 'auto', 'crepe_tiny', 'pyin' or 'none'.

  Raises:
    ValueError: inconsistent inputs (pitches out of range, too few notes,
    sample rates that differ, ...).
  """
  start = time.time()
  if int(num_samples) < 2:
    raise ValueError('--num_samples must be >= 2, got %s' % num_samples)
  if not (isinstance(seed, (int, np.integer)) and 0 <= seed < 2**32 - 1):
    raise ValueError('--seed must be an integer in [0, 2**32 - 2], got %r' %
                     (seed,))
  if f0_tracker != 'none':
    f0_tracker = f0_lib.resolve_tracker(f0_tracker)
  lo, hi = classifier.pitch_range
  if pitches is None:
    pitches = list(range(lo, hi + 1))
  classifier.labels(pitches)  # raises outside the classifier's range
  sample_rate = int(classifier.params['sample_rate'])
  audio_length = int(classifier.params['audio_length'])
  if synth is not None:
    from gansynth_tf2 import synth as synth_lib  # pylint: disable=g-import-not-at-top
    synth_lib.check_pitches(pitches, synth.pitch_range)
    if int(synth.sample_rate) != sample_rate:
      raise ValueError('the model makes %d Hz audio, the classifier takes %d '
                       'Hz' % (synth.sample_rate, sample_rate))
  real = real_data.read_notes(real_pattern, max_notes=2 * int(num_samples),
                              seed=seed, audio_length=audio_length,
                              sample_rate=sample_rate, pitches=pitches)
  total = len(real['pitch'])
  n = min(int(num_samples), total // 2)
  if n < 2:
    raise ValueError('%s holds %d note(s) with the requested pitches; need at '
                     'least 4 (two halves of >= 2)' % (real_pattern, total))
  if ndb_k and n < ndb_k:
    raise ValueError('NDB with k=%d bins needs >= %d reference notes, but only'
                     ' %d real notes are available per half (%d in all); '
                     'lower --ndb_k or give more real notes' %
                     (ndb_k, ndb_k, n, total))
  order = np.random.RandomState(seed + 1).permutation(total)
  ref_idx, cmp_idx = order[:n], order[n:2 * n]
  ref = {k: v[ref_idx] for k, v in real.items()}
  cmp_ = {k: v[cmp_idx] for k, v in real.items()}
  del real
  log('real notes: %d read, reference %d, comparison %d' % (total, n, n))

  ref_pred = classifier.predict(ref['audio'])
  featurizer = NDBFeatures(audio_length, sample_rate)
  ndb = None
  if ndb_k:
    ndb = metrics.NDB(featurizer(ref['audio']), k=ndb_k, seed=seed)
  ref_acc = metrics.pitch_accuracy(ref_pred['probs'],
                                   classifier.labels(ref['pitch']))
  del ref
  common = dict(classifier=classifier, reference=ref_pred, ndb=ndb,
                ndb_featurizer=featurizer, f0_tracker=f0_tracker,
                sample_rate=sample_rate, log=log)
  real_metrics = set_metrics(cmp_['audio'], cmp_['pitch'], name='real', **common)
  gen_metrics = None
  gen_seconds = None
  if synth is not None:
    t = time.time()
    waves = synth.generate(cmp_['pitch'], seed=seed)
    gen_seconds = round(time.time() - t, 1)
    bad = int(np.sum(~np.all(np.isfinite(waves), axis=1)))
    if bad:
      raise ValueError('the model %sgenerated NaN or Inf audio for %d of %d '
                       'notes (diverged weights?)' %
                       ('%s ' % model_path if model_path else '', bad,
                        len(waves)))
    log('generated %d notes in %.1f s' % (len(waves), gen_seconds))
    gen_metrics = set_metrics(waves, cmp_['pitch'], name='generated', **common)
  return {
      'format': FORMAT,
      'version': VERSION,
      'created': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
      'model': model_path,
      'real_data': real_pattern,
      'classifier': classifier_path,
      'classifier_info': {
          'heldout_accuracy': classifier.info.get('heldout_accuracy'),
          'num_train_notes': classifier.info.get('num_train_notes'),
          'accuracy_on_reference_half': ref_acc,
          'representation': classifier.params['representation'],
      },
      'settings': {
          'num_samples': n, 'num_real_notes_read': int(total),
          'pitches': format_pitches(pitches), 'seed': int(seed),
          'ndb_k': int(ndb_k) if ndb_k else None, 'ndb_alpha': 0.05,
          'f0_tracker': f0_tracker, 'f0_tolerance_cents': 50.0,
          'fid_features': 'pitch classifier layer "features" (%d-d), all notes'
                          % classifier.params['feature_dim'],
          'ndb_features': 'normalized log-mel power pooled %dx%d, k-means on '
                          'the reference half' % NDB_POOL,
      },
      'generated': gen_metrics,
      'real': real_metrics,
      'generation_seconds': gen_seconds,
      'seconds': round(time.time() - start, 1),
      'notes': 'real = a random half of the real notes, the other half being '
               'the reference of FID and NDB: the ceiling of a perfect model '
               'at this sample size; generated notes have the same pitches as '
               'the real comparison half.',
  }


def write_report(report, path):
  """Writes the report as JSON atomically."""
  import json  # pylint: disable=g-import-not-at-top
  io_util.atomic_write_text(path, json.dumps(report, indent=1,
                                             default=io_util.jsonable) + '\n')
  return path
