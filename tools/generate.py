r"""Generates notes, latent morphs or a whole MIDI piece with a GANSynth model.

  # one 16-bit WAV per note: OUT/0000_pitch60.wav, OUT/0001_pitch64.wav, ...
  gansynth-generate --model=MODEL --output_dir=OUT --pitches=60,64,67 --seed=0
  gansynth-generate --model=MODEL --output_dir=OUT --latents_npy=z.npy --pitches=60
  # latents drawn from --seed scaled by 0.5 (more typical notes); every note
  # scaled to peak 0.9 (default: only notes that would clip are scaled)
  gansynth-generate --output_dir=OUT --pitches=36-48 --truncation=0.5 \
      --normalize=peak
  # K notes morphing between N anchors (slerp or lerp)
  gansynth-generate --model=MODEL --output_dir=OUT --interpolate_steps=9 \
      --num_anchors=3 --seed=1 --pitches=60
  # a whole MIDI file to one WAV, timbre moving through latent space
  gansynth-generate --model=MODEL --output_dir=OUT --midi_file=song.mid \
      --secs_per_instrument=6 --seed=0

--model takes a native model dir, an exported SavedModel dir or an original
Magenta checkpoint dir; without it, the model shipped in saved_models/.
Errors: one line on stderr, exit status 1, no partial output.
"""

import os
import sys
import time

from absl import app
from absl import flags

from gansynth_tools import cli_errors
from gansynth_tools.cli_errors import fail
from absl import logging

_PROCESS_START = time.perf_counter()

_MODEL = flags.DEFINE_string(
    'model', None, 'Native model dir, exported SavedModel dir or original '
    'Magenta checkpoint dir (default: the shipped model).')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None,
                                  'Folder for the WAV files (created).')
_PITCHES = flags.DEFINE_string(
    'pitches', None, 'MIDI pitches, e.g. "60,64,67" or "48-60" (default 60; '
    'one pitch is shared by all latents / interpolation steps).')
_SEED = flags.DEFINE_integer('seed', None, 'Random seed of the latents '
                             '(default: random, printed).')
_LATENTS_NPY = flags.DEFINE_string(
    'latents_npy', None, '.npy of latents [N, latent_size] (anchors with '
    '--interpolate_steps or --midi_file).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 8, 'Notes per forward pass.')
_INTERPOLATE_STEPS = flags.DEFINE_integer(
    'interpolate_steps', 0, 'K > 1: K notes morphing between latent anchors.')
_INTERPOLATION = flags.DEFINE_enum('interpolation', 'slerp',
                                   ['slerp', 'lerp'], 'Interpolation method.')
_NUM_ANCHORS = flags.DEFINE_integer(
    'num_anchors', 2, 'Anchors drawn from --seed for --interpolate_steps '
    '(ignored with --latents_npy).')
_MIDI_FILE = flags.DEFINE_string('midi_file', None,
                                 'Render this MIDI file to one WAV.')
_SECS_PER_INSTRUMENT = flags.DEFINE_float(
    'secs_per_instrument', 6.0, 'MIDI: seconds between latent anchors.')
_ATTACK = flags.DEFINE_float('attack', 0.01, 'MIDI: attack seconds.')
_RELEASE = flags.DEFINE_float('release', 0.3, 'MIDI: release seconds.')
_PEAK = flags.DEFINE_float(
    'peak', 0.9, 'Peak level of the MIDI mix, and of the notes that '
    '--normalize scales.')
_NORMALIZE = flags.DEFINE_enum(
    'normalize', 'avoid_clipping', ['avoid_clipping', 'peak', 'none'],
    'Notes: avoid_clipping scales only the notes whose peak is above --peak '
    'down to --peak (16-bit PCM would clip them); peak scales every note to '
    '--peak; none writes them as generated (clipped to [-1, 1]).')
_TRUNCATION = flags.DEFINE_float(
    'truncation', 1.0, 'Scale of the latents drawn from --seed, in (0, 1] '
    '(truncation trick: lower = more typical notes, less variety; a '
    '--latents_npy file is used as it is).')
_OUTPUT_NAME = flags.DEFINE_string(
    'output_name', None, 'MIDI: name of the WAV (default <midi name>.wav).')
_VOCODER = flags.DEFINE_enum(
    'vocoder', None, ['phase', 'griffin_lim'],
    'Inversion for in-process models (a SavedModel has its own).')
_GRIFFIN_LIM_ITERS = flags.DEFINE_integer('griffin_lim_iters', 64,
                                          'Griffin-Lim iterations.')
_XLA = flags.DEFINE_bool('xla', False, 'XLA-compile (in-process models).')
_BFLOAT16 = flags.DEFINE_bool(
    'bfloat16', False, 'Opt-in bfloat16 network (approximate; in-process '
    'models).')
_QUIET = flags.DEFINE_bool('quiet', False, 'No progress or summary lines.')


def _say(msg):
  if not _QUIET.value:
    print(msg, file=sys.stderr, flush=True)


def _progress():
  if _QUIET.value:
    return None
  from gansynth_tf2 import midi  # pylint: disable=g-import-not-at-top
  return midi._progress_printer(sys.stderr)  # pylint: disable=protected-access


def _latents_error(path, problem):
  return ValueError('--latents_npy %s: %s; expected a .npy array '
                    '[N, latent_size] of real numbers, N >= 1' %
                    (path, problem))


def _read_latents(path):
  """The float32 [N, L] array of a .npy file (N, L >= 1), or ValueError."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  with open(path, 'rb') as f:
    magic = f.read(6)
  if not magic:
    raise _latents_error(path, 'empty file')
  if magic.startswith(b'PK'):
    raise _latents_error(path, 'a zip or .npz archive, not a .npy array')
  if magic != b'\x93NUMPY':
    raise _latents_error(path, 'not a .npy file')
  try:
    z = np.load(path, allow_pickle=False)
  except Exception as e:  # pylint: disable=broad-except
    # Truncated files, bad headers, object arrays (pickles).
    msg = ' '.join(str(e).split())[:200] or type(e).__name__
    raise _latents_error(path, 'cannot read it (%s)' % msg) from None
  if z.dtype.kind not in 'iuf':
    raise _latents_error(path, 'holds %s values' % z.dtype.name)
  if z.ndim == 1:
    z = z[None]
  if z.ndim != 2 or 0 in z.shape:
    raise _latents_error(path, 'has shape %s' % (z.shape,))
  with np.errstate(over='ignore'):
    z = z.astype(np.float32)
  if not np.all(np.isfinite(z)):
    raise _latents_error(path, 'holds non-finite values (or values beyond '
                         'float32)')
  return z


def _check_latent_size(path, z, latent_size):
  if z.shape[1] != latent_size:
    raise ValueError('--latents_npy %s: has shape %s; the model needs '
                     '[N, %d]' % (path, z.shape, latent_size))
  return z


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


def write_wav(path, wave, sample_rate):
  """16-bit PCM WAV, atomically, readable like any new file (io_util's temp
  file is created 0600)."""
  from gansynth_tf2 import io_util  # pylint: disable=g-import-not-at-top
  io_util.write_wav(path, wave, sample_rate)
  os.chmod(path, 0o666 & ~_umask())


def note_file_name(index, pitch):
  """'0003_pitch60.wav'."""
  return '%04d_pitch%d.wav' % (index, pitch)


def generate(argv_flags=None):
  """Runs the command; returns a summary dict. Raises ValueError."""
  del argv_flags
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import midi  # pylint: disable=g-import-not-at-top

  # Checks that need no model (and no TensorFlow import) come first.
  if not _OUTPUT_DIR.value:
    raise ValueError('--output_dir is required')
  if _BATCH_SIZE.value < 1:
    raise ValueError('--batch_size must be >= 1, got %d' % _BATCH_SIZE.value)
  if not 0.0 < _TRUNCATION.value <= 1.0:
    raise ValueError('--truncation must be in (0, 1], got %g' %
                     _TRUNCATION.value)
  if not 0.0 < _PEAK.value <= 1.0:
    raise ValueError('--peak must be in (0, 1], got %g' % _PEAK.value)
  if _MIDI_FILE.value and _INTERPOLATE_STEPS.value:
    raise ValueError('--midi_file and --interpolate_steps are exclusive')
  if _MIDI_FILE.value and _PITCHES.value is not None:
    raise ValueError('--pitches does not apply to --midi_file (the MIDI '
                     'notes set the pitches)')
  if _INTERPOLATE_STEPS.value == 1 or _INTERPOLATE_STEPS.value < 0:
    raise ValueError('--interpolate_steps must be >= 2 (or 0 for none), got '
                     '%d' % _INTERPOLATE_STEPS.value)
  if _LATENTS_NPY.value and not os.path.isfile(_LATENTS_NPY.value):
    raise ValueError('--latents_npy %s does not exist' % _LATENTS_NPY.value)
  latents = _read_latents(_LATENTS_NPY.value) if _LATENTS_NPY.value else None
  for name, flag in [('--attack', _ATTACK), ('--release', _RELEASE)]:
    midi.check_seconds(name, flag.value, 0.0, midi.MAX_ENVELOPE_SECONDS)
  midi.check_seconds('--secs_per_instrument', _SECS_PER_INSTRUMENT.value,
                     midi.MIN_SECS_PER_INSTRUMENT)
  if _PITCHES.value is not None and not _PITCHES.value.strip():
    raise ValueError('--pitches is empty; expected MIDI numbers such as '
                     '"60,64,67" or a range "48-60"')
  pitches = (midi.parse_pitches(_PITCHES.value) if _PITCHES.value is not None
             else None)
  if _MODEL.value and not os.path.exists(_MODEL.value):
    raise ValueError('model path %s does not exist' % _MODEL.value)
  if _MIDI_FILE.value:
    midi.load_notes(_MIDI_FILE.value)  # unreadable / empty / drums: fail now
    name = _OUTPUT_NAME.value or (
        os.path.splitext(os.path.basename(_MIDI_FILE.value))[0] + '.wav')
    if os.sep in name or not name.endswith('.wav') or name == '.wav':
      raise ValueError('--output_name must be a file name ending in .wav, '
                       'got %r' % name)
  if os.path.exists(_OUTPUT_DIR.value) and not os.path.isdir(
      _OUTPUT_DIR.value):
    raise ValueError('--output_dir %s exists and is not a folder' %
                     _OUTPUT_DIR.value)

  from gansynth_tf2 import synth as synth_lib  # pylint: disable=g-import-not-at-top

  seed = _SEED.value
  if seed is None and not _LATENTS_NPY.value:
    seed = int(np.random.SeedSequence().entropy % (2**31))
    _say('seed %d (pass --seed=%d to reproduce)' % (seed, seed))

  options = {}
  if _VOCODER.value:
    options['vocoder'] = _VOCODER.value
    options['griffin_lim_iters'] = _GRIFFIN_LIM_ITERS.value
  if _XLA.value:
    options['jit_compile'] = True
  if _BFLOAT16.value:
    options['bfloat16'] = True
  model = _MODEL.value or synth_lib.default_model_path()
  t_load = time.perf_counter()
  synth = synth_lib.load(model, batch_size=_BATCH_SIZE.value, **options)
  _say('loaded %s in %.1f s' % (synth.describe(),
                                time.perf_counter() - t_load))
  if latents is not None:
    _check_latent_size(_LATENTS_NPY.value, latents, synth.latent_size)
  if pitches is not None:
    pitches = synth.check_pitches(pitches).tolist()
  out_dir = _OUTPUT_DIR.value
  t0 = time.perf_counter()

  if _MIDI_FILE.value:
    result = synth.render_midi(
        _MIDI_FILE.value, secs_per_instrument=_SECS_PER_INSTRUMENT.value,
        seed=seed, latents=latents,
        interpolation_method=_INTERPOLATION.value, attack=_ATTACK.value,
        release=_RELEASE.value, peak=_PEAK.value,
        progress=_progress(), truncation=_TRUNCATION.value)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    write_wav(path, result.audio, result.sample_rate)
    summary = dict(result.summary, output=path,
                   seconds_to_first_wav=time.perf_counter() - _PROCESS_START)
    _say(result.summary_line())
    _say('wrote %s' % path)
    return summary

  if _INTERPOLATE_STEPS.value:
    waves, latents, pitches = synth.interpolate(
        _INTERPOLATE_STEPS.value, anchors=latents,
        num_anchors=_NUM_ANCHORS.value, seed=seed,
        pitches=pitches if pitches is not None else 60,
        method=_INTERPOLATION.value, progress=_progress(),
        truncation=_TRUNCATION.value)
  else:
    if pitches is None:
      pitches = [60] * (len(latents) if latents is not None else 1)
    latents, pitches = synth._inputs(pitches, latents, seed,  # pylint: disable=protected-access
                                     _TRUNCATION.value)
    waves = synth.generate(pitches, latents, progress=_progress())
  gen_s = time.perf_counter() - t0
  waves, gains = synth_lib.normalize_notes(waves, _NORMALIZE.value,
                                           _PEAK.value)
  scaled = int(np.sum(gains != 1.0))
  if scaled and _NORMALIZE.value == 'avoid_clipping':
    _say('%d of %d notes peaked above %g and were scaled down to it '
         '(--normalize=none keeps them as generated)' % (
             scaled, len(waves), _PEAK.value))
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  first_wav_s = None
  try:
    for i, (wave, pitch) in enumerate(zip(waves, pitches)):
      path = os.path.join(out_dir, note_file_name(i, int(pitch)))
      write_wav(path, wave, synth.sample_rate)  # atomic per file
      if first_wav_s is None:
        first_wav_s = time.perf_counter() - _PROCESS_START
      paths.append(path)
  except BaseException:
    for path in paths:  # no partial set of notes left behind
      if os.path.exists(path):
        os.remove(path)
    raise
  audio_s = len(waves) * synth.note_seconds
  summary = {'notes': len(waves), 'audio_seconds': audio_s,
             'generation_seconds': gen_s,
             'real_time_factor': gen_s / audio_s,
             'seconds_to_first_wav': first_wav_s, 'output_dir': out_dir,
             'notes_scaled': scaled}
  names = os.path.basename(paths[0]) + (
      ' ... ' + os.path.basename(paths[-1]) if len(paths) > 1 else '')
  _say('generated %d note%s (%.1f s of audio) in %.2f s (real-time factor '
       '%.3f, %.1fx real time); wrote %s in %s' % (
           len(waves), 's' if len(waves) > 1 else '', audio_s, gen_s,
           gen_s / audio_s, audio_s / gen_s, names, out_dir))
  return summary


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('unexpected arguments: %s' % ' '.join(argv[1:]))
  logging.set_verbosity(logging.WARNING)  # TF's INFO lines (saving, ...)
  try:
    generate()
  except Exception as e:  # pylint: disable=broad-except
    fail('gansynth-generate', e)


def run():
  cli_errors.exit_on_sigterm()
  app.run(main)


if __name__ == '__main__':
  run()
