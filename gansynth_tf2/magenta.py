"""Reading original Magenta GANSynth checkpoints (experiment.json + stage_*/).

Name mapping (b = block 1..N):
  Generator/progressive_gan_generator/progressive_gan_block_{b}/{conv0,conv1,to_rgb}/{conv2d/kernel,bias}
    (+ '/ExponentialMovingAverage' for the EMA shadows used for generation)
  Discriminator/progressive_gan_discriminator/progressive_gan_block_{b}/{from_rgb,conv0,conv1}/{conv2d/kernel,bias}
  Discriminator/progressive_gan_discriminator/progressive_gan_block_1/logits/{dense/kernel,bias}
  Discriminator/discriminator_cond/classification_logits/{dense/kernel,bias}
plus Adam slots (progressive_gan_train_ops/<name>/Adam, /Adam_1), beta powers,
`global_step` (images seen) and `Variable` (train time, seconds).
"""

import json
import os
import re

import numpy as np
import tensorflow as tf

from gansynth_tf2 import config as config_lib
from gansynth_tf2 import networks

EMA_SUFFIX = '/ExponentialMovingAverage'
_G = 'Generator/progressive_gan_generator/progressive_gan_block_%d/'
_D = 'Discriminator/progressive_gan_discriminator/progressive_gan_block_%d/'
_D_COND = 'Discriminator/discriminator_cond/classification_logits/'


class CheckpointMismatchError(ValueError):
  """The checkpoint's variables do not match the config's networks."""


def is_magenta_dir(path):
  """True if `path` looks like an original checkpoint dir."""
  return (os.path.isdir(path) and
          os.path.isfile(os.path.join(path, 'experiment.json')) and
          any(d.startswith('stage_') for d in os.listdir(path)))


def latest_stage(path):
  """(stage_id, checkpoint prefix) of the newest stage_* with a checkpoint."""
  stages = sorted((int(m.group(1)), d) for d in os.listdir(path)
                  for m in [re.fullmatch(r'stage_(\d+)', d)] if m)
  if not stages:
    raise ValueError('%s: no stage_* folder; expected an original GANSynth '
                     'checkpoint dir (experiment.json + stage_000NN/)' % path)
  stage_id, name = stages[-1]
  stage_dir = os.path.join(path, name)
  # The 'checkpoint' file names the newest checkpoint, often by the absolute
  # path it was trained at: only its base name is used, inside `stage_dir`
  # (not tf.train.latest_checkpoint, which would load a checkpoint elsewhere
  # that still exists at that path, or log an error when none does).
  try:
    state = tf.train.get_checkpoint_state(stage_dir)
  except ValueError:  # an empty model_checkpoint_path
    state = None
  prefix = None
  if state is not None and state.model_checkpoint_path:
    prefix = os.path.join(stage_dir,
                          os.path.basename(state.model_checkpoint_path))
    if not os.path.isfile(prefix + '.index'):
      prefix = None
  if prefix is None:  # no usable 'checkpoint' file: the newest *.index
    index = sorted(f for f in os.listdir(stage_dir) if f.endswith('.index'))
    if not index:
      raise ValueError('%s: no checkpoint (*.index) in %s' % (path, name))
    key = lambda f: int(re.search(r'-(\d+)\.index$', f).group(1)) \
        if re.search(r'-(\d+)\.index$', f) else -1
    prefix = os.path.join(stage_dir, sorted(index, key=key)[-1][:-6])
  return stage_id, prefix


def read_config(path):
  """The `Config` of an original checkpoint dir (its experiment.json)."""
  name = os.path.join(path, 'experiment.json')
  with open(name) as f:
    try:
      values = json.load(f)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
      raise ValueError('%s: expected a JSON object of hparams, got invalid '
                       'JSON (%s)' % (name, e)) from None
  if not isinstance(values, dict):
    raise ValueError('%s: expected a JSON object of hparams, got a JSON %s' %
                     (name, type(values).__name__))
  if 'jobs' in values:
    raise ValueError('%s: experiment.json with hparam sweeps ("jobs") is not '
                     'supported' % path)
  known = {k: v for k, v in values.items() if k in config_lib.DEFAULTS}
  # Keys that the original did not set in experiment.json keep the
  # original's set_flags defaults (our Config defaults are the same).
  try:
    config = config_lib.Config(known)
  except ValueError as e:  # a value out of range or of the wrong type
    raise ValueError('%s: %s' % (name, e)) from None
  # Original variants our networks do not implement: refused here, before a
  # model dir is written that could not generate (normalizer) or would
  # silently compute another architecture (simple_arch).
  if config.simple_arch:
    raise ValueError('%s: simple_arch=true (the original\'s dense/transposed-'
                     'conv variant) is not supported' % name)
  if config.data_normalizer != 'specgrams_prespecified_normalizer':
    raise ValueError('%s: data_normalizer=%r is not supported; only '
                     'specgrams_prespecified_normalizer (the default)' %
                     (name, config.data_normalizer))
  return config


def generator_names(config, num_blocks):
  """{checkpoint name (no EMA suffix): (attribute path, shape)}."""
  c = config
  names = {}
  in_ch = c.latent_vector_size + c.num_pitches
  for b in range(1, num_blocks + 1):
    nf = c.num_filters(b)
    if b == 1:
      k0 = c.start_resolution + (in_ch, nf)
    else:
      k0 = (c.kernel_size, c.kernel_size, c.num_filters(b - 1), nf)
    names[_G % b + 'conv0/conv2d/kernel'] = (('conv0', b, 'kernel'), k0)
    names[_G % b + 'conv0/bias'] = (('conv0', b, 'bias'), (nf,))
    names[_G % b + 'conv1/conv2d/kernel'] = (
        ('conv1', b, 'kernel'), (c.kernel_size, c.kernel_size, nf, nf))
    names[_G % b + 'conv1/bias'] = (('conv1', b, 'bias'), (nf,))
    names[_G % b + 'to_rgb/conv2d/kernel'] = (
        ('to_rgb', b, 'kernel'), (1, 1, nf, c.num_channels))
    names[_G % b + 'to_rgb/bias'] = (('to_rgb', b, 'bias'), (c.num_channels,))
  return names


def discriminator_names(config, num_blocks):
  c = config
  names = {}
  for b in range(1, num_blocks + 1):
    nf = c.num_filters(b)
    names[_D % b + 'from_rgb/conv2d/kernel'] = (
        ('from_rgb', b, 'kernel'), (1, 1, c.num_channels, nf))
    names[_D % b + 'from_rgb/bias'] = (('from_rgb', b, 'bias'), (nf,))
    in0 = nf + 1 if b == 1 else nf  # minibatch stddev channel in block 1
    names[_D % b + 'conv0/conv2d/kernel'] = (
        ('conv0', b, 'kernel'), (c.kernel_size, c.kernel_size, in0, nf))
    names[_D % b + 'conv0/bias'] = (('conv0', b, 'bias'), (nf,))
    if b == 1:
      k1 = c.start_resolution + (nf, c.num_filters(0))
      out1 = c.num_filters(0)
    else:
      k1 = (c.kernel_size, c.kernel_size, nf, c.num_filters(b - 1))
      out1 = c.num_filters(b - 1)
    names[_D % b + 'conv1/conv2d/kernel'] = (('conv1', b, 'kernel'), k1)
    names[_D % b + 'conv1/bias'] = (('conv1', b, 'bias'), (out1,))
  names[_D % 1 + 'logits/dense/kernel'] = (('logits', 0, 'kernel'),
                                           (c.num_filters(0), 1))
  names[_D % 1 + 'logits/bias'] = (('logits', 0, 'bias'), (1,))
  names[_D_COND + 'dense/kernel'] = (('classification_logits', 0, 'kernel'),
                                     (c.num_filters(0), c.num_pitches))
  names[_D_COND + 'bias'] = (('classification_logits', 0, 'bias'),
                             (c.num_pitches,))
  return names


def _optimizer_names(model_names, num_blocks):
  names = set()
  for n in model_names:
    names.add('progressive_gan_train_ops/' + n + '/Adam')
    names.add('progressive_gan_train_ops/' + n + '/Adam_1')
  for which in ('generator_train', 'discriminator_train'):
    for beta in ('beta1_power', 'beta2_power'):
      names.add('progressive_gan_train_ops/%s/%s' % (which, beta))
  return names


def _layer(model, kind, block):
  if isinstance(model, networks.Generator):
    if kind == 'conv0' and block == 1:
      return model.latent_conv
    return getattr(model, kind)[block - 1]
  if kind in ('logits', 'classification_logits'):
    return getattr(model, kind)
  return getattr(model, kind)[block - 1]


def check_variables(shapes, config, num_blocks):
  """Raises CheckpointMismatchError listing missing/extra/misshaped names."""
  g = generator_names(config, num_blocks)
  d = discriminator_names(config, num_blocks)
  required = {n: s for n, (_, s) in g.items()}
  required.update({n + EMA_SUFFIX: s for n, (_, s) in g.items()})
  required.update({n: s for n, (_, s) in d.items()})
  if config.train_progressive:
    # The blend position is computed from this counter, as the original does;
    # without it the conversion would silently blend as at progress 0.
    counter = 'global_step' if config.train_time_limit is None else 'Variable'
    required[counter] = ()
  optional = _optimizer_names(list(g) + list(d), num_blocks)
  optional |= {'global_step', 'Variable'}
  missing = sorted(n for n in required if n not in shapes)
  extra = sorted(n for n in shapes if n not in required and n not in optional)
  wrong = sorted('%s: checkpoint %s, expected %s' % (n, list(shapes[n]),
                                                     list(s))
                 for n, s in required.items()
                 if n in shapes and tuple(shapes[n]) != tuple(s))
  for n in optional:  # optimizer slots must at least have the right shape
    base = n.replace('progressive_gan_train_ops/', '', 1)
    base = re.sub(r'/Adam(_1)?$', '', base)
    if n in shapes and base in required and \
        tuple(shapes[n]) != tuple(required[base]):
      wrong.append('%s: checkpoint %s, expected %s' % (
          n, list(shapes[n]), list(required[base])))
  if missing or extra or wrong:
    parts = []
    for title, items in (('missing', missing), ('unexpected', extra),
                         ('wrong shape', wrong)):
      if items:
        parts.append('%d %s variable(s):\n  %s' % (len(items), title,
                                                   '\n  '.join(items)))
    raise CheckpointMismatchError(
        'Checkpoint does not match its experiment.json (data_type=%s, '
        'num_blocks=%d, fmap_base=%s, fmap_max=%s, latent=%s):\n%s' % (
            config.data_type, num_blocks, config.fmap_base, config.fmap_max,
            config.latent_vector_size, '\n'.join(parts)))


def progress_from_checkpoint(config, num_blocks, global_step, train_time):
  """The progress the original computes when it loads a checkpoint."""
  if not config.train_progressive:
    return float(num_blocks - 1)
  if config.train_time_limit is not None:
    n = config.total_num_stages
    times = np.zeros(n, np.float32)
    times[0] = 1.0
    for i in range(1, n):
      times[i] = times[i - 1] * config.train_time_stage_multiplier
    times *= config.train_time_limit / np.sum(times)
    times = np.cumsum(times)
    progress = 0.0
    for i in range(1, n, 2):
      frac = (train_time - times[i - 1]) / (times[i] - times[i - 1])
      progress += float(np.clip(frac, 0.0, 1.0))
    return float(min(progress, num_blocks - 1))
  return config.compute_progress(global_step, num_blocks)


def load_magenta_checkpoint(path, load_discriminator=True):
  """Builds networks from an original checkpoint dir and assigns its weights.

  Returns:
    dict with 'config', 'generator_ema' (EMA weights, used for generation),
    'generator' (raw weights), 'discriminator' (or None), 'num_blocks',
    'progress', 'global_step', 'train_time', 'stage_id', 'checkpoint'.
  """
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise ValueError('%s: not a folder; expected an original GANSynth '
                     'checkpoint dir' % path)
  if not os.path.isfile(os.path.join(path, 'experiment.json')):
    raise ValueError('%s: no experiment.json; expected an original GANSynth '
                     'checkpoint dir' % path)
  config = read_config(path)
  stage_id, prefix = latest_stage(path)
  if not 0 <= stage_id < config.total_num_stages:
    raise ValueError('%s: stage_%05d does not fit its experiment.json '
                     '(num_resolutions=%d: stages 0..%d)' % (
                         path, stage_id, config.num_resolutions,
                         config.total_num_stages - 1))
  num_blocks, _ = config.stage_info(stage_id)
  try:
    reader = tf.train.load_checkpoint(prefix)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError('%s: unreadable checkpoint %s: %s' % (path, prefix, e))
  shapes = reader.get_variable_to_shape_map()
  check_variables(shapes, config, num_blocks)

  def read(name):
    """A tensor of the checkpoint; a corrupt data file -> ValueError."""
    try:
      return reader.get_tensor(name)
    except (tf.errors.OpError, IndexError) as e:  # bad checksum / truncated
      raise ValueError('%s: corrupt checkpoint %s (reading %s): %s' % (
          path, prefix, name, ' '.join(str(e).split()))) from None

  global_step = int(read('global_step')) if 'global_step' in shapes else 0
  train_time = float(read('Variable')) if 'Variable' in shapes else 0.0
  progress = progress_from_checkpoint(config, num_blocks, global_step,
                                      train_time)

  def build_g():
    g = networks.Generator(config, num_blocks=num_blocks)
    g.build_all()
    return g

  g_ema, g_raw = build_g(), build_g()
  for name, ((kind, b, attr), _) in generator_names(config,
                                                    num_blocks).items():
    getattr(_layer(g_ema, kind, b), attr).assign(read(name + EMA_SUFFIX))
    getattr(_layer(g_raw, kind, b), attr).assign(read(name))
  d = None
  if load_discriminator:
    d = networks.Discriminator(config, num_blocks=num_blocks)
    d.build_all()
    for name, ((kind, b, attr), _) in discriminator_names(
        config, num_blocks).items():
      getattr(_layer(d, kind, b), attr).assign(read(name))
  for model in (g_ema, g_raw, d):
    if model is not None:
      model.set_progress(progress)
  return dict(config=config, generator_ema=g_ema, generator=g_raw,
              discriminator=d, num_blocks=num_blocks, progress=progress,
              global_step=global_step, train_time=train_time,
              stage_id=stage_id, checkpoint=prefix)


def convert(magenta_dir, output_dir):
  """Original checkpoint dir -> native model dir. Returns the loaded dict."""
  from gansynth_tf2 import model_io  # pylint: disable=g-import-not-at-top
  m = load_magenta_checkpoint(magenta_dir, load_discriminator=True)
  model_io.save_model_dir(
      output_dir, m['config'], m['generator_ema'], generator=m['generator'],
      discriminator=m['discriminator'], num_blocks=m['num_blocks'],
      progress=m['progress'], images_seen=m['global_step'],
      extra_info={'converted_from': os.path.abspath(magenta_dir),
                  'magenta_checkpoint': os.path.basename(m['checkpoint']),
                  'magenta_stage_id': m['stage_id'],
                  'train_time_s': m['train_time']},
      protect=[magenta_dir])
  return m
