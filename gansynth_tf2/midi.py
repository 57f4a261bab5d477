"""MIDI -> note list -> one mixed wave, with any synth (`synth.SynthBase`).

  notes, info = load_notes('song.mid')                # pretty_midi
  result = render(synth, 'song.mid', secs_per_instrument=6, seed=0)
  result.audio       float32 [T], peak-normalized (never clips)
  result.summary     dict: notes, folded, seconds of audio, wall seconds, ...

What happens to the notes (the original GANSynth's generate_util did the same
for the first three, within its limits):
  * every note of every non-drum instrument is rendered; drum tracks are
    skipped (counted);
  * timbre moves through latent space over time: instrument anchors are drawn
    every `secs_per_instrument` seconds (RandomState(seed)) and each note's
    latent is interpolated (slerp by default) at its start time;
  * each note gets an attack / sustain / release envelope: a linear attack of
    `attack` s, held until the note-off, then a linear release of `release` s;
  * a note longer than the model's note (4 s) is NOT cut: its sustained part
    is extended with a pitch-synchronous loop joined by crossfades;
  * pitches outside the model's range are folded by octaves into it (counted
    and reported);
  * velocity sets the gain ((velocity / 127) ** velocity_curve);
  * notes are generated in batches in time order (simultaneous notes share a
    batch; identical (pitch, start) pairs are generated once);
  * the mix is scaled so that its peak is `peak` (< 1): no clipping.
"""

import dataclasses
import os
import sys
import time

import numpy as np

from gansynth_tf2 import interpolation


class MidiError(ValueError):
  """A MIDI file that cannot be rendered (one-line message)."""


@dataclasses.dataclass
class Note:
  pitch: int           # MIDI pitch as rendered (after folding)
  start: float         # seconds
  end: float           # seconds
  velocity: int        # 1..127
  instrument: int = 0  # index of the pretty_midi instrument (track)
  original_pitch: int = None

  @property
  def duration(self):
    return self.end - self.start


@dataclasses.dataclass
class Rendering:
  audio: np.ndarray    # float32 [T]
  sample_rate: int
  notes: list          # [Note] as rendered
  latents: np.ndarray  # [num_notes, L] latent of each note
  summary: dict

  def summary_line(self):
    s = self.summary
    return ('rendered %d notes (%d folded into %d..%d, %d drum notes '
            'skipped) -> %.2f s of audio in %.2f s (real-time factor %.3f, '
            '%.1fx real time; %d network batches)' % (
                s['notes'], s['notes_folded'], s['pitch_range'][0],
                s['pitch_range'][1], s['drum_notes_skipped'],
                s['audio_seconds'], s['wall_seconds'],
                s['real_time_factor'], s['speed_vs_real_time'],
                s['batches']))


def check_peak(peak):
  """A peak level in (0, 1] (of a mix or of normalized notes), or raise."""
  if not 0.0 < float(peak) <= 1.0:
    raise ValueError('peak must be in (0, 1], got %r' % (peak,))
  return float(peak)


MAX_ENVELOPE_SECONDS = 60.0  # attack / release
MIN_SECS_PER_INSTRUMENT = interpolation.MIN_SECS_PER_INSTRUMENT


def check_seconds(name, value, lo, hi=None):
  """`value` as a finite float in [lo, hi] (hi None: no bound), or raise."""
  try:
    v = float(value)
  except (TypeError, ValueError):
    v = float('nan')
  if not np.isfinite(v) or v < lo or (hi is not None and v > hi):
    bound = ('in [%g, %g]' % (lo, hi) if hi is not None else '>= %g' % lo)
    raise ValueError('%s must be a finite number of seconds %s, got %r' %
                     (name, bound, value))
  return v


def check_envelope(attack, release):
  """(attack, release) as floats in [0, MAX_ENVELOPE_SECONDS], or raise."""
  return (check_seconds('attack', attack, 0.0, MAX_ENVELOPE_SECONDS),
          check_seconds('release', release, 0.0, MAX_ENVELOPE_SECONDS))


def parse_pitches(text):
  """'60,64,67' or '48-52' or '60, 62-64' -> list of ints (in order)."""
  out = []
  for part in str(text).replace(' ', '').split(','):
    if not part:
      continue
    try:
      if '-' in part[1:]:
        i = part.index('-', 1)
        lo, hi = int(part[:i]), int(part[i + 1:])
        if hi < lo:
          raise ValueError
        out.extend(range(lo, hi + 1))
      else:
        out.append(int(part))
    except ValueError:
      raise ValueError('bad pitch list %r: expected MIDI numbers such as '
                       '"60,64,67" or a range "48-60"' % text) from None
  if not out:
    raise ValueError('empty pitch list %r' % text)
  return out


def load_notes(path):
  """Pitched notes of a MIDI file, sorted by (start, pitch).

  Returns:
    (notes [Note], info dict with 'instruments', 'drum_instruments',
    'drum_notes', 'end_time').

  Raises:
    MidiError: unreadable file, no notes at all, or drum notes only.
  """
  import pretty_midi  # pylint: disable=g-import-not-at-top
  import warnings  # pylint: disable=g-import-not-at-top
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise MidiError('MIDI file %s does not exist' % path)
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      pm = pretty_midi.PrettyMIDI(path)
  except Exception as e:  # pylint: disable=broad-except
    msg = ' '.join(str(e).split()) or type(e).__name__
    raise MidiError('cannot read MIDI file %s: %s' % (path, msg[:200])) \
        from None
  notes = []
  drum_notes = 0
  drum_instruments = 0
  for idx, inst in enumerate(pm.instruments):
    if inst.is_drum:
      drum_instruments += 1
      drum_notes += len(inst.notes)
      continue
    for n in inst.notes:
      if n.end <= n.start or n.velocity <= 0:
        continue
      notes.append(Note(int(n.pitch), float(n.start), float(n.end),
                        int(n.velocity), idx, int(n.pitch)))
  if not notes:
    if drum_notes:
      raise MidiError('MIDI file %s has only drum notes (%d on %d drum '
                      'track(s)); GANSynth renders pitched instruments only' %
                      (path, drum_notes, drum_instruments))
    raise MidiError('MIDI file %s has no notes' % path)
  notes.sort(key=lambda n: (n.start, n.pitch, n.end))
  info = {'instruments': len(pm.instruments) - drum_instruments,
          'drum_instruments': drum_instruments, 'drum_notes': drum_notes,
          'end_time': max(n.end for n in notes)}
  return notes, info


def fold_pitch(pitch, pitch_range):
  """`pitch` moved by whole octaves into [lo, hi] (nearest octave)."""
  lo, hi = pitch_range
  if hi - lo < 11:
    raise ValueError('pitch range %d..%d is narrower than an octave' % (lo, hi))
  p = int(pitch)
  while p < lo:
    p += 12
  while p > hi:
    p -= 12
  return p


def fold_notes(notes, pitch_range):
  """Folds out-of-range notes in place; returns how many were folded."""
  count = 0
  for n in notes:
    p = fold_pitch(n.pitch, pitch_range)
    if p != n.pitch:
      n.pitch = p
      count += 1
  return count


def envelope(num_samples, hold_samples, attack_samples, release_samples):
  """Linear attack, hold until `hold_samples`, linear release. -> [num]."""
  env = np.ones(num_samples, np.float32)
  a = min(int(attack_samples), num_samples)
  if a > 0:
    env[:a] = np.linspace(0.0, 1.0, a + 1, dtype=np.float32)[1:]
  hold = min(int(hold_samples), num_samples)
  r = num_samples - hold
  if r > 0:
    ramp = np.linspace(1.0, 0.0, max(int(release_samples), r) + 1,
                       dtype=np.float32)[:r]
    env[hold:] = np.minimum(env[hold:], ramp)
  return env


def extend_note(wave, length, sample_rate, pitch=None, loop_start=1.0,
                loop_end=2.5, crossfade=0.1):
  """`wave` [T] continued to `length` samples by looping its sustain.

  The loop [loop_start, loop_end) s is trimmed to a whole number of periods of
  `pitch` and repeated back to back; before each repeat, the last `crossfade`
  s fade into the samples leading into the loop start (one loop length
  earlier, so the two are in phase and a steady tone keeps its level).
  Shorter requests return the head of `wave`.
  """
  wave = np.asarray(wave, np.float32)
  length = int(length)
  if length <= len(wave):
    return wave[:length].copy()
  if not len(wave):
    return np.zeros(length, np.float32)
  sr = float(sample_rate)
  s = int(loop_start * sr)
  e = min(int(loop_end * sr), len(wave))
  if e - s < int(0.2 * sr):  # a too-short note: loop its second half
    s, e = len(wave) // 2, len(wave)
  if pitch is not None:
    period = sr / (440.0 * 2.0 ** ((float(pitch) - 69.0) / 12.0))
    if period <= e - s:
      e = s + int(round(int((e - s) / period) * period))
  xf = min(int(crossfade * sr), (e - s) // 2, s)
  seg = wave[s:e]
  pieces = [wave[:e].copy()]
  fade_in = np.linspace(0.0, 1.0, xf + 2, dtype=np.float32)[1:-1]
  lead_in = wave[s - xf:s] * fade_in
  have = e
  while have < length:
    if xf:
      tail = pieces[-1]
      tail[-xf:] = tail[-xf:] * (1.0 - fade_in) + lead_in
    pieces.append(seg.copy())
    have += len(seg)
  return np.concatenate(pieces)[:length]


class Mixer:
  """Adds enveloped notes into one buffer; `finish` normalizes the peak.

  Args:
    num_samples: length of the mix.
    sample_rate: Hz.
    attack, release: envelope seconds, in [0, MAX_ENVELOPE_SECONDS].
    normalize_notes: scale each note to peak 1 before its velocity gain (as
      the original), so pitches sound equally loud.
    velocity_curve: gain = (velocity / 127) ** velocity_curve.
    extend: loop notes longer than the generated wave (False: cut them).
  """

  def __init__(self, num_samples, sample_rate, attack=0.01, release=0.3,
               normalize_notes=True, velocity_curve=1.0, extend=True):
    self.sr = int(sample_rate)
    self.attack, self.release = check_envelope(attack, release)
    self.normalize_notes = normalize_notes
    self.velocity_curve = float(velocity_curve)
    self.extend = extend
    self.mix = np.zeros(int(num_samples), np.float64)

  @staticmethod
  def length_for(notes, sample_rate, release):
    return max(int(np.ceil((n.end + release) * sample_rate)) for n in notes) + 1

  def add(self, wave, note):
    sr = self.sr
    hold = int(round(note.duration * sr))
    length = hold + int(round(self.release * sr))
    if length > len(wave) and not self.extend:
      length = len(wave)
    x = extend_note(wave, length, sr, pitch=note.pitch)
    x = x * envelope(len(x), hold, self.attack * sr, self.release * sr)
    if self.normalize_notes:
      m = float(np.max(np.abs(x))) if len(x) else 0.0
      if m > 1e-8:
        x = x / m
    gain = (max(1, min(127, note.velocity)) / 127.0) ** self.velocity_curve
    start = int(round(note.start * sr))
    x = x[:max(0, len(self.mix) - start)]
    self.mix[start:start + len(x)] += gain * x

  def finish(self, peak=0.9):
    """float32 mix scaled to `peak` (0 < peak <= 1): never clips."""
    check_peak(peak)
    m = float(np.max(np.abs(self.mix))) if len(self.mix) else 0.0
    out = self.mix * (peak / m) if m > 0 else self.mix
    return out.astype(np.float32)


def render_notes(waves, notes, sample_rate, attack=0.01, release=0.3,
                 normalize_notes=True, velocity_curve=1.0, peak=0.9,
                 extend=True):
  """Mixes generated `waves` [N, T] placed at their `notes` -> float32 [S].

  See `Mixer` for the arguments; `peak` is the peak of the final mix.
  """
  check_peak(peak)
  check_envelope(attack, release)
  mixer = Mixer(Mixer.length_for(notes, sample_rate, release), sample_rate,
                attack, release, normalize_notes, velocity_curve, extend)
  for wave, n in zip(waves, notes):
    mixer.add(wave, n)
  return mixer.finish(peak)


def _progress_printer(stream, every_s=2.0):
  """progress(done, total) printing a line at most every `every_s` seconds
  (nothing at all for jobs shorter than that)."""
  t0 = time.perf_counter()
  state = {'last': t0, 'printed': False}

  def progress(done, total):
    now = time.perf_counter()
    final = done >= total
    if now - state['last'] < every_s and not (final and state['printed']):
      return
    state['last'], state['printed'] = now, True
    el = now - t0
    eta = el / done * (total - done) if done else 0.0
    print('  %d/%d notes (%3.0f%%), %.1f s elapsed, ~%.1f s left' %
          (done, total, 100.0 * done / total, el, eta), file=stream,
          flush=True)
  return progress


def render(synth, midi_file, secs_per_instrument=6.0, seed=None,
           latents=None, interpolation_method='slerp', attack=0.01,
           release=0.3, normalize_notes=True, velocity_curve=1.0, peak=0.9,
           batch_size=None, progress=None, truncation=1.0):
  """Renders every pitched note of `midi_file` with `synth` to one wave.

  Args:
    synth: a `synth.SynthBase` (in-process, SavedModel, ...).
    midi_file: path of a .mid file, or a list of `Note`.
    secs_per_instrument: seconds between latent (instrument) anchors
      (>= 0.01).
    seed: RandomState seed of the anchors.
    latents: optional [N, L] anchors to use instead of drawn ones (spread
      evenly over the piece).
    interpolation_method: 'slerp' or 'lerp' between anchors.
    attack, release, normalize_notes, velocity_curve, peak: see
      `render_notes`.
    batch_size: notes per forward pass (default the synth's).
    progress: callable(done, total), True (print to stderr every 2 s) or
      None.
    truncation: scale of the drawn anchors, in (0, 1] (see
      `synth.sample_latents`); given `latents` are used as they are.

  Returns:
    `Rendering` (audio, sample_rate, notes, latents, summary).
  """
  timer_start = time.perf_counter()
  check_envelope(attack, release)
  check_seconds('secs_per_instrument', secs_per_instrument,
                MIN_SECS_PER_INSTRUMENT)
  if isinstance(midi_file, (list, tuple)):
    notes = [dataclasses.replace(n) for n in midi_file]
    if not notes:
      raise MidiError('no notes to render')
    info = {'instruments': len(set(n.instrument for n in notes)),
            'drum_instruments': 0, 'drum_notes': 0,
            'end_time': max(n.end for n in notes)}
    source = '<notes>'
  else:
    notes, info = load_notes(midi_file)
    source = os.fspath(midi_file)
  for n in notes:
    if n.original_pitch is None:
      n.original_pitch = n.pitch
  folded = fold_notes(notes, synth.pitch_range)
  total_time = info['end_time']

  # Latent anchors in time; each note's latent at its start time.
  if latents is not None:
    anchors = np.asarray(latents, np.float32)
    if anchors.ndim != 2 or anchors.shape[1] != synth.latent_size:
      raise ValueError('latents must have shape [N, %d], got %s' %
                       (synth.latent_size, anchors.shape))
    t_anchors = (np.linspace(0.0, max(total_time, 1e-3), len(anchors))
                 if len(anchors) > 1 else np.zeros(1))
  else:
    t_anchors = interpolation.anchor_times(total_time, secs_per_instrument)
    anchors = synth.sample_latents(len(t_anchors), seed, truncation)

  # Unique (start, pitch) requests in time order.
  keys = sorted(set((n.start, n.pitch) for n in notes))
  index = {k: i for i, k in enumerate(keys)}
  starts = np.array([k[0] for k in keys])
  z = interpolation.interpolate_at(anchors, t_anchors, starts,
                                   interpolation_method).astype(np.float32)
  pitches = np.array([k[1] for k in keys], np.int32)
  if progress is True:
    progress = _progress_printer(sys.stderr)
  bs = (synth.batch_size if batch_size is None else
        interpolation.check_integer('batch_size', batch_size, 1))
  check_peak(peak)
  # Generate chunk by chunk (in time order) and mix as we go: memory stays
  # bounded by one chunk of waves however long the piece is.
  by_key = {}
  for n in notes:
    by_key.setdefault((n.start, n.pitch), []).append(n)
  mixer = Mixer(Mixer.length_for(notes, synth.sample_rate, release),
                synth.sample_rate, attack, release, normalize_notes,
                velocity_curve)
  chunk = bs * 8
  for c in range(0, len(keys), chunk):
    sub = slice(c, c + chunk)
    sub_progress = None
    if progress is not None:
      sub_progress = (lambda done, total, c=c:
                      progress(c + done, len(keys)))
    waves = synth.generate(pitches[sub], z[sub], batch_size=bs,
                           progress=sub_progress)
    for wave, key in zip(waves, keys[sub]):
      for n in by_key[key]:
        mixer.add(wave, n)
  gen_s = time.perf_counter() - timer_start
  audio = mixer.finish(peak)
  per_note = [index[(n.start, n.pitch)] for n in notes]
  wall = time.perf_counter() - timer_start
  audio_s = len(audio) / float(synth.sample_rate)
  summary = {
      'midi_file': source,
      'notes': len(notes),
      'generated_notes': len(keys),
      'notes_folded': folded,
      'pitch_range': list(synth.pitch_range),
      'instruments': info['instruments'],
      'drum_notes_skipped': info['drum_notes'],
      'notes_longer_than_model': sum(
          1 for n in notes if n.duration + release > synth.note_seconds),
      'anchors': len(anchors),
      'batches': -(-len(keys) // bs),
      'audio_seconds': audio_s,
      'generation_and_mix_seconds': gen_s,
      'wall_seconds': wall,
      'real_time_factor': wall / audio_s if audio_s else 0.0,
      'speed_vs_real_time': audio_s / wall if wall else 0.0,
  }
  return Rendering(audio, int(synth.sample_rate), notes,
                   z[per_note], summary)
