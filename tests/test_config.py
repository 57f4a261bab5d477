"""Config: hparams as JSON writes them."""

import json

import pytest

from gansynth_tf2 import config as config_lib


def test_integral_floats_are_integers():
  # JSON has no integer exponent form: 1e7 images arrives as a float.
  cfg = config_lib.Config(json.loads(
      '{"total_num_images": 1e7, "seed": 3.0, "min_pitch": 24.0,'
      ' "batch_size_schedule": [8.0, 4]}'))
  assert cfg.total_num_images == 10_000_000
  assert type(cfg.total_num_images) is int  # pylint: disable=unidiomatic-typecheck
  assert type(cfg.seed) is int  # pylint: disable=unidiomatic-typecheck
  assert cfg.batch_size_schedule == [8, 4]
  assert all(type(b) is int for b in cfg.batch_size_schedule)  # pylint: disable=unidiomatic-typecheck
  assert cfg.pitch_range == (24, 84)
  # What is saved is what a later load reads as the same config.
  again = config_lib.Config(json.loads(json.dumps(cfg.to_dict())))
  assert again.to_dict() == cfg.to_dict()


@pytest.mark.parametrize('values,needle', [
    ({'total_num_images': 1.5}, 'total_num_images must be an integer'),
    ({'batch_size_schedule': [2.5]}, 'batch_size_schedule must be'),
    ({'seed': 1.5}, 'seed must be an integer or null'),
    ({'total_num_images': float('inf')}, 'total_num_images must be an'),
    ({'train_progressive': 1.0}, 'train_progressive must be true or false'),
])
def test_non_integral_values_are_refused(values, needle):
  with pytest.raises(ValueError, match=needle):
    config_lib.Config(values)
