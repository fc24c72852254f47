"""LabelEnc (seed 000 appendix; SPEC §4): label encoding as intermediate supervision.

Pure components only: the label map y (``label_map``), the label encoding function h of
seed 000's Table 1 with its own FPN (``encoder``), the adaptation module on the detector's
pyramid (``adapt``) and the layer-normalised distillation loss (``distill``).
"""
