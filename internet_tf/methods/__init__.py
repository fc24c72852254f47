"""Training-time methods handed to the plain detector (``modeling/detector.py``).

Each method is a ``TrainingMethod`` (``base.py``) in its own subpackage: the feature
intertwiner with its class buffer and OT module (``intertwiner/``, Li et al. 2019, Sec. 3),
and LabelEnc (``labelenc/``). The assembly (``assembly/factory.py: build_methods``) turns
the config into the list the detector composes; each method is also an attribute of the
detector named after it (``model.intertwiner``, ``model.labelenc``).
"""
