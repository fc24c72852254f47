"""The configuration schema: one dataclass per section, every option of the detector, the
methods and the system a field with its default, and ``CHOICES``, the allowed values of each
string option."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

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
    # class: each class has its own colour (the demo); random: colours drawn independently of
    # the class, so only the shape tells the class (hard for small objects, the paper's premise)
    colours: str = "class"
    # Gaussian sigma (pixels) of the mask small objects are painted through; 0: sharp
    small_blur: float = 0.0


@dataclass
class VocConfig:
    """PASCAL VOC as distributed (Li et al. 2019, Table 5): each root holds Annotations/,
    JPEGImages/ and ImageSets/Main/<split>.txt; several roots (VOC2007 + VOC2012) are read as one set."""
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
    # Keep the decoded training images in memory after the first epoch (before the
    # resize and the random flip; the per-epoch shuffle still shuffles). For small datasets:
    # it holds every training image as uint8 at its own size (height × width × 3 bytes).
    cache_images: bool = False


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
    # H reads P_l and P_{m|l} average-pooled to level input_level's size where larger (ours;
    # the H of Li et al. 2019, Sec. 3.3 is an example): 4 pools P2 4x and P3 2x, H's
    # convolutions 16x and 4x fewer.
    # 0: H convolves the whole maps. Chosen by benchmarks/results/study_h_pooled.md.
    input_level: int = 4


@dataclass
class IntertwinerConfig:
    """Feature intertwiner (Li et al. 2019, Sec. 3.1–3.2) and the reliable-set source of
    Table 1 (Sec. 3.3)."""
    enabled: bool = True  # InterNet by default; the baseline configs set false
    split: str = "level"  # level (Eq. 7) | roi_size (Table 2a "by RoI size")
    makeup_shared: bool = False
    # Defaults below marked "study" were chosen by configs/studies/demo_causes.yaml
    # (docs/results.md, "Where we differ from the paper's text, and why"); the paper's text is
    # the other value.
    makeup_placement: str = "map"  # study; roi (Table 6: on each 14x14 RoI) | map (authors' code: on P_l)
    makeup_kernel: int = 3  # Table 6: 3x3
    makeup_residual: str = "add"  # study; none (Table 6: the head sees unit(x)) | add (x + unit(x), ours) | gated (x + g*unit(x), g from 0)
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
    """LabelEnc label-encoding supervision (Hao et al. 2020, LabelEnc appendix). Step 1 trains the label
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
    # (ResNet without FPN, and VGG-16's SSD-style levels)
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


# The parts of a detector ``train.init_parts`` may name (the methods' layers are one part).
INIT_PARTS = ("backbone", "fpn", "rpn", "box_head", "predictor", "methods")


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
    # Keras mixed-precision policy of the layers (variables stay float32; float16
    # adds a loss-scale optimizer); XLA for the train step (auto: on where it compiles).
    mixed_precision: str = "none"  # none | float16 | bfloat16
    jit_compile: str = "false"  # auto | true | false (YAML booleans accepted)
    log_every: int = 20  # with stdout not a terminal: one plain progress line every N steps
    # Fine-tuning: at a fresh start (no checkpoint of its own), load these parts of a trained
    # detector, a run directory (its latest checkpoint) or a checkpoint path; variables of
    # another shape (a predictor for another class count) are skipped and listed.
    init_from: Optional[str] = None
    init_parts: list = field(default_factory=lambda: list(INIT_PARTS))


@dataclass
class EvalConfig:
    batch_size: int = 8
    max_images: Optional[int] = None
    jit_compile: str = "false"  # auto | true | false: XLA for the inference function


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
    "data.embedded.colours": ("class", "random"),
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
    "train.mixed_precision": ("none", "float16", "bfloat16"),
    "train.jit_compile": ("auto", "true", "false"),
    "eval.jit_compile": ("auto", "true", "false"),
}


def check_choice(key: str, value) -> str:
    """``value`` if it is one of ``CHOICES[key]``; else a ConfigError naming the key."""
    if value not in CHOICES[key]:
        raise ConfigError(f"config key '{key}' must be one of {CHOICES[key]}, got {value!r}")
    return value
