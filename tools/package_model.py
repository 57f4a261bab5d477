r"""Copies a training run's latest checkpoint into a native model dir.

  python -m gansynth_tools.package_model --train_root_dir=RUN \
      --output_dir=saved_models/gansynth_sf_cpu_fast [--with_discriminator]

Keeps the EMA generator (used for generation), and optionally the raw
generator and the discriminator so users can fine-tune; the run's
experiment.json and images seen come along. Written atomically.
"""

import sys

from absl import app
from absl import flags

from gansynth_tools import cli_errors

_ROOT = flags.DEFINE_string('train_root_dir', None, 'Training run dir.')
_OUT = flags.DEFINE_string('output_dir', None, 'Native model dir to write.')
_WITH_D = flags.DEFINE_bool('with_discriminator', True,
                            'Also keep the raw generator and discriminator.')


def main(argv):
  del argv
  from gansynth_tf2 import model_io  # pylint: disable=g-import-not-at-top
  if not _ROOT.value or not _OUT.value:
    print('package_model: error: --train_root_dir and --output_dir are '
          'required', file=sys.stderr)
    sys.exit(1)
  try:
    m = model_io.load_model_dir(_ROOT.value, load_generator=_WITH_D.value,
                                load_discriminator=_WITH_D.value)
  except ValueError as e:
    print('package_model: error: %s' % e, file=sys.stderr)
    sys.exit(1)
  info = m['info']
  try:
    model_io.save_model_dir(
        _OUT.value, m['config'], m['generator_ema'],
        generator=m.get('generator'), discriminator=m.get('discriminator'),
        num_blocks=m['num_blocks'], progress=m['progress'],
        images_seen=info.get('images_seen', 0),
        extra_info={'packaged_from_checkpoint': m['checkpoint']},
        protect=[_ROOT.value])
  except ValueError as e:
    print('package_model: error: %s' % e, file=sys.stderr)
    sys.exit(1)
  print('Wrote %s (%d blocks, progress %.2f, %d images seen)' % (
      _OUT.value, m['num_blocks'], m['progress'], info.get('images_seen', 0)))


def run():
  cli_errors.exit_on_sigterm()
  app.run(main)


if __name__ == '__main__':
  run()
