"""The Keras dtype policy a model's layers are built under, from ``train.mixed_precision``
(``none | float16 | bfloat16``): ``float32``, ``mixed_float16`` or ``mixed_bfloat16``.
Under a mixed policy convolutions and dense layers compute in 16 bits and every variable
stays float32; what else stays float32, and float16's loss scaling, is
``training/precision.py``'s. Training and ``internet-eval`` build under the configured policy; an export rebuilds a
checkpoint's model under float32 (``policy_scope("none")``)."""
from __future__ import annotations

import contextlib

import keras

from internet_tf.config import check_choice

# train.mixed_precision -> Keras dtype policy name.
POLICIES = {"none": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def policy_name(mixed_precision: str) -> str:
    """The Keras dtype policy of a ``train.mixed_precision`` value."""
    return POLICIES[check_choice("train.mixed_precision", mixed_precision)]


@contextlib.contextmanager
def policy_scope(mixed_precision: str = "none"):
    """Layers built inside take ``mixed_precision``'s Keras dtype policy; the global
    policy in force before is restored on exit, also on an error. Keras' policy is global,
    so the scope restores it; the built layers keep theirs."""
    name = policy_name(mixed_precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)
