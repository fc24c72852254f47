"""The manual, the docs, the package's code and comments, the configs, the benchmark scripts and
the tests carry no project history: no issue numbers ("issue 11", "#26"), no session or study
dates (outside docs/results.md, whose tables are dated measurements), no commit hashes, and no
"SPEC §N" (the working specification is not part of the repository; cite the papers). History
lives in git log. A plain text scan."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATED = {os.path.join("docs", "results.md")}  # dated tables allowed here only

PATTERNS = {
    "issue number": re.compile(r"\bissues? #?\d+|(?<![\w&/])#\d+\b", re.IGNORECASE),
    "date": re.compile(r"\b20[2-3]\d-[01]\d(?:-[0-3]\d)?\b"),
    # 7 to 40 hex digits with at least one digit and one letter: a (short) commit hash
    "commit hash": re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b"),
    "SPEC reference": re.compile(r"\bSPEC\b"),
}


# The folders scanned besides README.md and docs/, and the kinds of file read in each.
FOLDERS = {
    "internet_tf": (".py", ".md", ".yaml", ".txt"),
    "configs": (".yaml", ".md"),
    "benchmarks": (".py", ".sh", ".md", ".yaml"),
    "tests": (".py", ".md", ".yaml"),
}
NOT_SCANNED = {
    os.path.join("benchmarks", "results"),  # measurement outputs, dated and stamped with their commit
    os.path.join("tests", "test_no_history.py"),  # this file: its examples are what it looks for
}


def scanned_files() -> list:
    files = ["README.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(ROOT, "docs")))]
    for top, kinds in FOLDERS.items():
        for folder, subfolders, names in os.walk(os.path.join(ROOT, top)):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith((".", "__"))
                                   and os.path.relpath(os.path.join(folder, d), ROOT) not in NOT_SCANNED)
            files += [path for path in (os.path.relpath(os.path.join(folder, n), ROOT) for n in sorted(names))
                      if path.endswith(kinds) and path not in NOT_SCANNED]
    return files


def findings(path: str, text: str) -> list:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        for kind, pattern in PATTERNS.items():
            if kind == "date" and path in DATED:
                continue
            out += [f"{path}:{number}: {kind} {m.group(0)!r}" for m in pattern.finditer(line)]
    return out


def test_readme_docs_package_configs_benchmarks_and_tests_carry_no_history():
    found = []
    for path in scanned_files():
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            found += findings(path, f.read())
    assert not found, ("history in docs, code, configs, benchmarks or tests (say what is and why; cite the "
                       "paper):\n" + "\n".join(found))


def test_the_scan_covers_the_manual_docs_code_configs_benchmarks_and_tests():
    files = set(scanned_files())
    assert {"README.md", os.path.join("docs", "configuration.md"), os.path.join("docs", "results.md"),
            os.path.join("internet_tf", "api.py"), os.path.join("configs", "demo.yaml"),
            os.path.join("configs", "studies", "demo_light.yaml"), os.path.join("benchmarks", "study.py"),
            os.path.join("benchmarks", "gpu_check.sh"), os.path.join("tests", "conftest.py"),
            os.path.join("tests", "tiny.yaml"), os.path.join("tests", "training", "two_replicas.py")} <= files
    assert not [f for f in files if f.startswith(os.path.join("benchmarks", "results", ""))]
    assert os.path.join("tests", "test_no_history.py") not in files


@pytest.mark.parametrize("text, kind", [
    ("as issue 11 asked", "issue number"), ("see #26", "issue number"), ("Issue 8", "issue number"),
    ("measured on 2026-12-01", "date"), ("since 2026-11", "date"), ("at a5d600c", "commit hash"),
    ("SPEC §5 says", "SPEC reference"),
])
def test_each_kind_is_found(text, kind):
    assert [f for f in findings("README.md", text) if kind in f]


@pytest.mark.parametrize("text", ["Table 2a", "conv 3x3, 1024 wide", "Eq. 6", "float32 [batch, 100, 4]",
                                  "see [results](docs/results.md#where-we-differ)", "deadbeef", "1234567",
                                  "tensorflow==2.16.1", "VOC2007 11-point", "instances_val2017.json",
                                  "https://github.com/pytest-dev/pytest-xdist/issues/1386"])
def test_ordinary_text_is_not_history(text):
    assert not findings("README.md", text)


def test_results_page_may_have_dates_but_no_hashes():
    assert not findings(os.path.join("docs", "results.md"), "2026-12-01")
    assert findings(os.path.join("docs", "results.md"), "at a5d600c")
