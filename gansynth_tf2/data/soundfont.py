"""Renders SoundFont (.sf2/.sf3) notes with FluidSynth (libfluidsynth3 +
pyfluidsynth), one note at a time, dry (reverb and chorus off).

  NoteRenderer(path, sample_rate=48000).render(program, pitch, velocity,
      hold_s=3.0, release_s=1.0) -> float32 [(hold_s + release_s) * rate]
      mono (mean of the stereo output), or None if the font lacks the program
  gm_instrument(program) -> (instrument_family id, instrument_source id)
      of the NSynth names, for General MIDI program numbers 0-127.
"""

import ctypes
import os

import numpy as np

from gansynth_tf2.data import nsynth_format

# General MIDI programs 0-111 are melodic; 112-127 percussion and effects.
MELODIC_GM_PROGRAMS = tuple(range(112))

_F = nsynth_format.INSTRUMENT_FAMILIES
_S = nsynth_format.INSTRUMENT_SOURCES
# (first program, family, source) runs over the GM program list.
_GM_RUNS = (
    (0, 'keyboard', 'acoustic'), (4, 'keyboard', 'electronic'),
    (6, 'keyboard', 'acoustic'), (7, 'keyboard', 'electronic'),
    (8, 'mallet', 'acoustic'), (15, 'string', 'acoustic'),
    (16, 'organ', 'electronic'), (19, 'organ', 'acoustic'),
    (21, 'reed', 'acoustic'), (24, 'guitar', 'acoustic'),
    (26, 'guitar', 'electronic'), (32, 'bass', 'acoustic'),
    (33, 'bass', 'electronic'), (38, 'bass', 'synthetic'),
    (40, 'string', 'acoustic'), (47, 'mallet', 'acoustic'),
    (48, 'string', 'acoustic'), (50, 'string', 'synthetic'),
    (52, 'vocal', 'acoustic'), (54, 'vocal', 'synthetic'),
    (55, 'brass', 'synthetic'), (56, 'brass', 'acoustic'),
    (62, 'brass', 'synthetic'), (64, 'reed', 'acoustic'),
    (72, 'flute', 'acoustic'), (80, 'synth_lead', 'synthetic'),
    (104, 'guitar', 'acoustic'), (106, 'string', 'acoustic'),
    (108, 'mallet', 'acoustic'), (109, 'reed', 'acoustic'),
    (110, 'string', 'acoustic'), (111, 'reed', 'acoustic'),
    (112, 'mallet', 'acoustic'), (118, 'mallet', 'synthetic'),
    (120, 'synth_lead', 'synthetic'),
)


def gm_instrument(program):
  """GM program 0-127 -> (NSynth instrument_family id, instrument_source id)."""
  if not 0 <= program <= 127:
    raise ValueError('GM program must be in 0-127, got %r' % program)
  fam, src = None, None
  for first, f, s in _GM_RUNS:
    if program >= first:
      fam, src = f, s
  return _F.index(fam), _S.index(src)


def _load_fluidsynth():
  try:
    import fluidsynth  # pylint: disable=g-import-not-at-top
  except (ImportError, OSError) as e:
    raise RuntimeError(
        'SoundFont rendering needs FluidSynth: apt-get install '
        'libfluidsynth3 && pip install pyfluidsynth (%s)' % e) from None
  return fluidsynth


class NoteRenderer:
  """One FluidSynth instance with one SoundFont loaded, rendering channel 0.

  Args:
    path: .sf2 / .sf3 file.
    sample_rate: render rate (48000).
    gain: FluidSynth master gain (0.5 keeps one loud voice below full scale).
  """

  def __init__(self, path, sample_rate=48000, gain=0.5):
    fluidsynth = _load_fluidsynth()
    path = os.fspath(path)
    if not os.path.isfile(path):
      raise ValueError('SoundFont %s does not exist' % path)
    self.sample_rate = int(sample_rate)
    self._fl = fluidsynth._fl  # pylint: disable=protected-access
    self._synth = fluidsynth.Synth(
        gain=gain, samplerate=float(sample_rate), channels=16,
        **{'synth.reverb.active': 0, 'synth.chorus.active': 0,
           'synth.polyphony': 64, 'synth.cpu-cores': 1,
           'synth.dynamic-sample-loading': 0})
    self._sfid = self._synth.sfload(path)
    if self._sfid < 0:
      raise ValueError('FluidSynth cannot load SoundFont %s' % path)
    # Missing presets are reported by has_program(); silence FluidSynth's own
    # error/warning lines about them (levels FLUID_ERR=1, FLUID_WARN=2).
    for level in (1, 2):
      self._fl.fluid_set_log_function(ctypes.c_int(level), None, None)
    self._write = self._fl.fluid_synth_write_float
    self._write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                            ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                            ctypes.c_int, ctypes.c_int]
    self._write.restype = ctypes.c_int
    self._program = None
    self._warm = set()

  def close(self):
    if self._synth is not None:
      self._synth.delete()
      self._synth = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def has_program(self, program, bank=0):
    return self._synth.program_select(0, self._sfid, bank, program) == 0

  def _samples(self, n):
    """Renders n frames -> float32 [n] mono."""
    left = np.zeros(n, np.float32)
    right = np.zeros(n, np.float32)
    rc = self._write(self._synth.synth, n, left.ctypes.data, 0, 1,
                     right.ctypes.data, 0, 1)
    if rc != 0:
      raise RuntimeError('fluid_synth_write_float failed')
    return 0.5 * (left + right)

  def _silence(self):
    self._synth.all_sounds_off(0)
    self._samples(self.sample_rate // 10)

  def render(self, program, pitch, velocity, hold_s=3.0, release_s=1.0,
             bank=0):
    """float32 [(hold_s + release_s) * rate] or None (no such program)."""
    if self._program != (bank, program):
      if not self.has_program(program, bank):
        return None
      self._program = (bank, program)
    if self._program not in self._warm:  # one warm-up note per program
      self._warm.add(self._program)
      self.render(program, 60, 100, 0.5, 0.1, bank)
    self._silence()
    hold = int(round(hold_s * self.sample_rate))
    release = int(round(release_s * self.sample_rate))
    self._synth.noteon(0, int(pitch), int(velocity))
    a = self._samples(hold)
    self._synth.noteoff(0, int(pitch))
    b = self._samples(release)
    self._silence()
    return np.concatenate([a, b])
