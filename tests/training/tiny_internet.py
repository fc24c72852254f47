"""The tiny InterNet of tests/tiny.yaml at 64 px, for the tests that run training in separate
processes (distribution, multi-worker, kill-and-resume, the study): ``--config CONFIG`` plus
these overrides. ``roi.level_base=16`` spreads the small synthetic boxes over all FPN levels,
so the intertwiner's sets and the class buffer are really exercised."""
import os

from internet_tf.data import embedded

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tiny.yaml")
SIZE = 64
OVERRIDES = [
    f"model.image_size={SIZE}", "model.roi.level_base=16",
    "model.rpn.pre_nms_topk_train=64", "model.rpn.post_nms_topk_train=24",
    "model.rpn.pre_nms_topk_test=64", "model.rpn.post_nms_topk_test=24",
]


def embedded_data(root: str) -> list:
    """Generates the tiny embedded dataset under ``root``; returns the overrides using it."""
    embedded.generate(root, num_train=8, num_val=4, image_size=SIZE, seed=0, num_classes=4)
    return ["data.embedded.num_train=8", "data.embedded.num_val=4",
            f"data.embedded.image_size={SIZE}", f"data.embedded.root={root}"]
