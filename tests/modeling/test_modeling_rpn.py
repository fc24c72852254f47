"""RPN head: output shapes and the (level, y, x, anchor) ordering of its outputs."""
import numpy as np
import tensorflow as tf

from internet_tf.modeling import rpn


def test_rpn_head_output_shapes():
    head = rpn.RPNHead(num_anchors=3, channels=8)
    feats = {l: tf.zeros([2, 64 // 2 ** l, 64 // 2 ** l, 8]) for l in rpn.LEVELS}
    logits, deltas = head(feats)
    n = 3 * (256 + 64 + 16 + 4 + 1)
    assert logits.shape == (2, n) and deltas.shape == (2, n, 4)
    # Ordering (y, x, anchor) within a level, levels concatenated: a feature that is non-zero
    # only at P3 cell (1, 2) changes logits 3*256 + (1*8 + 2)*3 + {0,1,2} (and its neighbours via
    # the 3x3 conv) but nothing at P2. Both signs: with random weights, every hidden unit's
    # ReLU can be closed for one sign (about 1 init in 256 for 8 units), never for both.
    changed = set()
    for value in (5.0, -5.0):
        p3 = np.zeros([2, 8, 8, 8], np.float32)
        p3[:, 1, 2, :] = value
        feats[3] = tf.constant(p3)
        logits2, _ = head(feats)
        changed |= set(np.nonzero(np.abs(logits2.numpy()[0] - logits.numpy()[0]) > 1e-7)[0].tolist())
    changed = np.array(sorted(changed))
    assert changed.size > 0
    assert changed.min() >= 3 * 256 and changed.max() < 3 * (256 + 64)
    assert {3 * 256 + (1 * 8 + 2) * 3 + a for a in range(3)} <= set(changed.tolist())
