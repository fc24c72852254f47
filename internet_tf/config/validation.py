"""Cross-field checks of a loaded configuration, each error naming the key (SPEC §5)."""
from __future__ import annotations

from internet_tf.config.schema import Config, ConfigError


def validate(cfg: Config) -> Config:
    """Cross-field checks that a single type check cannot do."""
    d, m, t = cfg.data, cfg.model, cfg.train
    if d.dataset == "coco":
        for key in ("train_annotations", "train_images", "val_annotations", "val_images"):
            if not getattr(d, key):
                raise ConfigError(f"config key 'data.{key}' is required when data.dataset is 'coco'")
    if d.dataset == "voc":
        if not d.voc.roots or not all(isinstance(r, str) and r for r in d.voc.roots):
            raise ConfigError("config key 'data.voc.roots' needs one or more VOC root folders "
                              "(each with Annotations/, JPEGImages/, ImageSets/Main/) when data.dataset is 'voc'")
    if m.image_size % 64 != 0 or m.image_size <= 0:
        raise ConfigError(f"config key 'model.image_size' must be a positive multiple of 64, got {m.image_size}")
    if m.backbone == "vgg16" and m.fpn:
        raise ConfigError("config key 'model.fpn' must be false with model.backbone 'vgg16' "
                          "(its SSD-style levels have no FPN; paper Table 5, SPEC §6)")
    if m.labelenc.enabled and not m.fpn:
        raise ConfigError("config key 'model.labelenc.enabled' needs model.fpn true "
                          "(step 2 starts the detector's FPN from h's FPN)")
    if len(m.rpn.anchor_sizes) != 5:
        raise ConfigError("config key 'model.rpn.anchor_sizes' needs 5 sizes (one per level P2-P6)")
    if not m.rpn.aspect_ratios or any(r <= 0 for r in m.rpn.aspect_ratios):
        raise ConfigError("config key 'model.rpn.aspect_ratios' must be positive numbers")
    if len(m.head.bbox_weights) != 4:
        raise ConfigError("config key 'model.head.bbox_weights' needs 4 numbers")
    if not 2 <= m.roi.min_level <= m.roi.max_level <= 5:
        raise ConfigError("config keys 'model.roi.min_level'/'max_level' must satisfy 2 <= min <= max <= 5")
    if not 0.0 < m.roi.foreground_fraction <= 1.0:
        raise ConfigError("config key 'model.roi.foreground_fraction' must be in (0, 1]")
    if t.steps is None and t.epochs is None:
        raise ConfigError("set one of config keys 'train.steps' or 'train.epochs'")
    if t.batch_size <= 0:
        raise ConfigError("config key 'train.batch_size' must be positive")
    it = m.intertwiner
    if it.alignment != "none" and it.reliable_source not in ("bilinear", "generator"):
        raise ConfigError(
            "config key 'model.intertwiner.alignment' aligns P_l with the up-sampled P_{m|l}; it needs "
            "'model.intertwiner.reliable_source' to be 'bilinear' or 'generator' (Table 1d), "
            f"got {it.reliable_source!r}")
    if not 0.0 < it.buffer.decay < 1.0:
        raise ConfigError("config key 'model.intertwiner.buffer.decay' must be in (0, 1)")
    if it.buffer.window < 1 or it.ot.iterations < 1 or it.ot.epsilon <= 0:
        raise ConfigError("config keys 'model.intertwiner.buffer.window', 'ot.iterations' must be >= 1 "
                          "and 'ot.epsilon' > 0")
    if it.makeup_kernel < 1 or it.makeup_kernel % 2 == 0:
        raise ConfigError("config key 'model.intertwiner.makeup_kernel' must be a positive odd number")
    if it.warmup_steps < 0:
        raise ConfigError("config key 'model.intertwiner.warmup_steps' must be >= 0")
    le = m.labelenc
    if le.step not in (1, 2):
        raise ConfigError(f"config key 'model.labelenc.step' must be 1 or 2, got {le.step}")
    if le.enabled and le.step == 2 and not le.step1_dir:
        raise ConfigError("config key 'model.labelenc.step1_dir' must name step 1's --model_dir "
                          "when 'model.labelenc.step' is 2")
    if le.step2_backbone not in ("configured", "step1"):
        raise ConfigError("config key 'model.labelenc.step2_backbone' must be 'configured' or 'step1', "
                          f"got {le.step2_backbone!r}")
    if not (0.0 <= le.distill_start <= 1.0 and 0.0 <= le.distill_stop <= 1.0):
        raise ConfigError("config keys 'model.labelenc.distill_start'/'distill_stop' are fractions "
                          "of train.steps in [0, 1]")
    if len(m.small_resnet_widths) != 4:
        raise ConfigError("config key 'model.small_resnet_widths' needs 4 widths (C2-C5)")
    return cfg
