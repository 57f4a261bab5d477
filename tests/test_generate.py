"""gansynth-generate and the Python generation API: WAV names and format,
seeds, latents files, interpolation, MIDI, the three kinds of --model, errors.

CLI runs are subprocesses (absl flags are process-global)."""

import os
import subprocess

import numpy as np
import pytest
import soundfile as sf

import gansynth_tf2
from gansynth_tf2 import export
from gansynth_tf2 import synth as synth_lib

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
ENV.pop('GANSYNTH_MODEL', None)
MIDI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                        'midi')


def generate_cli(*args, env=None):
  return subprocess.run(['gansynth-generate'] + list(args),
                        capture_output=True, text=True, env=env or ENV,
                        timeout=300, check=False)


def read_wav(path):
  info = sf.info(path)
  data, sr = sf.read(path, dtype='int16')
  return info, data, sr


def pcm16(wave, peak=0.9):
  """What the CLI stores for one float note by default
  (--normalize=avoid_clipping): a note peaking above `peak` is scaled down to
  it, then 16-bit PCM clips to [-1, 1]."""
  m = np.abs(wave).max()
  return np.clip(wave * (peak / m if m > peak else 1.0), -1.0, 1.0)


@pytest.fixture(scope='module')
def tiny_synth(tiny_model_dir):
  return gansynth_tf2.load(tiny_model_dir)


def test_python_api_surface(tiny_synth):
  s = tiny_synth
  assert (s.latent_size, s.sample_rate, s.audio_length) == (256, 16000, 64000)
  assert s.pitch_range == (24, 84)
  waves = s.generate([60, 64], seed=3)
  assert waves.shape == (2, 64000) and waves.dtype == np.float32
  np.testing.assert_array_equal(waves, s.generate([60, 64], seed=3))
  z = s.sample_latents(2, 3)
  np.testing.assert_array_equal(z, synth_lib.sample_latents(2, 256, 3))
  np.testing.assert_allclose(s.generate([60, 64], latents=z), waves,
                             atol=1e-6)
  specs = s.generate_specgrams([60], latents=z[:1])
  assert specs.shape == (1, 128, 1024, 2) and specs.dtype == np.float32
  norm = s.generate_specgrams([60], latents=z[:1], normalized=True)
  assert np.abs(norm).max() <= 1.0
  # Batching (with a padded last batch) does not change the notes. The
  # conv kernels oneDNN picks depend on the batch and the CPU (AVX-512 or
  # AVX2), and the IF phase is a cumulative sum, so the waves agree to float
  # rounding grown over 128 frames (seen: 1.3e-4 on AVX2), not bit for bit;
  # a padding row leaking into a note or notes out of order differ by O(0.1).
  p = [30, 40, 50, 60, 70]
  z5 = s.sample_latents(5, 9)
  np.testing.assert_allclose(s.generate(p, z5, batch_size=2),
                             s.generate(p, z5, batch_size=8), atol=1e-3)
  calls = []
  s.generate(p, z5, batch_size=2, progress=lambda d, n: calls.append((d, n)))
  assert calls == [(2, 5), (4, 5), (5, 5)]


def test_python_api_errors(tiny_synth):
  s = tiny_synth
  for bad, msg in [([23], 'outside'), ([85], 'outside'), ([60.5], 'integers'),
                   ([], 'non-empty')]:
    with pytest.raises(ValueError, match=msg):
      s.generate(bad, seed=0)
  with pytest.raises(ValueError, match='latents must have shape'):
    s.generate([60], latents=np.zeros((1, 3)))
  with pytest.raises(ValueError, match='2 latents for 3 pitches'):
    s.generate([60, 61, 62], latents=np.zeros((2, 256)))
  assert synth_lib.parse_pitches('60,64, 48-50') == [60, 64, 48, 49, 50]
  for bad in ('60,x', '50-40', ''):
    with pytest.raises(ValueError):
      synth_lib.parse_pitches(bad)


def test_default_model_path(monkeypatch, tmp_path):
  monkeypatch.delenv('GANSYNTH_MODEL', raising=False)
  monkeypatch.setattr(synth_lib, 'DEFAULT_MODEL_DIRS',
                      (str(tmp_path / 'none'),))
  with pytest.raises(ValueError, match='no shipped model'):
    synth_lib.default_model_path()
  monkeypatch.setenv('GANSYNTH_MODEL', str(tmp_path))
  assert synth_lib.default_model_path() == str(tmp_path)


def test_cli_notes_names_format_and_seed(tiny_model_dir, tiny_synth,
                                         tmp_path):
  out = tmp_path / 'notes'
  r = generate_cli('--model=' + tiny_model_dir, '--output_dir=%s' % out,
                   '--pitches=60,64,67', '--seed=7', '--batch_size=2')
  assert r.returncode == 0, r.stderr[-2000:]
  names = sorted(os.listdir(out))
  assert names == ['0000_pitch60.wav', '0001_pitch64.wav', '0002_pitch67.wav']
  want = tiny_synth.generate([60, 64, 67], seed=7)
  for i, name in enumerate(names):
    info, data, sr = read_wav(str(out / name))
    assert info.subtype == 'PCM_16' and info.format == 'WAV'
    assert info.channels == 1 and sr == 16000 and len(data) == 64000
    assert os.stat(out / name).st_mode & 0o044  # readable by others
    np.testing.assert_allclose(data / 32767.0, pcm16(want[i]), atol=2e-4)
  assert 'real-time factor' in r.stderr


def test_cli_latents_npy_and_interpolation(tiny_model_dir, tiny_synth,
                                           tmp_path):
  z = synth_lib.sample_latents(2, 256, 21)
  np.save(tmp_path / 'z.npy', z)
  out = tmp_path / 'z'
  r = generate_cli('--model=' + tiny_model_dir, '--output_dir=%s' % out,
                   '--latents_npy=%s' % (tmp_path / 'z.npy'), '--pitches=48',
                   '--quiet')
  assert r.returncode == 0, r.stderr[-2000:]
  assert sorted(os.listdir(out)) == ['0000_pitch48.wav', '0001_pitch48.wav']
  _, data, _ = read_wav(str(out / '0001_pitch48.wav'))
  want = tiny_synth.generate([48, 48], latents=z)
  np.testing.assert_allclose(data / 32767.0, pcm16(want[1]), atol=2e-4)

  out = tmp_path / 'morph'
  r = generate_cli('--model=' + tiny_model_dir, '--output_dir=%s' % out,
                   '--latents_npy=%s' % (tmp_path / 'z.npy'), '--pitches=48',
                   '--interpolate_steps=4', '--interpolation=lerp',
                   '--quiet')
  assert r.returncode == 0, r.stderr[-2000:]
  names = sorted(os.listdir(out))
  assert names == ['%04d_pitch48.wav' % i for i in range(4)]
  # Endpoints are the anchors' notes.
  for name, k in [(names[0], 0), (names[-1], 1)]:
    _, data, _ = read_wav(str(out / name))
    np.testing.assert_allclose(data / 32767.0, pcm16(want[k]), atol=2e-4)


def test_cli_midi_with_saved_model(tiny_model_dir, tmp_path):
  sm = str(tmp_path / 'sm')
  export.export_saved_model(tiny_model_dir, sm, verify=False)
  out = tmp_path / 'midi'
  r = generate_cli('--model=' + sm, '--output_dir=%s' % out,
                   '--midi_file=' + os.path.join(MIDI_DIR, 'test05.mid'),
                   '--seed=0', '--secs_per_instrument=2')
  assert r.returncode == 0, r.stderr[-2000:]
  assert os.listdir(out) == ['test05.wav']
  info, data, sr = read_wav(str(out / 'test05.wav'))
  assert info.subtype == 'PCM_16' and sr == 16000
  assert len(data) / sr == pytest.approx(7.242 + 0.3, abs=0.01)
  assert np.abs(data).max() / 32767.0 == pytest.approx(0.9, abs=0.01)
  assert '13 notes (1 folded' in r.stderr and 'real-time factor' in r.stderr


def test_normalize_notes_modes():
  t = np.linspace(0, 1, 1000, dtype=np.float32)
  loud = 3.0 * np.sin(2 * np.pi * 5 * t)   # would clip as 16-bit PCM
  quiet = 0.5 * np.sin(2 * np.pi * 7 * t)
  silent = np.zeros_like(t)
  waves = np.stack([loud, quiet, silent])
  out, gains = synth_lib.normalize_notes(waves)  # avoid_clipping, 0.9
  assert out.shape == waves.shape and out.dtype == np.float32
  assert np.abs(out[0]).max() == pytest.approx(0.9, rel=1e-6)
  np.testing.assert_allclose(out[0], loud * (0.9 / np.abs(loud).max()),
                             rtol=1e-6)  # a gain, not a clip: same shape
  np.testing.assert_array_equal(out[1:], waves[1:])  # in range: untouched
  assert gains[1] == gains[2] == 1.0 and gains[0] < 0.31
  out, _ = synth_lib.normalize_notes(waves, 'peak', 0.5)
  assert np.abs(out[:2]).max(axis=1) == pytest.approx([0.5, 0.5], rel=1e-6)
  assert not np.any(out[2])
  out, gains = synth_lib.normalize_notes(waves, 'none')
  np.testing.assert_array_equal(out, waves)
  with pytest.raises(ValueError, match='one of'):
    synth_lib.normalize_notes(waves, 'loud')
  with pytest.raises(ValueError, match='peak must be'):
    synth_lib.normalize_notes(waves, 'peak', 1.5)


def test_truncation_scales_drawn_latents_only(tiny_synth):
  z = tiny_synth.sample_latents(3, seed=5)
  np.testing.assert_array_equal(tiny_synth.sample_latents(3, 5, 0.5),
                                (z.astype(np.float64) * 0.5).astype(
                                    np.float32))
  with pytest.raises(ValueError, match='truncation must be in'):
    tiny_synth.sample_latents(3, 5, 0.0)
  # generate(seed, truncation) == generate(latents = psi * draws); given
  # latents are not scaled again.
  np.testing.assert_allclose(
      tiny_synth.generate_specgrams([60, 72], seed=5, truncation=0.5),
      tiny_synth.generate_specgrams([60, 72], latents=0.5 * z[:2]),
      atol=1e-5)
  np.testing.assert_array_equal(
      tiny_synth.interpolation_latents(3, seed=5, truncation=0.5)[[0, -1]],
      tiny_synth.sample_latents(2, 5, 0.5))


def test_cli_normalize_and_truncation(tiny_model_dir, tiny_synth, tmp_path):
  want = tiny_synth.generate([36, 60], seed=4, truncation=0.7)
  peaks = np.abs(want).max(axis=1)
  assert peaks.max() > 1.0  # the case that matters: a note that would clip
  for mode in ('avoid_clipping', 'peak', 'none'):
    out = tmp_path / mode
    r = generate_cli('--model=' + tiny_model_dir, '--output_dir=%s' % out,
                     '--pitches=36,60', '--seed=4', '--truncation=0.7',
                     '--normalize=' + mode, '--peak=0.8')
    assert r.returncode == 0, r.stderr[-2000:]
    for i, name in enumerate(sorted(os.listdir(out))):
      _, data, _ = read_wav(str(out / name))
      got = data / 32767.0
      if mode == 'none':
        expect = np.clip(want[i], -1.0, 1.0)
      elif mode == 'peak' or peaks[i] > 0.8:
        expect = want[i] * (0.8 / peaks[i])
      else:
        expect = want[i]
      np.testing.assert_allclose(got, expect, atol=2e-4)
    if mode == 'avoid_clipping':
      n = int(np.sum(peaks > 0.8))
      assert '%d of 2 notes peaked above 0.8' % n in r.stderr


def test_cli_magenta_checkpoint_dir(tiny_ckpt_dir, tmp_path):
  out = tmp_path / 'magenta'
  r = generate_cli('--model=' + tiny_ckpt_dir, '--output_dir=%s' % out,
                   '--pitches=84', '--seed=1', '--quiet')
  assert r.returncode == 0, r.stderr[-2000:]
  assert os.listdir(out) == ['0000_pitch84.wav']


@pytest.mark.parametrize('args,msg', [
    (['--pitches=90'], "outside the model's range 24..84"),
    (['--pitches=6x'], 'bad pitch list'),
    (['--midi_file=MIDI_DIR/junk.mid'], 'cannot read MIDI file'),
    (['--midi_file=MIDI_DIR/drums.mid'], 'only drum notes'),
    (['--interpolate_steps=1'], '--interpolate_steps must be >= 2'),
    (['--latents_npy=BAD_NPY'], 'has shape'),
    (['--truncation=0'], '--truncation must be in (0, 1]'),
    (['--truncation=1.5'], '--truncation must be in (0, 1]'),
    (['--peak=1.2'], '--peak must be in (0, 1]'),
    (['--model=MISSING'], 'does not exist'),
    (['BAD_ENV_MODEL'], 'does not exist'),
])
def test_cli_errors_are_one_line(tiny_model_dir, tmp_path, args, msg):
  import pretty_midi  # pylint: disable=g-import-not-at-top
  (tmp_path / 'junk.mid').write_bytes(b'not midi' * 20)
  pm = pretty_midi.PrettyMIDI()
  drums = pretty_midi.Instrument(0, is_drum=True)
  drums.notes.append(pretty_midi.Note(100, 36, 0.0, 0.5))
  pm.instruments.append(drums)
  pm.write(str(tmp_path / 'drums.mid'))
  np.save(tmp_path / 'bad.npy', np.zeros((2, 7), np.float32))
  env = ENV
  model = ['--model=' + tiny_model_dir]
  if args == ['BAD_ENV_MODEL']:  # no --model: $GANSYNTH_MODEL, then shipped
    args, model = [], []
    env = dict(ENV, GANSYNTH_MODEL=str(tmp_path / 'no_such_model'))
  args = [a.replace('MIDI_DIR', str(tmp_path))
          .replace('BAD_NPY', str(tmp_path / 'bad.npy'))
          .replace('MISSING', str(tmp_path / 'missing')) for a in args]
  if any(a.startswith('--model=') for a in args):
    model = []
  out = tmp_path / 'out'
  r = generate_cli(*(model + args + ['--output_dir=%s' % out, '--quiet']),
                   env=env)
  assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
  errors = [l for l in r.stderr.splitlines() if 'error' in l.lower()]
  assert len(errors) == 1 and msg in errors[0], r.stderr[-2000:]
  assert errors[0].startswith('gansynth-generate: error: ')
  assert not out.exists() or not os.listdir(out)


def _save_npz(path):
  np.savez(path, z=np.zeros((2, 256)))
  os.replace(str(path) + '.npz', path)  # an archive named .npy


@pytest.mark.parametrize('write,problem', [
    (lambda p: p.write_bytes(b''), 'empty file'),
    (_save_npz, 'a zip or .npz archive'),
    (lambda p: p.write_text('0.1 0.2\n'), 'not a .npy file'),
    (lambda p: np.save(p, np.array(['a', 'b'])), 'holds str'),
    (lambda p: np.save(p, np.ones((2, 256), np.complex64)), 'holds complex64'),
    (lambda p: np.save(p, np.ones((2, 256), bool)), 'holds bool'),
    (lambda p: np.save(p, np.zeros((0, 256), np.float32)),
     'has shape (0, 256)'),
    (lambda p: np.save(p, np.float32(1.0)), 'has shape ()'),
    (lambda p: np.save(p, np.full((1, 256), 1e300)),
     'holds non-finite values'),
])
def test_cli_bad_latents_files_are_one_line_errors(tmp_path, write, problem):
  path = tmp_path / 'z.npy'
  write(path)
  # Checked before the model loads: a missing model is not reached.
  r = generate_cli('--model=%s' % (tmp_path / 'missing'),
                   '--output_dir=%s' % (tmp_path / 'out'),
                   '--latents_npy=%s' % path, '--quiet')
  assert r.returncode == 1, r.stderr[-2000:]
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1, r.stderr[-2000:]
  assert lines[0].startswith('gansynth-generate: error: --latents_npy %s: %s'
                             % (path, problem)), lines[0]
  assert 'expected a .npy array [N, latent_size] of real numbers' in lines[0]


@pytest.mark.parametrize('args,msg', [
    (['--attack=nan'],
     '--attack must be a finite number of seconds in [0, 60]'),
    (['--attack=-0.5'], '--attack must be'),
    (['--release=inf'], '--release must be a finite number'),
    (['--release=61'], '--release must be'),
    (['--secs_per_instrument=0.001'],
     '--secs_per_instrument must be a finite number of seconds >= 0.01'),
    (['--secs_per_instrument=nan'], '--secs_per_instrument must be'),
    (['--pitches='], '--pitches is empty'),
])
def test_cli_bad_seconds_and_empty_pitches_fail_before_loading(tmp_path, args,
                                                              msg):
  if not args[0].startswith('--pitches'):
    args = args + ['--midi_file=' + os.path.join(MIDI_DIR, 'test05.mid')]
  out = tmp_path / 'out'
  r = generate_cli('--model=%s' % (tmp_path / 'missing'),
                   '--output_dir=%s' % out, '--seed=0', '--quiet', *args)
  assert r.returncode == 1, r.stderr[-2000:]
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1, r.stderr[-2000:]
  assert lines[0].startswith('gansynth-generate: error: ' + msg), lines[0]
  assert not out.exists()


def test_cli_without_model_uses_the_shipped_model(tmp_path):
  shipped = synth_lib.DEFAULT_MODEL_DIRS[0]
  if not os.path.isdir(shipped):
    pytest.skip('no shipped model in saved_models/')
  out = tmp_path / 'shipped'
  r = generate_cli('--output_dir=%s' % out, '--pitches=60', '--seed=0')
  assert r.returncode == 0, r.stderr[-2000:]
  assert os.listdir(out) == ['0000_pitch60.wav']
  assert shipped in r.stderr  # "loaded <path> ..."


def test_synth_uses_the_fast_paths_and_equals_the_literal_model(tiny_synth):
  """The in-process synth (static progress: zero-weight blocks skipped;
  transposed conv0; fast inversion) == the literal generator with the
  progress variable + the spectral module's inversion."""
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  s = tiny_synth
  assert s.graph._call_kwargs == {  # pylint: disable=protected-access
      'static_progress': float(s.generator.progress.numpy())}
  assert s.graph._if_inversion is not None  # pylint: disable=protected-access
  literal = networks.Generator(s.config, num_blocks=s.generator.num_blocks,
                               fast_upscale=False).build_all()
  for dst, src in zip(literal.variables, s.generator.variables):
    dst.assign(src)
  p = np.array([30, 60, 80], np.int32)
  z = s.sample_latents(3, 5)
  oh = np.eye(s.config.num_pitches, dtype=np.float32)[p - s.pitch_range[0]]
  want_norm = literal((z, oh)).numpy()
  got_norm = s.generate_specgrams(p, z, normalized=True)
  # Float rounding, amplified by the tiny model's 4-channel pixel norms
  # (8e-5 measured; the parity tolerance vs the original is 1e-3).
  assert np.abs(got_norm - want_norm).max() <= 5e-4
  want = s.transform.specgrams_to_waves(
      s.normalizer.denormalize(want_norm)).numpy()
  got = s.generate(p, z)
  assert np.abs(got - want).max() <= 5e-4 * max(1.0, np.abs(want).max())


def test_bfloat16_network_is_a_close_copy(tiny_model_dir):
  """The opt-in bfloat16 generator holds the same float32 weights and its
  specgrams follow the float32 ones to bfloat16 precision (approximate)."""
  full = gansynth_tf2.load(tiny_model_dir)
  half = gansynth_tf2.load(tiny_model_dir, bfloat16=True)
  g32, g16 = full.graph.network, half.graph.network
  for a, b in zip(g32.weights, g16.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert g16.compute_dtype == 'bfloat16'
  specs32 = full.generate_specgrams([40, 60, 80], seed=5, normalized=True)
  specs16 = half.generate_specgrams([40, 60, 80], seed=5, normalized=True)
  assert specs16.dtype == np.float32
  err = np.abs(specs16 - specs32)
  # bfloat16 keeps 8 significant bits: ~1e-2 on outputs in [-1, 1] (seen:
  # under 0.02 on AVX-512 CPUs, 0.021 on an AVX2 one, without native bf16). A
  # wrong weight or layer gives errors of the order of the outputs themselves.
  assert 1e-5 < float(err.mean()) < 4e-2, float(err.mean())
  assert float(err.mean()) < 0.1 * float(np.abs(specs32).mean())
  # (Waves are not compared sample by sample: the IF phase is a cumulative
  # sum over 128 frames, so small IF errors shift the phase over time.)
