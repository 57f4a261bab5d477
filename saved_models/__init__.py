"""The models shipped with gansynth_tf2 (data only).

Installed as the package `gansynth_tf2.saved_models` (setup.cfg), so a
non-editable install or a wheel carries the shipped generator
(`gansynth_sf_cpu_fast/`, the default of gansynth-generate) and the pitch
classifier (`pitch_classifier/`); see MODEL_CARD.md.
"""
