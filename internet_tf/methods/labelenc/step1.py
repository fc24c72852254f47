"""LabelEnc step 2 starts from step 1 (LabelEnc appendix): h and its FPN come from step 1 (then stay
frozen), the detector's FPN is initialised from h's FPN, and its RPN and box heads (with the
intertwiner's head-path layers when both runs have it) are step 1's; the backbone stays as
configured (ImageNet or from scratch) or, with ``step2_backbone: step1``, is step 1's.

``load_step1`` checks step 1's ``--model_dir`` and fails with a message naming the problem
(missing folder, config or checkpoint; not a LabelEnc step-1 run; another class count, FPN
width or label-encoder shape) before anything trains. Step 1's detector is rebuilt by the ``restore_model`` the caller
hands in (``assembly/factory.py``: the assembly sits above the methods it composes).
"""
from __future__ import annotations

from internet_tf.config import ModelConfig
from internet_tf.methods.labelenc.encoder import encoder_shape
from internet_tf.run_dir import RunDirError, read_run


class Step1Error(ValueError):
    """model.labelenc.step1_dir cannot serve as LabelEnc step 1 of this run."""


def _problem(step1_dir: str, what: str):
    return Step1Error(f"LabelEnc step 2: 'model.labelenc.step1_dir' = {step1_dir!r} {what}")


def _encoder_shape(cfg: ModelConfig):
    return encoder_shape(cfg.backbone, cfg.small_resnet_widths)


def load_step1(cfg: ModelConfig, num_classes: int, restore_model):
    """Step 1's detector (every variable built, weights restored from its latest checkpoint
    by ``restore_model(model_cfg, num_classes, checkpoint)``)."""
    if restore_model is None:
        raise Step1Error("LabelEnc step 2 starts from step 1's detector: the trainer was given "
                         "no restore_model to rebuild it (build it with assembly.train.build_trainer)")
    step1_dir = cfg.labelenc.step1_dir
    try:
        run = read_run(step1_dir)
    except RunDirError as err:
        hint = " (train step 1 there first)" if err.problem == "does not exist" else ""
        raise _problem(step1_dir, err.problem + hint) from err
    step1_cfg = run.cfg.model
    if not step1_cfg.labelenc.enabled or step1_cfg.labelenc.step != 1:
        raise _problem(step1_dir, "was not trained as LabelEnc step 1 "
                                  f"(model.labelenc.enabled={step1_cfg.labelenc.enabled}, "
                                  f"step={step1_cfg.labelenc.step})")
    if run.num_classes != num_classes:
        raise _problem(step1_dir, f"was trained with {run.num_classes} classes, this run has {num_classes}")
    if step1_cfg.fpn_channels != cfg.fpn_channels:
        raise _problem(step1_dir, f"has FPN width {step1_cfg.fpn_channels}, this run "
                                  f"model.fpn_channels={cfg.fpn_channels}")
    if _encoder_shape(step1_cfg) != _encoder_shape(cfg):
        raise _problem(step1_dir, f"has a label encoder of shape {_encoder_shape(step1_cfg)} "
                                  f"(backbone {step1_cfg.backbone}), this run needs {_encoder_shape(cfg)}")
    if step1_cfg.image_size != cfg.image_size:
        raise _problem(step1_dir, f"has image_size {step1_cfg.image_size}, this run {cfg.image_size}")
    return restore_model(step1_cfg, num_classes, run.checkpoint)


def copy_weights(source, target):
    """Assigns every variable of layer ``source`` to the same-shaped one of ``target``."""
    src, dst = source.weights, target.weights
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst)):
        raise Step1Error(f"cannot initialise {target.name} from {source.name}: the variables differ")
    for a, b in zip(src, dst):
        b.assign(a)


def initialise_from_step1(detector, labelenc, cfg: ModelConfig, restore_model):
    """Step 2's start: h + FPN_h, the detector FPN (from FPN_h), RPN and box heads from step 1
    — with the head-path layers of every other method step 1 also ran (the intertwiner's
    make-up and merged critic) — and, with ``step2_backbone: step1``, step 1's backbone."""
    step1 = load_step1(cfg, detector.num_classes, restore_model)
    step1_enc = step1.labelenc.encoder
    copy_weights(step1_enc, labelenc.encoder)
    copy_weights(step1_enc.fpn, detector.fpn)
    names = ("rpn_head", "box_head", "predictor")
    for name in names + (("backbone",) if cfg.labelenc.step2_backbone == "step1" else ()):
        copy_weights(getattr(step1, name), getattr(detector, name))
    for method in detector.methods:
        source = getattr(step1, method.name, None)
        if source is not None:
            for a, b in zip(source.inference_layers(), method.inference_layers()):
                copy_weights(a, b)
