"""The feature intertwiner with its class buffer and OT module, as a training-time method
handed to the detector (paper Fig. 2, Sec. 3, Eq. 5).

At training and inference every RoI goes RoIAlign → make-up (Table 6; on the RoI or, with
``makeup_placement: map``, on the level map before RoIAlign) → box head, and the critic
(Table 7) feature of the made-up RoI joins the head (Table 2c merge, before the predictor or
after fc1). At training only, the reliable (large) set of each level l ∈ {2, 3, 4} is cropped
from its source map (Table 1: P_l, P_m, or P_{m|l} = F_l(P_{l+1})), passed through the same
critic and added to the class buffer *before* the intertwiner loss (Eq. 3) is taken on every
level's small set; the OT module adds Σ_l W_l between P_l and P_{m|l} (Alg. 1, Eq. 5). Both
extra terms can ramp up linearly over ``warmup_steps``.
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.config import IntertwinerConfig, ModelConfig
from internet_tf.methods.base import TrainingMethod
from internet_tf.methods.intertwiner.class_buffer import ClassBuffer
from internet_tf.methods.intertwiner.critic import Critic
from internet_tf.methods.intertwiner.loss import level_loss
from internet_tf.methods.intertwiner.make_up import MakeUp, MakeUpMap
from internet_tf.methods.intertwiner.merge import merge
from internet_tf.methods.intertwiner.ot import OTModule
from internet_tf.methods.intertwiner.sets import RELIABLE_LEVELS, small_large_masks
from internet_tf.ops.levels import ROI_LEVELS
from internet_tf.ops.replica import global_all_gather, global_sum
from internet_tf.ops.roi_align import crop_level, roi_align_flat


class Intertwiner(TrainingMethod):
    """``settings``: the method's own switches (make-up, critic, merge, loss, reliable
    source, OT, class buffer); ``channels``: the detector's FPN width; ``fc_dim``: its box
    head's feature width; ``roi_output_size``, ``sampling_ratio``: its RoIAlign's, which the
    reliable sets' crops repeat. The levels' strides come with the training outputs."""

    def __init__(self, settings: IntertwinerConfig, num_classes: int, *, channels: int, fc_dim: int,
                 roi_output_size: int, sampling_ratio: int, name: str = "intertwiner", **kwargs):
        super().__init__(name=name, **kwargs)
        self.settings = settings
        self.roi_output_size, self.sampling_ratio = int(roi_output_size), int(sampling_ratio)
        self.on_map = settings.makeup_placement == "map"
        make_up = MakeUpMap if self.on_map else MakeUp
        self.make_up = make_up(channels, shared=settings.makeup_shared, kernel_size=settings.makeup_kernel,
                               residual=settings.makeup_residual)
        self.critic = Critic(settings.critic_hidden, fc_dim, extra_conv=settings.critic_extra_conv)
        buffer = settings.buffer
        self.buffer = ClassBuffer(num_classes, fc_dim, mode=buffer.mode, decay=buffer.decay,
                                  window=buffer.window, num_buffers=3 if buffer.per_level else 1,
                                  detach=buffer.detach)
        self.ot = None
        if settings.reliable_source in ("bilinear", "generator"):
            ot = settings.ot
            self.ot = OTModule(levels=RELIABLE_LEVELS, channels=channels,
                               source=settings.reliable_source, kind=settings.alignment, epsilon=ot.epsilon,
                               num_iters=ot.iterations, log_domain=ot.log_domain,
                               detach_plan=ot.detach_plan, pool_size=ot.pool_size, input_level=ot.input_level,
                               generator_kernel=ot.generator_kernel, into_pyramid=settings.alignment_into_pyramid)

    @classmethod
    def from_model_config(cls, cfg: ModelConfig, num_classes: int) -> "Intertwiner":
        """The intertwiner of ``cfg.intertwiner`` for the detector ``cfg`` describes."""
        return cls(cfg.intertwiner, num_classes, channels=cfg.fpn_channels, fc_dim=cfg.head.fc_dim,
                   roi_output_size=cfg.roi.output_size, sampling_ratio=cfg.roi.sampling_ratio)

    # -- detector path (training and inference) ------------------------------------------
    def head_maps(self, pyramid, training=False):
        return self.make_up(pyramid, training=training) if self.on_map else pyramid

    def transform_rois(self, roi_features, levels, training=False):
        """-> (made-up RoI features, the critic's features of them [B, R, D] as the side;
        None with ``merge: separate``, where the critic only serves the loss and ``losses``
        runs it on the foreground)."""
        made = roi_features if self.on_map else self.make_up(roi_features, levels, training=training)
        if self.settings.merge == "separate":
            return made, None
        return made, self.critic.on_rois(made, training=training)

    def merge(self, point, features, critic_features):
        if point != self.settings.merge_point or critic_features is None:
            return features
        return merge(features, critic_features, self.settings.merge)

    def inference_layers(self):
        return [self.make_up] + ([] if self.settings.merge == "separate" else [self.critic])

    # -- training-only terms -------------------------------------------------------------
    def _reliable_features(self, outputs, level, large, upsampled, training):
        """Critic features and labels of level ``level``'s large set (Table 1 source)."""
        idx = tf.cast(tf.where(large), tf.int32)
        labels = tf.gather_nd(outputs.roi_classes, idx)
        boxes = tf.gather_nd(outputs.rois, idx)
        source, strides = self.settings.reliable_source, outputs.strides
        if source == "p_m":  # (b): RoIAlign on each RoI's own level of the detector's pyramid
            crops = roi_align_flat(outputs.pyramid, boxes, idx[:, 0], tf.gather_nd(outputs.roi_levels, idx),
                                   output_size=self.roi_output_size, sampling_ratio=self.sampling_ratio,
                                   strides=strides)
        else:
            feature = outputs.pyramid[level] if source == "p_l" else upsampled[level]
            crops = crop_level(feature, boxes, idx[:, 0], strides[level], self.roi_output_size,
                               self.sampling_ratio)
        feats = self.critic(crops, training=training, update_statistics=self.settings.reliable_bn_update)
        return feats, labels

    def _update_buffer(self, feats, labels, buffer_index):
        """Adds the batch to the buffer; under a distribution strategy the statistics are
        summed over replicas first, so every replica holds the single-device buffer."""
        if self.buffer.mode == "window":
            return self.buffer.update(global_all_gather(feats), global_all_gather(labels), buffer_index)
        sums, counts = global_sum(list(self.buffer.batch_statistics(feats, labels)))
        return self.buffer.apply_statistics(sums, counts, buffer_index)

    def _small_set_critic(self, outputs, training):
        """Critic features [B, R, D] of the RoIs the intertwiner loss reads. With a merge they
        are the head's own (every RoI); with ``merge: separate`` nothing else reads them, so the
        critic runs on the foreground RoIs only — the union of every level's small set (Eq. 7)
        — and the other rows stay zero (no loss term reads them)."""
        critic_features = outputs.side(self)
        if critic_features is not None:
            return critic_features
        idx = tf.where(outputs.roi_classes > 0)
        feats = self.critic(tf.gather_nd(outputs.roi_features, idx), training=training)
        shape = tf.concat([tf.shape(outputs.roi_classes, out_type=tf.int64), [self.critic.dim]], 0)
        return tf.scatter_nd(idx, feats, shape)

    def ramp(self, step):
        """Warm-up factor of the extra losses: min(1, step / warmup_steps); 1 without warm-up."""
        if step is None or self.settings.warmup_steps <= 0:
            return tf.constant(1.0)
        return tf.minimum(1.0, tf.cast(step, tf.float32) / float(self.settings.warmup_steps))

    def losses(self, outputs, batch, step=None, training=True, second=None):
        settings = self.settings
        classes, levels = outputs.roi_classes, outputs.roi_levels
        masks = {l: small_large_masks(classes, levels, l, split=settings.split, rois=outputs.rois,
                                      roi_output_size=self.roi_output_size, strides=outputs.strides)
                 for l in ROI_LEVELS}
        upsampled = self.ot.upsampled(outputs.pyramid, training=training) if self.ot is not None else {}
        reliable = {l: self._reliable_features(outputs, l, masks[l][1], upsampled, training)
                    for l in RELIABLE_LEVELS}
        # The buffer takes the current batch before the loss (Li et al. 2019, Sec. 3.1–3.2).
        if settings.buffer.per_level:
            entries = {l: self._update_buffer(*reliable[l], buffer_index=l - 2) for l in RELIABLE_LEVELS}
            entries[5] = entries[2]  # the last level reads level 2's buffer (paper footnote 3)
        else:
            feats = tf.concat([reliable[l][0] for l in RELIABLE_LEVELS], axis=0)
            labels = tf.concat([reliable[l][1] for l in RELIABLE_LEVELS], axis=0)
            shared = self._update_buffer(feats, labels, buffer_index=0)
            entries = {l: shared for l in ROI_LEVELS}
        ramp = self.ramp(step)
        metrics = {}
        inter = []
        critic_small = self._small_set_critic(outputs, training)
        for l in ROI_LEVELS:
            reps, valid = entries[l]
            term = level_loss(critic_small, classes, masks[l][0], reps, valid, settings.loss)
            metrics[f"intertwiner_level{l}"] = term
            inter.append(term)
        losses = {"intertwiner": ramp * settings.loss_weight * tf.add_n(inter)}
        if self.ot is not None and settings.alignment != "none":
            w = self.ot.alignment(outputs.pyramid, upsampled, training=training)
            for l, value in w.items():
                metrics[f"alignment_level{l}"] = value
            losses["alignment"] = ramp * settings.alignment_weight * tf.add_n(list(w.values()))
        if settings.warmup_steps > 0:
            metrics["extra_loss_ramp"] = ramp
        metrics["buffer_coverage"] = tf.cast(self.buffer.coverage(0), tf.float32)
        metrics["buffer_mean_norm"] = self.buffer.mean_norm(0)
        metrics["reliable_rois"] = tf.cast(tf.add_n([tf.shape(reliable[l][1])[0] for l in RELIABLE_LEVELS]),
                                           tf.float32)
        return losses, metrics

    def write_summaries(self):
        """Class-buffer coverage (classes with an entry) and a histogram of the entries' L2
        norms, per buffer (Table 2d)."""
        buffer = self.buffer
        for index in range(buffer.num_buffers):
            suffix = "" if buffer.num_buffers == 1 else f"_level{index + 2}"
            tf.summary.scalar("train/buffer/coverage" + suffix, float(buffer.coverage(index)))
            norms = buffer.norms(index)
            if int(tf.size(norms)):
                tf.summary.histogram("train/buffer/norms" + suffix, norms)
