"""Progress a person can read: training steps, evaluated images and long phases (system code).

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

The evaluation counts images the same way (``unit="images"``, one update per batch, a line
also after ``seconds`` without one)::

    images 8/5000  first batch 12.0s (incl. tracing)
    images 504/5000  41.3 img/s  ETA 1m49s

:class:`Phase` reports a stretch of work that has no steps of its own (reading a dataset's
json, COCOeval's matching): one line when it ends, with its time, and a ``still running``
line every ``seconds`` while it lasts, so nothing is silent for long. A phase opened with
``when_silent=True`` is a guard around work that reports itself (the evaluation around its
image counts and COCOeval's phases): its ``still running`` line comes only after ``seconds``
without a line from any :class:`Progress` or :class:`Phase`, so whatever in between has no
line of its own is still not silent.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Callable, Optional, TextIO


# When any Progress or Phase last wrote a line (time.monotonic), for ``Phase(when_silent=True)``.
_last_line = [time.monotonic()]


def _written() -> None:
    _last_line[0] = time.monotonic()


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
    """Reports steps ``start_step + 1 .. total_steps`` (see the module docstring).

    Args:
      total_steps: the run's last step (for the evaluation: the number of images).
      start_step: the step the run starts from (a restored checkpoint's), already done.
      images_per_step: images one step stands for, for images/s (the evaluation: 1).
      every: plain mode writes a line when a multiple of ``every`` is reached (and at the
        first and last step).
      stream: where to write (default ``sys.stdout`` at construction).
      interactive: force the mode; default ``stream.isatty()``.
      clock: seconds, monotonic (tests pass a fake one).
      unit: the name before the counts (``step``, ``images``).
      first: how the first line names its wait (``first step``, ``first batch``).
      seconds: plain mode also writes a line when this long passed since the last (None: never).
    """

    def __init__(self, total_steps: int, *, start_step: int = 0, images_per_step: int, every: int = 20,
                 stream: Optional[TextIO] = None, interactive: Optional[bool] = None,
                 clock: Callable[[], float] = time.perf_counter, unit: str = "step",
                 first: str = "first step", seconds: Optional[float] = None):
        if every < 1 or images_per_step < 1:
            raise ValueError(f"every ({every}) and images_per_step ({images_per_step}) must be >= 1")
        self.total_steps, self.start_step = total_steps, start_step
        self.images_per_step, self.every = images_per_step, every
        self.unit, self.first, self.seconds = unit, first, seconds
        self.stream = sys.stdout if stream is None else stream
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.clock = clock
        self._t_start = self._t_line = clock()
        self._line_step = start_step
        self._bar = None
        self._wait = None
        if interactive:
            import keras  # only the terminal bar needs it (the data modules import this one)

            with self._to_stream():
                self._bar = keras.utils.Progbar(total_steps, stateful_metrics=["loss", "lr"],
                                                unit_name=unit, interval=1.0)
                self._bar.update(start_step)

    def _to_stream(self):
        """Keras' Progbar writes to ``sys.stdout``; point it at our stream while it does."""
        if self.stream is sys.stdout:
            return contextlib.nullcontext()
        return contextlib.redirect_stdout(self.stream)

    @contextlib.contextmanager
    def waiting(self, step: int, seconds: float = 10.0):
        """A context for work before ``step`` is reported: before the first step of a plain
        log (setting up, starting the input pipeline, tracing) a ``still running`` line every
        ``seconds``, from the first such context until the first ``update`` (or ``close``),
        however many contexts the wait spans; else nothing."""
        if self._bar is None and self._line_step == self.start_step and self._wait is None:
            self._wait = Phase(f"{self.unit} {step}/{self.total_steps}: setting up, starting the input "
                               "pipeline and tracing", stream=self.stream, seconds=seconds,
                               clock=self.clock, report=False).__enter__()
        try:
            yield
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Ends the wait's ``still running`` lines (``update`` does it at the first step)."""
        if self._wait is not None:
            self._wait.__exit__(None, None, None)
            self._wait = None

    def update(self, step: int, loss: Optional[float] = None, lr: Optional[float] = None) -> Optional[str]:
        """Records that ``step`` finished (with this total loss and learning rate, when
        given). Returns the plain line written, or None (no line due, or terminal mode)."""
        self.close()
        values = [(name, v) for name, v in (("loss", loss), ("lr", lr)) if v is not None]
        if self._bar is not None:
            with self._to_stream():
                self._bar.update(step, values)
            return None
        now = self.clock()
        head = "  ".join([f"{self.unit} {step}/{self.total_steps}"]
                         + [f"{name} {format_number(v)}" for name, v in values])
        done = step - self._line_step
        if self._line_step == self.start_step:
            line = f"{head}  {self.first} {now - self._t_start:.1f}s (incl. tracing)"
        elif (step // self.every > self._line_step // self.every or step >= self.total_steps
              or (self.seconds is not None and now - self._t_line >= self.seconds)):
            elapsed = max(now - self._t_line, 1e-9)
            rate = done * self.images_per_step / elapsed
            if step >= self.total_steps:
                tail = f"took {format_duration(now - self._t_start)}"
            else:
                eta = (self.total_steps - step) * elapsed / max(done, 1)
                tail = f"ETA {format_duration(eta)}"
            line = f"{head}  {format_rate(rate)} img/s  {tail}"
        else:
            return None
        self.stream.write(line + "\n")
        self.stream.flush()
        _written()
        self._t_line, self._line_step = now, step
        return line


class Phase:
    """A context manager that reports one phase of work (see the module docstring).

    ``with Phase("index train: image headers", count=lambda: n_done) as phase: ...`` writes
    ``index train: image headers  118287 images  9.1s`` at the end, where the text after the
    name is ``phase.result`` (set inside the block); while the block runs, every ``seconds``
    a line ``index train: image headers  still running 20s (40000 done)`` (the count only
    with ``count``). Nothing is written at the end when the block raises or ``report`` is
    False (another line reports it). Lines are flushed at once. With ``when_silent`` the
    ``still running`` line waits for ``seconds`` without any line from a Progress or Phase.
    """

    def __init__(self, name: str, *, stream: Optional[TextIO] = None, seconds: Optional[float] = 10.0,
                 count: Optional[Callable[[], int]] = None,
                 clock: Callable[[], float] = time.perf_counter, report: bool = True,
                 when_silent: bool = False):
        self.name, self.seconds, self.count, self.clock = name, seconds, count, clock
        self.report, self.when_silent = report, when_silent
        self.stream = sys.stdout if stream is None else stream
        self.result = ""
        self.elapsed = 0.0
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"{self.name}  {text}\n")
            self.stream.flush()
            _written()

    def _beat(self) -> None:
        wait = self.seconds
        while not self._stop.wait(wait):
            if self.when_silent:
                quiet = time.monotonic() - _last_line[0]
                if quiet < self.seconds:  # another line came: wait until seconds after it
                    wait = self.seconds - quiet
                    continue
                wait = self.seconds
            done = f" ({self.count()} done)" if self.count is not None else ""
            self.write(f"still running {format_duration(self.clock() - self._t0)}{done}")

    def __enter__(self) -> "Phase":
        self._t0 = self.clock()
        if self.seconds:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.elapsed = self.clock() - self._t0
        if kind is None and self.report:
            self.write("  ".join(filter(None, [self.result, f"{self.elapsed:.1f}s"])))
