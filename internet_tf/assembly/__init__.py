"""The assembly: the one layer that knows every other below the command-line tools.

It builds the configured detector from its parts (``factory.py``: the detector of
``modeling/`` with the training-time methods of ``methods/``, their optimizer, and the
restore of a checkpoint into a detector), and composes the workflows the tools run:
train then evaluate (``train.py``) and export a run's latest checkpoint (``export.py``).
Training, evaluation and export are given what they work on and never import each other.
"""
