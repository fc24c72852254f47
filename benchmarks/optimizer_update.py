"""Times the optimizer's update alone: ``training.optim.SGD``
(per weight, the decay as one product and the momentum step as one fused kernel) against
Keras' own SGD with the same settings, on a config's real trainable weights, in alternating
rounds in one process.

    python benchmarks/optimizer_update.py --config configs/baseline_r50_fpn_coco.yaml \
        --override model.backbone_weights=none

Both optimizers get the same random gradients; the update alone is timed (one
``apply_gradients`` per call, in a ``tf.function``), and the weights both produce from the
same start after the timed rounds are compared (they must agree to float32 rounding).
"""
from __future__ import annotations

import importlib
import statistics

from absl import app, flags

importlib.import_module("internet_tf.cli")  # quiets TF's C++ logging; before TF loads
from common import timed
from internet_tf.cli.common import define_config_flags, load_flags_config

define_config_flags(model_dir_required=False)
flags.DEFINE_integer("iters", 15, "Timed rounds (one call of each optimizer per round).")
flags.DEFINE_integer("num_classes", 80, "Foreground classes of the model.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from internet_tf.assembly.factory import build_model
    from internet_tf.training.optim import NO_DECAY_NAMES, SGD

    cfg = load_flags_config()
    model = build_model(cfg.model, FLAGS.num_classes)
    model.build_all()
    grads = [tf.random.normal(v.shape, stddev=1e-3) for v in model.trainable_variables]
    copies = [keras.Variable(v.numpy(), name=v.name) for v in model.trainable_variables]
    ours, keras_sgd = (cls(learning_rate=0.01, momentum=cfg.train.momentum,
                           weight_decay=cfg.train.weight_decay or None) for cls in (SGD, keras.optimizers.SGD))
    for opt, variables in ((ours, model.trainable_variables), (keras_sgd, copies)):
        opt.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
        opt.build(variables)
    pairs = {"ours (fused)": (ours, model.trainable_variables), "keras SGD": (keras_sgd, copies)}

    def update_of(opt, variables):
        """One update, waited for (reading a weight back ends the call only after it)."""
        apply = tf.function(lambda: opt.apply_gradients(zip(grads, variables)))
        return lambda: (apply(), variables[0].numpy())

    updates = {name: update_of(*pair) for name, pair in pairs.items()}
    for update in updates.values():
        timed(update, 2)
    times = {name: [] for name in updates}
    for _ in range(FLAGS.iters):
        for name, update in updates.items():
            times[name] += timed(update, 1)
    weights = sum(int(tf.size(v)) for v in model.trainable_variables)
    for name, values in times.items():
        print(f"{name}: median update {1e3 * statistics.median(values):.1f} ms over {FLAGS.iters} rounds, "
              f"{len(pairs[name][1])} weights, {weights / 1e6:.1f} M values")
    diff = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(model.trainable_variables, copies))
    print(f"after {FLAGS.iters + 2} updates of both from the same weights: largest difference {diff:.3g}")


if __name__ == "__main__":
    app.run(main)
