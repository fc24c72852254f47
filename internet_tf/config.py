"""Configuration schema, YAML loading, validation and ``key=value`` overrides (SPEC §5).

Every option of SPEC §1–§5 is a field here, so that a YAML file (or ``--override``) can
reach it. Unknown keys are errors that name the full dotted key; values are type-checked.
A YAML file may start from another one with ``base: relative/or/absolute.yaml``.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml


class ConfigError(ValueError):
    """A configuration problem, with the offending key in the message."""


@dataclass
class EmbeddedConfig:
    root: str = "data_cache/embedded"
    num_train: int = 800
    num_val: int = 100
    image_size: int = 256
    num_classes: int = 4
    seed: int = 0
    format: str = "coco"  # coco | voc: the generated copy is also written as VOC and read from there


@dataclass
class VocConfig:
    """PASCAL VOC as distributed (SPEC §6): each root holds Annotations/, JPEGImages/ and
    ImageSets/Main/<split>.txt; several roots (VOC2007 + VOC2012) are read as one set."""
    roots: list = field(default_factory=list)
    train_split: str = "trainval"
    val_split: str = "test"
    use_difficult: bool = False  # difficult objects: out of training, ignored in evaluation
    classes: str = "voc"  # voc (the 20 classes in their usual order) | found (names in the XML, sorted)


@dataclass
class DataConfig:
    dataset: str = "embedded"  # embedded | coco | voc
    train_annotations: Optional[str] = None
    train_images: Optional[str] = None
    val_annotations: Optional[str] = None
    val_images: Optional[str] = None
    embedded: EmbeddedConfig = field(default_factory=EmbeddedConfig)
    voc: VocConfig = field(default_factory=VocConfig)
    max_instances: int = 100
    flip: bool = True
    shuffle_buffer: int = 1000
    verify_images: str = "header"  # header | full | none


@dataclass
class RpnConfig:
    anchor_sizes: list = field(default_factory=lambda: [32, 64, 128, 256, 512])
    aspect_ratios: list = field(default_factory=lambda: [0.5, 1.0, 2.0])
    pos_iou: float = 0.7
    neg_iou: float = 0.3
    num_samples: int = 256
    positive_fraction: float = 0.5
    nms_iou: float = 0.7
    pre_nms_topk_train: int = 2000
    pre_nms_topk_test: int = 1000
    post_nms_topk_train: int = 2000
    post_nms_topk_test: int = 1000
    min_size: float = 0.0


@dataclass
class RoiConfig:
    num_samples: int = 200
    foreground_fraction: float = 0.25
    fg_iou: float = 0.5
    bg_iou_high: float = 0.5
    bg_iou_low: float = 0.0
    # Eq. 6: l = floor(canonical_level + log2(sqrt(area) / level_base)), clamped.
    level_rounding: str = "floor"  # floor | round
    level_base: float = 224.0
    canonical_level: int = 4
    min_level: int = 2
    max_level: int = 5
    output_size: int = 14
    sampling_ratio: int = 2


@dataclass
class HeadConfig:
    fc_dim: int = 1024
    bbox_weights: list = field(default_factory=lambda: [10.0, 10.0, 5.0, 5.0])
    score_threshold: float = 0.05
    nms_iou: float = 0.3
    max_detections: int = 100


@dataclass
class BufferConfig:
    """Class buffer (Sec. 3.2, Tables 2d/2e)."""
    mode: str = "all"  # all (all history, equal weight) | decay | window ("partial")
    decay: float = 0.99
    window: int = 2000
    per_level: bool = False  # one buffer per level (level 5 reads level 2's)
    detach: bool = True


@dataclass
class OTConfig:
    """Sinkhorn OT alignment (Sec. 3.3, Alg. 1, Sec. 6.3)."""
    epsilon: float = 0.1
    iterations: int = 10
    log_domain: bool = False
    detach_plan: bool = False
    pool_size: int = 8  # critic H pools to pool_size² = k spatial features per channel
    generator_kernel: int = 2


@dataclass
class IntertwinerConfig:
    """Feature intertwiner (SPEC §2) and the reliable-set source of Table 1 (SPEC §3)."""
    enabled: bool = True  # InterNet by default; the baseline configs set false
    split: str = "level"  # level (Eq. 7) | roi_size (Table 2a "by RoI size")
    makeup_shared: bool = False
    # Defaults below marked "study" were chosen by configs/studies/demo_causes.yaml (README,
    # "Where we differ from the paper's text, and why"); the paper's text is the other value.
    makeup_placement: str = "map"  # study; roi (Table 6: on each 14x14 RoI) | map (authors' code: on P_l)
    makeup_kernel: int = 3  # Table 6: 3x3
    makeup_residual: str = "none"  # none (Table 6: the head sees unit(x)) | add (x + unit(x)) | gated (x + g*unit(x), g from 0)
    critic_hidden: int = 512
    critic_extra_conv: bool = True  # study; authors' code: a third 1x1 conv + BN + ReLU before the sigmoid
    # Reliable-set critic passes update the critic's BN moving statistics (which inference uses)?
    reliable_bn_update: bool = False  # study
    merge: str = "linear"  # linear | separate | naive_add (Table 2c)
    merge_point: str = "fc1"  # study; predictor (paper text) | fc1 (authors' code)
    loss: str = "l2"  # l2 | l1 | kl (Table 2b)
    loss_weight: float = 1.0
    reliable_source: str = "generator"  # p_l (a) | p_m (b) | bilinear (c) | generator (c)
    alignment: str = "ot"  # none | ot | ot_biased | l2 | kl  (Table 1d; needs bilinear/generator)
    alignment_weight: float = 1.0
    alignment_into_pyramid: bool = False  # study; OT gradients reach the detector's P_l and P_{l+1}
    warmup_steps: int = 100  # study; linear ramp 0 -> 1 of loss_weight and alignment_weight
    buffer: BufferConfig = field(default_factory=BufferConfig)
    ot: OTConfig = field(default_factory=OTConfig)


@dataclass
class LabelEncConfig:
    """LabelEnc label-encoding supervision (SPEC §4, seed 000). Step 1 trains the label
    encoder h (and its FPN) through the detector's own heads while distilling into the
    detector; step 2 trains a fresh detector from step 1's FPN and heads with h frozen.
    The distillation schedule is given as fractions of ``train.steps`` (the authors' 30k of
    120k iterations and 80k of 90k)."""
    enabled: bool = False
    step: int = 1  # 1 | 2
    step1_dir: Optional[str] = None  # step 2: step 1's --model_dir
    augment: bool = True  # step 1: each box's label values times min(2·U(0,1), 1)
    distill_weight: float = 1.0  # λ of the distillation loss
    distill_start: float = 0.25  # step 1: weight 0 before this fraction of the steps
    distill_stop: float = 0.889  # step 2: weight 0 from this fraction of the steps on
    # Step 2's backbone: "configured" (model.backbone_weights: ImageNet or none; the paper) or
    # "step1" (step 1's image backbone: with a backbone trained from scratch, the analogue of
    # a pretrained one, so steps 1+2 together train it as long as the baseline's one run).
    step2_backbone: str = "configured"


@dataclass
class ModelConfig:
    backbone: str = "resnet50"  # resnet50 | resnet101 | small_resnet | vgg16
    # false: no top-down pathway; each level is its backbone stage projected to fpn_channels
    # (ResNet without FPN, and VGG-16's SSD-style levels, SPEC §6)
    fpn: bool = True
    backbone_weights: str = "none"  # imagenet | none | /local/path.h5
    frozen_bn: bool = False
    freeze_at: int = 0  # freeze the stem (1) and stages up to C{freeze_at}
    small_resnet_widths: list = field(default_factory=lambda: [32, 64, 128, 256])
    image_size: int = 512
    fpn_channels: int = 256
    rpn: RpnConfig = field(default_factory=RpnConfig)
    roi: RoiConfig = field(default_factory=RoiConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    intertwiner: IntertwinerConfig = field(default_factory=IntertwinerConfig)
    labelenc: LabelEncConfig = field(default_factory=LabelEncConfig)


@dataclass
class TrainConfig:
    batch_size: int = 8
    steps: Optional[int] = None
    epochs: Optional[float] = 13.0
    learning_rate: Optional[float] = None  # None: 0.01 * batch_size / 8 (linear scaling)
    base_learning_rate: float = 0.01
    base_batch_size: int = 8
    lr_drop_epochs: list = field(default_factory=lambda: [6, 10])
    lr_drop_steps: Optional[list] = None
    lr_drop_factor: float = 0.1
    warmup_steps: int = 0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    clip_norm: Optional[float] = 5.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    summary_every: int = 20
    evaluate_at_end: bool = True


@dataclass
class EvalConfig:
    batch_size: int = 8
    max_images: Optional[int] = None


@dataclass
class Config:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# The allowed values of each string option, listed once: the layers that take one of these
# options check it with ``check_choice`` against this table too.
CHOICES = {
    "data.dataset": ("embedded", "coco", "voc"),
    "data.embedded.format": ("coco", "voc"),
    "data.voc.classes": ("voc", "found"),
    "data.verify_images": ("header", "full", "none"),
    "model.backbone": ("resnet50", "resnet101", "small_resnet", "vgg16"),
    "model.roi.level_rounding": ("floor", "round"),
    "model.intertwiner.split": ("level", "roi_size"),
    "model.intertwiner.merge": ("linear", "separate", "naive_add"),
    "model.intertwiner.merge_point": ("predictor", "fc1"),
    "model.intertwiner.makeup_placement": ("roi", "map"),
    "model.intertwiner.makeup_residual": ("none", "add", "gated"),
    "model.intertwiner.loss": ("l2", "l1", "kl"),
    "model.intertwiner.reliable_source": ("p_l", "p_m", "bilinear", "generator"),
    "model.intertwiner.alignment": ("none", "ot", "ot_biased", "l2", "kl"),
    "model.intertwiner.buffer.mode": ("all", "decay", "window"),
}


def check_choice(key: str, value) -> str:
    """``value`` if it is one of ``CHOICES[key]``; else a ConfigError naming the key."""
    if value not in CHOICES[key]:
        raise ConfigError(f"'{key}' must be one of {CHOICES[key]}, got {value!r}")
    return value


def _check_value(key: str, annotation: Any, value: Any) -> Any:
    """Type-check one leaf value against its dataclass annotation; returns the coerced value."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _check_value(key, [a for a in args if a is not type(None)][0], value)
    if annotation in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if annotation in ("float", float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"config key '{key}' must be finite, got {value!r}")
        return float(value)
    if annotation in ("bool", bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if annotation in ("str", str):
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        if key in CHOICES and value not in CHOICES[key]:
            raise ConfigError(f"config key '{key}' must be one of {CHOICES[key]}, got {value!r}")
        return value
    if annotation in ("list", list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return list(value)
    return value


def _resolve_type(cls, name):
    hints = typing.get_type_hints(cls)
    return hints[name]


def _merge(obj, updates: dict, prefix: str = ""):
    """Merge a nested dict of updates into dataclass ``obj`` in place, validating keys."""
    if not isinstance(updates, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {updates!r}")
    names = {f.name for f in dataclasses.fields(obj)}
    for name, value in updates.items():
        key = prefix + str(name)
        if name not in names:
            raise ConfigError(
                f"unknown config key '{key}' (known keys here: {', '.join(sorted(names))})")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            _merge(current, value, key + ".")
        else:
            setattr(obj, name, _check_value(key, _resolve_type(type(obj), name), value))


def _load_yaml_chain(path: str, seen=None) -> list:
    """Returns the list of mappings from the outermost ``base`` to ``path`` itself."""
    seen = seen or []
    path = os.path.abspath(path)
    if path in seen:
        raise ConfigError(f"config 'base' cycle: {' -> '.join(seen + [path])}")
    if not os.path.exists(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    base = data.pop("base", None)
    chain = []
    if base is not None:
        base_path = base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)
        chain = _load_yaml_chain(base_path, seen + [path])
    return chain + [data]


def parse_override(text: str) -> dict:
    """``'model.rpn.nms_iou=0.6'`` -> ``{'model': {'rpn': {'nms_iou': 0.6}}}`` (YAML-typed value)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{text}': value is not valid YAML: {e}") from e
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


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


def load_config(path: Optional[str] = None, overrides: Optional[list] = None) -> Config:
    """Loads defaults, then the YAML chain of ``path``, then each ``key=value`` override."""
    cfg = Config()
    if path:
        for mapping in _load_yaml_chain(path):
            _merge(cfg, mapping)
    for text in overrides or []:
        _merge(cfg, parse_override(text))
    return validate(cfg)


def copy_config(cfg: Config, overrides: Optional[list] = None) -> Config:
    """A deep copy of ``cfg`` with overrides applied (used by tests and benchmarks)."""
    new = copy.deepcopy(cfg)
    for text in overrides or []:
        _merge(new, parse_override(text))
    return validate(new)
