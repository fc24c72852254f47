"""OT module between P_l and P_{m|l} (paper Sec. 3.3, Alg. 1, Table 1, Sec. 6.3).

- ``Generator`` is F_l of Alg. 1 / Table 1(c) "F neural net": P_{m|l} = F_l(P_{l+1}), a ×2
  transposed conv + BN + ReLU (m = l + 1 is ours). ``bilinear_upsample`` is the
  parameter-free "F bilinear" of Table 1(c).
- ``OTCritic`` is H_l of Alg. 1 (not the intertwiner's critic): two stride-2 3×3 convs
  (+ BN + ReLU) keeping C channels, adaptive average pooling to pool_size², then
  [B, C, k] with k = pool_size²: the C channels are the samples of each distribution.
  ``OTModule(input_level=4)`` first average-pools both maps to level 4's size where they are
  larger (ours: at 512², H_2's convolutions on P2 cost 16× those on P4's 32²).
- ``alignment_loss`` is the Table 1(d) supervision between p_l and p_{m|l}: "ot" (Alg. 1,
  cosine ground cost, default), "ot_biased" (Sec. 6.3), "l2" and "kl".
- ``OTModule`` holds F_l and H_l for the levels l ∈ {2, 3, 4} and returns the per-level
  W_l of Eq. 5 (each a batch mean of per-image values; the caller sums levels and applies
  λ_OT). Training only: nothing here is part of the exported model (Li et al. 2019, Sec. 3.3).
  ``into_pyramid=False`` shows the module the pyramid through ``stop_gradient``: W then
  trains F_l and H_l only — it moves P_{m|l} towards P_l, never the detector's own P_l or
  P_{l+1} (whether OT should move P_l is open in Li et al. 2019, Sec. 3.3; the paper's stated purpose is a
  reliable source that agrees with P_l).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.config import CHOICES
from internet_tf.modeling.batch_norm import BatchNorm
from internet_tf.ops.sinkhorn import biased_sinkhorn_divergence, cosine_cost, sinkhorn
from internet_tf.methods.intertwiner.sets import RELIABLE_LEVELS
from internet_tf.modeling.tracking import track
from internet_tf.ops.replica import global_mean

ALIGNMENT_KINDS = tuple(k for k in CHOICES["model.intertwiner.alignment"] if k != "none")
SOURCES = ("generator", "bilinear")  # the reliable sources (Table 1) that need this module


def _spatial_size(x):
    """Static (h, w) if known, else the dynamic [h, w] tensor."""
    hw = x.shape[1:3]
    return tuple(hw) if hw.is_fully_defined() else tf.shape(x)[1:3]


class Generator(keras.layers.Layer):
    """F_l: [B, h, w, C] -> [B, 2h, 2w, C] (or ``target_hw``), ConvTranspose ×2 + BN + ReLU."""

    def __init__(self, channels: int, kernel_size: int = 2, name: str = "ot_generator", **kwargs):
        super().__init__(name=name, **kwargs)
        self.deconv = keras.layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same",
                                                   kernel_initializer="he_uniform", name="deconv")
        self.bn = BatchNorm(name="bn")

    def call(self, x, target_hw=None, training=None):
        y = tf.nn.relu(self.bn(self.deconv(x), training=training))
        if target_hw is None:
            return y
        # Odd target sizes: crop the bottom/right extra row/column (2·ceil(h/2) ≥ h); resize
        # only if the output is still smaller or the sizes are not static.
        th, tw = target_hw[0], target_hw[1]
        y = y[:, :th, :tw]
        static = isinstance(th, int) and isinstance(tw, int)
        if not static or tuple(y.shape[1:3]) != (th, tw):
            y = tf.image.resize(y, [th, tw], method="bilinear")
        return y


def bilinear_upsample(x, target):
    """Parameter-free F ("F bilinear", Table 1c): resize x to target's spatial size."""
    return tf.image.resize(x, _spatial_size(target), method="bilinear")


def _adaptive_pool_matrix(n, out):
    """[out, n] averaging matrix of adaptive average pooling (bins floor(i·n/out) ..
    ceil((i+1)·n/out)); for n < out the bins repeat input cells (nearest upsampling)."""
    i = tf.range(out)
    start = (i * n) // out
    end = ((i + 1) * n + out - 1) // out
    j = tf.range(n)
    mask = tf.cast((j[None, :] >= start[:, None]) & (j[None, :] < end[:, None]), tf.float32)
    return mask / tf.reduce_sum(mask, axis=1, keepdims=True)


def _average_pool(x, out_h, out_w, layout: str = "bpqc"):
    """Adaptive average pooling (``_adaptive_pool_matrix``'s bins) of [B, H, W, C] to
    out_h × out_w, returned in ``layout`` (b, p = rows, q = columns, c)."""
    shape = tf.shape(x)
    pool_h = tf.cast(_adaptive_pool_matrix(shape[1], out_h), x.dtype)
    pool_w = tf.cast(_adaptive_pool_matrix(shape[2], out_w), x.dtype)
    return tf.einsum(f"ph,bhwc,qw->{layout}", pool_h, x, pool_w)


def shrink(x, size):
    """Adaptive average pooling of [B, H, W, C] to at most ``size`` = (h, w) (static ints or a
    [2] tensor); a side already at or below its bound is kept as it is."""
    hw = x.shape[1:3]
    if hw.is_fully_defined() and not tf.is_tensor(size) and hw[0] <= size[0] and hw[1] <= size[1]:
        return x
    shape = tf.shape(x)
    return _average_pool(x, tf.minimum(shape[1], size[0]), tf.minimum(shape[2], size[1]))


class OTCritic(keras.layers.Layer):
    """H_l: [B, H, W, C] -> [B, C, pool_size²] (two stride-2 conv + BN + ReLU, adaptive avg
    pool); ``call(x, size=(h, w))`` first average-pools x to at most h × w (``shrink``)."""

    def __init__(self, channels: int, pool_size: int = 8, name: str = "ot_critic", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pool_size = pool_size
        conv = lambda i: keras.layers.Conv2D(channels, 3, strides=2, padding="same",  # noqa: E731
                                             kernel_initializer="he_uniform", name=f"conv{i}")
        self.conv1, self.conv2 = conv(1), conv(2)
        self.bn1 = BatchNorm(name="bn1")
        self.bn2 = BatchNorm(name="bn2")

    def call(self, x, training=None, size=None):
        if size is not None:
            x = shrink(x, size)
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2)):
            x = tf.nn.relu(bn(conv(x), training=training))
        shape = tf.shape(x)
        x = _average_pool(tf.cast(x, tf.float32), self.pool_size, self.pool_size, layout="bcpq")
        return tf.reshape(x, [shape[0], x.shape[1] or shape[3], self.pool_size * self.pool_size])


def alignment_loss(p_l, p_ml, kind, epsilon=0.1, num_iters=10, log_domain=False, detach_plan=False):
    """Scalar alignment loss between critic outputs p_l, p_ml [B, C, k] (Table 1d).

    kind:
      "ot"        per-image Sinkhorn distance W (Alg. 1) with Q = cosine_cost(p_l, p_ml)
                  (rows of Q/P index the channels of p_l), averaged over the batch.
      "ot_biased" per-image 2 W(p_l, p_ml) − W(p_l, p_l) − W(p_ml, p_ml) (Sec. 6.3), averaged.
      "l2"        mean over the batch of the per-image mean squared difference.
      "kl"        each channel row of both is softmax-normalised over k (the paper does not
                  say how features become distributions; ours), then KL(p_ml ‖ p_l) =
                  Σ_k q_ml (log q_ml − log q_l), averaged over channels and batch.
    """
    if kind not in ALIGNMENT_KINDS:
        raise ValueError(f"alignment_loss: unknown kind {kind!r}; expected one of {ALIGNMENT_KINDS}")
    p_l = tf.cast(p_l, tf.float32)
    p_ml = tf.cast(p_ml, tf.float32)
    kw = dict(epsilon=epsilon, num_iters=num_iters, log_domain=log_domain, detach_plan=detach_plan)
    if kind == "ot":
        per_image, _ = sinkhorn(cosine_cost(p_l, p_ml), **kw)
    elif kind == "ot_biased":
        per_image = biased_sinkhorn_divergence(cosine_cost(p_l, p_ml), cosine_cost(p_l, p_l),
                                               cosine_cost(p_ml, p_ml), **kw)
    elif kind == "l2":
        per_image = tf.reduce_mean(tf.square(p_l - p_ml), axis=[1, 2])
    else:  # "kl"
        log_q_l = tf.nn.log_softmax(p_l, axis=-1)
        log_q_ml = tf.nn.log_softmax(p_ml, axis=-1)
        kl = tf.reduce_sum(tf.exp(log_q_ml) * (log_q_ml - log_q_l), axis=-1)  # [B, C]
        per_image = tf.reduce_mean(kl, axis=-1)
    return global_mean(tf.reduce_sum(per_image), tf.shape(per_image)[0])


class OTModule(keras.layers.Layer):
    """Per-level F_l (``source="generator"``) and H_l (``kind != "none"``).

    ``upsampled(pyramid)`` -> {l: P_{m|l}} (m = l + 1, shaped like P_l);
    ``alignment(pyramid, upsampled)`` -> {l: scalar W_l} ({} when kind == "none").
    H_l sees P_l and P_{m|l} in one call (concatenated on the batch axis), so its batch-norm
    statistics are shared by both inputs and one function maps both distributions; with
    ``input_level`` > 0 both are first average-pooled to that level's size where larger.
    """

    def __init__(self, levels=RELIABLE_LEVELS, channels: int = 256, source: str = "generator",
                 kind: str = "ot", epsilon: float = 0.1, num_iters: int = 10,
                 log_domain: bool = False, detach_plan: bool = False, pool_size: int = 8,
                 input_level: int = 0, generator_kernel: int = 2, into_pyramid: bool = True, name: str = "ot_module",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if source not in SOURCES:
            raise ValueError(f"OTModule: unknown source {source!r}; expected one of {SOURCES}")
        if kind != "none" and kind not in ALIGNMENT_KINDS:
            raise ValueError(f"OTModule: unknown kind {kind!r}; expected 'none' or one of "
                             f"{ALIGNMENT_KINDS}")
        self.levels = tuple(int(l) for l in levels)
        self.source, self.kind = source, kind
        self.epsilon, self.num_iters = epsilon, num_iters
        self.log_domain, self.detach_plan = log_domain, detach_plan
        self.into_pyramid = into_pyramid
        self.input_level = int(input_level)
        generators = ([Generator(channels, generator_kernel, name=f"generator_p{l}")
                       for l in self.levels] if source == "generator" else [])
        critics = ([OTCritic(channels, pool_size, name=f"critic_p{l}") for l in self.levels]
                   if kind != "none" else [])
        track(self, generators + critics)  # lists in ``levels`` order, for indexing
        self.generators, self.critics = generators, critics

    def _seen(self, feature):
        return feature if self.into_pyramid else tf.stop_gradient(feature)

    def upsampled(self, pyramid, training=None):
        out = {}
        for i, l in enumerate(self.levels):
            if self.source == "generator":
                out[l] = self.generators[i](self._seen(pyramid[l + 1]), target_hw=_spatial_size(pyramid[l]),
                                            training=training)
            else:
                out[l] = bilinear_upsample(self._seen(pyramid[l + 1]), pyramid[l])
        return out

    def alignment(self, pyramid, upsampled, training=None):
        if self.kind == "none":
            return {}
        if self.input_level and self.input_level not in pyramid:
            raise ValueError(f"model.intertwiner.ot.input_level {self.input_level}: the pyramid has "
                             f"levels {sorted(pyramid)}")
        size = _spatial_size(pyramid[self.input_level]) if self.input_level else None
        losses = {}
        for i, l in enumerate(self.levels):
            both = tf.concat([tf.cast(self._seen(pyramid[l]), upsampled[l].dtype), upsampled[l]], axis=0)
            p_l, p_ml = tf.split(self.critics[i](both, training=training, size=size), 2, axis=0)
            losses[l] = alignment_loss(p_l, p_ml, self.kind, epsilon=self.epsilon,
                                       num_iters=self.num_iters, log_domain=self.log_domain,
                                       detach_plan=self.detach_plan)
        return losses

    def call(self, pyramid, training=None):
        """Convenience: (upsampled, alignment) for a pyramid dict."""
        up = self.upsampled(pyramid, training=training)
        return up, self.alignment(pyramid, up, training=training)
