"""The NSynth example format: feature keys, names, tf.train.Example encoding.

An NSynth note is one `tf.train.Example` with these features (the layout of
the released `nsynth-{train,valid,test}.tfrecord` files):

  note int64, note_str bytes, instrument int64, instrument_str bytes,
  pitch int64 (MIDI), velocity int64, sample_rate int64,
  audio float [num_samples] (in [-1, 1]), qualities int64 [10],
  qualities_str bytes [k], instrument_family int64, instrument_family_str bytes,
  instrument_source int64, instrument_source_str bytes.

Inside the pipeline every source yields the same example dict (EXAMPLE_KEYS):
  audio float32 [audio_length], pitch / velocity / instrument /
  instrument_family / instrument_source int32 scalars.
"""

import re

import numpy as np

INSTRUMENT_FAMILIES = ('bass', 'brass', 'flute', 'guitar', 'keyboard',
                       'mallet', 'organ', 'reed', 'string', 'synth_lead',
                       'vocal')
INSTRUMENT_SOURCES = ('acoustic', 'electronic', 'synthetic')
QUALITIES = ('bright', 'dark', 'distortion', 'fast_decay', 'long_release',
             'multiphonic', 'nonlinear_env', 'percussive', 'reverb',
             'tempo-synced')

# Keys every record must hold (scalars except audio); sample_rate is checked
# against the config when present.
SCALAR_KEYS = ('pitch', 'velocity', 'instrument', 'instrument_family',
               'instrument_source')
REQUIRED_KEYS = ('audio',) + SCALAR_KEYS
EXAMPLE_KEYS = REQUIRED_KEYS

# NSynth note names: <family>_<source>_<instrument number>-<pitch>-<velocity>,
# e.g. guitar_acoustic_001-060-100.
_NOTE_RE = re.compile(
    r'^(?P<instrument_str>(?P<family>[a-z_]+?)_(?P<source>acoustic|electronic|'
    r'synthetic)_(?P<num>\d+))-(?P<pitch>\d{1,3})-(?P<velocity>\d{1,3})$')


def parse_note_str(name):
  """'guitar_acoustic_001-060-100' -> dict of pitch, velocity, family, ...

  Returns None when `name` is not an NSynth note name.
  """
  m = _NOTE_RE.match(name)
  if not m or m.group('family') not in INSTRUMENT_FAMILIES:
    return None
  return {
      'note_str': name,
      'instrument_str': m.group('instrument_str'),
      'pitch': int(m.group('pitch')),
      'velocity': int(m.group('velocity')),
      'instrument_family': INSTRUMENT_FAMILIES.index(m.group('family')),
      'instrument_source': INSTRUMENT_SOURCES.index(m.group('source')),
  }


def note_str(instrument_str, pitch, velocity):
  return '%s-%03d-%03d' % (instrument_str, pitch, velocity)


def _varint(n):
  n &= 0xFFFFFFFFFFFFFFFF  # int64 two's complement, as protobuf does
  out = bytearray()
  while True:
    b = n & 0x7F
    n >>= 7
    if n:
      out.append(b | 0x80)
    else:
      out.append(b)
      return bytes(out)


def _field(number, payload):
  """A length-delimited protobuf field."""
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value):
  """bytes/str list -> BytesList, float ndarray -> FloatList, ints -> Int64List."""
  if isinstance(value, np.ndarray) and value.dtype.kind == 'f':
    packed = value.astype('<f4').tobytes()
    return _field(2, _field(1, packed))
  value = list(value)
  if value and isinstance(value[0], (bytes, str)):
    return _field(1, b''.join(
        _field(1, v.encode() if isinstance(v, str) else v) for v in value))
  return _field(3, _field(1, b''.join(_varint(int(v)) for v in value)))


def serialize_example(features):
  """{key: bytes/str list | float ndarray | int list} -> serialized
  tf.train.Example bytes (no TensorFlow needed; audio packed as float32)."""
  entries = b''.join(
      _field(1, _field(1, k.encode()) + _field(2, _feature(v)))
      for k, v in sorted(features.items()))
  return _field(1, entries)


def example_features(audio, pitch, velocity, sample_rate, instrument=0,
                     instrument_str='', instrument_family=0,
                     instrument_source=0, note=0, note_str_=None,
                     qualities=None):
  """The NSynth feature dict of one note (see module doc). audio: [T]."""
  audio = np.asarray(audio, np.float32).reshape(-1)
  qualities = [0] * len(QUALITIES) if qualities is None else list(qualities)
  if note_str_ is None:
    note_str_ = note_str(instrument_str or 'instrument_%d' % instrument, pitch,
                         velocity)
  fam = int(instrument_family)
  src = int(instrument_source)
  return {
      'note': [note],
      'note_str': [note_str_],
      'instrument': [instrument],
      'instrument_str': [instrument_str],
      'pitch': [pitch],
      'velocity': [velocity],
      'sample_rate': [sample_rate],
      'audio': audio,
      'qualities': qualities,
      'qualities_str': [q for q, on in zip(QUALITIES, qualities) if on],
      'instrument_family': [fam],
      'instrument_family_str': [INSTRUMENT_FAMILIES[fam]
                                if 0 <= fam < len(INSTRUMENT_FAMILIES)
                                else 'unknown'],
      'instrument_source': [src],
      'instrument_source_str': [INSTRUMENT_SOURCES[src]
                                if 0 <= src < len(INSTRUMENT_SOURCES)
                                else 'unknown'],
  }


def make_example(*args, **kwargs):
  """A `tf.train.Example` in NSynth layout (args of `example_features`)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.train.Example.FromString(
      serialize_example(example_features(*args, **kwargs)))
