"""The thin Faster R-CNN + FPN model composing backbone, FPN, RPN, RoIAlign and box head (Lin et al. 2017).

Without FPN (``model.fpn: false``, paper Table 5) the neck is a 1×1 projection of
each backbone level (``modeling/fpn.py``); the rest is unchanged. The levels' strides are the
backbone's (``Backbone.strides``: 4–64 for the ResNets, 16–256 for VGG-16): the anchors and
RoIAlign are built from them.

Training (``train_outputs``) and inference (``inference``) share every layer. Training-time
methods (``methods/``: the feature intertwiner) are handed to the detector and
composed through one interface (``methods/base.py``): they may change the maps and RoI
features the box head reads, merge side features into the head, ask for a second pass of
the RPN and box head on a pyramid built from the labels, and add training-only losses. The
training outputs are typed (``modeling/outputs.py: TrainOutputs``): the pyramid and its
strides, the RPN's outputs and targets, the sampled RoIs with their targets, the head path
over them and each method's side tensors under its name.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from internet_tf.config import ModelConfig
from internet_tf.ops import losses as loss_lib
from internet_tf.modeling.backbone import Backbone
from internet_tf.modeling.box_head import BoxHead, BoxPredictor
from internet_tf.modeling.fpn import build_neck
from internet_tf.modeling.outputs import HeadPath, TrainOutputs
from internet_tf.ops.postprocess import detect
from internet_tf.ops.roi_align import assign_levels, multilevel_roi_align
from internet_tf.modeling.rpn import RPNHead
from internet_tf.modeling.tracking import track
from internet_tf.ops.levels import RPN_LEVELS as LEVELS
from internet_tf.ops.proposals import generate_proposals
from internet_tf.ops import anchors as anchor_ops
from internet_tf.ops import targets as target_ops


class Detector(keras.Model):
    """Faster R-CNN with FPN or without (``model.fpn``). ``num_classes`` counts foreground
    classes (K). ``cfg`` is read here, once: the layers are built from it and the numbers the
    forward passes use kept as the ``*_settings`` below; it stays as ``self.cfg``, the record
    of what the detector was built from."""

    def __init__(self, cfg: ModelConfig, num_classes: int, methods=(), name: str = "detector",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.cfg = cfg
        rpn, roi, head = cfg.rpn, cfg.roi, cfg.head
        self.train_proposal_settings = dict(pre_nms_topk=rpn.pre_nms_topk_train, post_nms_topk=rpn.post_nms_topk_train,
                                            nms_iou=rpn.nms_iou, min_size=rpn.min_size)
        self.test_proposal_settings = dict(pre_nms_topk=rpn.pre_nms_topk_test, post_nms_topk=rpn.post_nms_topk_test,
                                           nms_iou=rpn.nms_iou, min_size=rpn.min_size)
        self.rpn_target_settings = dict(pos_iou=rpn.pos_iou, neg_iou=rpn.neg_iou, num_samples=rpn.num_samples,
                                        positive_fraction=rpn.positive_fraction)
        self.roi_target_settings = dict(num_samples=roi.num_samples, foreground_fraction=roi.foreground_fraction,
                                        fg_iou=roi.fg_iou, bg_iou_high=roi.bg_iou_high, bg_iou_low=roi.bg_iou_low,
                                        bbox_weights=tuple(head.bbox_weights))
        self.level_settings = dict(base=roi.level_base, canonical_level=roi.canonical_level,  # Eq. 6
                                   min_level=roi.min_level, max_level=roi.max_level, rounding=roi.level_rounding)
        self.roi_align_settings = dict(output_size=roi.output_size, sampling_ratio=roi.sampling_ratio)
        self.detection_settings = dict(bbox_weights=tuple(head.bbox_weights), score_threshold=head.score_threshold,
                                       nms_iou=head.nms_iou, max_detections=head.max_detections)
        self.num_classes = int(num_classes)
        self.image_size = int(cfg.image_size)
        neck = build_neck(cfg)  # checks the backbone/neck pairing before the backbone is built
        self.backbone = Backbone(cfg.backbone, cfg.image_size, cfg.backbone_weights,
                                 frozen_bn=cfg.frozen_bn, freeze_at=cfg.freeze_at,
                                 small_widths=cfg.small_resnet_widths)
        self.strides = self.backbone.strides  # {level: stride}, P2–P6
        self.fpn = neck  # the FPN, or the per-level projection with model.fpn false
        self.rpn_head = RPNHead(len(cfg.rpn.aspect_ratios), cfg.fpn_channels)
        self.box_head = BoxHead(cfg.head.fc_dim)
        self.predictor = BoxPredictor(self.num_classes)
        anchors = anchor_ops.generate_anchors(cfg.image_size, LEVELS, tuple(cfg.rpn.anchor_sizes),
                                              tuple(cfg.rpn.aspect_ratios), strides=self.strides)
        self._anchor_arrays = {l: np.asarray(a) for l, a in anchors.items()}
        self.methods = list(methods)
        track(self, self.methods)

    # -- shared pieces ---------------------------------------------------------------------
    def anchors(self):
        return {l: tf.constant(a) for l, a in self._anchor_arrays.items()}

    def pyramid(self, images, training=False):
        return self.fpn(self.backbone(images, training=training))

    def proposals(self, pyramid, image_info, training=False):
        logits, deltas = self.rpn_head(pyramid)
        settings = self.train_proposal_settings if training else self.test_proposal_settings
        boxes, valid = generate_proposals(logits, deltas, self.anchors(), image_info, **settings)
        return logits, deltas, boxes, valid

    def roi_levels(self, rois):
        return assign_levels(rois, **self.level_settings)

    def roi_features(self, pyramid, rois):
        """Eq. 6 level assignment, then RoIAlign on each RoI's level -> (levels, features)."""
        levels = self.roi_levels(rois)
        feats = multilevel_roi_align(pyramid, rois, levels, strides=self.strides, **self.roi_align_settings)
        return levels, feats

    def head_path(self, pyramid, rois, training=False) -> HeadPath:
        """RoIs [B, R, 4] -> ``HeadPath``: their levels, the RoI features the box head read,
        the predictor's input, and each method's side tensors under its name."""
        maps = pyramid
        for method in self.methods:
            maps = method.head_maps(maps, training=training)
        levels, feats = self.roi_features(maps, rois)
        sides = {}
        for method in self.methods:
            feats, sides[method.name] = method.transform_rois(feats, levels, training=training)

        def mix(point, features):
            for method in self.methods:
                features = method.merge(point, features, sides[method.name])
            return features

        return HeadPath(levels, feats, self.box_head(feats, mix=mix), sides)

    def inference_layers(self) -> list:
        """The layers the inference path uses (what an export tracks)."""
        layers = [self.backbone, self.fpn, self.rpn_head, self.box_head, self.predictor]
        return layers + [l for m in self.methods for l in m.inference_layers()]

    # -- training ------------------------------------------------------------------------
    def train_outputs(self, batch, training=True, pyramid=None) -> TrainOutputs:
        """One forward pass of the training graph -> ``TrainOutputs``, every tensor the
        losses need. ``pyramid`` replaces the FPN maps of the batch's images (the second
        pass of ``train_losses`` on a method's ``label_pyramid``)."""
        gt_boxes, gt_classes = batch["gt_boxes"], batch["gt_classes"]
        if pyramid is None:
            pyramid = self.pyramid(batch["images"], training=training)
        logits, deltas, proposals, valid = self.proposals(pyramid, batch["image_info"], training=True)
        rpn_targets = target_ops.rpn_targets(anchor_ops.concat_levels(self.anchors()), gt_boxes, gt_classes,
                                             **self.rpn_target_settings)
        roi_targets = target_ops.roi_targets(proposals, valid, gt_boxes, gt_classes, **self.roi_target_settings)
        head = self.head_path(pyramid, roi_targets["rois"], training=training)
        class_logits, box_deltas = self.predictor(head.head_features)
        return TrainOutputs(pyramid=pyramid, strides=self.strides, rpn_logits=logits, rpn_deltas=deltas,
                            rpn_targets=rpn_targets, roi_targets=roi_targets, head=head,
                            class_logits=class_logits, box_deltas=box_deltas)

    def train_losses(self, batch, training=True, step=None):
        """Returns ``(losses, metrics)``: named, already weighted scalar loss terms (their sum is
        Eq. 5's L) and extra scalars to log. ``step`` (the optimizer step) drives the
        methods' loss warm-ups; None means warm-ups are over.

        A method with a ``label_pyramid`` (LabelEnc step 1: FPN_h(h(y)) of the batch's label
        map) gets a second pass: the same RPN and box head run on that pyramid, their terms
        named ``<method>_rpn_*``, ``<method>_head_*``, and the method's ``losses`` see that
        pass as ``second``."""
        outputs = self.train_outputs(batch, training=training)
        losses = self.detection_losses(outputs)
        metrics = {}
        for method in self.methods:
            second = None
            label_pyramid = method.label_pyramid(batch, training=training)
            if label_pyramid is not None:
                second = self.train_outputs(batch, training, pyramid=label_pyramid)
                losses.update({f"{method.name}_{k}": v for k, v in self.detection_losses(second).items()})
            extra, extra_metrics = method.losses(outputs, batch, step=step, training=training, second=second)
            losses.update(extra)
            metrics.update(extra_metrics)
        foreground = tf.reduce_sum(tf.cast(outputs.roi_classes > 0, tf.float32))
        metrics["foreground_rois_per_image"] = foreground / tf.cast(tf.shape(outputs.rois)[0], tf.float32)
        return losses, metrics

    @staticmethod
    def detection_losses(outputs: TrainOutputs) -> dict:
        """The standard Faster R-CNN terms (RPN and box head) of a training pass."""
        losses = dict(loss_lib.rpn_losses(outputs.rpn_logits, outputs.rpn_deltas, outputs.rpn_targets))
        losses.update(loss_lib.head_losses(outputs.class_logits, outputs.box_deltas, outputs.roi_targets))
        return losses

    # -- inference -----------------------------------------------------------------------
    def inference(self, images, image_info):
        """Images [B, S, S, 3] (0..255, padded) -> detections in input pixels (see postprocess)."""
        pyramid = self.pyramid(images, training=False)
        _, _, rois, valid = self.proposals(pyramid, image_info, training=False)
        head = self.head_path(pyramid, rois, training=False)
        class_logits, box_deltas = self.predictor(head.head_features)
        return detect(class_logits, box_deltas, rois, image_info, rois_valid=valid, **self.detection_settings)

    def predictor_features(self, images, rois):
        """Inference-mode features fed to the classifier and box regressor for given RoIs.

        ``images`` [B, S, S, 3] (0..255, padded), ``rois`` [B, R, 4] yxyx in input pixels ->
        [B, R, D]. Used by the mechanism check (paper Fig. 1) to compare small- and
        large-object features of one class.
        """
        pyramid = self.pyramid(images, training=False)
        return self.head_path(pyramid, rois, training=False).head_features

    def call(self, images, training=False):
        batch_size = tf.shape(images)[0]
        size = float(self.image_size)
        info = tf.tile(tf.constant([[size, size, 1.0, 0.0]]), [batch_size, 1])
        return self.inference(images, info)

    def build_all(self, batch_size: int = 1):
        """Creates every variable (inference and training paths) with a dummy batch."""
        s = self.image_size
        batch = {
            "images": tf.zeros([batch_size, s, s, 3]),
            "gt_boxes": tf.tile(tf.constant([[[0.0, 0.0, s / 2, s / 2], [-1.0, -1.0, -1.0, -1.0]]]),
                                [batch_size, 1, 1]),
            "gt_classes": tf.tile(tf.constant([[1, -1]], tf.int32), [batch_size, 1]),
            "image_info": tf.tile(tf.constant([[float(s), float(s), 1.0, 0.0]]), [batch_size, 1]),
        }
        # The dummy training pass must not leave state behind (the class buffer's entries).
        state = [(v, v.numpy()) for m in self.methods for v in m.non_trainable_variables]
        self.train_losses(batch, training=False)
        self.inference(batch["images"], batch["image_info"])
        for var, value in state:
            var.assign(value)
