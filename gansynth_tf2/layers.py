"""Progressive-GAN layers (Keras 3, TensorFlow backend).

Equalized learning rate: kernels are stored unscaled (initialized N(0, 1)) and
multiplied at run time by the He scale sqrt(2 / ((1 + slope^2) fan_in)),
fan_in = kh * kw * in_channels. The original uses slope 0 (scale sqrt(2/fan_in))
for the 3x3 / start / from_rgb convs and the default slope 1 (sqrt(1/fan_in))
for the generator's to_rgb and the discriminator's dense heads.
"""

import numpy as np
import keras
import tensorflow as tf


def he_scale(kernel_shape, slope):
  fan_in = int(np.prod(kernel_shape[:-1]))
  return float(np.sqrt(2.0 / ((1.0 + slope**2) * fan_in)))


def pixel_norm_scale(x, epsilon=1.0e-8, one_pass=False):
  """rsqrt(mean over channels of x^2 + eps) [B, H, W, 1]; x: [B, H, W, C].

  pixel_norm(x) = x * pixel_norm_scale(x).
  one_pass: take the channel norm with one EuclideanNorm reduction instead
    of Square then Mean (no squared copy of x: one memory pass less, ~6% of
    the full-size generator's forward on CPU); same value up to float
    rounding. For inference only: its gradient is NaN at an all-zero pixel.
  """
  if one_pass:
    norm = tf.math.reduce_euclidean_norm(x, axis=-1, keepdims=True)
    mean_square = tf.square(norm) * (1.0 / int(x.shape[-1]))
  else:
    mean_square = tf.reduce_mean(tf.square(x), axis=-1, keepdims=True)
  return tf.math.rsqrt(mean_square + epsilon)


def pixel_norm(x, epsilon=1.0e-8, one_pass=False):
  """x / sqrt(mean over channels of x^2 + eps). x: [B, H, W, C].
  one_pass: see `pixel_norm_scale`."""
  return x * pixel_norm_scale(x, epsilon, one_pass)


def leaky_relu(x):
  return tf.nn.leaky_relu(x, alpha=0.2)


def upscale(x, scale, mode='ALL'):
  """Nearest-neighbour upscaling of [B, H, W, C] by `scale` (H only if 'H')."""
  scale = int(scale)
  if scale == 1:
    return x
  shape = tf.shape(x)
  b, h, w, c = shape[0], x.shape[1], x.shape[2], x.shape[3]
  if mode == 'H':
    x = tf.broadcast_to(x[:, :, None], [b, h, scale, w, c])
    return tf.reshape(x, [b, h * scale, w, c])
  x = tf.broadcast_to(x[:, :, None, :, None], [b, h, scale, w, scale, c])
  return tf.reshape(x, [b, h * scale, w * scale, c])


def downscale(x, scale, mode='ALL'):
  """Box (average) downscaling of [B, H, W, C] by `scale`."""
  scale = int(scale)
  if scale == 1:
    return x
  ksize = [1, scale, 1, 1] if mode == 'H' else [1, scale, scale, 1]
  return tf.nn.avg_pool2d(x, ksize=ksize, strides=ksize, padding='VALID')


def minibatch_mean_stddev(x):
  """Scalar: mean over features of the batch stddev sqrt(var + 1e-6)."""
  _, var = tf.nn.moments(x, axes=[0])
  return tf.reduce_mean(tf.sqrt(var + 1.0e-6))


def scalar_concat(x, scalar):
  """Appends a channel holding `scalar` to [B, H, W, C]."""
  ones = tf.ones_like(x[..., :1])
  return tf.concat([x, ones * tf.cast(scalar, x.dtype)], axis=-1)


# 3 taps W0, W1, W2 of a SAME conv after x2 nearest upscaling -> (rows) the 4
# taps of the equivalent stride-2 transposed conv: [W2, W1+W2, W0+W1, W0].
_TAPS_4_FROM_3 = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]],
                          np.float64)


def transposed_upscale_kernel(kernel, scale, scale_mode):
  """The stride-2 transposed-conv kernel [kh', kw', out, in] equivalent to
  nearest upscale by 2 + SAME conv with `kernel * scale` ([3, 3, in, out]):
  [4, 4, out, in] for 'ALL', [4, 3, out, in] for 'H' (width taps flipped:
  a stride-1 transposed conv is the correlation with the flipped taps).

  One [16 or 12, 9] tap-mixing matmul (the he `scale` folded in) and one
  transpose.
  """
  _, _, cin, cout = kernel.shape
  flip = np.eye(3)[::-1]
  mix = np.kron(_TAPS_4_FROM_3, _TAPS_4_FROM_3 if scale_mode == 'ALL'
                else flip) * scale
  kw = 4 if scale_mode == 'ALL' else 3
  k = tf.matmul(tf.constant(mix, kernel.dtype),
                tf.reshape(kernel, [9, cin * cout]))
  return tf.transpose(tf.reshape(k, [4, kw, cin, cout]), [0, 1, 3, 2])


UPSCALE_FORMS = ('transposed', 'subpixel', 'literal')


class EqualizedConv2D(keras.layers.Layer):
  """conv(x, W * he_scale) + bias, W stored unscaled; optional activation.

  Args:
    filters: output channels.
    kernel_size: int or (kh, kw).
    padding: 'SAME' or 'VALID'.
    slope: leaky-ReLU slope used for the He scale (0 or 1 in the original).
    activation: None, 'lrelu' (leaky ReLU 0.2), 'lrelu_pixelnorm' or 'tanh'.
    upscale_input: if > 1, nearest-upscale the input by this factor first.
    scale_mode: 'ALL' or 'H' for `upscale_input`.
    fast_upscale: how "nearest upscale by 2 + 3x3 SAME conv" is computed
      (all exact up to float rounding; other factors / kernels are always
      literal):
        True or 'transposed': ONE stride-2 (stride (2, 1) for 'H') transposed
          conv on the small input with the 4-tap kernel [W2, W1+W2, W0+W1, W0]
          per upscaled axis (2.25x fewer multiply-adds than literal, one op);
        'subpixel': four 2x2 convs on the small input, interleaved;
        False or 'literal': upscale, then the 3x3 conv.

  The bias is added with BiasAdd, which grappler fuses with the conv (and a
  leaky ReLU) into one oneDNN / cuDNN kernel.
  """

  def __init__(self, filters, kernel_size, padding='SAME', slope=0.0,
               activation=None, upscale_input=1, scale_mode='ALL',
               fast_upscale=True, **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    if isinstance(kernel_size, int):
      kernel_size = (kernel_size, kernel_size)
    self.kernel_size = tuple(int(k) for k in kernel_size)
    self.padding = padding.upper()
    self.slope = float(slope)
    self.activation = activation
    self.upscale_input = int(upscale_input)
    if scale_mode not in ('ALL', 'H'):
      raise ValueError("scale_mode must be 'ALL' or 'H', got %r" % scale_mode)
    self.scale_mode = scale_mode
    form = {True: 'transposed', False: 'literal'}.get(fast_upscale,
                                                      fast_upscale)
    if form not in UPSCALE_FORMS:
      raise ValueError('fast_upscale must be True, False or one of %s, got %r'
                       % (UPSCALE_FORMS, fast_upscale))
    self.fast_upscale = form

  def build(self, input_shape):
    in_ch = int(input_shape[-1])
    shape = self.kernel_size + (in_ch, self.filters)
    self.kernel = self.add_weight(
        name='kernel', shape=shape,
        initializer=keras.initializers.RandomNormal(stddev=1.0))
    self.bias = self.add_weight(name='bias', shape=(self.filters,),
                                initializer='zeros')
    self.scale = he_scale(shape, self.slope)

  def _activate(self, y, one_pass_norm=False, defer_norm=False):
    if defer_norm and self.activation != 'lrelu_pixelnorm':
      raise ValueError('defer_norm needs lrelu_pixelnorm, %s has %r'
                       % (self.name, self.activation))
    if self.activation is None:
      return y
    if self.activation == 'lrelu':
      return leaky_relu(y)
    if self.activation == 'lrelu_pixelnorm':
      y = leaky_relu(y)
      s = pixel_norm_scale(y, one_pass=one_pass_norm)
      return (y, s) if defer_norm else y * s
    if self.activation == 'tanh':
      return tf.tanh(y)
    raise ValueError('Unknown activation %r' % self.activation)

  @property
  def upscale_form(self):
    """'transposed', 'subpixel' or 'literal': what `call` computes."""
    if self.upscale_input == 1:
      return None
    if (self.upscale_input == 2 and self.kernel_size == (3, 3) and
        self.padding == 'SAME'):
      return self.fast_upscale
    return 'literal'

  def _transposed_conv(self, x):
    """Exact nearest-upscale-by-2 + 3x3 SAME conv as one transposed conv."""
    h, wd = x.shape[1], x.shape[2]
    if self.scale_mode == 'H':
      strides, out_hw = (2, 1), (2 * h, wd)
    else:
      strides, out_hw = (2, 2), (2 * h, 2 * wd)
    k = transposed_upscale_kernel(tf.convert_to_tensor(self.kernel),
                                  self.scale, self.scale_mode)
    shape = tf.stack([tf.shape(x)[0], out_hw[0], out_hw[1], self.filters])
    return tf.nn.conv2d_transpose(x, k, shape, strides, 'SAME')

  def _subpixel_conv(self, x, w):
    """Exact nearest-upscale-by-2 + 3x3 SAME conv, as 2x2 convs per phase."""
    # Low-res rows feeding output phase a: a=0 -> (i-1, i), a=1 -> (i, i+1),
    # with kernel rows (W0, W1+W2) and (W0+W1, W2) respectively.
    def fold(k, axis):
      k0, k1, k2 = tf.unstack(k, axis=axis)
      return (tf.stack([k0, k1 + k2], axis=axis),
              tf.stack([k0 + k1, k2], axis=axis))
    h, wd = x.shape[1], x.shape[2]
    rows = fold(w, 0)
    xp = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    if self.scale_mode == 'H':
      outs = [tf.nn.conv2d(xp[:, a:a + h + 1], rows[a], 1, 'VALID')
              for a in (0, 1)]
      y = tf.stack(outs, axis=2)  # [B, H, 2, W, C]
      return tf.reshape(y, [-1, 2 * h, wd, self.filters])
    outs = []
    for a in (0, 1):
      for b in (0, 1):
        k = fold(rows[a], 1)[b]
        outs.append(tf.nn.conv2d(xp[:, a:a + h + 1, b:b + wd + 1], k, 1,
                                 'VALID'))
    return tf.nn.depth_to_space(tf.concat(outs, axis=-1), 2)

  def call(self, x, one_pass_norm=False, defer_norm=False, input_scale=None):
    """x [B, H, W, Cin] -> [B, H', W', filters].

    one_pass_norm: see `pixel_norm_scale` (inference only).
    defer_norm: with 'lrelu_pixelnorm', return (lrelu(y), s [B, H', W', 1]),
      the pixel norm being lrelu(y) * s, for a following 1x1 conv to apply
      s on its (fewer) output channels (inference only).
    input_scale: [B, H, W, 1], x's per-pixel factor (1x1 kernels only):
      conv(x * s) is computed as conv(x) * s, then the bias and activation.
    """
    form = self.upscale_form
    if form == 'transposed':
      y = self._transposed_conv(x)
    elif form == 'subpixel':
      y = self._subpixel_conv(x, self.kernel * self.scale)
    else:
      if form == 'literal':
        x = upscale(x, self.upscale_input, self.scale_mode)
      y = tf.nn.conv2d(x, self.kernel * self.scale, strides=1,
                       padding=self.padding)
    if input_scale is not None:
      if self.kernel_size != (1, 1) or form is not None:
        raise ValueError('input_scale needs a 1x1 conv, %s has kernel %s'
                         % (self.name, self.kernel_size))
      y = y * input_scale
    # BiasAdd (not AddV2): grappler fuses Conv2D + BiasAdd (+ LeakyRelu)
    # into one oneDNN / cuDNN kernel.
    return self._activate(tf.nn.bias_add(y, self.bias), one_pass_norm,
                          defer_norm)


class EqualizedDense(keras.layers.Layer):
  """flatten(x) @ (W * he_scale) + bias, W stored unscaled."""

  def __init__(self, units, slope=1.0, **kwargs):
    super().__init__(**kwargs)
    self.units = int(units)
    self.slope = float(slope)

  def build(self, input_shape):
    fan_in = int(np.prod(input_shape[1:]))
    self.kernel = self.add_weight(
        name='kernel', shape=(fan_in, self.units),
        initializer=keras.initializers.RandomNormal(stddev=1.0))
    self.bias = self.add_weight(name='bias', shape=(self.units,),
                                initializer='zeros')
    self.scale = he_scale((fan_in, self.units), self.slope)

  def call(self, x):
    x = tf.reshape(x, [tf.shape(x)[0], -1])
    return tf.matmul(x, self.kernel * self.scale) + self.bias


class PitchProjection(keras.layers.Layer):
  """The projection discriminator's conditional score <E[y], phi>.

  call(features [B, ...F], one_hot [B, P]) -> [B, 1]
    = sum(flatten(features) * (one_hot @ (E * he_scale))), E [P, F]
  E starts at zero (D unchanged at the start) and is stored unscaled with the
  he-scale of a dense layer over F features, like `EqualizedDense`.
  """

  def __init__(self, num_features, num_pitches, **kwargs):
    super().__init__(**kwargs)
    self.num_features = int(num_features)
    self.num_pitches = int(num_pitches)

  def build(self, input_shape=None):
    del input_shape
    self.kernel = self.add_weight(
        name='kernel', shape=(self.num_pitches, self.num_features),
        initializer='zeros')
    self.scale = he_scale((self.num_features, 1), 1.0)

  def call(self, features, one_hot):
    x = tf.reshape(features, [tf.shape(features)[0], self.num_features])
    e = tf.matmul(tf.cast(one_hot, x.dtype), self.kernel * self.scale)
    return tf.reduce_sum(x * e, axis=-1, keepdims=True)


class PitchFrequencyBias(keras.layers.Layer):
  """A per-pitch bias over the frequency axis of a feature map.

  call(x [B, H, W, C], one_hot [B, P]) -> x + (one_hot @ E)[:, None] with
  E [P, W, C]: for each pitch a learned frequency profile per channel, the
  same at every time step (H). It lets a high-resolution generator block
  place the partials of a pitch directly, where the latent path carries the
  pitch only through a few channels. E starts at zero (the block is
  unchanged at the start, so it can be added to a trained generator).
  E = kernel * lr_multiplier: with Adam, the multiplier scales the rate at
  which E moves (as the runtime he-scale of the equalized layers does).
  """

  def __init__(self, num_pitches, width, channels, lr_multiplier=1.0,
               **kwargs):
    super().__init__(**kwargs)
    self.num_pitches = int(num_pitches)
    self.width = int(width)
    self.channels = int(channels)
    self.lr_multiplier = float(lr_multiplier)

  def build(self, input_shape=None):
    del input_shape
    self.kernel = self.add_weight(
        name='kernel', shape=(self.num_pitches, self.width, self.channels),
        initializer='zeros')

  def call(self, x, one_hot):
    kernel = self.kernel
    if self.lr_multiplier != 1.0:
      kernel = kernel * self.lr_multiplier
    e = tf.einsum('bp,pwc->bwc', tf.cast(one_hot, x.dtype),
                  tf.cast(kernel, x.dtype))
    return x + e[:, None]


class LatentToImage(keras.layers.Layer):
  """The generator's first conv: a 1x1 latent image, zero-padded to
  (2 sh - 1) x (2 sw - 1), convolved VALID with an sh x sw kernel.

  Computed exactly as one matmul with the flipped kernel
  (out[i, j] = x . W[sh-1-i, sw-1-j]), followed by leaky ReLU + pixel norm.
  Input [B, C] (already pixel-normalized), output [B, sh, sw, filters].
  """

  def __init__(self, filters, start_resolution, **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.start_resolution = tuple(int(r) for r in start_resolution)

  def build(self, input_shape):
    in_ch = int(input_shape[-1])
    shape = self.start_resolution + (in_ch, self.filters)
    self.kernel = self.add_weight(
        name='kernel', shape=shape,
        initializer=keras.initializers.RandomNormal(stddev=1.0))
    self.bias = self.add_weight(name='bias', shape=(self.filters,),
                                initializer='zeros')
    self.scale = he_scale(shape, 0.0)

  def call(self, x, one_pass_norm=False):
    sh, sw = self.start_resolution
    k = tf.convert_to_tensor(self.kernel)
    # One [B, C] @ [C, F] product per kernel tap (a broadcast batch matmul:
    # the kernel is neither copied nor transposed), then the tap order
    # reversed (the flipped kernel) on the small output; he-scale there too.
    y = tf.matmul(x[None], tf.reshape(k, [sh * sw, k.shape[2], self.filters]))
    y = tf.transpose(tf.reverse(y, axis=[0]), [1, 0, 2])  # [B, sh*sw, F]
    y = tf.reshape(y, [-1, sh, sw, self.filters]) * self.scale + self.bias
    return pixel_norm(leaky_relu(y), one_pass=one_pass_norm)
