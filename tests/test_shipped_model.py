"""The model shipped in saved_models/: loads offline, makes 4 s notes that depend
on the requested pitch, and its committed evaluation report is its own.

How well it plays the requested pitch is measured by `gansynth-eval` and
written in saved_models/MODEL_CARD.md (an independent f0 tracker, CREPE-tiny).
"""

import json
import os

import numpy as np
import pytest

import gansynth_tf2
from gansynth_tf2 import model_io
from gansynth_tf2 import synth as synth_lib

SHIPPED = synth_lib.DEFAULT_MODEL_DIRS[0]
pytestmark = pytest.mark.skipif(not os.path.isdir(SHIPPED),
                                reason='no shipped model in saved_models/')


@pytest.fixture(scope='module')
def synth():
  return gansynth_tf2.load(SHIPPED)


def test_shipped_model_makes_notes(synth):
  assert synth.pitch_range == (24, 84)
  assert (synth.sample_rate, synth.audio_length) == (16000, 64000)
  pitches = [24, 48, 60, 84]
  waves = synth.generate(pitches, seed=7)
  assert waves.shape == (4, 64000) and np.all(np.isfinite(waves))
  np.testing.assert_array_equal(waves, synth.generate(pitches, seed=7))
  # Sound while the note is held, a quieter tail after the release (the
  # training notes are held 3 s and released over 1 s).
  held = np.sqrt(np.mean(waves[:, :40000] ** 2, axis=1))
  tail = np.sqrt(np.mean(waves[:, 60000:] ** 2, axis=1))
  assert np.all(held > 1e-3), held
  assert np.all(tail < 0.5 * held), (held, tail)


def test_shipped_model_output_depends_on_pitch(synth):
  z = synth.sample_latents(1, seed=3)
  specs = synth.generate_specgrams([36, 72], latents=np.repeat(z, 2, axis=0),
                                   normalized=True)
  diff = np.mean(np.abs(specs[0] - specs[1]))
  assert diff > 0.05, diff


def test_shipped_model_can_be_trained_further():
  """It carries the raw generator and the discriminator (--init_from)."""
  info = model_io.read_info(SHIPPED)
  assert info['has_generator'] and info['has_discriminator']
  assert info['images_seen'] > 0


def test_committed_eval_report_is_the_shipped_models():
  with open(SHIPPED + '_eval_model.json') as f:
    r = json.load(f)
  assert os.path.basename(r['model'].rstrip('/')) == os.path.basename(SHIPPED)
  assert r['settings']['pitches'] == '24-84'
  g = r['generated']
  assert 0.0 <= g['f0_within_50_cents'] <= 1.0 and g['num_notes'] >= 60


def test_shipped_model_pitch_by_an_independent_tracker(synth):
  """The bar's measurement, done here: CREPE-tiny f0 of 61 notes 24..84.

  MODEL_CARD.md: 0.734 of 244 notes within 50 cents (0.734 / 0.738 / 0.730 /
  0.779 with seeds 7 / 1 / 2026 / 99; bar 0.70; the previous shipped models
  0.664, 0.656, 0.590, 0.340, 0.262, 0.127). The floor catches a model or
  pipeline that has lost its pitch (e.g. the 384,456-image checkpoint, or
  labels shifted by one), not the bar itself.
  """
  from gansynth_tf2.eval import f0  # pylint: disable=g-import-not-at-top
  pitches = np.arange(24, 85)
  waves = synth.generate(pitches.tolist(), seed=123)
  r = f0.f0_check(waves, pitches, tracker='crepe_tiny')
  assert r['num_notes'] == 61
  # Measured 0.721 (44 of 61) on this seed (the previous models 0.672 (41)
  # and 0.705 (43)); the models before them 0.590 (36), 0.344, 0.295, 0.098:
  # the floor (37 notes) fails every one of them.
  assert r['share_within'] >= 0.60, r['share_within']
