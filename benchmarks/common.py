"""Shared by the benchmark scripts (run from the repository root as ``python benchmarks/X.py``)."""
from __future__ import annotations

import resource


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
