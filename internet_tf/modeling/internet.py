"""InterNet: Faster R-CNN + FPN with the feature intertwiner and OT alignment (paper Fig. 2, Eq. 5).

At training and inference every RoI goes RoIAlign → make-up (Table 6) → box head, and the
critic (Table 7) feature of the made-up RoI joins the head feature (Table 2c merge). At
training only, the reliable (large) set of each level l ∈ {2, 3, 4} is cropped from its
source map (Table 1: P_l, P_m, or P_{m|l} = F_l(P_{l+1})), passed through the same critic
and added to the class buffer *before* the intertwiner loss (Eq. 3) is taken on every
level's small set; the OT module adds Σ_l W_l between P_l and P_{m|l} (Alg. 1, Eq. 5).
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.config import ModelConfig
from internet_tf.modeling.class_buffer import ClassBuffer
from internet_tf.modeling.detector import Detector
from internet_tf.modeling.intertwiner import Critic, MakeUp, level_loss, merge, small_large_masks
from internet_tf.modeling.ot import OTModule
from internet_tf.modeling.roi_align import crop_level
from internet_tf.ops.replica import global_all_gather, global_sum

RELIABLE_LEVELS = (2, 3, 4)  # level 5 has no higher level: it reads the buffer, adds nothing
ALL_LEVELS = (2, 3, 4, 5)


class InterNet(Detector):
    def __init__(self, cfg: ModelConfig, num_classes: int, name: str = "internet", **kwargs):
        super().__init__(cfg, num_classes, name=name, **kwargs)
        it = cfg.intertwiner
        self.it = it
        self.make_up = MakeUp(cfg.fpn_channels, shared=it.makeup_shared)
        self.critic = Critic(it.critic_hidden, cfg.head.fc_dim)
        b = it.buffer
        self.buffer = ClassBuffer(num_classes, cfg.head.fc_dim, mode=b.mode, decay=b.decay,
                                  window=b.window, num_buffers=3 if b.per_level else 1, detach=b.detach)
        self.ot = None
        if it.reliable_source in ("bilinear", "generator"):
            o = it.ot
            self.ot = OTModule(levels=RELIABLE_LEVELS, channels=cfg.fpn_channels,
                               source=it.reliable_source, kind=it.alignment, epsilon=o.epsilon,
                               num_iters=o.iterations, log_domain=o.log_domain,
                               detach_plan=o.detach_plan, pool_size=o.pool_size,
                               generator_kernel=o.generator_kernel)

    # -- detector path (training and inference) ------------------------------------------
    def head_features(self, roi_feats, levels, training=False, for_loss=True):
        made = self.make_up(roi_feats, levels, training=training)
        head = self.box_head(made)
        if self.it.merge == "separate" and not for_loss:
            return head, {}  # the critic only serves the intertwiner loss then
        critic = self.critic.on_rois(made, training=training)
        return merge(head, critic, self.it.merge), {"critic_features": critic}

    # -- training-only terms -------------------------------------------------------------
    def _reliable_features(self, out, level, large, upsampled, training):
        """Critic features and labels of level ``level``'s large set (Table 1 source)."""
        idx = tf.cast(tf.where(large), tf.int32)
        labels = tf.gather_nd(out["roi_classes"], idx)
        source = self.it.reliable_source
        if source == "p_m":  # (b): RoIAlign on each RoI's own level, as the detector did
            crops = tf.gather_nd(out["roi_features"], idx)
        else:
            feature = out["pyramid"][level] if source == "p_l" else upsampled[level]
            crops = crop_level(feature, tf.gather_nd(out["rois"], idx), idx[:, 0], 2 ** level,
                               self.cfg.roi.output_size, self.cfg.roi.sampling_ratio)
        return self.critic(crops, training=training), labels

    def _update_buffer(self, feats, labels, buffer_index):
        """Adds the batch to the buffer; under a distribution strategy the statistics are
        summed over replicas first, so every replica holds the single-device buffer."""
        if self.buffer.mode == "window":
            return self.buffer.update(global_all_gather(feats), global_all_gather(labels), buffer_index)
        sums, counts = global_sum(list(self.buffer.batch_statistics(feats, labels)))
        return self.buffer.apply_statistics(sums, counts, buffer_index)

    def extra_losses(self, out, batch, training=True):
        it = self.it
        classes, levels = out["roi_classes"], out["roi_levels"]
        masks = {l: small_large_masks(classes, levels, l, split=it.split, rois=out["rois"],
                                      roi_output_size=self.cfg.roi.output_size) for l in ALL_LEVELS}
        upsampled = self.ot.upsampled(out["pyramid"], training=training) if self.ot is not None else {}
        reliable = {l: self._reliable_features(out, l, masks[l][1], upsampled, training)
                    for l in RELIABLE_LEVELS}
        # The buffer takes the current batch before the loss (SPEC §2).
        if it.buffer.per_level:
            entries = {l: self._update_buffer(*reliable[l], buffer_index=l - 2) for l in RELIABLE_LEVELS}
            entries[5] = entries[2]  # the last level reads level 2's buffer (paper footnote 3)
        else:
            feats = tf.concat([reliable[l][0] for l in RELIABLE_LEVELS], axis=0)
            labels = tf.concat([reliable[l][1] for l in RELIABLE_LEVELS], axis=0)
            shared = self._update_buffer(feats, labels, buffer_index=0)
            entries = {l: shared for l in ALL_LEVELS}
        metrics = {}
        inter = []
        for l in ALL_LEVELS:
            reps, valid = entries[l]
            term = level_loss(out["critic_features"], classes, masks[l][0], reps, valid, it.loss)
            metrics[f"intertwiner_level{l}"] = term
            inter.append(term)
        losses = {"intertwiner": it.loss_weight * tf.add_n(inter)}
        if self.ot is not None and it.alignment != "none":
            w = self.ot.alignment(out["pyramid"], upsampled, training=training)
            for l, value in w.items():
                metrics[f"alignment_level{l}"] = value
            losses["alignment"] = it.alignment_weight * tf.add_n(list(w.values()))
        metrics["buffer_coverage"] = tf.cast(self.buffer.coverage(0), tf.float32)
        metrics["buffer_mean_norm"] = self.buffer.mean_norm(0)
        metrics["reliable_rois"] = tf.cast(tf.add_n([tf.shape(reliable[l][1])[0] for l in RELIABLE_LEVELS]),
                                           tf.float32)
        return losses, metrics

    def build_all(self, batch_size: int = 1):
        """Creates every variable; the dummy training pass must not leave entries in the buffer."""
        initial = [v.numpy() for v in self.buffer.variables]
        super().build_all(batch_size)
        for var, value in zip(self.buffer.variables, initial):
            var.assign(value)
