"""Test-suite setup: quiet TensorFlow's C++ logging; ``tests/`` is importable (reference.py);
every test starts from its own fixed random state, so a test draws the same weights and
inputs on every run whatever ran before it in the same pytest-xdist worker.

Scheduling (``make test`` runs ``pytest -n 2 --dist loadgroup --no-loadscope-reorder``): a
module whose tests share an expensive module fixture (a trained run, an export) marks itself
``pytest.mark.xdist_group(NAME)``, so one worker runs all of them and builds the fixture once
instead of once per worker; tests marked ``heavy`` (a minute or more: subprocess trainings,
the two-replica process) are handed out first, then the groups, then the rest in file order,
so that no long test starts while the other worker is running out of work."""
import os
import zlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before the test's fixtures are set up; module-scoped fixtures that build models seed
    # themselves (which test sets them up first depends on how xdist splits the module).
    import keras
    keras.utils.set_random_seed(zlib.crc32(item.nodeid.encode()) % 2**31)


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: a test of a minute or more on 2 cores; scheduled first")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        if item.get_closest_marker("heavy"):
            return 0
        return 1 if item.get_closest_marker("xdist_group") else 2

    items.sort(key=rank)  # stable: file order within each rank
