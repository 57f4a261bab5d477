"""Spectral transforms: parity with the original SpecgramsHelper, round trips."""

import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf2 import config as config_lib
from gansynth_tf2 import spectral


def rel_rms(x, ref):
  x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
  return float(np.sqrt(np.mean((x - ref)**2)) / np.sqrt(np.mean(ref**2)))


@pytest.fixture(scope='module')
def mel():
  return spectral.SpecgramTransform(audio_length=64000, sample_rate=16000,
                                    n_fft=2048, hop_length=512, mel=True)


@pytest.fixture(scope='module')
def linear():
  return spectral.SpecgramTransform(mel=False)


def test_geometry_matches_original(mel, spec_reference):
  r = spec_reference
  assert mel.num_frames == 128 and mel.num_bins == 1024
  assert mel.pad_left == int(r['pad_left']) == 3072
  assert mel.pad_right == int(r['pad_right']) == 0
  assert mel.spec_shape == (128, 1024, 2)
  cfg = config_lib.load_config('mel_prog_hires')
  t = cfg.spec_transform()
  assert (t.n_fft, t.hop_length, t.num_frames) == (2048, 512, 128)
  low = config_lib.load_config('mel_prog').spec_transform()
  assert (low.n_fft, low.hop_length, low.num_frames) == (1024, 256, 256)
  assert low.spec_shape == (256, 512, 2)


def test_mel_matrices_match_original(mel, spec_reference):
  r = spec_reference
  idx = r['matrix_index']
  np.testing.assert_allclose(mel.linear_to_mel_matrix()[:, idx],
                             r['linear_to_mel_matrix_cols'], atol=1e-10)
  np.testing.assert_allclose(mel.mel_to_linear_matrix()[idx, :],
                             r['mel_to_linear_matrix_rows'], atol=1e-10)


def test_stft_parity(mel, spec_reference):
  st = mel.waves_to_stfts(spec_reference['waves']).numpy()
  assert rel_rms(st.real, spec_reference['stfts_real']) < 1e-6
  assert rel_rms(st.imag, spec_reference['stfts_imag']) < 1e-6


@pytest.mark.parametrize('kind', ['mel', 'linear'])
def test_forward_specgram_parity(kind, mel, linear, spec_reference):
  t = mel if kind == 'mel' else linear
  out = t.waves_to_specgrams(spec_reference['waves']).numpy()
  ref = spec_reference[kind + '_specgrams']
  assert out.shape == ref.shape == (1, 128, 1024, 2)
  for c in range(2):
    assert rel_rms(out[..., c], ref[..., c]) <= 1e-3, c


@pytest.mark.parametrize('kind', ['mel', 'linear'])
def test_inverse_wave_parity(kind, mel, linear, spec_reference):
  t = mel if kind == 'mel' else linear
  waves = t.specgrams_to_waves(spec_reference[kind + '_specgrams']).numpy()
  assert waves.shape == (1, 64000)
  assert rel_rms(waves, spec_reference[kind + '_resynth_waves']) <= 1e-3


def test_mel_to_linear_parity(mel, spec_reference):
  out = mel.melspecgrams_to_specgrams(spec_reference['mel_specgrams']).numpy()
  ref = spec_reference['mel_to_linear_specgrams']
  for c in range(2):
    assert rel_rms(out[..., c], ref[..., c]) <= 1e-3


def test_linear_round_trip_is_near_lossless(linear, spec_reference):
  w = spec_reference['waves']
  back = linear.specgrams_to_waves(linear.waves_to_specgrams(w)).numpy()
  assert rel_rms(back, w) < 0.005  # original: 0.0022 (edge effects at the end)


def test_phase_representation_round_trip(spec_reference):
  t = spectral.SpecgramTransform(representation='phase')
  w = spec_reference['waves']
  spec = t.waves_to_specgrams(w).numpy()
  assert np.abs(spec[..., 1]).max() <= 1.0 + 1e-6  # phase / pi
  assert rel_rms(t.specgrams_to_waves(spec).numpy(), w) < 0.005


def test_instantaneous_frequency_of_a_pure_tone():
  # A bin-centred sinusoid advances its phase by 2 pi f hop / sr per frame.
  t = spectral.SpecgramTransform(mel=False)
  k = 64  # bin index (DC dropped: column k - 1)
  f = k * 16000 / 2048
  x = np.sin(2 * np.pi * f * np.arange(64000) / 16000).astype(np.float32)
  spec = t.waves_to_specgrams(x[None]).numpy()
  expected = np.mod(2 * np.pi * f * 512 / 16000 + np.pi, 2 * np.pi) - np.pi
  np.testing.assert_allclose(spec[0, 10:120, k - 1, 1], expected / np.pi,
                             atol=1e-3)


def test_traceable_in_tf_function(mel, spec_reference):
  fwd = tf.function(mel.waves_to_specgrams,
                    input_signature=[tf.TensorSpec([None, 64000])])
  inv = tf.function(mel.specgrams_to_waves,
                    input_signature=[tf.TensorSpec([None, 128, 1024, 2])])
  spec = fwd(spec_reference['waves'])
  np.testing.assert_allclose(spec.numpy(), mel.waves_to_specgrams(
      spec_reference['waves']).numpy(), atol=1e-5)
  assert inv(spec).shape == (1, 64000)


def test_griffin_lim_converges(spec_reference):
  t = spectral.SpecgramTransform(representation='magnitude')
  w = spec_reference['waves']
  mag = tf.abs(t.waves_to_stfts(w))
  sc_few = float(spectral.spectral_convergence(t.griffin_lim(mag, 4), mag,
                                               t)[0])
  sc_many = float(spectral.spectral_convergence(t.griffin_lim(mag, 48), mag,
                                                t)[0])
  assert sc_many < sc_few
  assert sc_many < 0.1
  # Plain (no momentum) Griffin-Lim is slower to converge.
  sc_plain = float(spectral.spectral_convergence(
      t.griffin_lim(mag, 48, momentum=0.0), mag, t)[0])
  assert sc_many < sc_plain
  # Magnitude-only specgrams invert through Griffin-Lim.
  spec = t.waves_to_specgrams(w)
  assert spec.shape == (1, 128, 1024, 1)
  assert t.specgrams_to_waves(spec, griffin_lim_iters=8).shape == (1, 64000)


def test_normalizer(spec_reference):
  n = config_lib.load_config('mel_prog_hires').normalizer()
  np.testing.assert_allclose(n.a, spec_reference['normalizer_a'])
  np.testing.assert_allclose(n.b, spec_reference['normalizer_b'])
  x = tf.random.uniform([2, 4, 4, 2], -0.8, 0.8)
  np.testing.assert_allclose(n.normalize(n.denormalize(x)).numpy(), x.numpy(),
                             atol=1e-5)
  assert float(tf.reduce_max(n.normalize(tf.fill([1, 2, 2, 2], 1e3)))) == 1.0


def test_bad_geometry_is_refused():
  with pytest.raises(ValueError, match='n_fft'):
    spectral.SpecgramTransform(n_fft=1000)
  with pytest.raises(ValueError, match='audio_length'):
    spectral.SpecgramTransform(num_frames=64)
  with pytest.raises(ValueError, match='representation'):
    spectral.SpecgramTransform(representation='cqt')


def test_mel_downscale_geometry():
  cfg = config_lib.load_config('cpu_small')
  t = cfg.spec_transform()
  assert cfg.final_resolution == (128, 512)
  assert (t.n_fft, t.hop_length, t.num_mel_bins) == (2048, 512, 512)
  assert t.spec_shape == (128, 512, 2)
  x = np.sin(2 * np.pi * 261.6 * np.arange(64000) / 16000).astype(np.float32)
  spec = t.waves_to_specgrams(x[None] * 0.3)
  assert spec.shape == (1, 128, 512, 2)
  back = t.specgrams_to_waves(spec).numpy()[0]
  # Pitch survives the coarser mel round trip: same dominant FFT bin.
  f = np.abs(np.fft.rfft(back[8000:40000]))
  assert abs(np.argmax(f) * 16000 / 32000 - 261.6) < 2.0


@pytest.mark.parametrize('name,shape,fft_hop', [
    ('cpu_small', (128, 512), (2048, 512)),
    ('cpu_fast', (128, 256), (1024, 512)),
])
def test_cpu_config_geometry_keeps_pitch(name, shape, fft_hop):
  """The CPU configs' coarser grids still carry the pitch of a harmonic note."""
  cfg = config_lib.load_config(name)
  t = cfg.spec_transform()
  assert cfg.final_resolution == shape
  assert (t.n_fft, t.hop_length, t.num_frames) == fft_hop + (shape[0],)
  sr, f0 = 16000, 110.0  # A2: harmonics 1..6, decaying
  n = np.arange(64000) / sr
  x = sum(np.sin(2 * np.pi * f0 * k * n) / k for k in range(1, 7))
  x = (0.3 * x * np.exp(-n)).astype(np.float32)
  back = t.specgrams_to_waves(t.waves_to_specgrams(x[None])).numpy()[0]
  seg = back[4000:36000] * np.hanning(32000)
  f = np.abs(np.fft.rfft(seg))
  freqs = np.fft.rfftfreq(32000, 1.0 / sr)
  peak = freqs[np.argmax(f)]
  assert abs(peak - f0) < 1.0, peak
  # Harmonic energy dominates: the partials hold most of the spectrum.
  near = np.zeros_like(f, bool)
  for k in range(1, 7):
    near |= np.abs(freqs - k * f0) < 4.0
  assert np.sum(f[near] ** 2) / np.sum(f ** 2) > 0.8


@pytest.mark.parametrize('config_name', ['tiny', 'cpu_small',
                                         'linear_prog_hires'])
def test_fast_inversion_equals_the_spectral_transform(config_name):
  """spectral.IFInversion (sparse mel -> linear, no unwrap/IF/cumsum round
  trip, cumsum as a matmul) == SpecgramTransform.specgrams_to_waves."""
  cfg = config_lib.load_config(config_name)
  t = cfg.spec_transform()
  inv = spectral.IFInversion(t)
  if t.representation == 'mel':
    assert inv._sparse is not None  # pylint: disable=protected-access
  # Specgrams of a real note (harmonics + noise) and of random values.
  n = np.arange(t.audio_length) / t.sample_rate
  rng = np.random.RandomState(0)
  note = sum(np.sin(2 * np.pi * 220.0 * k * n) / k for k in range(1, 5))
  note = (0.3 * note * np.exp(-n) + 1e-3 * rng.normal(size=n.shape))
  real = t.waves_to_specgrams(note[None].astype(np.float32)).numpy()
  frames, bins, _ = t.spec_shape
  rand = np.stack([rng.normal(-4.0, 2.0, (2, frames, bins)),
                   rng.uniform(-1.0, 1.0, (2, frames, bins))], -1)
  for specs in (real, rand.astype(np.float32)):
    want = t.specgrams_to_waves(specs).numpy()
    got = inv(specs).numpy()
    assert got.shape == want.shape
    # Float rounding (2e-7 measured).
    assert np.abs(got - want).max() <= 2e-6 * max(1.0, np.abs(want).max())


def test_bad_inputs_are_refused(mel, spec_reference):
  w = spec_reference['waves']
  for bad in (w[0], w[:, :32000], np.pad(w, [[0, 0], [0, 100]]), w[:, None]):
    with pytest.raises(ValueError, match=r'waves must have shape \[batch, '
                       r'64000\]'):
      mel.waves_to_specgrams(bad)
  with pytest.raises(ValueError, match='waves must be a float array.*int16'):
    mel.waves_to_stfts((w * 32767).astype(np.int16))
  with pytest.raises(ValueError, match='waves must be a float array'):
    mel.waves_to_specgrams(tf.constant(w.astype(np.int16)))
  spec = mel.waves_to_specgrams(w).numpy()
  inv = spectral.IFInversion(mel)
  for bad in (spec[0], spec[:, :64], spec[..., :1], spec[:, :, :512]):
    for fn in (mel.specgrams_to_waves, inv):
      with pytest.raises(ValueError, match=r'specgrams must have shape '
                         r'\[batch, 128, 1024, 2\]'):
        fn(bad)
  for bad in (np.ones((128, 1024)), np.ones((1, 100, 1024)),
              np.ones((1, 128, 1025))):
    with pytest.raises(ValueError, match=r'magnitude must have shape '
                       r'\[batch, 128, 1024\]'):
      mel.griffin_lim(bad.astype(np.float32), 1)


def test_float64_tensors_are_cast(mel, spec_reference):
  w = spec_reference['waves']
  want = mel.waves_to_specgrams(w).numpy()
  np.testing.assert_array_equal(
      mel.waves_to_specgrams(tf.constant(w.astype(np.float64))).numpy(), want)
  np.testing.assert_array_equal(
      mel.specgrams_to_waves(tf.constant(want.astype(np.float64))).numpy(),
      mel.specgrams_to_waves(want).numpy())
  mag = tf.abs(mel.waves_to_stfts(w))
  assert mel.griffin_lim(tf.cast(mag, tf.float64), 1).shape == (1, 64000)


def test_unknown_static_sizes_are_not_checked(mel, spec_reference):
  stft = tf.function(mel.waves_to_stfts,
                     input_signature=[tf.TensorSpec([None, None])])
  gl = tf.function(lambda m: mel.griffin_lim(m, 1),
                   input_signature=[tf.TensorSpec([None, None, 1024])])
  mag = tf.abs(stft(spec_reference['waves']))
  assert mag.shape == (1, 128, 1024)
  assert gl(mag).shape == (1, 64000)


def test_traced_with_unknown_sizes(mel, spec_reference):
  # A tf.function over [None, None] waves (or specgrams of unknown rank) gets
  # the static frame count from a runtime shape check: same values.
  fwd = tf.function(mel.waves_to_specgrams,
                    input_signature=[tf.TensorSpec([None, None])])
  inv = tf.function(mel.specgrams_to_waves,
                    input_signature=[tf.TensorSpec(None)])
  assert fwd.get_concrete_function().output_shapes.as_list() == [
      None, 128, 1024, 2]
  waves = spec_reference['waves']
  spec = fwd(waves)
  np.testing.assert_allclose(spec.numpy(), mel.waves_to_specgrams(
      waves).numpy(), atol=1e-4)
  np.testing.assert_allclose(inv(spec).numpy(), mel.specgrams_to_waves(
      spec).numpy(), atol=1e-5)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'waves must have shape \[batch, 64000\]'):
    fwd(np.zeros([1, 100], np.float32))  # not audio_length samples
  for bad in (spec[..., :1], spec[0]):  # a channel short; no batch axis
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r'specgrams must have shape \[batch, 128, 1024, '
                       r'2\]'):
      inv(bad)
  # The phase helpers themselves take a dynamic time axis.
  ifreq = tf.function(spectral.instantaneous_frequency,
                      input_signature=[tf.TensorSpec([None, None])])
  phase = np.cumsum(np.full([6, 3], 2.5, np.float32), axis=0)
  np.testing.assert_allclose(ifreq(phase).numpy(),
                             spectral.instantaneous_frequency(phase).numpy(),
                             atol=1e-6)
