r"""Converts an original Magenta GANSynth checkpoint dir to a native model dir.

  gansynth-convert --magenta_ckpt_dir=acoustic_only --output_dir=models/acoustic

Reads experiment.json and the newest stage_* checkpoint, builds the generator
and discriminator from that config, assigns the generator's EMA shadows (used
for generation), its raw weights and the discriminator's weights, derives
num_blocks and progress from the stage and global_step as the original does,
checks the result numerically, and writes the model dir.
"""

from absl import app
from absl import flags

from gansynth_tools import cli_errors

_CKPT = flags.DEFINE_string('magenta_ckpt_dir', None,
                            'Original checkpoint dir (experiment.json + '
                            'stage_000NN/).')
_OUT = flags.DEFINE_string('output_dir', None, 'Native model dir to write.')


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import magenta  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import synth as synth_lib  # pylint: disable=g-import-not-at-top
  if not _CKPT.value or not _OUT.value:
    raise app.UsageError('--magenta_ckpt_dir and --output_dir are required')
  try:
    m = magenta.convert(_CKPT.value, _OUT.value)
    # Numerical check: the written model generates what the in-memory one does.
    lo, hi = m['config'].pitch_range
    pitches = [lo, (lo + hi) // 2, hi]
    z = synth_lib.sample_latents(3, m['config'].latent_vector_size, 0)
    ref = synth_lib.Synth(m['config'], m['generator_ema']).generate_specgrams(
        pitches, z, normalized=True)
    out = synth_lib.load(_OUT.value).generate_specgrams(pitches, z,
                                                        normalized=True)
    err = float(np.abs(ref - out).max())
    if err > 1e-5:
      raise ValueError('written model differs from the checkpoint by %g' % err)
  except Exception as e:  # pylint: disable=broad-except
    cli_errors.fail('gansynth-convert', e)  # re-raises bugs
  print('Converted %s (stage %d, %d blocks, global_step %d, progress %.3f) '
        '-> %s' % (m['checkpoint'], m['stage_id'], m['num_blocks'],
                   m['global_step'], m['progress'], _OUT.value))


def run():
  cli_errors.exit_on_sigterm()
  app.run(main)


if __name__ == '__main__':
  run()
