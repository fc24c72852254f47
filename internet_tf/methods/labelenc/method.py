"""LabelEnc as a training-time method handed to the detector (Hao et al. 2020, appendix).

Step 1: the label map y of the batch's ground truth (with the per-box intensity
augmentation) goes through h and its FPN; the detector's *own* RPN and box head run on that
pyramid with their own losses (``labelenc_rpn_*``, ``labelenc_head_*``: the detector's
second pass over ``label_pyramid``, ``Detector.train_losses``), from which h and its FPN learn; the distillation loss between adapt(FPN(I)) and the detached FPN_h(h(y)) trains
the detector after a warm-up (weight 0 before ``distill_start`` of the steps).
Step 2: h and its FPN are frozen (loaded from step 1, ``step1.py``); only the distillation
loss, on the clean label map, until ``distill_stop`` of the steps.
Nothing of h, its FPN or adapt is part of inference or of an export.
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.config import LabelEncConfig, ModelConfig
from internet_tf.methods.base import TrainingMethod
from internet_tf.methods.labelenc.adapt import Adaptation
from internet_tf.methods.labelenc.distill import distillation_loss
from internet_tf.methods.labelenc.encoder import LabelEncoder, encoder_shape
from internet_tf.methods.labelenc.label_map import label_map, random_intensity
from internet_tf.methods.labelenc.step1 import initialise_from_step1


def present_channels(gt_classes, num_classes: int):
    """Label-map channels (class − 1) of the classes in the batch's ground truth, sorted; the
    other channels of y are all zero (padding −1 and out-of-range classes paint nothing).
    Channel 0 is always included, so the set is never empty (a conv needs one channel)."""
    classes = tf.reshape(tf.cast(gt_classes, tf.int32), [-1])
    classes = tf.boolean_mask(classes, (classes >= 1) & (classes <= num_classes))
    return tf.sort(tf.unique(tf.concat([[0], classes - 1], 0))[0])


class LabelEnc(TrainingMethod):
    """``settings``: the method's own (step, augmentation, distillation weight and schedule,
    step 1's folder); ``image_size``: the detector's input side, the label map's size;
    ``fpn_channels``: its FPN width, that of h's FPN and of the adaptation; ``encoder_shape``:
    h's (bottleneck widths, stem channels, C2–C5 channels), ``encoder.encoder_shape``."""

    def __init__(self, settings: LabelEncConfig, num_classes: int, *, image_size: int, fpn_channels: int,
                 encoder_shape: tuple, name: str = "labelenc", **kwargs):
        super().__init__(name=name, **kwargs)
        self.settings = settings
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)
        widths, stem, outputs = encoder_shape
        self.encoder = LabelEncoder(fpn_channels, widths=widths, stem_channels=stem, outputs=outputs,
                                    num_classes=num_classes)
        self.adapt = Adaptation(fpn_channels)
        if settings.step == 2:
            self.encoder.trainable = False  # h and its FPN are frozen in step 2
        self.total_steps = None

    @classmethod
    def from_model_config(cls, cfg: ModelConfig, num_classes: int) -> "LabelEnc":
        """LabelEnc of ``cfg.labelenc`` for the detector ``cfg`` describes."""
        return cls(cfg.labelenc, num_classes, image_size=cfg.image_size, fpn_channels=cfg.fpn_channels,
                   encoder_shape=encoder_shape(cfg.backbone, cfg.small_resnet_widths))

    def set_total_steps(self, total_steps: int):
        self.total_steps = int(total_steps)

    def start_fresh(self, detector, restore_model=None):
        if self.settings.step == 2:
            initialise_from_step1(detector, self, detector.cfg, restore_model)

    def distill_factor(self, step):
        """1 while the distillation loss is on, else 0: step 1 switches it on at
        ``distill_start``·steps, step 2 off at ``distill_stop``·steps; always on when the
        step or the run length is unknown."""
        if step is None or self.total_steps is None:
            return tf.constant(1.0)
        step = tf.cast(step, tf.float32)
        if self.settings.step == 1:
            return tf.cast(step >= self.settings.distill_start * self.total_steps, tf.float32)
        return tf.cast(step < self.settings.distill_stop * self.total_steps, tf.float32)

    def inference_layers(self):
        return []

    def teacher(self, batch, training=True):
        """FPN_h(h(y)) of the batch's label map (augmented in step 1 when training)."""
        intensity = None
        if self.settings.step == 1 and self.settings.augment and training:
            intensity = random_intensity(batch["gt_classes"])
        present = present_channels(batch["gt_classes"], self.num_classes)
        y = label_map(batch["gt_boxes"], batch["gt_classes"], self.num_classes,
                      self.image_size, self.image_size, intensity, channels=present)
        return self.encoder(y, classes=present, training=training and self.settings.step == 1)

    def label_pyramid(self, batch, training=False):
        """Step 1: the teacher pyramid, on which the detector's RPN and box head also run
        (their losses train h and its FPN); step 2 has no such pass."""
        return self.teacher(batch, training) if self.settings.step == 1 else None

    def losses(self, outputs, batch, step=None, training=True, second=None):
        # Step 1's teacher is the pyramid of the detector's second pass (one draw of the
        # intensity augmentation serves both); step 2 builds the clean one here.
        teacher = second.pyramid if second is not None else self.teacher(batch, training)
        losses, metrics = {}, {}
        student = self.adapt({l: outputs.pyramid[l] for l in teacher})
        distill = distillation_loss(student, teacher)  # the teacher is detached inside
        factor = self.distill_factor(step)
        losses["distill"] = factor * self.settings.distill_weight * distill
        metrics["labelenc_distill_unweighted"] = distill
        metrics["labelenc_distill_on"] = factor
        return losses, metrics
