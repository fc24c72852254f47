"""XLA for the train step and the inference function: ``train.jit_compile`` and
``eval.jit_compile``, each ``auto | true | false``.

``false`` traces a plain ``tf.function``. ``true`` compiles it with XLA
(``jit_compile=True``) and stops with a ``JitCompileError`` naming the key and the op XLA
could not compile. ``auto`` tries XLA at the first call and, if compiling fails, logs one
line with the reason (the first line of XLA's error) and runs the plain function from then
on. XLA compiles a function when its first call traces it, before anything runs, so a
failed compile changes no variable and the fallback starts from the same state.

XLA compiles neither function of this detector: RoIAlign's ``CropAndResize`` has no XLA
kernel, nor has the gradient of the FPN's nearest upsampling (``ResizeNearestNeighborGrad``),
and with both replaced the RoI sets' data-dependent sizes (``tf.where`` groups per level)
still cannot be XLA shapes. Compiling only the backbone made the CPU step slower (docs/results.md,
"Mixed precision and XLA"), so nothing is compiled in parts. Under a MirroredStrategy the
step reads variables on several devices, which XLA refuses too: ``auto`` falls back there.
"""
from __future__ import annotations

import re

import tensorflow as tf
from absl import logging

from internet_tf.config import check_choice

# What a failed XLA compile raises (tf2xla: InvalidArgumentError "Detected unsupported
# operations ..."; some ops: UnimplementedError; XLA itself: InternalError).
COMPILE_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                  tf.errors.InternalError)
_REASON_CHARS = 300
# How the package traces its functions. Its graph code has no tensor-dependent Python
# control flow (tf.cond, tf.while_loop and tf.map_fn are written out), so AutoGraph would
# convert every function it calls for nothing: without it a train step traces in about half
# the time, to the same graph. Python control flow on a
# tensor then fails loudly at trace time instead of being converted.
TRACE = {"autograph": False}


class JitCompileError(RuntimeError):
    """``jit_compile: true`` but XLA cannot compile the function."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message, less the attribute block XLA appends
    to graph names (``[_XlaMustCompile=true,config_proto=...]``), at most
    ``_REASON_CHARS`` long."""
    lines = [l.strip() for l in str(getattr(error, "message", None) or error).splitlines() if l.strip()]
    text = re.sub(r"\[_XlaMustCompile[^\]]*\]", "", lines[0]) if lines else type(error).__name__
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 3] + "..."


def jit_function(fn, mode: str, key: str, what: str, **tf_function_kwargs) -> "JitFunction":
    """``fn`` as a ``tf.function`` under ``mode`` (``key``'s value: auto|true|false).

    ``what`` names the function in messages ("train step"); ``tf_function_kwargs`` (e.g.
    ``input_signature``) go to both traces. Both trace without AutoGraph (``TRACE``).
    """
    return JitFunction(fn, check_choice(key, mode), key, what, **{**TRACE, **tf_function_kwargs})


class JitFunction:
    """Callable like ``fn``. With ``false`` it is the plain ``tf.function`` from the start
    (XLA is never tried); otherwise the first call tries the XLA function, and a compile
    error raises (``true``) or switches to the plain one with one log line (``auto``).
    Errors of later calls are the function's own. ``uses_xla``: None until decided;
    ``reason``: why XLA is not used, after a fallback."""

    def __init__(self, fn, mode: str, key: str, what: str, **tf_function_kwargs):
        self.mode, self.key, self.what = mode, key, what
        self.plain = tf.function(fn, **tf_function_kwargs)
        self.compiled = None if mode == "false" else tf.function(fn, jit_compile=True, **tf_function_kwargs)
        self.fn = self.plain if mode == "false" else None
        self.reason = None

    @property
    def uses_xla(self):
        return None if self.fn is None else self.fn is self.compiled

    def __call__(self, *args, **kwargs):
        if self.fn is not None:
            return self.fn(*args, **kwargs)
        try:
            out = self.compiled(*args, **kwargs)
        except COMPILE_ERRORS as e:
            self.reason = first_line(e)
            if self.mode == "true":
                raise JitCompileError(
                    f"{self.key} is true but XLA cannot compile the {self.what}: {self.reason} "
                    f"(set {self.key} to auto to fall back to the plain function, or false)") from e
            logging.warning("%s: auto: XLA cannot compile the %s (%s); running it without XLA.",
                            self.key, self.what, self.reason)
            self.fn = self.plain
            return self.fn(*args, **kwargs)
        self.fn = self.compiled
        return out
