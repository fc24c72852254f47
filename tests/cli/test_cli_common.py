"""Every console script's ``--help`` lists the tool's own flags with their help text and
defaults, and a bad or missing flag is named in one line (``cli/common.py: run_tool``).

Each script runs as its setup.py entry point does: a wrapper ``__main__`` without a docstring
that imports the tool's ``run`` and calls it (what pip's generated script does), in a fresh
process that imports no TensorFlow."""
import ast
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The flags each tool defines, including the shared --config / --model_dir / --override.
CONFIG_FLAGS = ["config", "model_dir", "override"]
TOOL_FLAGS = {
    "internet-train": CONFIG_FLAGS + ["strategy", "cpu_devices"],
    "internet-eval": CONFIG_FLAGS,
    "internet-export": CONFIG_FLAGS + ["export_dir"],
    "internet-predict": ["export_dir", "images", "out", "min_score"],
    "internet-convert": ["to", "annotations", "images", "out", "split", "prefix", "voc_roots",
                         "classes"],
    "internet-mechanism": CONFIG_FLAGS + ["out", "max_images", "tsne"],
    "internet-feature-norms": ["baseline_dir", "labelenc_dir", "norms_out", "num_images", "level"],
}


def entry_points() -> dict:
    """``{script: "module:function"}`` from setup.py's console_scripts."""
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "console_scripts" for k in node.keys):
            scripts = ast.literal_eval(node.values[0])
            return dict(s.replace(" ", "").split("=", 1) for s in scripts)
    raise AssertionError("no console_scripts in setup.py")


def run_script(name: str, *args: str, flags_json: str = "") -> subprocess.CompletedProcess:
    """Runs the console script ``name``; with ``flags_json``, the wrapper first writes there
    each defined flag's help, default and kind as the tool's modules define them."""
    module, function = entry_points()[name].split(":")
    code = (f"import json, sys\nfrom absl import flags\nfrom {module} import {function}\n"
            f"sys.argv[0] = {name!r}\nassert 'tensorflow' not in sys.modules\n"
            f"if {flags_json!r}:\n"
            f"    json.dump({{f.name: [f.help, f.default_as_str, f.boolean] for f in "
            f"flags.FLAGS._flags().values()}}, open({flags_json!r}, 'w'))\n"
            f"sys.exit({function}())\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def test_every_console_script_is_covered():
    assert set(entry_points()) == set(TOOL_FLAGS)


@pytest.mark.parametrize("name", sorted(TOOL_FLAGS))
def test_help_lists_the_tools_own_flags_with_help_and_defaults(name, tmp_path):
    defined = tmp_path / "flags.json"
    proc = run_script(name, "--help", flags_json=str(defined))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # absl wraps the help text
    assert f"{name}:" in proc.stdout, proc.stdout + proc.stderr
    for flag_name in TOOL_FLAGS[name]:
        help_text, default, boolean = json.loads(defined.read_text())[flag_name]
        shown = f"--[no]{flag_name}:" if boolean else f"--{flag_name}:"
        assert shown in text, f"{name} --help lacks {shown}:\n{proc.stdout}"
        assert " ".join(help_text.split())[:40] in text, f"{name} --help lacks the help of --{flag_name}"
        if default is not None:
            assert f"(default: {default})" in text, (name, flag_name, default)
    assert "--helpfull" in text and "--flagfile" not in text  # absl's own flags stay in --helpfull


def test_help_starts_with_the_tools_usage():
    proc = run_script("internet-train", "--help")
    assert proc.stdout.lstrip().startswith("``internet-train --config FILE"), proc.stdout[:300]


@pytest.mark.parametrize("args, message", [
    (["--model_dir", "x", "--bogus"], "error: Unknown command line flag 'bogus'"),
    ([], "error: missing required flag --model_dir"),
    (["--model_dir", "x", "--strategy", "many"], "error: flag --strategy=many"),
])
def test_a_bad_or_missing_flag_is_named_in_one_line(args, message):
    proc = run_script("internet-train", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
