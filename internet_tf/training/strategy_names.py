"""The names of ``--strategy``, importable without TensorFlow:
internet-train defines its flag from them before it imports TF (so that a refused command
exits at once); ``distribute.make_strategy`` builds them."""

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
