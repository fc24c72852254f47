"""``docs/configuration.md``, the config reference, generated from the schema.

``python -m internet_tf.config.reference`` writes the page (``--check`` only compares): every
key of ``schema.Config`` with its default, its allowed values (``schema.CHOICES``) or range
(``validation.RANGES``) and one line of meaning. The meanings are ``DESCRIPTIONS`` below; a key
missing there falls back to the comment on its field in ``schema.py``, so a new key gets a
row as soon as the page is regenerated.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re
import sys
import typing

import yaml

from internet_tf.config.schema import CHOICES, Config
from internet_tf.config.validation import RANGES

PAGE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "configuration.md")
UNDESCRIBED = "(no description)"

SECTIONS = {
    "": "Top level.",
    "data": "The dataset: which one, where its files are, and how images are read.",
    "data.embedded": "The built-in generated dataset of coloured shapes (the demo and the tests).",
    "data.voc": "PASCAL VOC as distributed (`data.dataset: voc`).",
    "model": "The detector: Faster R-CNN with an FPN on a ResNet (or VGG-16) backbone.",
    "model.rpn": "The region proposal network.",
    "model.roi": "RoI sampling and RoIAlign (the second stage's inputs).",
    "model.head": "The box head and the detections it outputs.",
    "model.intertwiner": "The feature intertwiner (Li et al. 2019, Sec. 3; `docs/methods.md`).",
    "model.intertwiner.buffer": "The class buffer (Li et al. 2019, Sec. 3.2, Table 2d/2e).",
    "model.intertwiner.ot": "The optimal-transport alignment (Li et al. 2019, Sec. 3.3, Alg. 1).",
    "model.labelenc": "LabelEnc, the label-encoding supervision (`docs/methods.md`).",
    "train": "The training loop, the optimizer and its schedule.",
    "eval": "Evaluation on the validation split.",
}

DESCRIPTIONS = {
    "seed": "Random seed of the weights' initialisation and the input order.",
    "data.dataset": "Which dataset: the embedded shapes, COCO-format json + images, or PASCAL VOC.",
    "data.train_annotations": "COCO-format json of the training split (`data.dataset: coco`).",
    "data.train_images": "Folder the training json's `file_name` entries are relative to.",
    "data.val_annotations": "COCO-format json of the validation split (`data.dataset: coco`).",
    "data.val_images": "Folder the validation json's `file_name` entries are relative to.",
    "data.max_instances": "Ground-truth boxes kept per image (the rest are dropped).",
    "data.flip": "Random horizontal flip of the training images.",
    "data.shuffle_buffer": "Examples in the training shuffle buffer.",
    "data.verify_images": "How images are checked when the dataset is indexed: read their header, "
                          "decode them fully, or trust them.",
    "data.cache_images": "Keep the decoded training images in memory after the first epoch "
                         "(small datasets only: height × width × 3 bytes each).",
    "data.embedded.root": "Where the generated dataset is written (reused when present).",
    "data.embedded.num_train": "Generated training images.",
    "data.embedded.num_val": "Generated validation images.",
    "data.embedded.image_size": "Side of the generated square images, in pixels.",
    "data.embedded.num_classes": "Shape classes drawn.",
    "data.embedded.seed": "Seed of the generated images.",
    "data.embedded.format": "Read the generated copy as COCO json, or write it as PASCAL VOC and read "
                            "that (exercises the VOC path).",
    "data.embedded.colours": "`class`: each class has its own colour; `random`: colours independent "
                             "of the class, so only the shape tells it.",
    "data.embedded.small_blur": "Gaussian sigma, in pixels, of the mask that small objects are painted "
                                "through (0: sharp): small objects ambiguous in themselves.",
    "data.voc.roots": "VOC root folders (each with Annotations/, JPEGImages/, ImageSets/Main/), "
                      "read as one set.",
    "data.voc.train_split": "Training split name (ImageSets/Main/<split>.txt).",
    "data.voc.val_split": "Validation split name.",
    "data.voc.use_difficult": "Train on the objects marked difficult (they are always ignored by "
                              "the evaluation).",
    "data.voc.classes": "`voc`: the 20 VOC classes in their usual order; `found`: the names in the "
                        "XML files, sorted.",
    "model.backbone": "Backbone network.",
    "model.fpn": "Feature pyramid (top-down pathway); false projects each backbone stage to "
                 "`fpn_channels` alone (required for vgg16).",
    "model.backbone_weights": "`imagenet` (Keras weights, downloaded), `none` (from scratch) or "
                              "a local .h5 file.",
    "model.frozen_bn": "Freeze the backbone's BatchNorm layers (statistics and scale/offset).",
    "model.freeze_at": "Freeze the stem (1) and the backbone stages up to C<freeze_at>; 0 trains all.",
    "model.small_resnet_widths": "Channel widths of C2-C5 of the `small_resnet` backbone.",
    "model.image_size": "Side of the square model input: the longer image side is resized to it, "
                        "then padded (a multiple of 64).",
    "model.fpn_channels": "Channels of every pyramid level.",
    "model.rpn.anchor_sizes": "Anchor side per level P2-P6, in input pixels (5 values).",
    "model.rpn.aspect_ratios": "Anchor aspect ratios (height / width).",
    "model.rpn.pos_iou": "An anchor with at least this IoU with a box is positive.",
    "model.rpn.neg_iou": "An anchor below this IoU with every box is negative.",
    "model.rpn.num_samples": "Anchors sampled per image for the RPN loss.",
    "model.rpn.positive_fraction": "Largest fraction of positives among the sampled anchors.",
    "model.rpn.nms_iou": "NMS IoU threshold of the proposals.",
    "model.rpn.pre_nms_topk_train": "Proposals per level kept before NMS, in training.",
    "model.rpn.pre_nms_topk_test": "Proposals per level kept before NMS, at inference.",
    "model.rpn.post_nms_topk_train": "Proposals per image after NMS, in training.",
    "model.rpn.post_nms_topk_test": "Proposals per image after NMS, at inference.",
    "model.rpn.min_size": "Proposals narrower or shorter than this (pixels) are dropped.",
    "model.roi.num_samples": "RoIs sampled per image for the box head's loss.",
    "model.roi.foreground_fraction": "Largest fraction of foreground RoIs among them.",
    "model.roi.fg_iou": "A RoI with at least this IoU with a box is foreground.",
    "model.roi.bg_iou_high": "A RoI below this IoU with every box is background...",
    "model.roi.bg_iou_low": "...if its IoU is at least this.",
    "model.roi.level_rounding": "Rounding of the RoI-to-level rule (Li et al. 2019, Eq. 6; FPN's "
                                "paper floors it).",
    "model.roi.level_base": "Canonical RoI side of Eq. 6 (224 for 800-pixel inputs).",
    "model.roi.canonical_level": "Level a RoI of side `level_base` is assigned to.",
    "model.roi.min_level": "Lowest level a RoI is pooled from.",
    "model.roi.max_level": "Highest level a RoI is pooled from.",
    "model.roi.output_size": "RoIAlign output side (the box head's input is this squared).",
    "model.roi.sampling_ratio": "RoIAlign sampling points per output cell and axis.",
    "model.head.fc_dim": "Width of the box head's two fully connected layers.",
    "model.head.bbox_weights": "Box delta weights (dy, dx, dh, dw) of the second stage.",
    "model.head.score_threshold": "Detections scoring below this are dropped.",
    "model.head.nms_iou": "Per-class NMS IoU threshold of the detections.",
    "model.head.max_detections": "Detections kept per image.",
    "model.intertwiner.enabled": "Train with the feature intertwiner (InterNet); false is the "
                                 "Faster R-CNN + FPN baseline.",
    "model.intertwiner.split": "How RoIs are split into less and more reliable sets: by pyramid "
                               "level (Eq. 7) or by RoI size (Table 2a).",
    "model.intertwiner.makeup_shared": "One make-up unit for every level instead of one per level.",
    "model.intertwiner.makeup_placement": "Where the make-up unit runs: on each RoI's pooled "
                                          "features (Table 6) or on the level's map.",
    "model.intertwiner.makeup_kernel": "Kernel size of the make-up unit's convolution (odd).",
    "model.intertwiner.makeup_residual": "`none`: the head sees the unit's output; `add`: the "
                                         "input plus it; `gated`: the input plus a learned gate "
                                         "(from 0) times it.",
    "model.intertwiner.critic_hidden": "Hidden channels of the critic.",
    "model.intertwiner.critic_extra_conv": "A third 1×1 convolution with BatchNorm and ReLU in "
                                           "the critic before its sigmoid.",
    "model.intertwiner.reliable_bn_update": "Whether the critic's passes over the reliable set "
                                            "update its BatchNorm moving statistics.",
    "model.intertwiner.merge": "How the make-up features and the box head's merge (Table 2c).",
    "model.intertwiner.merge_point": "Where they merge: after the head's first fc layer or "
                                     "before the predictor.",
    "model.intertwiner.loss": "Intertwiner loss between the less reliable features and the "
                              "class buffer (Table 2b).",
    "model.intertwiner.loss_weight": "Weight of the intertwiner loss.",
    "model.intertwiner.reliable_source": "Source of the reliable set's features (Table 1): P_l, "
                                         "P_m, P_m up-sampled bilinearly, or by a generator.",
    "model.intertwiner.alignment": "Alignment loss between P_l and the up-sampled P_m|l "
                                   "(Table 1d; needs `bilinear` or `generator`).",
    "model.intertwiner.alignment_weight": "Weight of the alignment loss.",
    "model.intertwiner.alignment_into_pyramid": "Let the alignment's gradients reach the "
                                                "detector's pyramid levels.",
    "model.intertwiner.warmup_steps": "Steps of a linear 0→1 ramp of both loss weights.",
    "model.intertwiner.buffer.mode": "How the buffer averages the history: all of it equally, "
                                     "an exponential decay, or a window (\"partial\").",
    "model.intertwiner.buffer.decay": "Decay factor of `mode: decay`.",
    "model.intertwiner.buffer.window": "Length of `mode: window`, in updates.",
    "model.intertwiner.buffer.per_level": "One buffer per level instead of one for all.",
    "model.intertwiner.buffer.detach": "Stop the gradient through the buffer's features "
                                       "(Table 2e).",
    "model.intertwiner.ot.epsilon": "Entropic regularisation ε of the Sinkhorn iterations.",
    "model.intertwiner.ot.iterations": "Sinkhorn iterations.",
    "model.intertwiner.ot.log_domain": "Iterate in the log domain (stable for small ε).",
    "model.intertwiner.ot.detach_plan": "Stop the gradient through the transport plan.",
    "model.intertwiner.ot.pool_size": "The critic H pools its input to pool_size² spatial "
                                      "features per channel.",
    "model.intertwiner.ot.generator_kernel": "Kernel size of the generator that up-samples P_m.",
    "model.intertwiner.ot.input_level": "H reads its inputs average-pooled to this level's size "
                                        "where larger; 0 convolves the whole maps.",
    "model.labelenc.enabled": "Train with LabelEnc.",
    "model.labelenc.step": "1: train the label encoder h with the detector; 2: train a fresh "
                           "detector from step 1 with h frozen.",
    "model.labelenc.step1_dir": "Step 2: the run directory of step 1.",
    "model.labelenc.augment": "Step 1: scale each box's label values by min(2·U(0,1), 1).",
    "model.labelenc.distill_weight": "Weight λ of the distillation loss.",
    "model.labelenc.distill_start": "Step 1: no distillation before this fraction of the steps.",
    "model.labelenc.distill_stop": "Step 2: no distillation from this fraction of the steps on.",
    "model.labelenc.step2_backbone": "Step 2's backbone: as configured (`model.backbone_weights`) "
                                     "or step 1's image backbone.",
    "train.batch_size": "Images per step (global, over all replicas).",
    "train.steps": "Training steps; when unset, `epochs` gives them.",
    "train.epochs": "Training length in epochs, used when `steps` is unset.",
    "train.learning_rate": "Peak learning rate; unset: base_learning_rate × batch_size / "
                           "base_batch_size.",
    "train.base_learning_rate": "Learning rate at `base_batch_size` (the linear scaling rule).",
    "train.base_batch_size": "Batch size that `base_learning_rate` belongs to.",
    "train.lr_drop_epochs": "Epochs at which the learning rate drops (unless `lr_drop_steps`).",
    "train.lr_drop_steps": "Steps at which the learning rate drops; overrides `lr_drop_epochs`.",
    "train.lr_drop_factor": "Factor of each drop.",
    "train.warmup_steps": "Steps of linear learning-rate warm-up.",
    "train.momentum": "SGD momentum.",
    "train.weight_decay": "L2 weight decay.",
    "train.clip_norm": "Global gradient-norm clipping; unset: none.",
    "train.checkpoint_every": "Steps between checkpoints.",
    "train.keep_checkpoints": "Checkpoints kept.",
    "train.summary_every": "Steps between TensorBoard summaries.",
    "train.evaluate_at_end": "Evaluate on the validation split when training ends.",
    "train.mixed_precision": "Keras mixed-precision policy of the layers (variables stay "
                             "float32; float16 adds loss scaling).",
    "train.jit_compile": "XLA for the train step (`auto`: on where it compiles).",
    "train.log_every": "With stdout not a terminal: one progress line every N steps.",
    "train.init_from": "Fine-tuning: a run directory or checkpoint whose weights start a fresh "
                       "run (a resumed run ignores it).",
    "train.init_parts": "Which parts `init_from` loads: backbone, fpn, rpn, box_head, predictor, "
                        "methods (shape mismatches are skipped and listed).",
    "eval.batch_size": "Images per evaluation batch.",
    "eval.max_images": "Evaluate at most this many validation images; unset: all.",
    "eval.jit_compile": "XLA for the inference function.",
}


@dataclasses.dataclass
class Key:
    name: str  # dotted
    default: object
    allowed: str
    meaning: str


def _field_comments(cls) -> dict:
    """Field name -> its comment in ``schema.py`` (trailing, or the lines just above it)."""
    comments, above = {}, []
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # a class without a source file has no comments to read
        return comments
    for line in source.splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        match = re.match(r"(\w+)\s*:[^#]*?(?:#\s*(.*))?$", stripped)
        if match and not stripped.startswith(('"', "'")):
            text = " ".join(above + ([match.group(2)] if match.group(2) else []))
            if text:
                comments[match.group(1)] = text
        above = []
    return comments


# Allowed values that ``validation.validate`` checks across fields rather than in its tables.
CHECKED_IN_VALIDATE = {
    "model.image_size": "a multiple of 64",
    "model.roi.min_level": "2 <= min_level <= max_level <= 5",
    "model.roi.max_level": "2 <= min_level <= max_level <= 5",
    "model.rpn.anchor_sizes": "5 numbers > 0",
    "model.head.bbox_weights": "4 numbers > 0",
    "model.small_resnet_widths": "4 integers >= 1",
    "model.intertwiner.makeup_kernel": "an odd integer >= 1",
    "model.intertwiner.ot.input_level": "0 or a level 2-6",
    "model.labelenc.step": "1, 2",
    "model.labelenc.step2_backbone": "`configured`, `step1`",
}
_TYPES = {int: "integer", float: "number", str: "string", bool: "true, false", list: "list"}


def _allowed(name: str, hint) -> str:
    optional = typing.get_origin(hint) is typing.Union
    if optional:
        hint = [a for a in typing.get_args(hint) if a is not type(None)][0]
    if name in CHOICES:
        text = ", ".join(f"`{c}`" for c in CHOICES[name])
        text = f"each of {text}" if hint is list else text
    elif name in CHECKED_IN_VALIDATE:
        text = CHECKED_IN_VALIDATE[name]
    elif name in RANGES:
        kind = _TYPES.get(hint, "")
        text = f"each {RANGES[name].text}" if hint is list else f"{kind} {RANGES[name].text}".strip()
    else:
        text = _TYPES.get(hint, "")
    return f"{text} or null" if optional else text


def keys(cls=Config, prefix: str = "") -> list:
    """Every leaf key under ``cls``, in the schema's order."""
    out = []
    instance = cls()
    hints = typing.get_type_hints(cls)
    comments = _field_comments(cls)
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            out.extend(keys(hints[f.name], name + "."))
            continue
        meaning = (DESCRIPTIONS.get(name) or f.metadata.get("help") or comments.get(f.name)
                   or UNDESCRIBED)
        out.append(Key(name, value, _allowed(name, hints[f.name]), meaning))
    return out


def _yaml(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text[:-4].strip() if text.endswith("...") else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The page's Markdown."""
    lines = ["# Configuration reference", "",
             "<!-- Generated by `python -m internet_tf.config.reference` from "
             "internet_tf/config/schema.py; do not edit by hand. -->", "",
             "A config is a YAML file (`configs/*.yaml`) whose keys are listed below, applied on "
             "top of these defaults; a file may start from another one with `base: other.yaml`. "
             "On the command line, `--override key=value` (repeatable) changes one key, the "
             "value read as YAML. An unknown key or a value outside its allowed values or "
             "range is an error naming the key. `null` means unset.", ""]
    sections: dict = {}  # parent key -> its leaf keys, in the schema's order
    for key in keys():
        sections.setdefault(key.name.rsplit(".", 1)[0] if "." in key.name else "", []).append(key)
    for section, rows in sections.items():
        lines += [f"## `{section}`" if section else "## Top level", ""]
        if section and SECTIONS.get(section):
            lines += [SECTIONS[section], ""]
        lines += ["| key | default | allowed | meaning |", "|---|---|---|---|"]
        lines += [f"| `{k.name}` | `{_cell(_yaml(k.default))}` | {_cell(k.allowed)} | "
                  f"{_cell(k.meaning)} |" for k in rows]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.normpath(PAGE), help="page to write")
    parser.add_argument("--check", action="store_true",
                        help="only compare: exit 1 when the page differs from the schema")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = open(args.out).read() if os.path.exists(args.out) else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m internet_tf.config.reference",
                  file=sys.stderr)
            return 1
        return 0
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out} ({len(keys())} keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
