"""The package's layers point down only: ``.importlinter``'s layers contract (import-linter,
every import of the package, also those inside functions) holds, lists no exceptions, and
names every subpackage and top-level module, so a new one cannot sit outside the order."""
import configparser
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _contract():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, ".importlinter"))
    return parser["importlinter:contract:layers"]


def test_contract_names_every_part_of_the_package_and_has_no_exceptions():
    contract = _contract()
    assert contract["type"] == "layers"
    assert not {"ignore_imports", "unmatched_ignore_imports_alerting"} & set(contract)
    named = {part.strip() for line in contract["layers"].splitlines() for part in line.split("|")}
    package = os.path.join(ROOT, "internet_tf")
    parts = {"internet_tf." + os.path.splitext(name)[0] for name in os.listdir(package)
             if name != "__init__.py" and not name.startswith((".", "__"))
             and (name.endswith(".py") or os.path.isfile(os.path.join(package, name, "__init__.py")))}
    assert parts == named - {""}


def test_layers_point_down_only():
    tool = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    tool = tool if os.path.exists(tool) else shutil.which("lint-imports")
    env = {**os.environ, "PYTHONPATH": ROOT}  # this tree's package, not an installed one
    proc = subprocess.run([tool, "--no-cache", "--no-logo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Layers point down only KEPT" in proc.stdout
