"""The native model dir: hparams + metadata + a TF checkpoint of the networks.

  MODEL_DIR/experiment.json   hparams under the original names
  MODEL_DIR/model.json        {"format": "gansynth_tf2", "num_blocks", "progress",
                               "images_seen", ...}
  MODEL_DIR/weights/model-1.* tf.train.Checkpoint(generator_ema=..., generator=...,
                               discriminator=...)

A training dir (`--train_root_dir`) has the same experiment.json / model.json
and its checkpoints in `checkpoints/` (tf.train.CheckpointManager, same object
keys), so it loads the same way.
"""

import json
import os

import tensorflow as tf

from gansynth_tf2 import config as config_lib
from gansynth_tf2 import io_util
from gansynth_tf2 import networks

FORMAT = 'gansynth_tf2'
MODEL_JSON = 'model.json'
EXPERIMENT_JSON = 'experiment.json'
CHECKPOINT_DIRS = ('weights', 'checkpoints')


def is_model_dir(path):
  return os.path.isfile(os.path.join(path, MODEL_JSON))


def latest_checkpoint(path):
  """Newest checkpoint prefix of a native model or training dir, or None."""
  for sub in CHECKPOINT_DIRS:
    prefix = tf.train.latest_checkpoint(os.path.join(path, sub))
    if prefix:
      return prefix
  return None


def save_model_dir(path, config, generator_ema, generator=None,
                   discriminator=None, num_blocks=None, progress=None,
                   images_seen=0, extra_info=None, protect=()):
  """Writes a native model dir atomically (a crash leaves the old one).

  `path` may replace an earlier model dir or an empty folder, never another
  folder or one that is or holds a `protect` path (the inputs).
  """
  if os.path.isdir(os.path.join(path, 'checkpoints')):
    raise ValueError('output %s is a training run (it has checkpoints/): '
                     'refusing to replace it; choose a new or empty folder'
                     % path)
  num_blocks = int(num_blocks or generator_ema.num_blocks)
  progress = float(generator_ema.progress.numpy() if progress is None
                   else progress)
  objects = {'generator_ema': generator_ema}
  if generator is not None:
    objects['generator'] = generator
  if discriminator is not None:
    objects['discriminator'] = discriminator
  info = {'format': FORMAT, 'num_blocks': num_blocks, 'progress': progress,
          'images_seen': int(images_seen),
          'has_generator': generator is not None,
          'has_discriminator': discriminator is not None}
  info.update(extra_info or {})
  with io_util.atomic_dir(path, MODEL_JSON, protect) as tmp:
    with open(os.path.join(tmp, EXPERIMENT_JSON), 'w') as f:
      json.dump(config.to_dict(), f, indent=1)
    with open(os.path.join(tmp, MODEL_JSON), 'w') as f:
      json.dump(info, f, indent=1)
    saved = tf.train.Checkpoint(**objects).save(
        os.path.join(tmp, 'weights', 'model'))
    name = os.path.basename(saved)
    with open(os.path.join(tmp, 'weights', 'checkpoint'), 'w') as f:
      # Relative path: the folder is renamed after writing.
      f.write('model_checkpoint_path: "%s"\n'
              'all_model_checkpoint_paths: "%s"\n' % (name, name))
  return path


def read_info(path):
  with open(os.path.join(path, MODEL_JSON)) as f:
    info = json.load(f)
  if info.get('format') != FORMAT:
    raise ValueError('%s: %s is not a gansynth_tf2 model description' %
                     (path, MODEL_JSON))
  return info


def load_model_dir(path, load_generator=False, load_discriminator=False):
  """Loads a native model dir (or a training dir).

  Returns:
    dict with 'config', 'generator_ema', optionally 'generator' and
    'discriminator', 'num_blocks', 'progress', 'info', 'checkpoint'.
  """
  if not os.path.isdir(path):
    raise ValueError('%s: not a folder' % path)
  if not is_model_dir(path):
    raise ValueError('%s: no %s; expected a gansynth_tf2 model dir' %
                     (path, MODEL_JSON))
  info = read_info(path)
  config = config_lib.Config.from_json(os.path.join(path, EXPERIMENT_JSON))
  prefix = latest_checkpoint(path)
  if prefix is None:
    raise ValueError('%s: no checkpoint in %s' % (path,
                                                  ' or '.join(CHECKPOINT_DIRS)))
  num_blocks = int(info['num_blocks'])
  out = {'config': config, 'info': info, 'num_blocks': num_blocks,
         'checkpoint': prefix}
  objects = {}
  g_ema = networks.Generator(config, num_blocks=num_blocks).build_all()
  objects['generator_ema'] = out['generator_ema'] = g_ema
  if load_generator:
    objects['generator'] = out['generator'] = networks.Generator(
        config, num_blocks=num_blocks).build_all()
  if load_discriminator:
    objects['discriminator'] = out['discriminator'] = networks.Discriminator(
        config, num_blocks=num_blocks).build_all()
  status = tf.train.Checkpoint(**objects).restore(prefix)
  status.expect_partial()  # unused objects (e.g. D when only G is wanted)
  try:
    # Every variable of the requested networks must come from the checkpoint.
    status.assert_existing_objects_matched()
  except AssertionError as e:
    raise ValueError('%s: checkpoint %s does not hold the networks of its '
                     'experiment.json: %s' % (path, prefix,
                                              str(e)[:500])) from None
  out['progress'] = float(g_ema.progress.numpy())
  return out
