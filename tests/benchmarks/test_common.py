"""benchmarks/common.py's FLOP counting: hand-checkable counts of tiny graphs — a
3×3 convolution is 2·k·k·Cin·Cout·H·W FLOPs, a dense layer 2·K·N per row — the static count
of the traced graph, and products whose row count is only known at run time."""
import importlib.util
import os

import keras
import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("bench_common", os.path.join(ROOT, "benchmarks", "common.py"))
common = importlib.util.module_from_spec(spec)
spec.loader.exec_module(common)

CONV = 2 * 3 * 3 * 3 * 4 * 8 * 8  # k·k·Cin·Cout·H·W multiply-adds, 2 FLOPs each: 13824
DENSE = 2 * 256 * 5  # 8·8·4 = 256 inputs, 5 outputs: 2560


def tiny_net():
    return keras.Sequential([keras.Input((8, 8, 3)),
                             keras.layers.Conv2D(4, 3, padding="same", use_bias=False),
                             keras.layers.Flatten(), keras.layers.Dense(5, use_bias=False)], name="net")


def test_graph_flops_of_a_known_conv_and_dense():
    net = tiny_net()
    graph = tf.function(net).get_concrete_function(tf.TensorSpec([1, 8, 8, 3])).graph
    total, by_type = common.graph_flops(graph)
    assert by_type == {"Conv2D": CONV, "MatMul": DENSE}
    assert total == CONV + DENSE


class Masked:
    """A stand-in for the detector: ``train_losses`` runs the tiny net, then a 256 → 5 product on
    the rows of a batch that pass a mask (a row count known only at run time, as the
    intertwiner's reliable sets)."""

    def __init__(self):
        self.net = tiny_net()
        self.w = tf.Variable(tf.ones([256, 5]))

    def train_losses(self, batch, training=True):
        out = self.net(batch["images"][:1])
        rows = tf.boolean_mask(batch["features"], batch["keep"])
        with tf.name_scope("masked"):
            product = tf.matmul(rows, self.w)
        return {"a": tf.reduce_sum(out), "b": tf.reduce_sum(product)}, {}


def test_forward_flops_counts_run_time_rows():
    batch = {"images": tf.zeros([1, 8, 8, 3]), "features": tf.ones([6, 256]),
             "keep": tf.constant([True, False, True, True, False, False])}
    flops = common.forward_flops(Masked(), batch)
    assert flops["dynamic_ops"] == 1
    assert flops["dynamic"] == 3 * DENSE  # three rows kept
    assert flops["by_type"]["Conv2D"] == CONV and flops["by_type"]["MatMul"] == DENSE
    assert flops["total"] == flops["static"] + 3 * DENSE
    # per layer: the net's conv and dense in its own scope, the run-time rows in theirs
    assert flops["products_by_part"] == {"net": CONV + DENSE, "masked": 3 * DENSE}
    assert common.part_of("critic_3/reduce_conv_1/Conv2D") == "critic"
    assert common.part_of("critic_p2_1/conv1_1/Conv2D") == "critic_p2"


def test_product_flops_and_dtypes():
    assert common.product_flops(np.array([2, 3]), 7) == 2 * 2 * 3 * 7
    assert [common.COMPUTE_DTYPES[k] for k in ("none", "bfloat16", "float16")] == ["float32", "bfloat16",
                                                                                    "float16"]
