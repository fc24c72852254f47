"""progress.py: plain lines when the stream is not a terminal, Keras' Progbar when it
is; the line format, images/s and ETA arithmetic; the evaluation's image counts; phases."""
import io
import time

import pytest

from internet_tf.progress import Phase, Progress, format_duration, format_number


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(progress, clock, steps, seconds_per_step, loss=1.5, lr=0.02):
    lines = []
    for step in steps:
        clock.now += seconds_per_step(step)
        lines.append(progress.update(step, loss, lr))
    return lines


def test_piped_stream_gets_one_plain_line_every_n_steps_and_first_and_last():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(50, images_per_step=8, every=20, stream=out, clock=clock)
    assert not progress.interactive  # a StringIO is not a terminal
    # The first step takes 12 s (tracing), every later one 0.5 s: 16 img/s.
    lines = run(progress, clock, range(1, 51), lambda s: 12.0 if s == 1 else 0.5)
    written = out.getvalue().splitlines()
    assert [l for l in lines if l] == written
    assert written == [
        "step 1/50  loss 1.5000  lr 0.0200  first step 12.0s (incl. tracing)",
        "step 20/50  loss 1.5000  lr 0.0200  16.0 img/s  ETA 15s",
        "step 40/50  loss 1.5000  lr 0.0200  16.0 img/s  ETA 5s",
        "step 50/50  loss 1.5000  lr 0.0200  16.0 img/s  took 36s",
    ]
    assert "\r" not in out.getvalue() and "\b" not in out.getvalue()


def test_rate_is_measured_since_the_previous_line_and_a_resumed_run_starts_at_its_step():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(1000, start_step=400, images_per_step=2, every=100, stream=out, clock=clock)
    # Steps before 500 take 1 s, later ones 4 s: the line at 600 shows the later pace only.
    lines = run(progress, clock, range(401, 601), lambda s: 1.0 if s <= 500 else 4.0, loss=2e-5, lr=0.0)
    lines = [l for l in lines if l]
    assert lines[0].startswith("step 401/1000  loss 2.000e-05  lr 0.0000  first step 1.0s")
    assert lines[1] == "step 500/1000  loss 2.000e-05  lr 0.0000  2.0 img/s  ETA 8m20s"
    assert lines[2] == "step 600/1000  loss 2.000e-05  lr 0.0000  0.50 img/s  ETA 26m40s"
    assert len(lines) == 3


def test_terminal_stream_keeps_the_keras_progress_bar():
    clock, out = FakeClock(), Terminal()
    progress = Progress(5, images_per_step=1, every=1, stream=out, clock=clock)
    assert progress.interactive
    assert run(progress, clock, range(1, 6), lambda s: 1.0) == [None] * 5
    text = out.getvalue()
    assert "5/5" in text and "loss: 1.5000" in text and "lr: 0.0200" in text
    assert "img/s" not in text  # not the plain format
    # The mode can be forced either way, whatever the stream.
    assert not Progress(5, images_per_step=1, stream=Terminal(), interactive=False).interactive


def test_formats():
    assert [format_duration(s) for s in (0, 44.6, 60, 192, 3599, 3600, 3 * 3600 + 5 * 60 + 59)] == \
        ["0s", "45s", "1m00s", "3m12s", "59m59s", "1h00m", "3h05m"]
    assert [format_number(x) for x in (0.02, 1.23456, 0.0, 0.0004, 12345.0)] == \
        ["0.0200", "1.2346", "0.0000", "4.000e-04", "1.234e+04"]
    with pytest.raises(ValueError, match="every"):
        Progress(10, images_per_step=8, every=0)


def test_evaluation_counts_images_in_a_piped_log_with_a_line_at_least_every_n_seconds():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(100, images_per_step=1, every=50, stream=out, clock=clock, unit="images",
                        first="first batch", seconds=10.0)
    # Batches of 8 images: the first takes 9 s (tracing), later ones 4 s (2 img/s), the last
    # batch is short (4 images). Lines: the first batch, then every 10 s (or 50 images), the end.
    for done in list(range(8, 100, 8)) + [100]:
        clock.now += 9.0 if done == 8 else 4.0
        progress.update(done)
    assert out.getvalue().splitlines() == [
        "images 8/100  first batch 9.0s (incl. tracing)",
        "images 32/100  2.0 img/s  ETA 34s",
        "images 56/100  2.0 img/s  ETA 22s",
        "images 80/100  2.0 img/s  ETA 10s",
        "images 100/100  1.7 img/s  took 57s",  # the short last batch: 20 images in 12 s
    ]


def test_phase_writes_its_result_and_time_and_beats_while_it_runs():
    out = io.StringIO()
    with Phase("index train: image headers", stream=out, seconds=0.02, count=lambda: 7) as phase:
        deadline = time.monotonic() + 5
        while out.getvalue().count("still running") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        phase.result = "9 files"
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("index train: image headers  still running 0s (7 done)")
    assert lines[-1].startswith("index train: image headers  9 files  ") and lines[-1].endswith("s")
    with pytest.raises(KeyError), Phase("quick", stream=out, seconds=None):
        raise KeyError("a failed phase writes no result line")
    assert "quick" not in out.getvalue()


def _wait_for(out, text, count=1):
    deadline = time.monotonic() + 5
    while out.getvalue().count(text) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_wait_for_the_first_step_beats_across_contexts_until_the_first_update():
    out = io.StringIO()
    progress = Progress(5, images_per_step=1, stream=out)
    with progress.waiting(1, seconds=0.02):  # setting up
        _wait_for(out, "still running")
    with progress.waiting(1, seconds=0.02):  # the first step: the same wait goes on
        _wait_for(out, "still running", 2)
    assert out.getvalue().startswith(
        "step 1/5: setting up, starting the input pipeline and tracing  still running")
    progress.update(1, 1.0, 0.1)
    beats = out.getvalue().count("still running")
    with progress.waiting(2, seconds=0.02):  # later steps do not beat
        time.sleep(0.1)
    assert out.getvalue().count("still running") == beats
    with pytest.raises(KeyError), Progress(5, images_per_step=1, stream=out).waiting(1, 0.02):
        raise KeyError("an error ends the wait")
    terminal = Progress(5, images_per_step=1, stream=Terminal(), clock=FakeClock())
    with terminal.waiting(1, seconds=0.02):  # the bar is not interleaved with lines
        time.sleep(0.1)
    assert "still running" not in terminal.stream.getvalue()


def test_a_when_silent_guard_beats_only_after_seconds_without_any_line():
    out = io.StringIO()
    with Phase("evaluation", stream=out, seconds=0.3, report=False, when_silent=True):
        for _ in range(6):  # another phase writes a line every 0.1 s: the guard stays quiet
            with Phase("COCOeval: match", stream=out, seconds=None):
                time.sleep(0.1)
        assert "evaluation" not in out.getvalue()
        _wait_for(out, "evaluation  still running")  # then nothing else writes: it beats
    lines = out.getvalue().splitlines()
    assert lines[:6] == [line for line in lines[:6] if line.startswith("COCOeval: match  ")]
    assert lines[6].startswith("evaluation  still running")
    assert len(lines) == 7
