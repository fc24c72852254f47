"""A tiny InterNet at 64 px for the tests that run training in separate processes
(distribution, multi-worker, kill-and-resume): ``configs/demo.yaml`` plus these overrides.
``roi.level_base=16`` spreads the small synthetic boxes over all FPN levels, so the
intertwiner's sets and the class buffer are really exercised."""
from internet_tf.data import embedded

SIZE = 64
OVERRIDES = [
    "model.backbone=small_resnet", "model.backbone_weights=none", f"model.image_size={SIZE}",
    "model.fpn_channels=8", "model.small_resnet_widths=[8,8,8,8]", "model.head.fc_dim=16",
    "model.intertwiner.critic_hidden=8", "model.intertwiner.ot.pool_size=4",
    "model.rpn.anchor_sizes=[8,16,32,64,128]", "model.roi.level_base=16",
    "model.rpn.pre_nms_topk_train=64", "model.rpn.post_nms_topk_train=24",
    "model.rpn.pre_nms_topk_test=64", "model.rpn.post_nms_topk_test=24",
    "model.roi.num_samples=16", "train.batch_size=4", "eval.batch_size=4",
]


def embedded_data(root: str) -> list:
    """Generates the tiny embedded dataset under ``root``; returns the overrides using it."""
    embedded.generate(root, num_train=8, num_val=4, image_size=SIZE, seed=0, num_classes=4)
    return ["data.embedded.num_train=8", "data.embedded.num_val=4",
            f"data.embedded.image_size={SIZE}", f"data.embedded.root={root}"]
