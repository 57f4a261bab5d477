"""Evaluation of GANSynth models: the paper's metrics and an f0 check.

  metrics.py           pitch accuracy / entropy, Inception Score, FID, NDB (numpy)
  pitch_classifier.py  the Keras pitch classifier whose outputs the metrics use
  f0.py                independent f0 check (CREPE tiny or pyin)
  real_data.py         notes from NSynth-format TFRecords
  report.py            the JSON report of a model beside real data (the ceiling)
  synthetic.py         harmonic test tones of known pitch

Nothing heavy is imported here; import the submodules.
"""
