"""LabelEnc (Hao et al. 2020, appendix): label encoding as intermediate supervision.

The label map y (``label_map``), the label encoding function h of the LabelEnc appendix's Table 1 with
its own FPN (``encoder``), the adaptation module on the detector's pyramid (``adapt``), the
layer-normalised distillation loss (``distill``), the training-time method composing them
(``method``, steps 1 and 2) and step 2's start from step 1 (``step1``).
"""
