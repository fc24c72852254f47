"""A tiny embedded dataset and model config shared by the training tests."""
import pytest

from internet_tf.config import load_config

TINY = [
    "model.backbone=small_resnet", "model.image_size=128", "model.fpn_channels=32",
    "model.small_resnet_widths=[8,16,32,64]", "model.head.fc_dim=64",
    "model.rpn.anchor_sizes=[8,16,32,64,128]", "model.roi.level_base=56",
    "model.roi.num_samples=32", "model.rpn.pre_nms_topk_train=300", "model.rpn.post_nms_topk_train=100",
    "model.rpn.pre_nms_topk_test=100", "model.rpn.post_nms_topk_test=50",
    "data.embedded.num_train=8", "data.embedded.num_val=4", "data.embedded.image_size=128",
    "train.batch_size=4", "train.learning_rate=0.02", "train.lr_drop_steps=[]",
    "train.summary_every=2", "eval.batch_size=4",
]


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("embedded"))


@pytest.fixture
def tiny_config(tiny_data_root):
    def make(*overrides):
        return load_config(None, TINY + [f"data.embedded.root={tiny_data_root}"] + list(overrides))
    return make
