"""Test-suite setup: quiet TensorFlow's C++ logging; ``tests/`` is importable (reference.py);
every test starts from its own fixed random state, so a test draws the same weights and
inputs on every run whatever ran before it in the same pytest-xdist worker.

Scheduling (``make test`` runs ``pytest -n 2 --dist loadfile --no-loadscope-reorder``): each
test module runs whole on one worker, so a module fixture (a trained run, an export) is built
once, not once per worker (``--dist loadgroup`` would group chosen modules only, but it does not
group with pytest 9: https://github.com/pytest-dev/pytest-xdist/issues/1386). Modules are handed
out most expensive first (the longest-processing-time rule), so that the small ones fill the
gaps at the end instead of a long module starting while the other worker runs out of work:
each module that takes ten seconds or more declares its measured time,
``pytestmark = pytest.mark.cost(SECONDS)`` (from ``--durations=0`` of a whole ``make test``),
and the collection is sorted by it; the others keep their order, after those. With the heavy
tests merely first, one run had its workers busy for 498 and 440 s; the same costs handed out
by this rule give 469 and 469 s.

Threads: each xdist worker (and every process a test starts, which inherits the
environment) runs TensorFlow's ops on cores / workers intra-op threads — one each on 2 cores
— instead of a pool per process as wide as the machine, which two busy workers
oversubscribe: the suite took 574 s instead of 656 s on 2 cores (614 tests).
``TF_NUM_INTRAOP_THREADS`` set by the caller wins."""
import os
import zlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # before TensorFlow runs an op in this worker
    _share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, _share)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before the test's fixtures are set up; module-scoped fixtures that build models seed
    # themselves (which test sets them up first depends on how xdist splits the module).
    import keras
    keras.utils.set_random_seed(zlib.crc32(item.nodeid.encode()) % 2**31)


def pytest_configure(config):
    config.addinivalue_line("markers", "cost(seconds): a test module's time in make test (2 cores); the "
                            "most expensive modules are scheduled first")
    if os.environ.get("INTERNET_TF_TEST_GRAPPLER", "0") != "1":
        # Grappler rewrites each traced graph on its first call: ~5 of the ~7 s that the tiny
        # InterNet step's first call takes, against 0.05 s for every later call. The tests
        # check what the graphs compute, which Grappler must not change, so they run them as
        # traced, and so do the command-line tools they start; INTERNET_TF_TEST_GRAPPLER=1 runs
        # them optimised, as training does.
        # One switch for both, the package's: INTERNET_TF_GRAPPLER, applied by
        # internet_tf.cli.start_tensorflow in this process and by every tool a test starts.
        os.environ.setdefault("INTERNET_TF_GRAPPLER", "0")
        from internet_tf.cli import start_tensorflow
        start_tensorflow()


def pytest_collection_modifyitems(config, items):
    def cost(item):
        marker = item.get_closest_marker("cost")
        return marker.args[0] if marker else 0

    items.sort(key=lambda item: -cost(item))  # stable: each module's tests stay together, in order
