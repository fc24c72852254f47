"""training/optim.py: the fused SGD update does Keras' SGD arithmetic (to float32 rounding)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.training.optim import NO_DECAY_NAMES, SGD


def _run(cls, momentum, nesterov, weight_decay, steps=3):
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=(3, 4)).astype("float32"), name="kernel"),
                 keras.Variable(rng.normal(size=(4,)).astype("float32"), name="bias")]
    opt = cls(learning_rate=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    opt.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    opt.build(variables)
    grads = [[tf.constant(rng.normal(size=v.shape).astype("float32")) for v in variables] for _ in range(steps)]
    update = tf.function(lambda g: opt.apply_gradients(zip(g, variables)))
    for g in grads:
        update(g)
    return [v.numpy() for v in variables], update.get_concrete_function(grads[0]).graph


@pytest.mark.parametrize("momentum,nesterov,weight_decay", [
    (0.9, False, 1e-2), (0.9, True, 1e-2), (0.9, False, None), (0.0, False, 1e-2)])
def test_equals_keras_sgd(momentum, nesterov, weight_decay):
    ours, _ = _run(SGD, momentum, nesterov, weight_decay)
    theirs, _ = _run(keras.optimizers.SGD, momentum, nesterov, weight_decay)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # The decay did act on the kernel (and the bias was left out of it).
    if weight_decay:
        plain, _ = _run(SGD, momentum, nesterov, None)
        assert not np.allclose(plain[0], ours[0]) and np.allclose(plain[1], ours[1])


def test_update_is_one_fused_kernel_per_weight_and_one_write_per_decay():
    _, graph = _run(SGD, 0.9, False, 1e-2, steps=1)
    types = [op.type for op in graph.get_operations()]
    assert types.count("ResourceApplyKerasMomentum") == 2  # kernel and bias
    # Keras' own update writes the slot and the weight separately; here only the kernel's
    # decay and the step counter write besides the fused kernels.
    assert "AssignSubVariableOp" not in types
    assert types.count("AssignVariableOp") + types.count("AssignAddVariableOp") == 2
