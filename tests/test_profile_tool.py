"""tools/profile_generate.py: per-op kernel times of the inference graph."""

import numpy as np

from gansynth_tf2 import config as config_lib
from gansynth_tools import profile_generate


def test_profile_attributes_every_used_layer():
  r = profile_generate.profile('tiny', batch_size=2, traces=1)
  layers, ops = r['by_layer'], r['by_op']
  # Every block's convs ran (tiny at its final progress uses all blocks),
  # only the last block's to_rgb (the others have blend weight 0).
  n = config_lib.load_config('tiny').num_resolutions
  for b in range(1, n + 1):
    assert layers['block_%d_conv1' % b] > 0
  assert layers['block_%d_to_rgb' % n] > 0
  assert 'block_%d_to_rgb' % (n - 1) not in layers
  # The convs of the top blocks are oneDNN / Eigen conv kernels.
  assert any('Conv2D' in k for k in ops)
  # The three tables split the same kernel time.
  total = sum(layers.values())
  np.testing.assert_allclose(sum(ops.values()), total, rtol=1e-9)
  np.testing.assert_allclose(sum(r['by_layer_op'].values()), total, rtol=1e-9)
  assert r['wall_s'] > 0
