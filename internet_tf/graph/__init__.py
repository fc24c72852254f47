"""How the package's graphs are built and traced, shared by training, evaluation and export:
the dtype policy layers are built under (``policy.py``) and the package's ``tf.function``s,
traced without AutoGraph and optionally compiled with XLA (``jit.py``)."""
