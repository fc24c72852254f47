"""Checks of a loaded configuration, each error naming the key (configs reject
nonsensical numbers).

``RANGES`` is one table, dotted key -> ``Range``: the numbers each key may take. A key whose
value is None (an optional one left unset) is not checked; a list key's every entry is. The
cross-field checks that a table of single keys cannot express follow in ``validate``.
"""
from __future__ import annotations

import dataclasses
import math
from functools import reduce

from internet_tf.config.schema import INIT_PARTS, Config, ConfigError


@dataclasses.dataclass(frozen=True)
class Range:
    """Numbers from ``low`` to ``high``; an open end excludes its bound (None: unbounded)."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    @property
    def text(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        return (f"in {'(' if self.low_open else '['}{self.low}, {self.high}"
                f"{')' if self.high_open else ']'}")


POSITIVE = Range(0, low_open=True)  # > 0
AT_LEAST_1 = Range(1)  # integers > 0, written as >= 1
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1, low_open=True)  # (0, 1]
UNIT = Range(0, 1)  # [0, 1]
BELOW_1 = Range(0, 1, high_open=True)  # [0, 1)

RANGES = {
    "seed": NON_NEGATIVE,
    "data.max_instances": AT_LEAST_1,
    "data.shuffle_buffer": AT_LEAST_1,
    "data.embedded.num_train": AT_LEAST_1,
    "data.embedded.num_val": AT_LEAST_1,
    "data.embedded.image_size": Range(64),
    "data.embedded.num_classes": AT_LEAST_1,
    "data.embedded.seed": NON_NEGATIVE,
    "data.embedded.small_blur": Range(0, 8),
    "model.freeze_at": NON_NEGATIVE,
    "model.small_resnet_widths": AT_LEAST_1,
    "model.image_size": AT_LEAST_1,
    "model.fpn_channels": AT_LEAST_1,
    "model.rpn.anchor_sizes": POSITIVE,
    "model.rpn.aspect_ratios": POSITIVE,
    "model.rpn.pos_iou": FRACTION,
    "model.rpn.neg_iou": BELOW_1,
    "model.rpn.num_samples": AT_LEAST_1,
    "model.rpn.positive_fraction": FRACTION,
    "model.rpn.nms_iou": FRACTION,
    "model.rpn.pre_nms_topk_train": AT_LEAST_1,
    "model.rpn.pre_nms_topk_test": AT_LEAST_1,
    "model.rpn.post_nms_topk_train": AT_LEAST_1,
    "model.rpn.post_nms_topk_test": AT_LEAST_1,
    "model.rpn.min_size": NON_NEGATIVE,
    "model.roi.num_samples": AT_LEAST_1,
    "model.roi.foreground_fraction": FRACTION,
    "model.roi.fg_iou": FRACTION,
    "model.roi.bg_iou_high": UNIT,
    "model.roi.bg_iou_low": UNIT,
    "model.roi.level_base": POSITIVE,
    "model.roi.output_size": AT_LEAST_1,
    "model.roi.sampling_ratio": AT_LEAST_1,
    "model.head.fc_dim": AT_LEAST_1,
    "model.head.bbox_weights": POSITIVE,
    "model.head.score_threshold": BELOW_1,
    "model.head.nms_iou": FRACTION,
    "model.head.max_detections": AT_LEAST_1,
    "model.intertwiner.makeup_kernel": AT_LEAST_1,  # and odd: below
    "model.intertwiner.critic_hidden": AT_LEAST_1,
    "model.intertwiner.loss_weight": NON_NEGATIVE,
    "model.intertwiner.alignment_weight": NON_NEGATIVE,
    "model.intertwiner.warmup_steps": NON_NEGATIVE,
    "model.intertwiner.buffer.decay": Range(0, 1, low_open=True, high_open=True),
    "model.intertwiner.buffer.window": AT_LEAST_1,
    "model.intertwiner.ot.epsilon": POSITIVE,
    "model.intertwiner.ot.iterations": AT_LEAST_1,
    "model.intertwiner.ot.pool_size": AT_LEAST_1,
    "model.intertwiner.ot.generator_kernel": AT_LEAST_1,
    "model.intertwiner.ot.input_level": Range(0, 6),  # 0 (off) or a level: below
    "model.labelenc.distill_weight": NON_NEGATIVE,
    "model.labelenc.distill_start": UNIT,  # fractions of train.steps
    "model.labelenc.distill_stop": UNIT,
    "train.batch_size": AT_LEAST_1,
    "train.steps": AT_LEAST_1,
    "train.epochs": POSITIVE,
    "train.learning_rate": POSITIVE,
    "train.base_learning_rate": POSITIVE,
    "train.base_batch_size": AT_LEAST_1,
    "train.lr_drop_epochs": NON_NEGATIVE,
    "train.lr_drop_steps": NON_NEGATIVE,
    "train.lr_drop_factor": FRACTION,
    "train.warmup_steps": NON_NEGATIVE,
    "train.momentum": BELOW_1,
    "train.weight_decay": NON_NEGATIVE,
    "train.clip_norm": POSITIVE,
    "train.checkpoint_every": AT_LEAST_1,
    "train.keep_checkpoints": AT_LEAST_1,
    "train.summary_every": AT_LEAST_1,
    "train.log_every": AT_LEAST_1,
    "eval.batch_size": AT_LEAST_1,
    "eval.max_images": AT_LEAST_1,
}


def value_at(cfg: Config, key: str):
    """The value of a dotted key (``"model.rpn.nms_iou"``)."""
    return reduce(getattr, key.split("."), cfg)


def check_range(key: str, value):
    """``value`` if it lies in ``RANGES[key]``; else a ConfigError naming the key."""
    if value not in RANGES[key]:
        raise ConfigError(f"config key '{key}' must be {RANGES[key].text}, got {value!r}")
    return value


def check_ranges(cfg: Config) -> None:
    """A ConfigError naming the first key of ``RANGES`` whose value (or list entry) is out of range."""
    for key, allowed in RANGES.items():
        value = value_at(cfg, key)
        if value is None:
            continue
        if isinstance(value, list):
            if not all(v in allowed for v in value):
                raise ConfigError(f"config key '{key}': every entry must be a number {allowed.text}, got {value!r}")
        else:
            check_range(key, value)


def validate(cfg: Config) -> Config:
    """The ``RANGES`` table, then the cross-field checks that a single key cannot express."""
    check_ranges(cfg)
    d, m, t = cfg.data, cfg.model, cfg.train
    if d.dataset == "coco":
        for key in ("train_annotations", "train_images", "val_annotations", "val_images"):
            if not getattr(d, key):
                raise ConfigError(f"config key 'data.{key}' is required when data.dataset is 'coco'")
    if d.dataset == "voc":
        if not d.voc.roots or not all(isinstance(r, str) and r for r in d.voc.roots):
            raise ConfigError("config key 'data.voc.roots' needs one or more VOC root folders "
                              "(each with Annotations/, JPEGImages/, ImageSets/Main/) when data.dataset is 'voc'")
    if m.image_size % 64 != 0:
        raise ConfigError(f"config key 'model.image_size' must be a positive multiple of 64, got {m.image_size}")
    if m.backbone == "vgg16" and m.fpn:
        raise ConfigError("config key 'model.fpn' must be false with model.backbone 'vgg16' "
                          "(its SSD-style levels have no FPN; paper Table 5)")
    if m.labelenc.enabled and not m.fpn:
        raise ConfigError("config key 'model.labelenc.enabled' needs model.fpn true "
                          "(step 2 starts the detector's FPN from h's FPN)")
    if len(m.rpn.anchor_sizes) != 5:
        raise ConfigError("config key 'model.rpn.anchor_sizes' needs 5 sizes (one per level P2-P6)")
    if not m.rpn.aspect_ratios:
        raise ConfigError("config key 'model.rpn.aspect_ratios' needs one or more ratios")
    if m.rpn.neg_iou > m.rpn.pos_iou:
        raise ConfigError(f"config key 'model.rpn.neg_iou' ({m.rpn.neg_iou}) must not exceed "
                          f"'model.rpn.pos_iou' ({m.rpn.pos_iou})")
    if m.roi.bg_iou_low > m.roi.bg_iou_high:
        raise ConfigError(f"config key 'model.roi.bg_iou_low' ({m.roi.bg_iou_low}) must not exceed "
                          f"'model.roi.bg_iou_high' ({m.roi.bg_iou_high})")
    if len(m.head.bbox_weights) != 4:
        raise ConfigError("config key 'model.head.bbox_weights' needs 4 numbers")
    if not 2 <= m.roi.min_level <= m.roi.max_level <= 5:
        raise ConfigError("config keys 'model.roi.min_level'/'max_level' must satisfy 2 <= min <= max <= 5")
    parts = t.init_parts
    if (not isinstance(parts, list) or not parts or len(set(map(str, parts))) != len(parts)
            or not all(p in INIT_PARTS for p in parts)):
        raise ConfigError(f"config key 'train.init_parts' must list one or more of {INIT_PARTS} "
                          f"without repeats, got {parts!r}")
    if t.init_from is not None and (not isinstance(t.init_from, str) or not t.init_from):
        raise ConfigError(f"config key 'train.init_from' must be a run directory or a checkpoint path, "
                          f"got {t.init_from!r}")
    if t.steps is None and t.epochs is None:
        raise ConfigError("set one of config keys 'train.steps' or 'train.epochs'")
    it = m.intertwiner
    if it.alignment != "none" and it.reliable_source not in ("bilinear", "generator"):
        raise ConfigError(
            "config key 'model.intertwiner.alignment' aligns P_l with the up-sampled P_{m|l}; it needs "
            "'model.intertwiner.reliable_source' to be 'bilinear' or 'generator' (Table 1d), "
            f"got {it.reliable_source!r}")
    if it.ot.input_level == 1:
        raise ConfigError("config key 'model.intertwiner.ot.input_level' must be 0 (off) or a "
                          "pyramid level 2-6, got 1")
    if it.makeup_kernel % 2 == 0:
        raise ConfigError(f"config key 'model.intertwiner.makeup_kernel' must be odd, got {it.makeup_kernel}")
    le = m.labelenc
    if le.step not in (1, 2):
        raise ConfigError(f"config key 'model.labelenc.step' must be 1 or 2, got {le.step}")
    if le.enabled and le.step == 2 and not le.step1_dir:
        raise ConfigError("config key 'model.labelenc.step1_dir' must name step 1's --model_dir "
                          "when 'model.labelenc.step' is 2")
    if le.step2_backbone not in ("configured", "step1"):
        raise ConfigError("config key 'model.labelenc.step2_backbone' must be 'configured' or 'step1', "
                          f"got {le.step2_backbone!r}")
    if len(m.small_resnet_widths) != 4:
        raise ConfigError("config key 'model.small_resnet_widths' needs 4 widths (C2-C5)")
    return cfg
