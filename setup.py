"""Install gansynth_tf2 (metadata lives in setup.cfg)."""
from setuptools import setup

setup()
