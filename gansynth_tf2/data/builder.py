"""Builds NSynth-format TFRecord datasets from a SoundFont or an audio folder.

  build_from_soundfont(soundfont, output_dir, programs=None, pitches=24..84,
                       velocities=(25, 50, 75, 100, 127), sample_rate=16000,
                       ...) -> summary dict
  build_from_audio_folder(folder, output_dir, sample_rate=16000, ...)
                       -> summary dict

Output folder (written to a temporary folder, renamed when complete):
  nsynth-{train,valid,test}.tfrecord-NNNNN-of-MMMMM   sharded NSynth records
  summary.json                                         counts, splits, files
Every note is a 4 s (audio_length) float32 wave at `sample_rate`. Notes that
are silent, unpitched or not at their MIDI pitch (YIN, see data.pitch) are
dropped and counted. Splits are by note: each instrument's kept notes are
ranked by a seeded hash and divided by `split_fractions`, so every
instrument with enough notes (at least about 1 / the smallest nonzero
fraction) appears in every split (as in NSynth's gansynth_subset).
"""

import json
import math
import multiprocessing
import os
import sys
import time
import zlib

import numpy as np

from gansynth_tf2.data import nsynth_format

SPLITS = ('train', 'valid', 'test')
NSYNTH_VELOCITIES = (25, 50, 75, 100, 127)
DROP_REASONS = ('silent', 'unpitched', 'wrong_pitch')
SUMMARY_JSON = 'summary.json'  # in every dataset folder written here


def _resample(wave, rate_in, rate_out):
  if rate_in == rate_out:
    return np.asarray(wave, np.float32)
  from scipy import signal  # pylint: disable=g-import-not-at-top
  g = math.gcd(int(rate_in), int(rate_out))
  return signal.resample_poly(wave, rate_out // g, rate_in // g).astype(
      np.float32)


def _fit(wave, length):
  wave = np.asarray(wave, np.float32)[:length]
  return np.pad(wave, (0, length - len(wave)))


def _finish_note(wave, rate_in, sample_rate, audio_length, pitch, check):
  """Resample, trim/pad, check -> (wave [audio_length], verdict, f0, scaled)."""
  from gansynth_tf2.data import pitch as pitch_lib  # pylint: disable=g-import-not-at-top
  wave = _fit(_resample(wave, rate_in, sample_rate), audio_length)
  peak = float(np.max(np.abs(wave))) if wave.size else 0.0
  scaled = peak > 0.999
  if scaled:  # keep it a valid [-1, 1] wave
    wave = wave * (0.999 / peak)
  verdict, f0 = 'ok', float('nan')
  if check:
    verdict, f0 = pitch_lib.pitch_check(wave, sample_rate, pitch)
  elif peak <= 1e-3:
    verdict = 'silent'
  return wave, verdict, f0, scaled


# ---------------------------------------------------------------------------
# SoundFont rendering (worker side: no TensorFlow imported).
# ---------------------------------------------------------------------------
_WORKER = {}


def _init_worker(font, render_rate, gain):
  from gansynth_tf2.data import soundfont  # pylint: disable=g-import-not-at-top
  _WORKER['renderer'] = soundfont.NoteRenderer(font, render_rate, gain)


def _render_program(job):
  """One program's notes -> dict with kept serialized examples and counts."""
  (program, bank, pitches, velocities, sample_rate, audio_length, hold_s,
   release_s, check) = job
  from gansynth_tf2.data import soundfont  # pylint: disable=g-import-not-at-top
  r = _WORKER['renderer']
  out = {'program': program, 'missing': False, 'notes': [],
         'dropped': {k: 0 for k in DROP_REASONS}, 'rescaled': 0}
  if not r.has_program(program, bank):
    out['missing'] = True
    return out
  family, source = soundfont.gm_instrument(program % 128)
  name = '%s_%s_%03d' % (nsynth_format.INSTRUMENT_FAMILIES[family],
                         nsynth_format.INSTRUMENT_SOURCES[source],
                         bank * 128 + program)
  out['name'] = name
  for p in pitches:
    for v in velocities:
      wave = r.render(program, p, v, hold_s, release_s, bank)
      wave, verdict, f0, scaled = _finish_note(
          wave, r.sample_rate, sample_rate, audio_length, p, check)
      if verdict != 'ok':
        out['dropped'][verdict] += 1
        continue
      out['rescaled'] += int(scaled)
      feats = nsynth_format.example_features(
          wave, p, v, sample_rate, instrument=bank * 128 + program,
          instrument_str=name, instrument_family=family,
          instrument_source=source)
      out['notes'].append(((p, v), nsynth_format.serialize_example(feats)))
  return out


def split_notes(keys, instrument, fractions, seed):
  """Assigns each note key of one instrument to a split (seeded ranking).

  The notes are ranked by a hash of (seed, instrument, key) and cut at the
  rounded cumulative fractions, so a split of fraction 0 gets no notes.

  Returns:
    [split name] aligned with `keys`.
  """
  if not keys:
    return []
  ranks = sorted(range(len(keys)), key=lambda i: zlib.crc32(
      ('%s/%s/%s' % (seed, instrument, keys[i])).encode()))
  total = float(sum(fractions))
  n = len(keys)
  bounds = [int(math.floor(n * sum(fractions[:k]) / total + 0.5))
            for k in (1, 2)]
  out = [None] * n
  for r, i in enumerate(ranks):
    out[i] = SPLITS[0] if r < bounds[0] else (SPLITS[1] if r < bounds[1]
                                              else SPLITS[2])
  return out


class _Output:
  """Sharded writers of the three splits inside a temporary folder."""

  def __init__(self, folder, expected, examples_per_shard, compression):
    from gansynth_tf2.data import tfrecord_writer  # pylint: disable=g-import-not-at-top
    self.writers = {
        s: tfrecord_writer.ShardedTFRecordWriter(
            folder, s, max(1, math.ceil(expected[s] / examples_per_shard)),
            compression=compression) for s in SPLITS}

  def write(self, split, serialized):
    self.writers[split].write(serialized)

  def close(self, folder):
    files, counts = {}, {}
    for s, w in self.writers.items():
      paths = w.close()
      if not paths:  # an empty split still gets one (empty) file
        from gansynth_tf2.data import tfrecord_writer  # pylint: disable=g-import-not-at-top
        path = os.path.join(folder, tfrecord_writer.shard_name(
            'nsynth', s, 0, 1, w.compression))
        tfrecord_writer.write_nsynth_tfrecord(path, [], w.compression)
        paths = [path]
      files[s] = [os.path.basename(p) for p in paths]
      counts[s] = w.count
    return files, counts


def _write_summary(folder, summary):
  from gansynth_tf2 import io_util  # pylint: disable=g-import-not-at-top
  path = os.path.join(folder, SUMMARY_JSON)
  io_util.atomic_write_text(path, json.dumps(summary, indent=1))
  os.chmod(path, 0o644)


def _progress(total, desc):
  try:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    return tqdm(total=total, desc=desc, unit='note', file=sys.stderr,
                dynamic_ncols=True, mininterval=1.0)
  except ImportError:
    return None


def _check_output_dir(output_dir, overwrite):
  if not output_dir:
    raise ValueError('--output_dir is required')
  if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
    raise ValueError('output_dir %s exists and is not empty (choose a new '
                     'folder, or pass --overwrite to replace an earlier '
                     'dataset there)' % output_dir)
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise ValueError('output_dir %s is a file' % output_dir)


def _check_common(pitches, velocities, sample_rate, split_fractions,
                  examples_per_shard):
  if not pitches or any(not 0 <= p <= 127 for p in pitches):
    raise ValueError('pitches must be MIDI numbers 0-127, got %r' %
                     (pitches,))
  if not velocities or any(not 1 <= v <= 127 for v in velocities):
    raise ValueError('velocities must be 1-127, got %r' % (velocities,))
  if sample_rate <= 0:
    raise ValueError('sample_rate must be positive, got %r' % sample_rate)
  if len(split_fractions) != 3 or min(split_fractions) < 0 or not sum(
      split_fractions) > 0:
    raise ValueError('split fractions must be 3 numbers >= 0 (train, valid, '
                     'test), got %r' % (split_fractions,))
  if not examples_per_shard >= 1:
    raise ValueError('examples_per_shard must be >= 1, got %r' %
                     examples_per_shard)


def build_from_soundfont(soundfont, output_dir, programs=None, pitches=None,
                         velocities=NSYNTH_VELOCITIES, sample_rate=16000,
                         audio_length=None, render_rate=48000, hold_s=3.0,
                         release_s=1.0, bank=0, gain=1.0,
                         split_fractions=(0.8, 0.1, 0.1), seed=0,
                         examples_per_shard=1000, num_workers=1,
                         check_pitch=True, compression='', overwrite=False,
                         progress=True):
  """Renders programs x pitches x velocities of a SoundFont to TFRecords.

  Args:
    soundfont: .sf2 / .sf3 path.
    output_dir: the dataset folder to create (module doc).
    programs: preset numbers of `bank` (default: the melodic GM programs
      0-111); programs the font lacks are skipped and counted.
    pitches: MIDI pitches (default 24-84); velocities: MIDI velocities.
    sample_rate, audio_length: output rate and samples per note (default
      4 s); rendering is at `render_rate` then resampled (polyphase).
    hold_s, release_s: note-on time and release time rendered.
    gain: FluidSynth gain (notes above full scale are scaled down, counted).
    split_fractions: (train, valid, test) shares of each instrument's notes.
    examples_per_shard: shard size target.
    num_workers: rendering processes (each loads the font).
    check_pitch: drop unpitched / off-pitch notes (silent ones always).

  Returns:
    The summary dict (also written as summary.json).
  """
  from gansynth_tf2 import io_util  # pylint: disable=g-import-not-at-top
  start = time.time()
  soundfont = os.fspath(soundfont)
  if not os.path.isfile(soundfont):
    raise ValueError('SoundFont %s does not exist' % soundfont)
  if not soundfont.lower().endswith(('.sf2', '.sf3')):
    raise ValueError('SoundFont must be a .sf2 or .sf3 file, got %s' %
                     soundfont)
  programs = list(range(112) if programs is None else programs)
  pitches = list(range(24, 85) if pitches is None else pitches)
  velocities = list(velocities)
  audio_length = int(audio_length or 4 * sample_rate)
  _check_common(pitches, velocities, sample_rate, split_fractions,
                examples_per_shard)
  if any(not 0 <= p <= 127 for p in programs) or not programs:
    raise ValueError('programs must be 0-127, got %r' % (programs,))
  _check_output_dir(output_dir, overwrite)
  # Fail early (and in this process) on an unreadable font.
  _init_worker(soundfont, render_rate, gain)
  names = {}
  jobs = [(p, bank, pitches, velocities, sample_rate, audio_length, hold_s,
           release_s, check_pitch) for p in programs]
  per_prog = len(pitches) * len(velocities)
  total = sum(split_fractions)
  expected = {s: len(programs) * per_prog * f / total
              for s, f in zip(SPLITS, split_fractions)}
  bar = _progress(len(jobs) * per_prog, 'rendering') if progress else None
  summary = {'source': 'soundfont', 'soundfont': os.path.abspath(soundfont),
             'sample_rate': sample_rate, 'audio_length': audio_length,
             'render_rate': render_rate, 'hold_s': hold_s,
             'release_s': release_s, 'bank': bank, 'programs': programs,
             'pitches': pitches, 'velocities': velocities,
             'split_fractions': list(split_fractions), 'seed': seed,
             'missing_programs': [], 'dropped': {k: 0 for k in DROP_REASONS},
             'rescaled': 0, 'instruments': {}}
  pool = None
  try:
    with io_util.atomic_dir(output_dir, SUMMARY_JSON,
                            protect=[soundfont]) as tmp:
      out = _Output(tmp, expected, examples_per_shard, compression)
      if num_workers > 1:
        ctx = multiprocessing.get_context('spawn')
        pool = ctx.Pool(num_workers, _init_worker,
                        (soundfont, render_rate, gain))
        results = pool.imap(_render_program, jobs)
      else:
        results = map(_render_program, jobs)
      kept = 0
      for res in results:
        if bar is not None:
          bar.update(per_prog)
        if res['missing']:
          summary['missing_programs'].append(res['program'])
          continue
        for k in DROP_REASONS:
          summary['dropped'][k] += res['dropped'][k]
        summary['rescaled'] += res['rescaled']
        keys = [k for k, _ in res['notes']]
        splits = split_notes(keys, res['program'], split_fractions, seed)
        for (key, data), split in zip(res['notes'], splits):
          out.write(split, data)
        kept += len(keys)
        names[res['program']] = res['name']
        summary['instruments'][res['name']] = {
            'program': res['program'], 'notes': len(keys),
            'dropped': res['dropped']}
      if len(summary['missing_programs']) == len(programs):
        raise ValueError('SoundFont %s has none of the programs %s in bank '
                         '%d' % (soundfont, _ranges(programs), bank))
      if not kept:
        raise ValueError('every rendered note was dropped (%s)' %
                         summary['dropped'])
      files, counts = out.close(tmp)
      summary.update(rendered=len(jobs) * per_prog - len(
          summary['missing_programs']) * per_prog, kept=kept,
                     splits=counts, files=files,
                     seconds=round(time.time() - start, 1))
      _write_summary(tmp, summary)
  finally:
    if pool is not None:
      pool.terminate()
    if bar is not None:
      bar.close()
  return summary


def _ranges(values):
  values = sorted(values)
  if values and values == list(range(values[0], values[-1] + 1)):
    return '%d-%d' % (values[0], values[-1])
  return ','.join(map(str, values))


def build_from_audio_folder(folder, output_dir, sample_rate=16000,
                            audio_length=None, pitches=None, velocities=None,
                            split_fractions=(0.8, 0.1, 0.1), seed=0,
                            examples_per_shard=1000, check_pitch=True,
                            skip_bad_examples=False, compression='',
                            overwrite=False, progress=True,
                            estimate_pitch=False):
  """Converts an audio folder (see data.audio_folder) to NSynth TFRecords.

  estimate_pitch: a file without a pitch in the manifest or its name gets
  the MIDI pitch nearest to its median f0 (counted in the summary's
  `pitch_estimated`); otherwise it is an error (or skipped). True or 'yin',
  'crepe_tiny', 'pyin': the f0 tracker (data.audio_folder.PITCH_TRACKERS).

  Files are read with soundfile, down-mixed, resampled (polyphase) to
  `sample_rate`, trimmed/padded to `audio_length` (default 4 s). The
  manifest's split column is kept when there is one; otherwise notes are
  split per instrument as for SoundFonts, hashing (instrument name, pitch,
  velocity, path within the folder) only. `pitches` / `velocities` filter.

  Returns:
    The summary dict (also written as summary.json).
  """
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import io_util  # pylint: disable=g-import-not-at-top
  from gansynth_tf2.data import audio_folder  # pylint: disable=g-import-not-at-top
  start = time.time()
  audio_length = int(audio_length or 4 * sample_rate)
  _check_common(pitches or [0], velocities or [1], sample_rate,
                split_fractions, examples_per_shard)
  _check_output_dir(output_dir, overwrite)
  skipped = []

  class _Stats:
    def add(self, reason, n=1):
      skipped.append((reason, n))

  entries = audio_folder.scan_audio_folder(
      folder, None, skip_bad_examples, _Stats(),
      estimate_pitch=estimate_pitch)
  entries = [e for e in entries
             if (pitches is None or e['pitch'] in pitches) and
             (velocities is None or e['velocity'] in velocities)]
  if not entries:
    raise ValueError('no audio files in %s match the pitches/velocities' %
                     folder)
  has_split = any(e.get('split') for e in entries)
  if has_split:
    bad = sorted({str(e['split']) for e in entries} - set(SPLITS))
    if bad:  # scan_audio_folder checks the manifest; kept as a guard
      raise ValueError('manifest split values must be train/valid/test, got '
                       '%s' % bad)
  else:  # keyed by the note alone, not by where the folder is
    by_inst = {}
    for e in entries:
      by_inst.setdefault(e['instrument_str'], []).append(e)
    for inst, group in by_inst.items():
      keys = [(e['pitch'], e['velocity'], os.path.relpath(
          e['path'], folder).replace(os.sep, '/')) for e in group]
      for e, s in zip(group, split_notes(keys, inst, split_fractions, seed)):
        e['split'] = s
  expected = {s: sum(e['split'] == s for e in entries) for s in SPLITS}
  summary = {'source': 'audio_folder', 'audio_folder': os.path.abspath(
      folder), 'sample_rate': sample_rate, 'audio_length': audio_length,
             'files': None, 'dropped': {k: 0 for k in DROP_REASONS},
             'unreadable': 0, 'rescaled': 0,
             'pitch_estimated': sum(bool(e.get('pitch_estimated'))
                                    for e in entries)}
  bar = _progress(len(entries), 'converting') if progress else None
  try:
    with io_util.atomic_dir(output_dir, SUMMARY_JSON,
                            protect=[folder]) as tmp:
      out = _Output(tmp, expected, examples_per_shard, compression)
      kept = 0
      for note, e in enumerate(entries):
        if bar is not None:
          bar.update(1)
        try:
          wave, rate = sf.read(e['path'], dtype='float32', always_2d=True)
        except Exception as ex:  # pylint: disable=broad-except
          if not skip_bad_examples:
            raise ValueError('cannot decode audio file %s: %s' %
                             (e['path'], ex)) from None
          summary['unreadable'] += 1
          continue
        wave, verdict, _, scaled = _finish_note(
            wave.mean(axis=1), rate, sample_rate, audio_length, e['pitch'],
            check_pitch)
        if verdict != 'ok':
          summary['dropped'][verdict] += 1
          continue
        summary['rescaled'] += int(scaled)
        feats = nsynth_format.example_features(
            wave, e['pitch'], e['velocity'], sample_rate,
            instrument=e['instrument'], instrument_str=e['instrument_str'],
            instrument_family=e['instrument_family'],
            instrument_source=e['instrument_source'], note=note)
        out.write(e['split'], nsynth_format.serialize_example(feats))
        kept += 1
      if not kept:
        raise ValueError('every note of %s was dropped (%s)' %
                         (folder, summary['dropped']))
      files, counts = out.close(tmp)
      summary['unreadable'] += sum(n for _, n in skipped)
      summary.update(kept=kept, splits=counts, files=files,
                     seconds=round(time.time() - start, 1))
      _write_summary(tmp, summary)
  finally:
    if bar is not None:
      bar.close()
  return summary
