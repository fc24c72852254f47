"""Test-suite setup: quiet TensorFlow's C++ logging; ``tests/`` is importable (reference.py);
every test starts from its own fixed random state, so a test draws the same weights and
inputs on every run whatever ran before it in the same pytest-xdist worker."""
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
