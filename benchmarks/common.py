"""Shared by the benchmark scripts (run from the repository root as ``python benchmarks/X.py``).

- ``prepare`` / ``timed``: build a config's model + optimizer, trace its train step on a
  synthetic batch, time steps (``train_step.py``, ``profile_step.py``).
- FLOP counting (to measure a step against the machine's limit): ``graph_flops`` counts a
  traced graph with ``tf.compat.v1.profiler`` (TF's registered per-op statistics: a
  multiply-add is 2 FLOPs — Conv2D 2·kh·kw·Cin per output element, MatMul 2·K per output
  element; element-wise ops 1 per element); ``forward_flops`` counts the forward pass of a
  detector's training graph, adding the convolutions and matrix products whose row count is
  only known at run time (the intertwiner's reliable sets) from one run of that graph.
- The machine's ceiling: ``MatmulCeiling`` (a chain of n×n matrix products in one
  ``tf.function``, timed call by call, between other timings too) and ``conv_gflops`` (one
  3×3 convolution of FPN width, best of N).
"""
from __future__ import annotations

import collections
import contextlib
import io
import math
import re
import resource
import time

# train.mixed_precision -> the dtype the heavy products run in.
COMPUTE_DTYPES = {"none": "float32", "float16": "float16", "bfloat16": "bfloat16"}
# Op types whose cost is 2 x output elements x reduction length (multiply-adds).
PRODUCT_OPS = ("Conv2D", "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compute_dtype(cfg) -> str:
    """The dtype of the step's matrix products under ``cfg.train.mixed_precision``."""
    return COMPUTE_DTYPES[cfg.train.mixed_precision]


# -- building and timing a train step ---------------------------------------------------------
def describe(cfg) -> str:
    """The timed setting in words: backbone, input size, batch, dtype policy, XLA."""
    m, t = cfg.model, cfg.train
    text = f"{m.backbone}-FPN {m.image_size}px batch {t.batch_size}"
    if t.mixed_precision != "none":
        text += f" {t.mixed_precision}"
    if t.jit_compile != "false":
        text += f" jit_compile={t.jit_compile}"
    return text


def build_step(model, optimizer, cfg, strategy=None):
    """``training.step.build_train_step`` for ``cfg``, with its ``train.jit_compile``."""
    from internet_tf.training.step import build_train_step

    return build_train_step(model, optimizer, cfg.train.clip_norm, strategy,
                            jit_compile=cfg.train.jit_compile)


def prepare(cfg, num_classes: int, strategy=None):
    """Builds model + optimizer of ``cfg`` and traces its train step on a synthetic batch.

    Returns ``(step, seconds of the first call, parts)``: ``step()`` runs one step and returns
    the total loss; ``parts`` holds ``model``, ``batch`` (the replicas' slices under a
    strategy) and ``train_step`` (the ``tf.function``)."""
    import tensorflow as tf

    from internet_tf.data.synthetic import synthetic_batch
    from internet_tf.training.distribute import split_batch
    from internet_tf.assembly.factory import build_model_and_optimizer

    strategy = strategy or tf.distribute.get_strategy()
    model, optimizer = build_model_and_optimizer(cfg, num_classes, 1000, strategy)
    batch = synthetic_batch(cfg.train.batch_size, cfg.model.image_size, cfg.data.max_instances, num_classes)
    if strategy.num_replicas_in_sync > 1:
        batch = split_batch(strategy, batch)
    train_step = build_step(model, optimizer, cfg, strategy)

    def step():
        return float(train_step(batch)["loss/total"])

    t0 = time.perf_counter()
    step()
    return step, time.perf_counter() - t0, {"model": model, "batch": batch, "train_step": train_step}


def timed(step, n: int) -> list:
    """Seconds of each of ``n`` calls of ``step``."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


# -- FLOPs ----------------------------------------------------------------------------------
def graph_flops(graph) -> tuple:
    """FLOPs of the ops of ``graph`` whose shapes are static -> ``(total, {op type: FLOPs})``.

    ``tf.compat.v1.profiler.profile`` with the float-operation options (its ``op`` view lists
    the op types as a chain, each node holding its own count in ``float_ops``). Ops inside
    function bodies (``tf.cond`` branches, ``while`` loops) are not counted."""
    import tensorflow as tf

    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # its v1-API deprecation notice
    try:  # it writes "N ops no flops stats due to incomplete shapes" (see forward_flops)
        with contextlib.redirect_stderr(io.StringIO()):
            node = tf.compat.v1.profiler.profile(graph=graph, cmd="op", options=options)
    finally:
        logger.setLevel(level)
    total, by_type = int(node.total_float_ops), {}
    while node.children:
        node = node.children[0]
        by_type[node.name] = int(node.float_ops)
    return total, by_type


def reduction_length(op):
    """Multiply-adds per output element of a product op (``PRODUCT_OPS``), or None when the
    graph does not know it."""
    a = op.inputs[0].shape
    if op.type == "Conv2D":
        kh, kw, cin, _ = op.inputs[1].shape
        n = None if None in (kh, kw, cin) else kh * kw * cin
    elif op.type == "MatMul":
        n = a[0] if op.get_attr("transpose_a") else a[1]
    else:  # BatchMatMul*: adj_x says whether a's last two axes are swapped
        n = a[-2] if op.get_attr("adj_x") else a[-1]
    return None if n is None else int(n)


def product_flops(output_shape, length: int) -> int:
    """FLOPs of a product op: 2 (a multiply-add) × output elements × reduction length."""
    return 2 * math.prod(int(d) for d in output_shape) * int(length)


def dynamic_products(graph) -> list:
    """The product ops of ``graph`` whose output shape is not static (the profiler skips them)
    but whose reduction length is: their cost is counted from the run-time output shape."""
    return [op for op in graph.get_operations()
            if op.type in PRODUCT_OPS and not op.outputs[0].shape.is_fully_defined()
            and reduction_length(op) is not None]


def part_of(op_name: str) -> str:
    """The layer an op belongs to: its outermost name scope without TF's ``_N`` suffix
    (``critic_3/reduce_conv_1/Conv2D`` -> ``critic``; the OT module's ``generator_p2`` and
    ``critic_p2`` keep their level)."""
    return re.sub(r"_\d+$", "", op_name.split("/")[0])


def forward_flops(model, batch) -> dict:
    """FLOPs of one forward pass of ``model``'s training graph (``train_losses``: backbone to
    losses, the training-time methods included) on ``batch``.

    Returns ``static`` (the profiler's count), ``dynamic`` (products whose row count is only
    known at run time, e.g. the critic on the intertwiner's reliable sets: counted from one
    run of the traced forward on ``batch``, which updates the model's running statistics as a
    training step does), ``total``, ``dynamic_ops`` (how many such ops), ``by_type`` (the
    profiler's count per op type) and ``products_by_part`` (the convolutions' and matrix
    products' FLOPs, static and dynamic, per layer: ``part_of``)."""
    import tensorflow as tf

    names = []

    def forward(batch):
        losses, _ = model.train_losses(batch, training=True)
        graph = tf.compat.v1.get_default_graph()
        ops = dynamic_products(graph)
        names[:] = [op.name for op in ops]
        return tf.add_n(list(losses.values())), [tf.shape(op.outputs[0]) for op in ops]

    concrete = tf.function(forward).get_concrete_function(batch)
    static, by_type = graph_flops(concrete.graph)
    by_part = collections.Counter()
    for op in concrete.graph.get_operations():
        length = reduction_length(op) if op.type in PRODUCT_OPS else None
        if length is not None and op.outputs[0].shape.is_fully_defined():
            by_part[part_of(op.name)] += product_flops(op.outputs[0].shape, length)
    dynamic = 0
    if names:
        _, shapes = concrete(batch)
        for name, shape in zip(names, shapes):
            flops = product_flops(shape.numpy(), reduction_length(concrete.graph.get_operation_by_name(name)))
            dynamic += flops
            by_part[part_of(name)] += flops
    return {"static": static, "dynamic": dynamic, "total": static + dynamic, "dynamic_ops": len(names),
            "by_type": by_type, "products_by_part": dict(by_part)}


def step_graph_flops(train_step, batch) -> int:
    """FLOPs counted directly in the traced train step (forward, backward — Conv2DBackprop*
    included — and gradient clipping; static shapes only; the optimizer's update sits in a
    ``tf.cond`` branch and is not counted). ``train_step`` is what ``build_step`` returned:
    the package's XLA wrapper (``graph/jit.py``); the ``tf.function`` it runs (after its
    first call, already traced) or else its plain one is read."""
    fn = train_step.fn or train_step.plain
    return graph_flops(fn.get_concrete_function(batch).graph)[0]


def xla_note(cfg, train_step) -> str:
    """Whether the step runs under XLA, when ``train.jit_compile`` asked for it (after the
    first call; the package's wrapper knows, ``graph/jit.py``)."""
    mode = cfg.train.jit_compile
    if mode == "false":
        return ""
    return f"train.jit_compile={mode}: XLA " + ("used" if train_step.uses_xla else f"not used ({train_step.reason})")


# -- the machine's ceiling --------------------------------------------------------------------
def _best_rate(fn, args, flops_per_call: float, iters: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn(*args).numpy()
    best = min(_seconds(fn, args) for _ in range(iters))
    return flops_per_call / best / 1e9


def _seconds(fn, args) -> float:
    t0 = time.perf_counter()
    fn(*args).numpy()
    return time.perf_counter() - t0


class MatmulCeiling:
    """The machine's matrix-product rate for ``dtype``: 2·n³ FLOPs per n×n product.

    One call runs a chain x ← x·b of ``repeats`` products (each needs the last, so none is
    skipped or hoisted) and returns a scalar; b is Gaussian with variance 1/n, so x keeps its
    scale in float16 too. ``repeats`` grows until a call lasts ``min_seconds`` (one 2048
    product is ~0.1 s on a 2-core CPU, ~50 µs on a GPU: the launch cost must not count).
    ``seconds()`` times one call, so calls can be interleaved with other timings."""

    def __init__(self, dtype: str = "float32", n: int = 2048, min_seconds: float = 0.05):
        import tensorflow as tf

        x = tf.cast(tf.random.normal([n, n], seed=1), dtype)
        b = tf.cast(tf.random.normal([n, n], stddev=1.0 / math.sqrt(n), seed=2), dtype)

        @tf.function
        def chain(x, b, repeats):
            for _ in tf.range(repeats):
                x = tf.matmul(x, b)
            return tf.reduce_sum(tf.cast(x[:1, :1], tf.float32))

        repeats = 1
        while True:
            args = (x, b, tf.constant(repeats))
            chain(*args).numpy()
            if _seconds(chain, args) >= min_seconds or repeats >= 4096:
                break
            repeats *= 4
        self.dtype, self.n, self._fn, self._args = dtype, n, chain, args
        self.flops_per_call = 2.0 * n ** 3 * repeats

    def seconds(self) -> float:
        return _seconds(self._fn, self._args)

    def gflops(self, seconds: float) -> float:
        return self.flops_per_call / seconds / 1e9


def conv_gflops(dtype: str = "float32", batch: int = 1, size: int = 128, channels: int = 256,
                iters: int = 10) -> float:
    """GFLOP/s of one 3×3 convolution ``channels`` → ``channels`` on a ``size``² map (the FPN's
    output convolution and the RPN's at P2 for a 512² input), best of ``iters``."""
    import tensorflow as tf

    x = tf.cast(tf.random.normal([batch, size, size, channels], seed=3), dtype)
    w = tf.cast(tf.random.normal([3, 3, channels, channels], stddev=0.02, seed=4), dtype)

    @tf.function
    def conv(x, w):
        y = tf.nn.conv2d(x, w, 1, "SAME")
        return tf.reduce_sum(tf.cast(y[:1, :1, :1, :1], tf.float32))

    return _best_rate(conv, (x, w), product_flops([batch, size, size, channels], 9 * channels), iters)
