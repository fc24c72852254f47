"""ops/replica.py outside a multi-replica context: the plain sum and mean (the two-replica
case is checked end to end in tests/training/test_training_distribute.py)."""
import numpy as np
import tensorflow as tf

from internet_tf.ops.replica import global_mean, global_sum, replicas_in_sync


def test_one_replica_is_the_plain_sum_and_mean():
    assert replicas_in_sync() == 1
    x = tf.constant([1.0, 2.0])
    np.testing.assert_array_equal(global_sum(x), x)
    assert float(global_mean(tf.constant(6.0), tf.constant(4.0))) == 1.5
    assert float(global_mean(tf.constant(6.0), tf.constant(0.0))) == 6.0  # count floored at 1
    assert float(global_mean(tf.constant(6.0), tf.constant(0.0), minimum=3.0)) == 2.0


def test_count_gets_no_gradient():
    count = tf.Variable(4.0)
    total = tf.Variable(6.0)
    with tf.GradientTape() as tape:
        value = global_mean(total * 1.0, count * 1.0)
    d_total, d_count = tape.gradient(value, [total, count])
    assert float(d_total) == 0.25 and d_count is None
