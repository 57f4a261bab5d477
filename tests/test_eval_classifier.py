"""The pitch classifier: front end, training on synthetic tones, save / load."""

import json
import os

import numpy as np
import pytest

from gansynth_tf2.eval import pitch_classifier as pc
from gansynth_tf2.eval import synthetic

PITCHES = np.array([36, 43, 50, 57, 64, 71])


@pytest.fixture(scope='module')
def trained():
  # 16 random timbres per pitch for training, 4 unseen ones for held-out.
  train_p = np.repeat(PITCHES, 16)
  val_p = np.repeat(PITCHES, 4)
  train_w = synthetic.harmonic_notes(train_p, seed=1, noise=0.003)
  val_w = synthetic.harmonic_notes(val_p, seed=2, noise=0.003)
  params = pc.make_params()
  fe = pc.FrontEnd(params)
  clf = pc.train(fe(train_w), train_p, fe(val_w), val_p, params=params,
                 epochs=4, verbose=0, log=lambda s: None)
  return clf, val_w, val_p


def test_front_end_shape_and_gain_invariance():
  fe = pc.FrontEnd(pc.make_params())
  w = synthetic.harmonic_notes([40, 70], seed=0)
  x = fe(w)
  assert x.shape == (2, 4, 1024, 2) == (2,) + fe.shape
  assert np.all(np.abs(x) <= 1.0)
  # Peak-normalized: a quieter copy gives the same log-mel channel, and the
  # same IF wherever there is energy (IF of near-silent bins is round-off).
  quiet = fe(0.1 * w)
  np.testing.assert_allclose(quiet[..., 0], x[..., 0], atol=1e-3)
  loud = x[..., 0] > -0.6
  np.testing.assert_allclose(quiet[..., 1][loud], x[..., 1][loud], atol=1e-3)
  assert np.abs(x[0] - x[1]).max() > 0.1  # different pitches differ
  # Short waves are zero-padded, long ones trimmed.
  assert fe(w[:, :32000]).shape == x.shape
  assert fe(np.pad(w, [[0, 0], [0, 100]])).shape == x.shape
  with pytest.raises(ValueError, match='NaN'):
    fe(np.full((1, 64000), np.nan, np.float32))
  with pytest.raises(ValueError, match=r'\[N, T\]'):
    fe(np.zeros(64000, np.float32))


def test_classifier_learns_synthetic_pitches_well_above_chance(trained):
  clf, val_w, val_p = trained
  # Chance: 1/6 among the pitches seen (1/61 over all classes).
  assert clf.info['heldout_accuracy'] >= 0.7, clf.info['history']
  out = clf.predict(val_w)
  assert out['probs'].shape == (len(val_p), 61)
  assert out['features'].shape == (len(val_p), 128)
  np.testing.assert_allclose(out['probs'].sum(1), 1.0, rtol=1e-6)
  acc = np.mean(out['predicted_pitch'] == val_p)
  assert acc == pytest.approx(clf.info['heldout_accuracy'])


def test_save_load_round_trip_is_exact_and_atomic(trained, tmp_path):
  clf, val_w, _ = trained
  path = str(tmp_path / 'clf')
  clf.save(path)
  assert sorted(os.listdir(tmp_path)) == ['clf']  # no temp folder left
  with open(os.path.join(path, pc.PARAMS_JSON)) as f:
    desc = json.load(f)
  assert desc['info']['heldout_accuracy'] == clf.info['heldout_accuracy']
  loaded = pc.load(path)
  a, b = clf.predict(val_w[:6]), loaded.predict(val_w[:6])
  np.testing.assert_allclose(a['logits'], b['logits'], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(a['features'], b['features'], rtol=1e-5,
                             atol=1e-5)
  clf.save(path)  # overwriting an existing dir works too
  assert pc.load(path).pitch_range == (24, 84)


def test_load_and_train_bad_inputs(tmp_path):
  with pytest.raises(ValueError, match='not a folder'):
    pc.load(str(tmp_path / 'missing'))
  with pytest.raises(ValueError, match='not a pitch classifier dir'):
    pc.load(str(tmp_path))
  (tmp_path / pc.PARAMS_JSON).write_text('{"format": "other"}')
  with pytest.raises(ValueError, match='not a pitch classifier description'):
    pc.load(str(tmp_path))
  # Malformed descriptions: one ValueError naming the file, no KeyError /
  # AttributeError / TypeError.
  for text, match in (('[1, 2]', 'not a pitch classifier description'),
                      ('{"format": "%s"}' % pc.FORMAT, 'no "params"'),
                      ('{"format": "%s", "params": {"time_pool": "32"}}' %
                       pc.FORMAT, 'bad params'),
                      ('{"format": "%s", "params": {"bogus": 1}}' % pc.FORMAT,
                       'bad params.*unknown classifier parameter')):
    (tmp_path / pc.PARAMS_JSON).write_text(text)
    with pytest.raises(ValueError, match=match):
      pc.load(str(tmp_path))
  with pytest.raises(ValueError, match='unknown classifier parameter'):
    pc.make_params(bogus=1)
  with pytest.raises(ValueError, match='representation'):
    pc.make_params(representation='cqt')
  clf = pc.PitchClassifier(pc.make_params())
  with pytest.raises(ValueError, match='outside the classifier'):
    clf.labels([23, 60, 85])
  x = np.zeros((2, 4, 1024, 2), np.float32)
  with pytest.raises(ValueError, match='outside the classifier'):
    pc.train(x, [60, 100], epochs=1, verbose=0)
  with pytest.raises(ValueError, match='train_specgrams must be'):
    pc.train(np.zeros((2, 8, 1024, 2), np.float32), [60, 61], epochs=1,
             verbose=0)


def test_train_seed_fixes_the_initialization_too():
  # Two runs with one seed give one classifier, whatever Python's global
  # random state before (Keras draws initializer seeds from it when the
  # network is built, so the seed must be set before building).
  import random  # pylint: disable=g-import-not-at-top
  p = np.array([40, 52, 64, 76] * 2)
  params = pc.make_params()
  x = pc.FrontEnd(params)(synthetic.harmonic_notes(p, seed=9))
  weights = []
  for state in (1, 2):
    random.seed(state)
    clf = pc.train(x, p, params=params, epochs=1, seed=0, verbose=0,
                   log=lambda s: None)
    weights.append(clf.network.get_weights())
  for a, b in zip(*weights):
    np.testing.assert_array_equal(a, b)
