"""Training progress a person can read (the training loop's log).

The mode follows the stream. On a terminal (``stream.isatty()``) it is Keras' ``Progbar``,
one line redrawn in place, as before. Anywhere else (a pipe such as ``| tee``, a file,
``nohup``, CI) a redrawn bar would leave a wall of ``\\r``/``\\b`` characters, so it writes
one plain line at the first step of the run, every ``every`` steps (``train.log_every``) and
at the last step, and flushes it at once (a pipe is block-buffered)::

    step 1/500  loss 2.3456  lr 0.0004  first step 14.2s (incl. tracing)
    step 20/500  loss 1.8765  lr 0.0080  9.1 img/s  ETA 7m02s
    ...
    step 500/500  loss 0.4321  lr 0.0002  8.3 img/s  took 8m05s

``img/s`` is measured over the steps since the previous line (global batch × steps / wall
time, checkpoint and summary writes included) and ``ETA`` is the remaining steps at that
pace; the first step is shown on its own because it includes tracing. The last line gives
the wall time of the steps this call ran in place of the ETA. Losses and learning rates
print with four decimals, or in ``1.234e-05`` form when smaller than 0.001 or 10000 and over.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Optional, TextIO

import keras


def format_duration(seconds: float) -> str:
    """``45s``, ``3m12s`` or ``1h05m`` (seconds rounded; hours keep minutes only)."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_number(value: float) -> str:
    """Four decimals (``0.0200``), or ``1.234e-05`` outside [0.001, 10000) (zero prints ``0.0000``)."""
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4f}"
    return f"{value:.3e}"


def format_rate(images_per_second: float) -> str:
    """One decimal from 1 image/s up (``8.3``), two below (``0.42``)."""
    return f"{images_per_second:.1f}" if images_per_second >= 1 else f"{images_per_second:.2f}"


class Progress:
    """Reports training steps ``start_step + 1 .. total_steps`` (see the module docstring).

    Args:
      total_steps: the run's last step.
      start_step: the step the run starts from (a restored checkpoint's), already done.
      images_per_step: the global batch, for images/s.
      every: plain mode writes a line when ``step % every == 0`` (and at the first and last step).
      stream: where to write (default ``sys.stdout`` at construction).
      interactive: force the mode; default ``stream.isatty()``.
      clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, total_steps: int, *, start_step: int = 0, images_per_step: int, every: int = 20,
                 stream: Optional[TextIO] = None, interactive: Optional[bool] = None,
                 clock: Callable[[], float] = time.perf_counter):
        if every < 1 or images_per_step < 1:
            raise ValueError(f"every ({every}) and images_per_step ({images_per_step}) must be >= 1")
        self.total_steps, self.start_step = total_steps, start_step
        self.images_per_step, self.every = images_per_step, every
        self.stream = sys.stdout if stream is None else stream
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.clock = clock
        self._t_start = self._t_line = clock()
        self._steps_since_line = 0
        self._bar = None
        if interactive:
            with self._to_stream():
                self._bar = keras.utils.Progbar(total_steps, stateful_metrics=["loss", "lr"],
                                                unit_name="step", interval=1.0)
                self._bar.update(start_step)

    def _to_stream(self):
        """Keras' Progbar writes to ``sys.stdout``; point it at our stream while it does."""
        if self.stream is sys.stdout:
            return contextlib.nullcontext()
        return contextlib.redirect_stdout(self.stream)

    def update(self, step: int, loss: float, lr: float) -> Optional[str]:
        """Records that ``step`` finished with this total loss and learning rate. Returns the
        plain line written, or None (no line due, or terminal mode)."""
        if self._bar is not None:
            with self._to_stream():
                self._bar.update(step, [("loss", loss), ("lr", lr)])
            return None
        now = self.clock()
        self._steps_since_line += 1
        head = f"step {step}/{self.total_steps}  loss {format_number(loss)}  lr {format_number(lr)}"
        if step == self.start_step + 1:
            line = f"{head}  first step {now - self._t_start:.1f}s (incl. tracing)"
        elif step % self.every == 0 or step >= self.total_steps:
            elapsed = max(now - self._t_line, 1e-9)
            rate = self._steps_since_line * self.images_per_step / elapsed
            if step >= self.total_steps:
                tail = f"took {format_duration(now - self._t_start)}"
            else:
                eta = (self.total_steps - step) * elapsed / self._steps_since_line
                tail = f"ETA {format_duration(eta)}"
            line = f"{head}  {format_rate(rate)} img/s  {tail}"
        else:
            return None
        self.stream.write(line + "\n")
        self.stream.flush()
        self._t_line, self._steps_since_line = now, 0
        return line
