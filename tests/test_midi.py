"""MIDI rendering: note lists, folding, durations, envelopes, mix, errors.

Most tests use `SineSynth` (a numpy synth with the same surface as the real
ones: one decaying harmonic tone per note, exactly at the note's pitch), so
onsets, lengths and pitches can be checked precisely and fast. One test
renders with the tiny trained model end to end.
"""

import os

import numpy as np
import pretty_midi
import pytest

from gansynth_tf2 import midi
from gansynth_tf2 import synth as synth_lib

MIDI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                        'midi')
SR = 16000


def midi_path(name):
  return os.path.join(MIDI_DIR, name)


def hz(pitch):
  return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


class SineSynth(synth_lib.SynthBase):
  """A 4 s note = harmonic tone at the pitch, 1 s attack-free, slow decay."""

  latent_size = 8
  sample_rate = SR
  audio_length = 4 * SR
  pitch_range = (24, 84)

  def __init__(self, batch_size=8):
    self.batch_size = batch_size
    self.calls = []  # (pitches, latents) per batch

  def _run_batch(self, kind, latents, pitches):
    assert kind == 'waves'
    self.calls.append((np.array(pitches), np.array(latents)))
    t = np.arange(self.audio_length) / SR
    out = []
    for p in pitches:
      f = hz(p)
      w = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)
      out.append(0.5 * w * np.exp(-0.2 * t))
    return np.asarray(out, np.float32)


def write_midi(path, notes, drum_notes=(), program=0):
  """notes: [(pitch, start, end, velocity)]."""
  pm = pretty_midi.PrettyMIDI()
  inst = pretty_midi.Instrument(program=program)
  for p, s, e, v in notes:
    inst.notes.append(pretty_midi.Note(velocity=v, pitch=p, start=s, end=e))
  if notes:
    pm.instruments.append(inst)
  if drum_notes:
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for p, s, e, v in drum_notes:
      drums.notes.append(pretty_midi.Note(velocity=v, pitch=p, start=s,
                                          end=e))
    pm.instruments.append(drums)
  pm.write(path)
  return path


def onsets(audio, threshold=0.02, hop=160):
  """Sample positions where the frame RMS first rises above threshold after
  being below it."""
  frames = len(audio) // hop
  rms = np.sqrt(np.mean(audio[:frames * hop].reshape(frames, hop)**2, 1))
  on = rms > threshold
  idx = np.nonzero(on & ~np.concatenate([[False], on[:-1]]))[0]
  return idx * hop


# --- loading -----------------------------------------------------------------
@pytest.mark.parametrize('name,count,lo,hi,end', [
    ('test05.mid', 13, 36, 92, 7.242),
    ('test08.mid', 17, 60, 66, 6.0),
    ('test13.mid', 8, 60, 72, 6.002),
    ('test12.mid', 12, 48, 76, 4.8),
])
def test_load_notes_of_music21_files(name, count, lo, hi, end):
  notes, info = midi.load_notes(midi_path(name))
  assert len(notes) == count
  assert min(n.pitch for n in notes) == lo and max(n.pitch for n in notes) == hi
  assert info['end_time'] == pytest.approx(end, abs=2e-3)
  starts = [n.start for n in notes]
  assert starts == sorted(starts)


def test_multi_track_file_keeps_every_track():
  notes, info = midi.load_notes(midi_path('test12.mid'))
  assert info['instruments'] == 4
  assert sorted(set(n.instrument for n in notes)) == [0, 1, 2, 3]


def test_fold_pitch_by_octaves():
  assert midi.fold_pitch(92, (24, 84)) == 80
  assert midi.fold_pitch(11, (24, 84)) == 35
  assert midi.fold_pitch(127, (24, 84)) == 79
  assert midi.fold_pitch(0, (24, 84)) == 24
  assert midi.fold_pitch(60, (24, 84)) == 60
  with pytest.raises(ValueError):
    midi.fold_pitch(60, (60, 65))


# --- rendering ---------------------------------------------------------------
def test_render_test05_folds_and_reports():
  s = SineSynth()
  r = s.render_midi(midi_path('test05.mid'), seed=0, release=0.3)
  assert r.summary['notes'] == 13
  assert r.summary['notes_folded'] == 1  # MIDI 92 -> 80
  assert [n.pitch for n in r.notes if n.original_pitch == 92] == [80]
  rendered = np.concatenate([c[0] for c in s.calls])
  assert rendered.min() >= 24 and rendered.max() <= 84 and 92 not in rendered
  # Length: last note-off (7.242 s) + release.
  assert len(r.audio) / SR == pytest.approx(7.242 + 0.3, abs=0.01)
  assert r.summary['audio_seconds'] == pytest.approx(len(r.audio) / SR)
  assert r.summary['real_time_factor'] > 0
  assert 'folded' in r.summary_line()


def test_render_onsets_durations_and_peak(tmp_path):
  notes = [(60, 0.5, 1.0, 100), (67, 2.0, 2.5, 100), (72, 3.25, 3.5, 100)]
  path = write_midi(str(tmp_path / 'three.mid'), notes)
  r = SineSynth().render_midi(path, seed=1, attack=0.01, release=0.1)
  a = r.audio
  assert a.dtype == np.float32
  assert np.max(np.abs(a)) == pytest.approx(0.9, abs=1e-4)  # normalized
  assert len(a) / SR == pytest.approx(3.5 + 0.1, abs=0.01)
  found = onsets(a)
  assert len(found) == 3
  np.testing.assert_allclose(found / SR, [0.5, 2.0, 3.25], atol=0.011)
  # Silent between notes (after each release).
  for start, end in [(1.15, 1.95), (2.65, 3.2)]:
    assert np.max(np.abs(a[int(start * SR):int(end * SR)])) < 1e-6
  # Each note's pitch is where its spectrum peaks.
  for (p, s, e, _) in notes:
    seg = a[int(s * SR) + 800:int(e * SR) - 800]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    f = np.argmax(spec) * SR / len(seg)
    assert f == pytest.approx(hz(p), rel=0.03)


def test_long_notes_are_extended_not_cut(tmp_path):
  path = write_midi(str(tmp_path / 'long.mid'), [(57, 0.0, 9.0, 90)])
  r = SineSynth().render_midi(path, seed=0, release=0.5)
  a = r.audio
  assert len(a) / SR == pytest.approx(9.5, abs=0.01)
  assert r.summary['notes_longer_than_model'] == 1
  # Still sounding (sustained loop) well past the model's 4 s, up to 9 s.
  frame = SR // 10
  rms = [np.sqrt(np.mean(a[i:i + frame]**2)) for i in range(0, 9 * SR, frame)]
  assert min(rms) > 0.1 * max(rms)
  # The loop keeps the pitch (no phase jumps that would smear it).
  seg = a[6 * SR:8 * SR]
  spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
  assert np.argmax(spec) * SR / len(seg) == pytest.approx(hz(57), rel=0.01)
  # Release: it fades to silence after the note-off.
  assert np.max(np.abs(a[int(9.48 * SR):])) < 0.05 * np.max(np.abs(a))


@pytest.mark.parametrize('pitch', [54, 61, 69, 84])
def test_extend_note_crossfades_in_phase(pitch):
  t = np.arange(4 * SR) / SR
  wave = np.sin(2 * np.pi * hz(pitch) * t).astype(np.float32)
  out = midi.extend_note(wave, 10 * SR, SR, pitch=pitch)
  assert len(out) == 10 * SR
  np.testing.assert_array_equal(out[:SR], wave[:SR])  # the head as generated
  # A pure tone looped over whole periods stays a pure tone of the same level
  # everywhere, joints included: short-time RMS over whole periods (~25 ms)
  # within 3% of the sine's 1/sqrt(2). (Crossfading out-of-phase segments
  # dipped to 0.2-0.6 of it at the joints, depending on the pitch.)
  frame = int(round(SR / hz(pitch) * np.ceil(400 * hz(pitch) / SR)))
  n = len(out) // frame * frame
  rms = np.sqrt(np.mean(out[:n].reshape(-1, frame).astype(np.float64)**2, 1))
  rms /= np.sqrt(0.5)
  assert rms.min() > 0.97 and rms.max() < 1.03, (rms.min(), rms.max())
  np.testing.assert_array_equal(midi.extend_note(wave, 1000, SR), wave[:1000])


def test_envelope_shape():
  env = midi.envelope(1000, 600, 100, 400)
  assert env[0] == pytest.approx(0.01) and env[99] == 1.0
  assert np.all(env[100:600] == 1.0)
  assert env[-1] < 0.01 and np.all(np.diff(env[600:]) < 0)


def test_velocity_is_gain(tmp_path):
  notes = [(60, 0.0, 1.0, 127), (60, 2.0, 3.0, 32)]
  path = write_midi(str(tmp_path / 'vel.mid'), notes)
  a = SineSynth().render_midi(path, seed=0, release=0.1).audio
  loud = np.max(np.abs(a[:SR]))
  soft = np.max(np.abs(a[2 * SR:3 * SR]))
  assert soft / loud == pytest.approx(32 / 127, rel=0.02)


def test_simultaneous_notes_share_a_batch_and_timbre_moves(tmp_path):
  chord = [(p, 0.0, 1.0, 80) for p in (60, 64, 67)]
  later = [(p, 10.0, 11.0, 80) for p in (60, 64, 67)]
  path = write_midi(str(tmp_path / 'chords.mid'), chord + later)
  s = SineSynth(batch_size=3)
  r = s.render_midi(path, seed=3, secs_per_instrument=2.0)
  assert len(s.calls) == 2  # one batch per chord
  np.testing.assert_array_equal(s.calls[0][0], [60, 64, 67])
  z0, z1 = s.calls[0][1], s.calls[1][1]
  assert np.all(z0 == z0[0]) and np.all(z1 == z1[0])  # same time, same z
  assert not np.allclose(z0[0], z1[0])  # the timbre moved
  assert r.summary['anchors'] >= 6


def test_duplicate_notes_generated_once(tmp_path):
  notes = [(60, 0.0, 1.0, 80)]
  pm = pretty_midi.PrettyMIDI()
  for _ in range(2):  # the same note on two tracks
    inst = pretty_midi.Instrument(program=0)
    inst.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=0.0,
                                       end=1.0))
    pm.instruments.append(inst)
  path = str(tmp_path / 'dup.mid')
  pm.write(path)
  s = SineSynth()
  r = s.render_midi(path, seed=0)
  del notes
  assert r.summary['notes'] == 2 and r.summary['generated_notes'] == 1


def test_seed_reproducible_and_latents_override(tmp_path):
  path = midi_path('test13.mid')
  a = SineSynth().render_midi(path, seed=5)
  b = SineSynth().render_midi(path, seed=5)
  c = SineSynth().render_midi(path, seed=6)
  np.testing.assert_array_equal(a.latents, b.latents)
  assert not np.allclose(a.latents, c.latents)
  anchors = np.stack([np.ones(8), -np.ones(8) + 0.5]).astype(np.float32)
  d = SineSynth().render_midi(path, latents=anchors, interpolation_method='lerp')
  np.testing.assert_array_equal(d.latents[0], anchors[0])  # note at t=0


# --- errors ------------------------------------------------------------------
def test_drum_only_midi_is_refused(tmp_path):
  path = write_midi(str(tmp_path / 'drums.mid'), [],
                    drum_notes=[(36, 0.0, 0.5, 100), (38, 0.5, 1.0, 100)])
  with pytest.raises(midi.MidiError, match='only drum notes'):
    SineSynth().render_midi(path)


def test_drums_are_skipped_and_counted(tmp_path):
  path = write_midi(str(tmp_path / 'mixed.mid'), [(60, 0.0, 1.0, 80)],
                    drum_notes=[(36, 0.0, 0.5, 100)])
  r = SineSynth().render_midi(path, seed=0)
  assert r.summary['notes'] == 1 and r.summary['drum_notes_skipped'] == 1


def test_empty_midi_is_refused(tmp_path):
  path = write_midi(str(tmp_path / 'empty.mid'), [])
  with pytest.raises(midi.MidiError, match='no notes'):
    SineSynth().render_midi(path)


def test_envelope_and_anchor_seconds_are_checked(tmp_path):
  path = write_midi(str(tmp_path / 'one.mid'), [(60, 0.0, 1.0, 80)])
  for kwargs, name in [({'attack': np.nan}, 'attack'),
                       ({'attack': -0.1}, 'attack'),
                       ({'attack': 61.0}, 'attack'),
                       ({'release': np.inf}, 'release'),
                       ({'release': 1e7}, 'release'),
                       ({'secs_per_instrument': 1e-3}, 'secs_per_instrument'),
                       ({'secs_per_instrument': 0.0}, 'secs_per_instrument'),
                       ({'secs_per_instrument': np.nan},
                        'secs_per_instrument')]:
    with pytest.raises(ValueError, match='^%s must be a finite' % name):
      SineSynth().render_midi(path, seed=0, **kwargs)
    if name != 'secs_per_instrument':
      with pytest.raises(ValueError, match='^%s must be a finite' % name):
        midi.Mixer(SR, SR, **kwargs)
  # The limits themselves are allowed.
  r = SineSynth().render_midi(path, seed=0, attack=0.0, release=60.0,
                              secs_per_instrument=0.01)
  assert len(r.audio) / SR == pytest.approx(61.0, abs=0.01)


def test_unreadable_midi_is_refused(tmp_path):
  path = str(tmp_path / 'junk.mid')
  with open(path, 'wb') as f:
    f.write(b'this is not a MIDI file' * 10)
  with pytest.raises(midi.MidiError, match='cannot read MIDI file') as e:
    SineSynth().render_midi(path)
  assert '\n' not in str(e.value)
  with pytest.raises(midi.MidiError, match='does not exist'):
    SineSynth().render_midi(str(tmp_path / 'missing.mid'))


# --- the real model --------------------------------------------------------------
def test_render_with_tiny_model(tiny_model_dir):
  s = synth_lib.load(tiny_model_dir)
  r = s.render_midi(midi_path('test13.mid'), seed=0, release=0.3)
  assert r.summary['notes'] == 8 and r.summary['notes_folded'] == 0
  assert len(r.audio) / SR == pytest.approx(6.002 + 0.3, abs=0.01)
  assert np.all(np.isfinite(r.audio))
  assert 0.5 < np.max(np.abs(r.audio)) <= 0.9 + 1e-6
  assert np.sqrt(np.mean(r.audio**2)) > 1e-3
