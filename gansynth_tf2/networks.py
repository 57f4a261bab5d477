"""Progressive GANSynth generator and discriminator (Keras 3 subclassed models).

Both take their whole geometry from a `Config`. Both hold every block up to
`config.num_resolutions`; a call computes only the first `num_blocks` blocks
(a static Python int, one traced function per stage) and blends them with the
`progress` variable (model state, so one trace serves a whole stage):

  generator alpha_b     = max(0, min(progress - (b - 2), b - progress))
  discriminator alpha_b = clip(b - progress, 0, 1)

For inference the generator also takes the progress as a Python float
(`static_progress`), which skips the blocks of weight 0 (see `Generator`).

Generator:  (latents [B, L], one_hot [B, P]) -> normalized specgrams [B, H, W, C]
Discriminator: normalized specgrams [B, H, W, C] ->
  (wasserstein logits [B, 1], pitch classification logits [B, P])
"""

import keras
import tensorflow as tf

from gansynth_tf2 import layers


def generator_alpha(block_id, progress):
  """max(0, min(progress - (block_id - 2), block_id - progress)); relu
  keeps the dtype of `progress` (bfloat16 networks too)."""
  return tf.nn.relu(tf.minimum(progress - (block_id - 2),
                               block_id - progress))


def discriminator_alpha(block_id, progress):
  return tf.clip_by_value(block_id - progress, 0.0, 1.0)


def copy_weights(src, dst, what='weights', keep=()):
  """Assigns the variables of model `src` to model `dst`, in order.

  `keep`: variables of `dst` that `src` lacks and that stay as they are
  (a layer added to the architecture, e.g. a zero-initialized projection).
  Raises ValueError (naming `what`) if the two do not hold the same number
  of variables with the same shapes (another architecture).
  """
  keep_ids = {id(v) for v in keep}
  src_w = list(src.weights)
  dst_w = [v for v in dst.weights if id(v) not in keep_ids]
  if len(src_w) != len(dst_w):
    raise ValueError('%s: %s has %d variables, expected %d' % (
        what, src.name, len(src_w), len(dst_w)))
  for s, d in zip(src_w, dst_w):
    if tuple(s.shape) != tuple(d.shape):
      raise ValueError('%s: %s has shape %s, expected %s' % (
          what, s.path, tuple(s.shape), tuple(d.shape)))
  for s, d in zip(src_w, dst_w):
    d.assign(s)


def blend_images(x, progress, config, num_blocks):
  """Real images seen at the resolution mix of `progress` (the original's)."""
  out = 0.0
  for b in range(1, num_blocks + 1):
    s = config.scale_factor(b)
    rescaled = layers.upscale(layers.downscale(x, s, config.scale_mode), s,
                              config.scale_mode)
    out += generator_alpha(b, progress) * rescaled
  return out


class _Progressive(keras.Model):
  """Shared state: the config, num_blocks and the progress variable."""

  def __init__(self, config, num_blocks=None, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    self.num_blocks = int(num_blocks or config.num_resolutions)
    if not 1 <= self.num_blocks <= config.num_resolutions:
      raise ValueError('num_blocks must be in [1, %d], got %d' %
                       (config.num_resolutions, self.num_blocks))
    self.progress = self.add_weight(
        name='progress', shape=(),
        initializer=keras.initializers.Constant(float(self.num_blocks - 1)),
        trainable=False)

  def build(self, input_shape):
    # Sub-layers build on their first call (a call may use fewer blocks);
    # `build_all()` creates every variable.
    del input_shape
    self.built = True

  def _track_by_name(self, *layer_lists):
    """Makes listed layers attributes (tf.train.Checkpoint keys = names)."""
    for layer_list in layer_lists:
      for layer in layer_list:
        if layer is not None:
          setattr(self, layer.name, layer)

  def set_progress(self, progress):
    self.progress.assign(float(progress))


def static_generator_alphas(progress, num_blocks):
  """Python-float generator_alpha of blocks 1..num_blocks at `progress`."""
  p = float(progress)
  return [max(0.0, min(p - (b - 2), b - p)) for b in range(1, num_blocks + 1)]


class Generator(_Progressive):
  """GANSynth progressive generator.

  Args:
    config: a `Config`.
    num_blocks: blocks computed by default (static); default all.
    fast_upscale: how "nearest upscale + 3x3 conv" is computed, exact up to
      float rounding (see `layers.EqualizedConv2D`): True (one transposed
      conv, 2.25x fewer multiply-adds), 'subpixel', or False (literal).

  Call: `generator((latents, one_hot), num_blocks=None, static_progress=None,
  one_pass_norm=None)`.
    static_progress: None (training): blend with the `progress` variable.
      A Python float (inference, progress known when tracing): blend with
      that value instead of reading the variable, and skip what has blend
      weight 0 (the to_rgb and upscaling of those blocks, and the blocks
      above the last one used), and apply the last block's pixel norm
      after its to_rgb (when no pitch bias follows it). Same output as the
      variable path at that progress (float rounding).
    one_pass_norm: take the pixel norms in one pass
      (`layers.pixel_norm_scale`: faster on CPU, not for gradients, no XLA
      kernel); default: with a static_progress.
  """

  def __init__(self, config, num_blocks=None, fast_upscale=True, **kwargs):
    super().__init__(config, num_blocks, **kwargs)
    c = config
    act = 'tanh' if c.to_rgb_activation == 'tanh' else None
    self.latent_conv = layers.LatentToImage(
        c.num_filters(1), c.start_resolution, name='block_1_conv0')
    self.conv0 = [None]
    self.conv1 = []
    self.to_rgb = []
    for b in range(1, c.num_resolutions + 1):
      if b > 1:
        self.conv0.append(layers.EqualizedConv2D(
            c.num_filters(b), c.kernel_size, slope=0.0,
            activation='lrelu_pixelnorm', upscale_input=c.scale_base,
            scale_mode=c.scale_mode, fast_upscale=fast_upscale,
            name='block_%d_conv0' % b))
      self.conv1.append(layers.EqualizedConv2D(
          c.num_filters(b), c.kernel_size, slope=0.0,
          activation='lrelu_pixelnorm', name='block_%d_conv1' % b))
      self.to_rgb.append(layers.EqualizedConv2D(
          c.num_channels, 1, slope=1.0, activation=act,
          name='block_%d_to_rgb' % b))
    # config.generator_pitch_bias_blocks: the top blocks add a per-pitch
    # frequency profile after their conv1 (layers.PitchFrequencyBias).
    self.pitch_bias = [None] * c.num_resolutions
    for b in range(c.num_resolutions - c.generator_pitch_bias_blocks + 1,
                   c.num_resolutions + 1):
      self.pitch_bias[b - 1] = layers.PitchFrequencyBias(
          c.num_pitches, c.block_resolution(b)[1], c.num_filters(b),
          lr_multiplier=c.generator_pitch_bias_lr_multiplier,
          name='block_%d_pitch_bias' % b)
    self._track_by_name(self.conv0, self.conv1, self.to_rgb, self.pitch_bias)

  @property
  def pitch_bias_weights(self):
    """The variables of the per-pitch frequency biases (may be empty)."""
    return [w for layer in self.pitch_bias if layer is not None
            for w in layer.weights]

  def build_all(self, batch_size=1):
    """Creates every variable (all blocks) with a dummy call."""
    z = tf.zeros([batch_size, self.config.latent_vector_size])
    y = tf.zeros([batch_size, self.config.num_pitches])
    self((z, y), num_blocks=self.config.num_resolutions)
    return self

  def call(self, inputs, num_blocks=None, static_progress=None,
           one_pass_norm=None):
    latents, one_hot = inputs
    num_blocks = int(num_blocks or self.num_blocks)
    c = self.config
    if static_progress is None:
      alphas = [generator_alpha(b, self.progress)
                for b in range(1, num_blocks + 1)]
      used = [True] * num_blocks
    else:
      alphas = static_generator_alphas(static_progress, num_blocks)
      used = [a != 0.0 for a in alphas]
      if not any(used):  # progress outside the blend range: all weights 0
        used = [True] * num_blocks
    last = max(b for b in range(1, num_blocks + 1) if used[b - 1])
    x = tf.concat([tf.cast(latents, tf.float32), tf.cast(one_hot, tf.float32)],
                  axis=1)
    x = layers.pixel_norm(x)  # over latent + one-hot, as the original
    # Inference (static progress) takes the pixel norms in one pass, and
    # applies the last block's after its to_rgb (1x1 conv: to_rgb(x * s) =
    # to_rgb(x) * s), on num_channels instead of num_filters channels.
    fast = static_progress is not None
    if one_pass_norm is None:
      one_pass_norm = fast
    defer_last = fast and self.pitch_bias[last - 1] is None
    last_scale = None
    x = self.latent_conv(x, one_pass_norm=one_pass_norm)
    lods = []
    for b in range(1, last + 1):  # blocks above `last` have weight 0
      if b > 1:
        x = self.conv0[b - 1](x, one_pass_norm=one_pass_norm)
      if b == last and defer_last:
        x, last_scale = self.conv1[b - 1](x, one_pass_norm=one_pass_norm,
                                          defer_norm=True)
      else:
        x = self._pitch_bias(
            b, self.conv1[b - 1](x, one_pass_norm=one_pass_norm), one_hot)
      lods.append(x)
    out = None
    for b in range(1, last + 1):
      if not used[b - 1]:
        continue
      rgb = self.to_rgb[b - 1](lods[b - 1],
                               input_scale=last_scale if b == last else None)
      rgb = layers.upscale(rgb, c.scale_factor(b), c.scale_mode)
      if static_progress is None or alphas[b - 1] != 1.0:
        rgb = rgb * alphas[b - 1]
      out = rgb if out is None else out + rgb
    return out

  def _pitch_bias(self, b, x, one_hot):
    layer = self.pitch_bias[b - 1]
    return x if layer is None else layer(x, one_hot)


class Discriminator(_Progressive):
  """GANSynth progressive discriminator with the auxiliary pitch classifier.

  With `config.discriminator_projection` the real/fake score is also
  conditioned on the pitch: call(images, one_hot=[B, P]) adds
  `layers.PitchProjection` of the final features (the labels are then
  required).
  """

  def __init__(self, config, num_blocks=None, **kwargs):
    super().__init__(config, num_blocks, **kwargs)
    c = config
    self.from_rgb = []
    self.conv0 = []
    self.conv1 = []
    for b in range(1, c.num_resolutions + 1):
      self.from_rgb.append(layers.EqualizedConv2D(
          c.num_filters(b), 1, slope=0.0, activation='lrelu',
          name='block_%d_from_rgb' % b))
      self.conv0.append(layers.EqualizedConv2D(
          c.num_filters(b), c.kernel_size, slope=0.0, activation='lrelu',
          name='block_%d_conv0' % b))
      if b == 1:
        self.conv1.append(layers.EqualizedConv2D(
            c.num_filters(0), c.start_resolution, padding='VALID', slope=0.0,
            activation='lrelu', name='block_1_conv1'))
      else:
        self.conv1.append(layers.EqualizedConv2D(
            c.num_filters(b - 1), c.kernel_size, slope=0.0,
            activation='lrelu', name='block_%d_conv1' % b))
    self.logits = layers.EqualizedDense(1, slope=1.0, name='logits')
    self.classification_logits = layers.EqualizedDense(
        c.num_pitches, slope=1.0, name='classification_logits')
    self.projection = (layers.PitchProjection(
        c.num_filters(0), c.num_pitches, name='pitch_projection')
                       if c.discriminator_projection else None)
    self._track_by_name(self.from_rgb, self.conv0, self.conv1)

  def build_all(self, batch_size=2):
    h, w = self.config.final_resolution
    self(tf.zeros([batch_size, h, w, self.config.num_channels]),
         num_blocks=self.config.num_resolutions,
         one_hot=tf.zeros([batch_size, self.config.num_pitches]))
    return self

  def call(self, images, num_blocks=None, one_hot=None):
    num_blocks = int(num_blocks or self.num_blocks)
    c = self.config
    mode = c.scale_mode

    def from_rgb(b):
      lod = layers.downscale(images, c.scale_factor(b), mode)
      return self.from_rgb[b - 1](lod)

    x = from_rgb(num_blocks)
    for b in range(num_blocks, 1, -1):
      x = self.conv0[b - 1](x)
      x = self.conv1[b - 1](x)
      x = layers.downscale(x, c.scale_base, mode)
      alpha = discriminator_alpha(b - 1, self.progress)
      x = alpha * from_rgb(b - 1) + (1.0 - alpha) * x
    x = layers.scalar_concat(x, layers.minibatch_mean_stddev(x))
    x = self.conv0[0](x)
    x = self.conv1[0](x)
    score = self.logits(x)
    if self.projection is not None:
      if one_hot is None:
        raise ValueError('this discriminator is conditioned on the pitch '
                         '(discriminator_projection): pass one_hot [B, %d]'
                         % self.config.num_pitches)
      score = score + self.projection(x, one_hot)
    return score, self.classification_logits(x)
