r"""Exports a GANSynth model as an end-to-end SavedModel (needs only TensorFlow).

  gansynth-export --model=PATH --output_dir=SAVEDMODEL_DIR \
      [--vocoder=phase|griffin_lim] [--griffin_lim_iters=64] [--xla]

serving_default(latents f32 [B, L], pitches i32 [B]) -> {'waveforms'} runs the
EMA generator, denormalization and the inversion in one graph; see
gansynth_tf2/export.py for the other signatures. The export is verified
(reloaded and compared with the in-process model) before it is moved into
place; a failure leaves no output dir behind.
"""

import json
import os
import time

from absl import app
from absl import flags

from gansynth_tools import cli_errors
from gansynth_tools.cli_errors import fail
from absl import logging

_MODEL = flags.DEFINE_string(
    'model', None, 'Native model dir, exported SavedModel dir (re-exported '
    'from its weights) or original Magenta checkpoint dir (default: the '
    'shipped model).')
_OUTPUT_DIR = flags.DEFINE_string(
    'output_dir', None, 'SavedModel dir to write: new, empty, or an earlier '
    'SavedModel (replaced); any other folder, or one holding --model, is '
    'refused.')
_VOCODER = flags.DEFINE_enum(
    'vocoder', 'phase', ['phase', 'griffin_lim'],
    'phase: the original IF/phase inversion; griffin_lim: Griffin-Lim on the '
    'generated magnitude.')
_GRIFFIN_LIM_ITERS = flags.DEFINE_integer('griffin_lim_iters', 64,
                                          'Griffin-Lim iterations.')
_XLA = flags.DEFINE_bool('xla', False, 'XLA-compile (jit_compile) the graph '
                         '(slower on CPU, see benchmark_generate).')
_BFLOAT16 = flags.DEFINE_bool(
    'bfloat16', False, 'Opt-in bfloat16 network (approximate; inversion stays '
    'float32).')
_VERIFY = flags.DEFINE_bool('verify', True, 'Reload and compare with the '
                            'in-process model before finishing.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('unexpected arguments: %s' % ' '.join(argv[1:]))
  logging.set_verbosity(logging.WARNING)  # TF's INFO lines (saving, ...)
  try:
    if not _OUTPUT_DIR.value:
      raise ValueError('--output_dir is required')
    if _GRIFFIN_LIM_ITERS.value < 1:
      raise ValueError('--griffin_lim_iters must be >= 1')
    # Cheap checks before importing TensorFlow.
    if _MODEL.value and not os.path.exists(_MODEL.value):
      raise ValueError('model path %s does not exist' % _MODEL.value)
    from gansynth_tf2 import export  # pylint: disable=g-import-not-at-top
    from gansynth_tf2 import synth as synth_lib  # pylint: disable=g-import-not-at-top
    model = _MODEL.value or synth_lib.default_model_path()
    t0 = time.perf_counter()
    info = export.export_saved_model(
        model, _OUTPUT_DIR.value, vocoder=_VOCODER.value,
        griffin_lim_iters=_GRIFFIN_LIM_ITERS.value, jit_compile=_XLA.value,
        bfloat16=_BFLOAT16.value, verify=_VERIFY.value)
  except Exception as e:  # pylint: disable=broad-except
    fail('gansynth-export', e)
  m = info['metadata']
  print('Exported %s -> %s in %.1f s (%.1f MB): signatures %s; latents [N, '
        '%d], pitches %d..%d, waveforms [N, %d] at %d Hz, vocoder %s%s%s' % (
            model, info['output_dir'], time.perf_counter() - t0,
            info['size_bytes'] / 1e6, ', '.join(info['signatures']),
            m['latent_size'], m['min_pitch'], m['max_pitch'],
            m['audio_length'], m['sample_rate'], m['vocoder'],
            ', XLA' if m['xla'] else '', ', bfloat16' if m['bfloat16'] else ''))
  if 'source_max_abs_diff' in info:
    print('Rebuilt from the SavedModel\'s variables: generator output max abs '
          'difference %.3g' % info['source_max_abs_diff'])
  if 'verification' in info:
    print('Verified: reloaded SavedModel vs in-process model, max abs '
          'differences %s' % json.dumps(
              {k: float('%.3g' % v) for k, v in info['verification'].items()}))


def run():
  cli_errors.exit_on_sigterm()
  app.run(main)


if __name__ == '__main__':
  run()
