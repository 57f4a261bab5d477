r"""Generation speed of the FULL-size mel_prog_hires generator on this machine.

  python tools/benchmark_generate.py            # everything (~5-8 min, 2 cores)
  python tools/benchmark_generate.py --quick    # batch 8 in process only

Measures, for a random-init mel_prog_hires generator (7.3 M parameters,
128x1024x2 mel/IF output, 4 s notes at 16 kHz):
  * in process, batch 8: median seconds of the network forward (generator +
    denormalize), of the inversion (mel/IF -> waveform) and end to end, notes
    per second, beside the ORIGINAL Magenta code on this machine class
    (reference/magenta_gansynth/timing_original.json: 1.37 s end to end,
    1.29 s forward, 0.054 s inversion, measured on an AVX-512 CPU), or beside
    the original timed on THIS machine by tools/benchmark_original.py
    (--original_json), the fair comparison when the CPU kind differs;
  * the previous default path at the same time, same weights (sub-pixel
    conv0, all blocks blended, the spectral module's inversion): a
    same-machine-state reference, since this VM's speed drifts by tens of
    percent over a day (the waveform difference to the default is reported);
  * the same with XLA (jit_compile) and with the opt-in bfloat16 network
    (float32 inversion; its spectral and waveform error is reported);
  * thread settings (intra/inter-op pools), each in a fresh process;
  * the exported SavedModel (serving_default) at batch 1, 8 and 64, with and
    without XLA: notes/s and real-time factor (wall seconds / audio seconds);
  * time from process start to the first WAV (gansynth-generate, one note).

The machine load is recorded (load average, and the share of both cores used
by OTHER processes during each timed window, from /proc/stat). Prints a table,
then as its LAST line one JSON object of the figures.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

_CONFIG = flags.DEFINE_string('config', 'mel_prog_hires', 'Config name.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Batch of the main figures.')
_REPEATS = flags.DEFINE_integer('repeats', 7, 'Timed calls per figure (after '
                                'warm-up); the median is reported.')
_SM_BATCHES = flags.DEFINE_string('saved_model_batches', '1,8,64',
                                  'SavedModel batch sizes.')
_QUICK = flags.DEFINE_bool('quick', False, 'Only the in-process batch-8 '
                           'figures (default and previous default; no XLA, '
                           'bf16, threads, SavedModel).')
_SKIP_XLA = flags.DEFINE_bool('skip_xla', False, 'Skip every XLA figure.')
_SKIP_THREADS = flags.DEFINE_bool('skip_threads', False,
                                  'Skip the thread-setting runs.')
_SKIP_SAVED_MODEL = flags.DEFINE_bool('skip_saved_model', False,
                                      'Skip the SavedModel figures.')
_SKIP_FIRST_WAV = flags.DEFINE_bool('skip_first_wav', False,
                                    'Skip the time-to-first-WAV runs.')
_THREADS = flags.DEFINE_string(
    'threads', '2:1,1:1,2:2', 'intra:inter thread settings to try (each in a '
    'fresh process; the default TF setting 0:0 is the main run).')
_INTRA = flags.DEFINE_integer('intra_op_threads', None, 'Set TF intra-op '
                              'threads (internal: used by the thread runs).')
_INTER = flags.DEFINE_integer('inter_op_threads', None, 'Set TF inter-op '
                              'threads (internal).')
_CORE_ONLY = flags.DEFINE_bool('core_only', False, 'Internal: only the '
                               'in-process end-to-end figure, JSON out.')
_ABLATIONS = flags.DEFINE_bool(
    'ablations', True, 'Also time the previous default path, same weights '
    'and same time (a same-machine-state reference: this VM\'s speed drifts '
    'by tens of percent over a day): sub-pixel conv0, every block blended, '
    'the spectral module\'s inversion.')
_ORIGINAL_JSON = flags.DEFINE_string(
    'original_json', None, 'The original\'s timing on THIS machine, written by '
    'tools/benchmark_original.py (same keys as timing_original.json); default: '
    'the reference timing_original.json, measured on another CPU of the pool.')
_WAIT_IDLE = flags.DEFINE_float(
    'wait_idle_s', 60.0, 'Wait up to this long for the machine to be idle '
    '(others using < 10% of the cores) before measuring.')

ORIGINAL = {'end_to_end_s': 1.37, 'forward_s': 1.29, 'inversion_s': 0.054,
            'end_to_end_cpu_s': 2.60, 'forward_cpu_s': 2.45,
            'inversion_cpu_s': 0.10, 'source': 'constants'}
_REF_JSON = ('reference', 'magenta_gansynth', 'timing_original.json')


def original_timing():
  """The original's batch-8 figures (file if present, else constants)."""
  here = os.path.dirname(os.path.abspath(__file__))
  candidates = [os.path.join(here, '..', '..', 'shared', *_REF_JSON),
                os.path.join('/work/shared', *_REF_JSON),
                os.path.join(here, '..', 'tests', 'data',
                             'timing_original.json')]
  if _ORIGINAL_JSON.value:
    if not os.path.isfile(_ORIGINAL_JSON.value):
      raise FileNotFoundError(
          '--original_json=%s: no such file (write it with '
          'tools/benchmark_original.py)' % _ORIGINAL_JSON.value)
    candidates = [_ORIGINAL_JSON.value]
  for path in candidates:
    if os.path.isfile(path):
      with open(path) as f:
        d = json.load(f)
      e2e = d['end_to_end_generate_samples_from_z']
      fwd = d['network_forward_only (z,pitch -> denormalized mel/IF specgram)']
      inv = d['spectral_inversion_only (mel/IF specgram -> waveform, '
              'melspecgrams_to_waves)']
      med = lambda xs: sorted(xs)[len(xs) // 2]
      return {'end_to_end_s': e2e['median_subsequent_s'],
              'forward_s': fwd['median_subsequent_s'],
              'inversion_s': inv['median_subsequent_s'],
              'end_to_end_cpu_s': med(e2e['process_cpu_s_subsequent']),
              'forward_cpu_s': med(fwd['process_cpu_s_subsequent']),
              'inversion_cpu_s': med(inv['process_cpu_s_subsequent']),
              'source': os.path.abspath(path)}
  return dict(ORIGINAL)


# --- machine load --------------------------------------------------------------
def _cpu_times():
  """(busy jiffies of the machine, jiffies of this process incl. children)."""
  with open('/proc/stat') as f:
    vals = [int(v) for v in f.readline().split()[1:]]
  idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
  busy = sum(vals[:8]) - idle
  t = os.times()
  hz = os.sysconf('SC_CLK_TCK')
  mine = (t.user + t.system + t.children_user + t.children_system) * hz
  return busy, mine


class LoadMeter:
  """Share of the machine's cores used by OTHER processes in a window."""

  def __init__(self):
    self.ncpu = os.cpu_count() or 1
    self.start = _cpu_times()
    self.t0 = time.time()

  def others(self):
    busy, mine = _cpu_times()
    hz = os.sysconf('SC_CLK_TCK')
    wall = max(time.time() - self.t0, 1e-6)
    other = (busy - self.start[0]) - (mine - self.start[1])
    return max(0.0, other / hz / wall / self.ncpu)


def wait_for_idle(max_wait_s, threshold=0.1, window_s=3.0):
  """Waits (up to max_wait_s) for a window where others use < threshold."""
  t0 = time.time()
  last = None
  while True:
    m = LoadMeter()
    time.sleep(window_s)
    last = m.others()
    if last < threshold or time.time() - t0 > max_wait_s:
      return last, time.time() - t0


def machine_gflops(n=2048, repeats=5):
  """float32 matmul GFLOP/s (best of `repeats`): how fast this VM is right
  now, to compare runs made at different times (the convs run near it)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  a = tf.random.normal([n, n], seed=1)
  b = tf.random.normal([n, n], seed=2)
  fn = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
  fn(a, b).numpy()
  best = float('inf')
  for _ in range(repeats):
    t = time.perf_counter()
    fn(a, b).numpy()
    best = min(best, time.perf_counter() - t)
  return 2.0 * n**3 / best / 1e9


# --- timing ---------------------------------------------------------------------
_LAST_CPU = {}


def timed(fn, repeats, warmup=2):
  """(median s, min s, others' core share during the timed calls).

  Also leaves in _LAST_CPU['cpu_s'] this process's CPU seconds (all threads)
  per call: a figure that contention inflates much less than wall time.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  for _ in range(warmup):
    fn()
  meter = LoadMeter()
  ts = []
  c0 = os.times()
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    ts.append(time.perf_counter() - t)
  c1 = os.times()
  _LAST_CPU['cpu_s'] = ((c1.user - c0.user) + (c1.system - c0.system)) / \
      max(1, repeats)
  return float(np.median(ts)), float(np.min(ts)), meter.others()


def build(config_name, seed=0, **generator_kwargs):
  import keras  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import config as config_lib  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  cfg = config_lib.load_config(config_name)
  gen = networks.Generator(cfg, **generator_kwargs).build_all()
  return cfg, gen


def previous_default_synth(cfg, gen, batch):
  """The generation path before the speed levers, same weights: sub-pixel
  conv0 (four 2x2 convs), every block's to_rgb blended with the progress
  variable, and SpecgramTransform.specgrams_to_waves (dense mel -> linear,
  unwrap, IF, cumsum) as the inversion. (Bias adds are BiasAdd as now.)"""
  from gansynth_tf2 import networks  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import synth as synth_lib  # pylint: disable=g-import-not-at-top
  old = networks.Generator(cfg, num_blocks=gen.num_blocks,
                           fast_upscale='subpixel').build_all()
  for dst, src in zip(old.variables, gen.variables):
    dst.assign(src)
  s = synth_lib.Synth(cfg, old, batch_size=batch)
  s.graph._call_kwargs.pop('static_progress', None)  # pylint: disable=protected-access
  s.graph._if_inversion = None  # pylint: disable=protected-access
  return s


def bench_synth(synth, batch, repeats, parts=True):
  """Forward / inversion / end-to-end figures of one in-process synth."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  lo, hi = synth.pitch_range
  z = tf.constant(synth.sample_latents(batch, 0))
  p = tf.constant(np.linspace(lo + 12, hi - 12, batch).astype(np.int32))
  out = {}
  med, mn, oth = timed(lambda: synth._fns['waves'](z, p).numpy(), repeats)  # pylint: disable=protected-access
  out.update(end_to_end_s=med, end_to_end_min_s=mn, others_load=oth,
             end_to_end_cpu_s=_LAST_CPU['cpu_s'])
  if parts:
    med, mn, _ = timed(lambda: synth._fns['specgrams'](z, p).numpy(),  # pylint: disable=protected-access
                       repeats)
    out.update(forward_s=med, forward_min_s=mn,
               forward_cpu_s=_LAST_CPU['cpu_s'])
    specs = synth._fns['specgrams'](z, p)  # pylint: disable=protected-access
    med, mn, _ = timed(lambda: synth._invert_fn(specs).numpy(), repeats)  # pylint: disable=protected-access
    out.update(inversion_s=med, inversion_min_s=mn,
               inversion_cpu_s=_LAST_CPU['cpu_s'])
  out['notes_per_s'] = batch / out['end_to_end_s']
  out['real_time_factor'] = out['end_to_end_s'] / (
      batch * synth.note_seconds)
  return out


def bf16_error(ref_synth, bf_synth, batch):
  """Spectral and waveform error of the bfloat16 network vs float32."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gansynth_tf2 import spectral  # pylint: disable=g-import-not-at-top
  lo, hi = ref_synth.pitch_range
  p = np.linspace(lo + 12, hi - 12, batch).astype(np.int32)
  z = ref_synth.sample_latents(batch, 1)
  s32 = ref_synth.generate_specgrams(p, z)
  s16 = bf_synth.generate_specgrams(p, z)
  n32 = ref_synth.generate_specgrams(p, z, normalized=True)
  n16 = bf_synth.generate_specgrams(p, z, normalized=True)
  w32 = ref_synth.specgrams_to_waves(s32)
  w16 = ref_synth.specgrams_to_waves(s16)
  t = ref_synth.transform
  mag32 = np.exp(t.log_magnitude(s32).numpy())
  mag16 = np.exp(t.log_magnitude(s16).numpy())

  def rel_rms(a, b):
    return float(np.sqrt(np.mean((a - b)**2)) / np.sqrt(np.mean(b**2)))
  return {
      'normalized_max_abs_err': float(np.abs(n16 - n32).max()),
      'normalized_rms_err': float(np.sqrt(np.mean((n16 - n32)**2))),
      'linear_magnitude_rel_rms_err': rel_rms(mag16, mag32),
      'waveform_rel_rms_err': rel_rms(w16, w32),
      'waveform_max_abs_err': float(np.abs(w16 - w32).max()),
      'spectral_convergence_vs_fp32_magnitude': float(np.mean(
          spectral.spectral_convergence(w16, mag32, t).numpy())),
      'fp32_spectral_convergence_vs_own_magnitude': float(np.mean(
          spectral.spectral_convergence(w32, mag32, t).numpy())),
  }


def bench_saved_model(path, batches, repeats, note_seconds, latent_size,
                      pitch_range):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  t = time.perf_counter()
  loaded = tf.saved_model.load(path)
  fn = loaded.signatures['serving_default']
  out = {'load_s': time.perf_counter() - t}
  lo, hi = pitch_range
  for b in batches:
    z = tf.constant(np.random.RandomState(b).normal(
        size=(b, latent_size)).astype(np.float32))
    p = tf.constant(np.linspace(lo, hi, b).astype(np.int32))
    t = time.perf_counter()
    fn(latents=z, pitches=p)['waveforms'].numpy()
    first = time.perf_counter() - t
    reps = max(2, repeats if b <= 8 else min(repeats, 3))
    med, mn, oth = timed(
        lambda: fn(latents=z, pitches=p)['waveforms'].numpy(), reps,
        warmup=1 if b > 8 else 2)
    out['batch_%d' % b] = {
        'first_call_s': first, 'median_s': med, 'min_s': mn,
        'cpu_s': _LAST_CPU['cpu_s'],
        'notes_per_s': b / med,
        'real_time_factor': med / (b * note_seconds),
        'others_load': oth}
  return out


def first_wav(model_dir, extra=()):
  """Wall seconds from launching gansynth-generate to its first WAV."""
  out = tempfile.mkdtemp(prefix='first_wav_')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  cmd = [sys.executable, '-m', 'gansynth_tools.generate',
         '--model=' + model_dir, '--output_dir=' + out, '--pitches=60',
         '--seed=0', '--quiet'] + list(extra)
  t = time.time()
  r = subprocess.run(cmd, capture_output=True, text=True, env=env,
                     check=False)
  wall = time.time() - t
  wav = os.path.join(out, '0000_pitch60.wav')
  try:
    if r.returncode != 0 or not os.path.isfile(wav):
      raise RuntimeError('gansynth-generate failed: %s' % r.stderr[-500:])
    return {'process_wall_s': wall,
            'first_wav_s': os.path.getmtime(wav) - t}
  finally:
    shutil.rmtree(out, ignore_errors=True)


def run_core(argv_extra):
  """A fresh process measuring only batch-B end to end (thread settings)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  cmd = [sys.executable, os.path.abspath(__file__), '--core_only',
         '--config=' + _CONFIG.value, '--batch_size=%d' % _BATCH.value,
         '--repeats=%d' % _REPEATS.value, '--wait_idle_s=0'] + argv_extra
  r = subprocess.run(cmd, capture_output=True, text=True, env=env,
                     check=False)
  if r.returncode != 0:
    return {'error': r.stderr.strip().splitlines()[-1:]}
  return json.loads(r.stdout.strip().splitlines()[-1])


def _onednn_enabled():
  """Whether TF runs its oneDNN kernels in this process (TF's Python-side
  flag: it reads TF_ENABLE_ONEDNN_OPTS apart from the core, which is right
  here because this script imports gansynth_tf2 before tensorflow)."""
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  return bool(_pywrap_util_port.IsMklEnabled())


def _fmt(x, nd=3):
  return '-' if x is None else ('%.*f' % (nd, x))


def main(argv):
  del argv
  t_process = time.time()
  logging.set_verbosity(logging.WARNING)  # TF's INFO lines (saving, ...)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  import gansynth_tf2  # pylint: disable=g-import-not-at-top,unused-import
  # ^ before tensorflow: the package's TF environment defaults (oneDNN).
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if _INTRA.value is not None:
    tf.config.threading.set_intra_op_parallelism_threads(_INTRA.value)
  if _INTER.value is not None:
    tf.config.threading.set_inter_op_parallelism_threads(_INTER.value)
  from gansynth_tf2 import synth as synth_lib  # pylint: disable=g-import-not-at-top
  batch, reps = _BATCH.value, _REPEATS.value

  if _CORE_ONLY.value:
    cfg, gen = build(_CONFIG.value)
    s = synth_lib.Synth(cfg, gen, batch_size=batch)
    print(json.dumps(bench_synth(s, batch, reps, parts=False)))
    return

  idle_before, waited = wait_for_idle(_WAIT_IDLE.value)
  results = {'config': _CONFIG.value, 'batch_size': batch,
             'repeats': reps, 'cpu_count': os.cpu_count(),
             'tensorflow': tf.__version__,
             'onednn': _onednn_enabled(),
             'loadavg_before': list(os.getloadavg()),
             'others_load_before': idle_before, 'waited_for_idle_s': waited}
  orig = original_timing()
  results['original'] = orig
  results['matmul_gflops_before'] = machine_gflops()

  t = time.perf_counter()
  cfg, gen = build(_CONFIG.value)
  results['build_s'] = time.perf_counter() - t
  results['generator_params'] = int(sum(np.prod(v.shape)
                                        for v in gen.trainable_variables))
  base = synth_lib.Synth(cfg, gen, batch_size=batch)
  results['fp32'] = bench_synth(base, batch, reps)
  results['speedup_vs_original'] = (orig['end_to_end_s'] /
                                    results['fp32']['end_to_end_s'])
  rows = [('ours fp32 (default)', results['fp32'])]

  if _ABLATIONS.value:
    waves_ref = base.generate([60, 70], seed=3)
    ablations = [
        ('previous_default', 'previous default (same t)',
         previous_default_synth(cfg, gen, batch)),
    ]
    for key, label, synth in ablations:
      results[key] = bench_synth(synth, batch, reps)
      results[key]['waveform_max_abs_diff_vs_default'] = float(
          np.abs(synth.generate([60, 70], seed=3) - waves_ref).max())
      rows.append((label, results[key]))

  if not _QUICK.value:
    if not _SKIP_XLA.value:
      xla = synth_lib.Synth(cfg, gen, batch_size=batch, jit_compile=True)
      results['xla'] = bench_synth(xla, batch, reps)
      rows.append(('ours fp32 + XLA', results['xla']))
    bf = synth_lib.Synth(cfg, gen, batch_size=batch, bfloat16=True)
    results['bf16'] = bench_synth(bf, batch, reps)
    results['bf16']['error'] = bf16_error(base, bf, batch)
    rows.append(('ours bf16 net (opt-in)', results['bf16']))
    if not _SKIP_THREADS.value:
      results['threads'] = {}
      for spec in [s for s in _THREADS.value.split(',') if s]:
        intra, inter = spec.split(':')
        results['threads'][spec] = run_core(
            ['--intra_op_threads=' + intra, '--inter_op_threads=' + inter])

    if not _SKIP_SAVED_MODEL.value or not _SKIP_FIRST_WAV.value:
      from gansynth_tf2 import export  # pylint: disable=g-import-not-at-top
      from gansynth_tf2 import model_io  # pylint: disable=g-import-not-at-top
      tmp = tempfile.mkdtemp(prefix='bench_generate_')
      native = os.path.join(tmp, 'native')
      model_io.save_model_dir(native, cfg, gen)
      sm_dirs = {'saved_model': os.path.join(tmp, 'sm')}
      t = time.perf_counter()
      export.export_saved_model(base, sm_dirs['saved_model'])
      results['export_s'] = time.perf_counter() - t
      if not _SKIP_XLA.value:
        sm_dirs['saved_model_xla'] = os.path.join(tmp, 'sm_xla')
        export.export_saved_model(base, sm_dirs['saved_model_xla'],
                                  jit_compile=True, verify=False)
      if not _SKIP_SAVED_MODEL.value:
        batches = [int(b) for b in _SM_BATCHES.value.split(',') if b]
        for key, path in sm_dirs.items():
          results[key] = bench_saved_model(
              path, batches, reps, base.note_seconds, base.latent_size,
              base.pitch_range)
      try:
        if not _SKIP_FIRST_WAV.value:
          results['first_wav'] = {
              'saved_model': first_wav(sm_dirs['saved_model']),
              'native_dir': first_wav(native)}
      finally:
        shutil.rmtree(tmp, ignore_errors=True)

  results['matmul_gflops_after'] = machine_gflops()
  results['loadavg_after'] = list(os.getloadavg())
  results['total_s'] = time.time() - t_process

  # --- table ---------------------------------------------------------------------
  print('GANSynth generation, %s, random init (%.2f M generator params), '
        'batch %d, %d cores, TF %s, oneDNN %s' % (
            _CONFIG.value, results['generator_params'] / 1e6, batch,
            os.cpu_count(), tf.__version__,
            'on' if results['onednn'] else 'off'))
  print('median of %d calls after warm-up; others = share of the cores used '
        'by OTHER processes while timing (wall times grow with it); CPU-s = '
        'this process\'s CPU seconds per call (all threads), which contention '
        'inflates much less' % reps)
  print('%-26s %9s %9s %9s %8s %8s %7s %9s %8s' % (
      '', 'forward', 'inversion', 'end2end', 'notes/s', 'speedup', 'others',
      'e2e CPU-s', 'CPU gain'))
  print('%-26s %9.3f %9.3f %9.3f %8.2f %8s %7s %9s %8s' % (
      'ORIGINAL (magenta, TF1)', orig['forward_s'], orig['inversion_s'],
      orig['end_to_end_s'], batch / orig['end_to_end_s'], '1.00x', '-',
      _fmt(orig.get('end_to_end_cpu_s'), 2), '1.00x'))
  for name, r in rows:
    cpu_gain = (orig['end_to_end_cpu_s'] / r['end_to_end_cpu_s']
                if orig.get('end_to_end_cpu_s') else None)
    print('%-26s %9s %9s %9.3f %8.2f %7.2fx %6.0f%% %9.2f %7sx' % (
        name, _fmt(r.get('forward_s')), _fmt(r.get('inversion_s')),
        r['end_to_end_s'], r['notes_per_s'],
        orig['end_to_end_s'] / r['end_to_end_s'], 100 * r['others_load'],
        r['end_to_end_cpu_s'], _fmt(cpu_gain, 2)))
  if 'bf16' in results:
    e = results['bf16']['error']
    print('bf16 error vs fp32: normalized max %.3g rms %.3g; linear magnitude '
          'rel RMS %.3g; waveform rel RMS %.3g; spectral convergence vs fp32 '
          'magnitude %.3g (fp32 itself %.3g)' % (
              e['normalized_max_abs_err'], e['normalized_rms_err'],
              e['linear_magnitude_rel_rms_err'], e['waveform_rel_rms_err'],
              e['spectral_convergence_vs_fp32_magnitude'],
              e['fp32_spectral_convergence_vs_own_magnitude']))
  for spec, r in results.get('threads', {}).items():
    if 'error' in r:
      print('threads intra:inter %-5s error %s' % (spec, r['error']))
    else:
      print('threads intra:inter %-5s end2end %.3f s (%.2f notes/s), '
            'others %.0f%%' % (spec, r['end_to_end_s'], r['notes_per_s'],
                               100 * r['others_load']))
  for key in ('saved_model', 'saved_model_xla'):
    if key in results:
      for b, r in sorted(((k, v) for k, v in results[key].items()
                          if k.startswith('batch_')),
                         key=lambda kv: int(kv[0][6:])):
        print('%-16s batch %3s: %7.3f s/call, %7.2f notes/s, real-time '
              'factor %.4f (first call %.2f s), others %.0f%%' % (
                  key, b[6:], r['median_s'], r['notes_per_s'],
                  r['real_time_factor'], r['first_call_s'],
                  100 * r['others_load']))
  for key, r in results.get('first_wav', {}).items():
    print('process start -> first WAV (%s, 1 note): %.2f s' % (
        key, r['first_wav_s']))
  print('machine speed: float32 matmul %.0f GFLOP/s before, %.0f after' % (
      results['matmul_gflops_before'], results['matmul_gflops_after']))
  print('load average before %s after %s' % (
      ['%.2f' % x for x in results['loadavg_before']],
      ['%.2f' % x for x in results['loadavg_after']]))

  flat = {
      'original_end_to_end_s': orig['end_to_end_s'],
      'original_forward_s': orig['forward_s'],
      'original_inversion_s': orig['inversion_s'],
      'forward_s': results['fp32']['forward_s'],
      'inversion_s': results['fp32']['inversion_s'],
      'end_to_end_s': results['fp32']['end_to_end_s'],
      'notes_per_s': results['fp32']['notes_per_s'],
      'speedup_vs_original': results['speedup_vs_original'],
      'end_to_end_cpu_s': results['fp32']['end_to_end_cpu_s'],
      'original_end_to_end_cpu_s': orig.get('end_to_end_cpu_s'),
      'others_load_while_timing': results['fp32']['others_load'],
      'matmul_gflops': [results['matmul_gflops_before'],
                        results['matmul_gflops_after']],
  }
  for key in ('previous_default', 'xla', 'bf16'):
    if key in results:
      flat[key + '_end_to_end_s'] = results[key]['end_to_end_s']
      flat[key + '_end_to_end_cpu_s'] = results[key]['end_to_end_cpu_s']
      flat[key + '_notes_per_s'] = results[key]['notes_per_s']
  if 'bf16' in results:
    flat['bf16_waveform_rel_rms_err'] = \
        results['bf16']['error']['waveform_rel_rms_err']
    flat['bf16_linear_magnitude_rel_rms_err'] = \
        results['bf16']['error']['linear_magnitude_rel_rms_err']
  for key in ('saved_model', 'saved_model_xla'):
    for b, r in results.get(key, {}).items():
      if b.startswith('batch_'):
        flat['%s_%s_notes_per_s' % (key, b)] = r['notes_per_s']
        flat['%s_%s_real_time_factor' % (key, b)] = r['real_time_factor']
  for key, r in results.get('first_wav', {}).items():
    flat['first_wav_s_' + key] = r['first_wav_s']
  flat['details'] = results
  print(json.dumps(flat, sort_keys=False))


def run():
  app.run(main)


if __name__ == '__main__':
  run()
