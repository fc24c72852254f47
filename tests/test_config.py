"""Config schema: YAML loading, base chains, validation naming the key, overrides."""
import os
import re

import pytest

from internet_tf.config import ConfigError, Config, load_config, parse_override


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_follow_spec():
    cfg = Config()
    assert cfg.model.rpn.anchor_sizes == [32, 64, 128, 256, 512]
    assert cfg.model.rpn.aspect_ratios == [0.5, 1.0, 2.0]
    assert cfg.model.roi.num_samples == 200 and cfg.model.roi.output_size == 14
    assert cfg.model.roi.level_rounding == "floor" and cfg.model.roi.level_base == 224
    assert cfg.model.head.nms_iou == 0.3 and cfg.model.head.max_detections == 100
    assert cfg.train.momentum == 0.9 and cfg.train.weight_decay == 1e-4 and cfg.train.clip_norm == 5.0
    assert cfg.train.lr_drop_epochs == [6, 10] and cfg.train.epochs == 13


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, "c.yaml", "model:\n  rpn:\n    nms_thresh: 0.5\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.rpn\.nms_thresh'"):
        load_config(path)


def test_unknown_override_key_is_named():
    with pytest.raises(ConfigError, match=r"'train\.stepz'"):
        load_config(None, ["train.stepz=3"])


def test_type_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'train\.batch_size' must be an integer"):
        load_config(None, ["train.batch_size=eight"])
    with pytest.raises(ConfigError, match=r"'model\.backbone' must be one of"):
        load_config(None, ["model.backbone=vgg19"])
    with pytest.raises(ConfigError, match=r"'data\.flip' must be true or false"):
        load_config(None, ["data.flip=3"])
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "c.yaml", "model: 3\n"))
    with pytest.raises(ConfigError, match=r"'model\.labelenc\.step2_backbone' must be 'configured' or 'step1'"):
        load_config(None, ["model.labelenc.step2_backbone=imagenet"])


def test_overrides_are_yaml_typed():
    assert parse_override("model.rpn.nms_iou=0.6") == {"model": {"rpn": {"nms_iou": 0.6}}}
    cfg = load_config(None, ["model.rpn.anchor_sizes=[16,32,64,128,256]", "train.steps=7",
                             "train.learning_rate=null", "model.image_size=256"])
    assert cfg.model.rpn.anchor_sizes == [16, 32, 64, 128, 256]
    assert cfg.train.steps == 7 and cfg.train.learning_rate is None
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.steps")


def test_base_chain_and_precedence(tmp_path):
    write(tmp_path, "base.yaml", "seed: 3\ntrain:\n  steps: 10\n  batch_size: 2\n")
    child = write(tmp_path, "child.yaml", "base: base.yaml\ntrain:\n  steps: 20\n")
    cfg = load_config(child, ["train.batch_size=4"])
    assert (cfg.seed, cfg.train.steps, cfg.train.batch_size) == (3, 20, 4)


def test_base_cycle_and_missing_file(tmp_path):
    write(tmp_path, "a.yaml", "base: b.yaml\n")
    write(tmp_path, "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(str(tmp_path / "a.yaml"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "bad.yaml", "model: [unclosed\n"))


def test_cross_field_validation():
    with pytest.raises(ConfigError, match="data.train_annotations"):
        load_config(None, ["data.dataset=coco"])
    with pytest.raises(ConfigError, match="multiple of 64"):
        load_config(None, ["model.image_size=300"])
    with pytest.raises(ConfigError, match="anchor_sizes"):
        load_config(None, ["model.rpn.anchor_sizes=[32,64]"])


@pytest.mark.parametrize("name", ["demo.yaml", "baseline_r50_fpn_coco.yaml", "baseline_r101_fpn_coco.yaml"])
def test_shipped_configs_load(name):
    import os
    cfg = load_config(os.path.join(os.path.dirname(__file__), "..", "configs", name))
    assert cfg.model.image_size in (256, 512)


def test_layers_check_their_string_option_against_the_one_table():
    """An option's allowed values are listed once (config.CHOICES); a layer called directly
    with a bad value gets the same message, naming the config key."""
    import tensorflow as tf

    from internet_tf.config import CHOICES
    from internet_tf.methods.intertwiner.loss import intertwiner_distance
    from internet_tf.methods.intertwiner.merge import merge
    from internet_tf.methods.intertwiner.sets import small_large_masks
    from internet_tf.ops.roi_align import assign_levels

    x = tf.ones([2, 3])
    calls = {"model.intertwiner.merge": lambda: merge(x, x, "average"),
             "model.intertwiner.loss": lambda: intertwiner_distance(x, x, "average"),
             "model.intertwiner.split": lambda: small_large_masks(x, x, 2, split="average"),
             "model.roi.level_rounding": lambda: assign_levels(tf.ones([1, 4]), rounding="average")}
    for key, call in calls.items():
        with pytest.raises(ConfigError, match=rf"'{key}' must be one of {re.escape(str(CHOICES[key]))}"):
            call()


def test_auto_true_false_options_take_yaml_booleans_or_strings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  jit_compile: true\n  steps: 3\neval:\n  jit_compile: no\n")
    cfg = load_config(str(path))
    assert (cfg.train.jit_compile, cfg.eval.jit_compile) == ("true", "false")
    assert load_config(None, ["train.jit_compile=auto", "train.steps=3"]).train.jit_compile == "auto"
    with pytest.raises(ConfigError, match="'train.jit_compile' must be one of"):
        load_config(None, ["train.jit_compile=sometimes", "train.steps=3"])
    with pytest.raises(ConfigError, match="'train.mixed_precision' must be one of"):
        load_config(None, ["train.mixed_precision=float8", "train.steps=3"])
    # A boolean is still refused where the choices are not auto/true/false.
    with pytest.raises(ConfigError, match="'model.intertwiner.merge' must be a string"):
        load_config(None, ["model.intertwiner.merge=true", "train.steps=3"])


# -- nonsensical numbers are refused, naming the key ----------------------------------------

def _outside(allowed):
    """Values just outside a Range (ints where the bound is an int, so type checks pass)."""
    from internet_tf.config.validation import Range

    assert isinstance(allowed, Range)
    values = []
    if allowed.low is not None:
        values.append(allowed.low if allowed.low_open else allowed.low - 1)
    if allowed.high is not None:
        values.append(allowed.high if allowed.high_open else allowed.high + 1)
    return values


def _range_cases():
    from internet_tf.config.validation import RANGES

    return [(key, value) for key, allowed in RANGES.items() for value in _outside(allowed)]


@pytest.mark.parametrize("key, value", _range_cases())
def test_every_range_rule_refuses_a_number_outside_it_naming_the_key(key, value):
    from internet_tf.config.validation import value_at

    default = value_at(Config(), key)
    bad = [value] if isinstance(default, list) else value
    with pytest.raises(ConfigError, match=rf"config key '{re.escape(key)}'.* got {re.escape(repr(bad))}"):
        load_config(None, [f"{key}={bad}"])


def test_the_range_table_names_real_keys_and_the_defaults_lie_inside():
    from internet_tf.config.validation import RANGES, check_ranges, value_at

    for key in RANGES:
        value_at(Config(), key)  # an AttributeError would name a key the schema lacks
    check_ranges(Config())
    # These keys in particular (counts, sizes, rates, intervals) are all in the table.
    for key in ("train.steps", "train.epochs", "train.batch_size", "eval.batch_size", "train.learning_rate",
                "train.base_learning_rate", "train.base_batch_size", "model.image_size", "train.checkpoint_every",
                "train.summary_every", "train.log_every", "train.keep_checkpoints", "train.weight_decay",
                "train.warmup_steps", "train.momentum", "train.lr_drop_factor", "train.clip_norm",
                "eval.max_images", "data.max_instances", "model.rpn.num_samples", "model.roi.num_samples",
                "model.rpn.pre_nms_topk_train", "model.rpn.post_nms_topk_test", "model.head.fc_dim",
                "model.fpn_channels"):
        assert key in RANGES, key


@pytest.mark.parametrize("allowed, inside, outside", [
    ("POSITIVE", [1e-9, 3], [0, -1]),
    ("AT_LEAST_1", [1, 7], [0, -3]),
    ("NON_NEGATIVE", [0, 0.5], [-1e-9]),
    ("FRACTION", [1e-6, 1], [0, 1.01]),
    ("UNIT", [0, 1], [-0.1, 1.1]),
    ("BELOW_1", [0, 0.999], [1, -0.1]),
])
def test_range_bounds(allowed, inside, outside):
    from internet_tf.config import validation

    rule = getattr(validation, allowed)
    assert all(v in rule for v in inside) and not any(v in rule for v in outside)
    assert True not in rule and "1" not in rule and float("nan") not in rule


def test_optional_numbers_unset_are_not_checked_and_lists_are_checked_entry_by_entry():
    cfg = load_config(None, ["train.learning_rate=null", "train.clip_norm=null", "eval.max_images=null",
                             "train.steps=5", "train.epochs=null"])
    assert cfg.train.learning_rate is None and cfg.train.clip_norm is None and cfg.train.epochs is None
    with pytest.raises(ConfigError, match=r"'model\.rpn\.anchor_sizes': every entry must be a number > 0"):
        load_config(None, ["model.rpn.anchor_sizes=[32, 64, 0, 256, 512]"])
    with pytest.raises(ConfigError, match=r"'train\.lr_drop_steps': every entry"):
        load_config(None, ["train.lr_drop_steps=[100, oops]"])


def test_new_cross_field_number_checks():
    with pytest.raises(ConfigError, match=r"'model\.rpn\.neg_iou' \(0\.8\) must not exceed 'model\.rpn\.pos_iou'"):
        load_config(None, ["model.rpn.neg_iou=0.8"])
    with pytest.raises(ConfigError, match=r"'model\.roi\.bg_iou_low' \(0\.6\) must not exceed"):
        load_config(None, ["model.roi.bg_iou_low=0.6"])
    with pytest.raises(ConfigError, match=r"'model\.intertwiner\.makeup_kernel' must be odd, got 4"):
        load_config(None, ["model.intertwiner.makeup_kernel=4"])
    with pytest.raises(ConfigError, match=r"'model\.intertwiner\.ot\.input_level' must be 0 \(off\) or a pyramid level"):
        load_config(None, ["model.intertwiner.ot.input_level=1"])
    with pytest.raises(ConfigError, match=r"'model\.image_size' must be a positive multiple of 64, got 100"):
        load_config(None, ["model.image_size=100"])


def test_cache_images_is_a_data_key():
    assert Config().data.cache_images is False
    assert load_config(None, ["data.cache_images=true"]).data.cache_images is True
    with pytest.raises(ConfigError, match=r"'data\.cache_images' must be true or false"):
        load_config(None, ["data.cache_images=3"])


CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(CONFIGS) if n.endswith(".yaml")))
def test_every_shipped_config_passes_the_range_checks(name):
    load_config(os.path.join(CONFIGS, name))
