"""End-to-end SavedModel: signatures, parity, TF-only loading, CLI, vocoders."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf2 import config as config_lib
from gansynth_tf2 import export
from gansynth_tf2 import spectral
from gansynth_tf2 import synth as synth_lib

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')


def run_cli(args, timeout=300, cwd=None):
  return subprocess.run(args, capture_output=True, text=True, env=ENV,
                        timeout=timeout, cwd=cwd, check=False)


@pytest.fixture(scope='module')
def tiny_synth(tiny_model_dir):
  return synth_lib.load(tiny_model_dir)


@pytest.fixture(scope='module')
def saved_model_dir(tiny_model_dir, tmp_path_factory):
  """Exported with the CLI (phase vocoder); verification on."""
  out = str(tmp_path_factory.mktemp('export') / 'tiny_savedmodel')
  r = run_cli(['gansynth-export', '--model=' + tiny_model_dir,
               '--output_dir=' + out])
  assert r.returncode == 0, r.stderr[-2000:]
  assert 'Verified' in r.stdout
  return out


@pytest.fixture(scope='module')
def probe():
  z = synth_lib.sample_latents(3, 256, seed=11)
  return z, np.array([24, 61, 84], np.int32)


def test_signatures_and_shapes(saved_model_dir):
  loaded = tf.saved_model.load(saved_model_dir)
  assert set(export.SIGNATURES) <= set(loaded.signatures)
  fn = loaded.signatures['serving_default']
  _, inputs = fn.structured_input_signature
  assert inputs['latents'].dtype == tf.float32
  assert inputs['latents'].shape.as_list() == [None, 256]
  assert inputs['pitches'].dtype == tf.int32
  assert inputs['pitches'].shape.as_list() == [None]
  out = fn.structured_outputs['waveforms']
  assert out.dtype == tf.float32 and out.shape.as_list() == [None, 64000]
  meta = {k: v.numpy() for k, v in loaded.signatures['metadata']().items()}
  assert (meta['min_pitch'], meta['max_pitch']) == (24, 84)
  assert meta['latent_size'] == 256 and meta['sample_rate'] == 16000
  assert meta['vocoder'] == b'phase'
  with open(os.path.join(saved_model_dir, export.EXTRA_JSON)) as f:
    extra = json.load(f)
  assert extra['metadata']['audio_length'] == 64000
  assert extra['hparams']['latent_vector_size'] == 256


def test_outputs_equal_in_process_model(saved_model_dir, tiny_synth, probe):
  z, p = probe
  sm = synth_lib.load(saved_model_dir)
  assert isinstance(sm, export.SavedModelSynth)
  assert (sm.latent_size, sm.sample_rate, sm.audio_length, sm.pitch_range) \
      == (256, 16000, 64000, (24, 84))
  np.testing.assert_allclose(sm.generate(p, z), tiny_synth.generate(p, z),
                             atol=1e-5)
  specs = sm.generate_specgrams(p, z)
  np.testing.assert_allclose(specs, tiny_synth.generate_specgrams(p, z),
                             atol=1e-5)
  np.testing.assert_allclose(
      sm.generate_specgrams(p, z, normalized=True),
      tiny_synth.generate_specgrams(p, z, normalized=True), atol=1e-6)
  np.testing.assert_allclose(sm.specgrams_to_waves(specs),
                             tiny_synth.specgrams_to_waves(specs), atol=1e-5)
  with pytest.raises(ValueError, match=r'specgrams must have shape \[batch, '
                     r'%d, %d, 2\], got \[3, %d, %d, 1\]' % (
                         specs.shape[1:3] + specs.shape[1:3])):
    sm.specgrams_to_waves(specs[..., :1])
  # (pitches, seed) signature: reproducible, and its latents mean the same.
  w1, z1 = sm.generate_from_seed(p, 5)
  w2, z2 = sm.generate_from_seed(p, 5)
  np.testing.assert_array_equal(w1, w2)
  assert z1.shape == (3, 256)
  np.testing.assert_allclose(w1, tiny_synth.generate(p, z1), atol=1e-5)


def test_pitches_validated_in_graph(saved_model_dir):
  loaded = tf.saved_model.load(saved_model_dir)
  fn = loaded.signatures['serving_default']
  z = tf.zeros([2, 256])
  for bad in ([60, 85], [23, 60]):
    with pytest.raises(tf.errors.InvalidArgumentError, match='24..84'):
      fn(latents=z, pitches=tf.constant(bad, tf.int32))
  with pytest.raises(tf.errors.InvalidArgumentError, match='same batch'):
    fn(latents=z, pitches=tf.constant([60], tf.int32))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'latents must be \[N, 256\]'):
    fn(latents=tf.zeros([2, 255]), pitches=tf.constant([60, 61], tf.int32))
  with pytest.raises(ValueError, match='outside the model'):
    synth_lib.load(saved_model_dir).generate([90])


def test_graph_uses_only_core_tensorflow_ops(saved_model_dir):
  ops = export.saved_model_op_names(saved_model_dir)
  assert 'IRFFT' in ops or 'IRFFT2D' in ops or any('FFT' in o for o in ops)
  assert not [o for o in ops if '>' in o]  # namespaced custom ops (tfio: IO>)


_ISOLATED = textwrap.dedent(r'''
    import importlib.abc, json, sys
    # Everything of ours and our extra dependencies; keras stays (the
    # tensorflow wheel itself depends on it).
    BLOCKED = ('gansynth_tf2', 'gansynth_tools', 'librosa', 'soundfile',
               'pretty_midi', 'tensorflow_io')
    class Blocker(importlib.abc.MetaPathFinder):
      def find_spec(self, name, path, target=None):
        if name.split('.')[0] in BLOCKED:
          raise ModuleNotFoundError('blocked for this test: ' + name)
        return None
    sys.meta_path.insert(0, Blocker())
    try:
      import gansynth_tf2
      sys.exit('gansynth_tf2 is importable; the test is not isolated')
    except ModuleNotFoundError:
      pass
    import numpy as np
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    data = np.load(sys.argv[2])
    out = model.signatures['serving_default'](
        latents=tf.constant(data['z']), pitches=tf.constant(data['p']))
    try:
      model.signatures['serving_default'](
          latents=tf.zeros([1, 256]), pitches=tf.constant([100]))
      bad_pitch = 'accepted'
    except tf.errors.InvalidArgumentError:
      bad_pitch = 'refused'
    np.save(sys.argv[3], out['waveforms'].numpy())
    print(json.dumps({'bad_pitch': bad_pitch, 'modules': sorted(
        m for m in sys.modules if m.split('.')[0] in BLOCKED)}))
''')


def test_loads_in_python_with_only_tensorflow(saved_model_dir, tiny_synth,
                                              probe, tmp_path):
  z, p = probe
  np.savez(tmp_path / 'in.npz', z=z, p=p)
  script = tmp_path / 'load_isolated.py'
  script.write_text(_ISOLATED)
  env = {k: v for k, v in ENV.items() if k not in ('PYTHONPATH',
                                                   'PYTHONHOME')}
  r = subprocess.run(
      [sys.executable, '-I', str(script), saved_model_dir,
       str(tmp_path / 'in.npz'), str(tmp_path / 'out.npy')],
      capture_output=True, text=True, env=env, cwd=str(tmp_path),
      timeout=300, check=False)
  assert r.returncode == 0, r.stderr[-2000:]
  report = json.loads(r.stdout.strip().splitlines()[-1])
  assert report == {'bad_pitch': 'refused', 'modules': []}
  np.testing.assert_allclose(np.load(tmp_path / 'out.npy'),
                             tiny_synth.generate(p, z), atol=1e-5)


def test_saved_model_cli_show_and_run(saved_model_dir, tiny_synth, probe,
                                      tmp_path):
  r = run_cli(['saved_model_cli', 'show', '--dir', saved_model_dir,
               '--tag_set', 'serve', '--signature_def', 'serving_default'])
  assert r.returncode == 0, r.stderr[-2000:]
  assert "inputs['latents']" in r.stdout and "outputs['waveforms']" in r.stdout
  z, p = probe
  np.save(tmp_path / 'z.npy', z[:2])
  np.save(tmp_path / 'p.npy', p[:2])
  r = run_cli(['saved_model_cli', 'run', '--dir', saved_model_dir,
               '--tag_set', 'serve', '--signature_def', 'serving_default',
               '--inputs', 'latents=%s;pitches=%s' % (tmp_path / 'z.npy',
                                                     tmp_path / 'p.npy'),
               '--outdir', str(tmp_path / 'cli'), '--overwrite'])
  assert r.returncode == 0, r.stderr[-2000:]
  waves = np.load(tmp_path / 'cli' / 'waveforms.npy')
  np.testing.assert_allclose(waves, tiny_synth.generate(p[:2], z[:2]),
                             atol=1e-4)


def test_griffin_lim_vocoder_matches_generated_magnitude(tiny_model_dir,
                                                         tiny_synth, probe,
                                                         tmp_path):
  out = str(tmp_path / 'gl_savedmodel')
  # From a Synth: the export takes its vocoder and iterations.
  gl_synth = synth_lib.load(tiny_model_dir, vocoder='griffin_lim',
                            griffin_lim_iters=16)
  info = export.export_saved_model(gl_synth, out)
  assert info['metadata']['vocoder'] == 'griffin_lim'
  assert info['metadata']['griffin_lim_iters'] == 16
  assert max(info['verification'].values()) <= 1e-3
  sm = synth_lib.load(out)
  # Loading options may repeat what is baked in, never contradict it.
  assert synth_lib.load(out, vocoder='griffin_lim',
                        griffin_lim_iters=16).vocoder == 'griffin_lim'
  for bad in ({'vocoder': 'phase'}, {'griffin_lim_iters': 8},
              {'bfloat16': True}):
    with pytest.raises(ValueError, match='differ'):
      synth_lib.load(out, **bad)
  z, p = probe
  transform = tiny_synth.transform
  specs = tiny_synth.generate_specgrams(p, z)
  magnitude = np.exp(transform.log_magnitude(specs).numpy())
  sc_gl = spectral.spectral_convergence(sm.generate(p, z), magnitude,
                                        transform).numpy()
  sc_phase = spectral.spectral_convergence(tiny_synth.generate(p, z),
                                           magnitude, transform).numpy()
  print('spectral convergence, generated notes: Griffin-Lim %s, phase %s' %
        (np.round(sc_gl, 3), np.round(sc_phase, 3)))
  # The tiny model's specgrams are not consistent STFTs; Griffin-Lim still
  # fits their magnitude better than the phase path does.
  assert np.all(sc_gl < 0.8) and np.all(sc_gl < sc_phase)
  # A consistent magnitude (a real harmonic tone) is matched closely.
  t = np.arange(64000) / 16000.0
  tone = sum(np.sin(2 * np.pi * 220.0 * k * t + k) / k for k in range(1, 6))
  tone = (0.3 * tone * np.exp(-t)).astype(np.float32)[None]
  tone_specs = transform.waves_to_specgrams(tone).numpy()
  tone_mag = np.exp(transform.log_magnitude(tone_specs).numpy())
  sc_tone = spectral.spectral_convergence(
      sm.specgrams_to_waves(tone_specs), tone_mag, transform).numpy()
  print('spectral convergence, harmonic tone: Griffin-Lim %s' % sc_tone)
  assert sc_tone[0] < 0.2


def test_failed_export_leaves_nothing(tiny_model_dir, tmp_path, monkeypatch):
  out = tmp_path / 'broken'

  def boom(*args, **kwargs):
    raise ValueError('simulated verification failure')

  monkeypatch.setattr(export, 'verify_export', boom)
  with pytest.raises(ValueError, match='simulated'):
    export.export_saved_model(tiny_model_dir, str(out))
  assert not out.exists()
  assert not [p for p in os.listdir(tmp_path) if p.startswith('.broken')]


def test_export_never_replaces_its_model_or_a_foreign_folder(tiny_model_dir,
                                                            tmp_path):
  model = tmp_path / 'model'
  subprocess.run(['cp', '-r', tiny_model_dir, str(model)], check=True)
  foreign = tmp_path / 'notes'
  foreign.mkdir()
  (foreign / 'mine.txt').write_text('keep me')
  before = sorted(os.listdir(model))
  for out, msg in ((model, 'is the input'), (tmp_path, 'holds the input'),
                   (foreign, 'without saved_model.pb')):
    with pytest.raises(ValueError, match=msg):
      export.export_saved_model(str(model), str(out))
  with pytest.raises(ValueError, match='holds the input'):
    export.export_saved_model(synth_lib.load(str(model)), str(tmp_path))
  r = run_cli(['gansynth-export', '--model=%s' % model,
               '--output_dir=%s' % model])
  assert r.returncode == 1 and 'is the input' in r.stderr
  assert sorted(os.listdir(model)) == before
  assert (foreign / 'mine.txt').read_text() == 'keep me'
  assert sorted(os.listdir(tmp_path)) == ['model', 'notes']


def test_export_cli_errors(tmp_path, saved_model_dir):
  out = tmp_path / 'x'
  for args, msg in [
      (['--model=%s' % (tmp_path / 'missing'), '--output_dir=%s' % out],
       'does not exist'),
      (['--model=%s' % saved_model_dir, '--output_dir=%s' % saved_model_dir],
       'is the input'),
      (['--model=%s' % saved_model_dir], '--output_dir is required'),
  ]:
    r = run_cli(['gansynth-export'] + args)
    assert r.returncode != 0
    lines = [l for l in r.stderr.strip().splitlines() if 'error' in l]
    assert len(lines) == 1 and msg in lines[0], r.stderr[-1000:]
    assert not out.exists()


def test_reexport_from_a_savedmodel(saved_model_dir, tiny_model_dir, probe,
                                   tmp_path):
  # API.md: every --model accepts a SavedModel. Re-exported with another
  # vocoder from the exported weights, it equals the native model's export.
  out = tmp_path / 'gl'
  r = run_cli(['gansynth-export', '--model=%s' % saved_model_dir,
               '--output_dir=%s' % out, '--vocoder=griffin_lim',
               '--griffin_lim_iters=4'])
  assert r.returncode == 0, r.stderr[-2000:]
  assert 'Rebuilt from the SavedModel' in r.stdout and 'Verified' in r.stdout
  sm = synth_lib.load(str(out))
  assert sm.vocoder == 'griffin_lim'
  assert sm.metadata['griffin_lim_iters'] == 4
  z, p = probe
  native = synth_lib.load(tiny_model_dir, vocoder='griffin_lim',
                          griffin_lim_iters=4)
  np.testing.assert_allclose(sm.generate(p, z), native.generate(p, z),
                             atol=1e-4)
  np.testing.assert_allclose(
      sm.generate_specgrams(p, z, normalized=True),
      native.generate_specgrams(p, z, normalized=True), atol=1e-5)
  # From a loaded SavedModel synth too (Python API), back to the phase path.
  out2 = tmp_path / 'phase'
  info = export.export_saved_model(synth_lib.load(str(out)), str(out2),
                                   vocoder='phase')
  assert info['source_max_abs_diff'] <= 1e-5
  np.testing.assert_allclose(synth_lib.load(str(out2)).generate(p, z),
                             synth_lib.load(tiny_model_dir).generate(p, z),
                             atol=1e-4)
  # Without arguments, what the source SavedModel had baked in is kept.
  info = export.export_saved_model(str(out), str(tmp_path / 'same'),
                                   jit_compile=True, verify=False)
  assert (info['metadata']['vocoder'], info['metadata']['griffin_lim_iters'],
          info['metadata']['xla']) == ('griffin_lim', 4, True)
  # A bfloat16 export is compared with the rebuilt weights in bfloat16, and
  # re-exported in float32 it is the native model again, exactly.
  bf16 = tmp_path / 'bf16'
  export.export_saved_model(synth_lib.load(tiny_model_dir, bfloat16=True),
                            str(bf16), verify=False)
  info = export.export_saved_model(str(bf16), str(tmp_path / 'fp32'),
                                   bfloat16=False)
  assert info['source_max_abs_diff'] <= 5e-2
  assert info['metadata']['bfloat16'] is False
  np.testing.assert_array_equal(
      synth_lib.load(str(tmp_path / 'fp32')).generate_specgrams(
          p, z, normalized=True),
      synth_lib.load(tiny_model_dir).generate_specgrams(p, z,
                                                        normalized=True))
  # A SavedModel not written by gansynth-export has nothing to rebuild from.
  foreign = tmp_path / 'foreign'
  subprocess.run(['cp', '-r', saved_model_dir, str(foreign)], check=True)
  os.remove(foreign / export.EXTRA_JSON)
  with pytest.raises(ValueError, match='not written by gansynth-export'):
    export.export_saved_model(str(foreign), str(tmp_path / 'x'))
  # Weights of another architecture: refused, nothing written.
  extra = json.loads((out / export.EXTRA_JSON).read_text())
  extra['hparams']['fmap_max'] = extra['hparams']['fmap_max'] * 2
  (foreign / export.EXTRA_JSON).write_text(json.dumps(extra))
  with pytest.raises(ValueError, match='do not match a generator'):
    export.export_saved_model(str(foreign), str(tmp_path / 'x'))
  assert not (tmp_path / 'x').exists()


def test_random_tiny_model_exports_with_xla(random_tiny_model_dir, tmp_path):
  out = str(tmp_path / 'xla')
  info = export.export_saved_model(random_tiny_model_dir, out,
                                   jit_compile=True, verify=False)
  assert info['metadata']['xla'] is True
  cfg = config_lib.load_config('tiny')
  assert info['metadata']['latent_size'] == cfg.latent_vector_size
  sm = synth_lib.load(out)
  assert sm.metadata['xla'] is True
  ref = synth_lib.load(random_tiny_model_dir)
  z = ref.sample_latents(2, 0)
  want = ref.generate([40, 70], z)
  got = sm.generate([40, 70], z)
  # XLA fuses and reorders float math (phase sums amplify it a little).
  assert np.abs(got - want).max() <= 1e-3 * max(1.0, np.abs(want).max())
