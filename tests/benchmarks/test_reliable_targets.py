"""benchmarks/reliable_targets.py: the participation ratio and the class separation
it reports, on hand-built features."""
import importlib.util
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("reliable_targets", os.path.join(ROOT, "benchmarks", "reliable_targets.py"))
reliable_targets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reliable_targets)


def test_participation_ratio_counts_the_channels_spanned():
    rng = np.random.default_rng(0)
    line = rng.normal(size=(500, 1)) * np.array([[1.0, -2.0, 0.5, 3.0]])  # one direction
    assert reliable_targets.participation_ratio(line) == pytest.approx(1.0)
    # two channels of equal variance, two constant: 2; four equal ones: 4 (up to sampling)
    two = np.concatenate([rng.normal(size=(20000, 2)), np.ones((20000, 2))], axis=1)
    assert reliable_targets.participation_ratio(two) == pytest.approx(2.0, rel=0.02)
    assert reliable_targets.participation_ratio(rng.normal(size=(20000, 4))) == pytest.approx(4.0, rel=0.02)


def test_separation_is_own_over_other_centroid_distance():
    # Two classes at x = 0 and x = 10, each sample 1 from its centroid along y:
    # own distance 1, other distance sqrt(101).
    features = np.array([[0, 1], [0, -1], [10, 1], [10, -1]], np.float32)
    labels = np.array([1, 1, 2, 2])
    assert reliable_targets.separation(features, labels) == pytest.approx(1 / np.sqrt(101), rel=1e-5)
    # Classes with one centroid: every sample as far from either.
    assert reliable_targets.separation(features, np.array([1, 2, 2, 1])) == pytest.approx(1.0)
