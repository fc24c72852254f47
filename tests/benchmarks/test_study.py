"""benchmarks/study.py: study-file validation, the mean ± std math and table, reuse versus
stale-config detection on hand-made run dirs (no training), and one real tiny study run
twice through the command line (the second run reuses both runs)."""
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from internet_tf.config import Config, load_config

pytestmark = pytest.mark.cost(36)  # seconds in make test (tests/conftest.py schedules by it)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name, *path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


study = _load("study", "benchmarks", "study.py")
tiny = _load("tiny_internet", "tests", "training", "tiny_internet.py")


def write_study(tmp_path, text):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return str(path)


def metrics(ap, aps=0.3):
    return {"AP": ap, "AP50": 0.9, "AP75": ap / 2, "APs": aps, "APm": 0.5, "APl": -1.0}


def fake_run(run_dir, cfg, step, result=None):
    """A run dir as the trainer leaves it: config.yaml, checkpoint index, eval/metrics.json."""
    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    os.makedirs(os.path.join(run_dir, "eval"), exist_ok=True)
    with open(os.path.join(run_dir, "config.yaml"), "w") as f:
        f.write(cfg.to_yaml())
    with open(os.path.join(run_dir, "checkpoints", "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "ckpt-{step}"\nall_model_checkpoint_paths: "ckpt-{step}"\n')
    with open(os.path.join(run_dir, "eval", "metrics.json"), "w") as f:
        json.dump(result or metrics(0.5), f)


# -- validation ------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("seeds: [0]\nseed: 1\nvariants: {a: {config: configs/demo.yaml}}", "unknown key 'seed'"),
    ("seeds: [0]\nvariants: {a: {config: configs/demo.yaml, overide: [seed=1]}}",
     "variant 'a': unknown key 'overide'"),
    ("variants: {a: {config: configs/demo.yaml}}", "missing key 'seeds'"),
    ("seeds: [0, x]\nvariants: {a: {config: configs/demo.yaml}}", "'seeds' must be a list of integers"),
    ("seeds: [0]\nvariants: {a: {overrides: []}}", "variant 'a': missing key 'config'"),
    ("seeds: [0]\nvariants: {a: {config: configs/demo.yaml, overrides: train.steps=3}}",
     "'overrides' must be a list"),
    ("seeds: [0]\nreference: b\nvariants: {a: {config: configs/demo.yaml}}", "reference 'b'"),
    ("seeds: [0]\nvariants: {a/b: {config: configs/demo.yaml}}", "variant name 'a/b'"),
    ("seeds: [0]\nvariants: {a: {config: configs/demo.yaml}, b: {config: configs/demo.yaml, reference: [a, c]}}",
     "reference 'c' of variant 'b'"),
    ("seeds: [0]\nvariants: {a: {config: configs/demo.yaml}, b: {config: configs/demo.yaml, reference: []}}",
     "variant 'b': 'reference' is an empty list"),
])
def test_study_file_structure_errors(tmp_path, text, message):
    with pytest.raises(study.StudyError, match=message):
        study.load_study(write_study(tmp_path, text))


def test_a_variant_may_name_several_references(tmp_path):
    loaded = study.load_study(write_study(tmp_path, "seeds: [0]\nvariants:\n  a: {config: configs/demo.yaml}\n"
                                                    "  a_2x: {config: configs/demo.yaml}\n"
                                                    "  b: {config: configs/demo.yaml, reference: [a, a_2x]}\n"))
    assert loaded["variants"]["b"]["reference"] == ["a", "a_2x"] and loaded["variants"]["a_2x"]["reference"] == "a"


def test_bad_override_and_missing_config_name_the_variant(tmp_path):
    path = write_study(tmp_path, "seeds: [0]\nvariants:\n  base: {config: configs/demo_baseline.yaml}\n"
                       "  no_ot: {config: configs/demo.yaml, overrides: [model.intertwiner.alignmnt=none]}\n")
    with pytest.raises(study.StudyError, match=r"variant 'no_ot' .*unknown config key 'model.intertwiner.alignmnt'"):
        study.resolve(study.load_study(path))
    path = write_study(tmp_path, "seeds: [0]\nvariants: {gone: {config: configs/nope.yaml}}\n")
    with pytest.raises(study.StudyError, match=r"variant 'gone' \(configs/nope.yaml\).*not found"):
        study.resolve(study.load_study(path))
    # A bad --override is reported for the first variant, before anything trains.
    path = write_study(tmp_path, "seeds: [0]\nvariants: {a: {config: configs/demo.yaml}}\n")
    with pytest.raises(study.StudyError, match="variant 'a'.*'train.stepz'"):
        study.resolve(study.load_study(path), overrides=["train.stepz=3"])
    with pytest.raises(study.StudyError, match="--variants: unknown variant 'b'"):
        study.resolve(study.load_study(path), only=["b"])


def test_cli_bad_override_exits_2_without_traceback_or_training(tmp_path):
    path = write_study(tmp_path, "seeds: [0]\nvariants:\n  base: {config: configs/demo_baseline.yaml}\n"
                       "  no_ot: {config: configs/demo.yaml, overrides: [model.intertwiner.alignment=nope]}\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "benchmarks/study.py", "--study", path, "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: variant 'no_ot'" in proc.stderr and "model.intertwiner.alignment" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing trained, nothing written


def test_overrides_apply_in_order_file_variant_flag_seed(tmp_path):
    path = write_study(tmp_path, "seeds: [3, 4]\noverrides: [train.steps=7, eval.batch_size=3]\nvariants:\n"
                       "  a: {config: configs/demo.yaml, overrides: [train.steps=8, train.batch_size=2]}\n"
                       "  b: {config: configs/demo_baseline.yaml}\n")
    plan = study.resolve(study.load_study(path), seeds=[5], overrides=["train.batch_size=6"], only=["a"])
    assert list(plan) == ["a"] and list(plan["a"]["configs"]) == [5]
    cfg = plan["a"]["configs"][5]
    assert (cfg["seed"], cfg["train"]["steps"], cfg["train"]["batch_size"], cfg["eval"]["batch_size"]) == (5, 8, 6, 3)
    assert plan["a"]["overrides"] == ["train.steps=7", "eval.batch_size=3", "train.steps=8",
                                      "train.batch_size=2", "train.batch_size=6"]


# -- aggregation and the table ---------------------------------------------------------------
def test_aggregate_mean_sample_std_and_failed_runs():
    runs = {"base": [{"seed": 0, "status": "trained", "metrics": metrics(0.5, 0.2)},
                     {"seed": 1, "status": "reused", "metrics": metrics(0.6, 0.3)},
                     {"seed": 2, "status": "trained", "metrics": metrics(0.7, 0.4)}],
            "new": [{"seed": 0, "status": "trained", "metrics": metrics(0.55)},
                    {"seed": 1, "status": "failed", "metrics": None},
                    {"seed": 2, "status": "missing", "metrics": None}]}
    s = study.aggregate(runs)
    assert s["base"]["n"] == 3 and s["base"]["notes"] == []
    assert s["base"]["mean"]["AP"] == pytest.approx(60.0) and s["base"]["std"]["AP"] == pytest.approx(10.0)
    assert s["base"]["mean"]["APs"] == pytest.approx(30.0) and s["base"]["std"]["APs"] == pytest.approx(10.0)
    assert s["base"]["values"]["APl"] == []  # COCOeval's -1: no ground truth of that size
    assert s["new"]["n"] == 1 and s["new"]["notes"] == ["seed 1 failed", "seed 2 missing"]
    assert s["new"]["mean"]["AP"] == pytest.approx(55.0) and s["new"]["std"]["AP"] == 0.0
    # A VOC run (evaluation/voc_eval.py: mAP, mAP_07, AP50 = mAP, per-class keys) fills AP50 only.
    voc = study.aggregate({"voc": [{"seed": 0, "status": "trained",
                                    "metrics": {"mAP": 0.7, "mAP_07": 0.68, "AP50": 0.7, "AP/cat": 0.7}}]})
    assert voc["voc"]["mean"]["AP50"] == pytest.approx(70.0) and voc["voc"]["values"]["AP"] == []
    assert "—" in study.format_table(voc, "voc")


def test_format_table():
    runs = {"base": [{"seed": 0, "status": "trained", "metrics": metrics(0.5, 0.2)},
                     {"seed": 1, "status": "trained", "metrics": metrics(0.6, 0.3)}],
            "new": [{"seed": 0, "status": "trained", "metrics": metrics(0.7, 0.1)},
                    {"seed": 1, "status": "failed", "metrics": None}],
            "gone": [{"seed": 0, "status": "missing", "metrics": None}]}
    text = study.format_table(study.aggregate(runs), "base", "`cmd`: step budget 500, seeds 0, 1")
    assert text == "\n".join([
        "| variant | n | AP | AP50 | AP75 | APs | APm | APl |",
        "|---|---|---|---|---|---|---|---|",
        "| base | 2 | 55.0 ± 7.1 | 90.0 ± 0.0 | 27.5 ± 3.5 | 25.0 ± 7.1 | 50.0 ± 0.0 | — |",
        "| new | 1 (seed 1 failed) | 70.0 ± 0.0 | 90.0 ± 0.0 | 35.0 ± 0.0 | 10.0 ± 0.0 | 50.0 ± 0.0 | — |",
        "| gone | 0 (seed 0 missing) | — | — | — | — | — | — |",
        "",
        "`cmd`: step budget 500, seeds 0, 1",
        "",
        "difference to base (mean, points):",
        "",
        "| variant | ΔAP | ΔAPs |",
        "|---|---|---|",
        "| new | +15.0 | -15.0 |",
        "| gone | — | — |",
    ])


def test_config_diff_names_the_first_differing_key():
    a = load_config(os.path.join(ROOT, "configs/demo.yaml")).to_dict()
    b = json.loads(json.dumps(a))
    assert study.config_diff(a, b) is None
    b["model"]["intertwiner"]["ot"]["epsilon"] = 0.2
    b["train"]["steps"] = 7
    assert study.config_diff(a, b) == "model.intertwiner.ot.epsilon"
    del a["eval"]["max_images"]
    b = json.loads(json.dumps(a))
    b["eval"]["max_images"] = None
    assert study.config_diff(a, b) == "eval.max_images"
    # A run saved before an option existed: no difference while the option is at its default
    # (what the code did before), a difference once it is not.
    defaults = Config().to_dict()
    assert study.config_diff(a, b, defaults=defaults) is None
    b["eval"]["max_images"] = 5
    assert study.config_diff(a, b, defaults=defaults) == "eval.max_images"
    del a["data"]["voc"]
    b = json.loads(json.dumps(a))
    b["data"]["voc"] = dict(defaults["data"]["voc"])
    assert study.config_diff(a, b, defaults=defaults) is None
    b["data"]["voc"]["roots"] = ["/data/VOC2007"]
    assert study.config_diff(a, b, defaults=defaults) == "data.voc"
    # An option whose default changed after older runs were saved: those runs had the value
    # of BEFORE_ADDED (the make-up unit without the residual), not today's default.
    saved = json.loads(json.dumps(b))
    del saved["model"]["intertwiner"]["makeup_residual"]
    b["model"]["intertwiner"]["makeup_residual"] = "none"
    assert study.config_diff(saved, b, defaults=defaults) is None
    b["model"]["intertwiner"]["makeup_residual"] = defaults["model"]["intertwiner"]["makeup_residual"]
    assert defaults["model"]["intertwiner"]["makeup_residual"] != "none"
    assert study.config_diff(saved, b, defaults=defaults) == "model.intertwiner.makeup_residual"


def test_options_of_a_disabled_method_do_not_make_a_run_stale():
    base = load_config(os.path.join(ROOT, "configs/demo_baseline.yaml")).to_dict()
    other = json.loads(json.dumps(base))
    other["model"]["intertwiner"]["merge_point"] = "fc1"
    del other["model"]["intertwiner"]["warmup_steps"]  # a run saved before the key existed
    assert study.config_diff(study.relevant(base), study.relevant(other)) is None
    old_run = json.loads(json.dumps(base))
    old_run["model"]["future_method"] = {"enabled": False, "weight": 1.0}  # a method added later, off
    assert study.config_diff(study.relevant(base), study.relevant(old_run)) is None
    old_run["model"]["future_method"]["enabled"] = True
    assert study.config_diff(study.relevant(base), study.relevant(old_run)) == "model.future_method"
    other["model"]["fpn_channels"] = 64  # the detector's own options still count
    assert study.config_diff(study.relevant(base), study.relevant(other)) == "model.fpn_channels"
    enabled = load_config(os.path.join(ROOT, "configs/demo.yaml")).to_dict()
    changed = json.loads(json.dumps(enabled))
    changed["model"]["intertwiner"]["merge_point"] = "predictor" if enabled["model"]["intertwiner"]["merge_point"] == "fc1" else "fc1"
    assert study.config_diff(study.relevant(enabled), study.relevant(changed)) == "model.intertwiner.merge_point"


# -- reuse, stale configs, failures (hand-made run dirs; train() is replaced) -------------------
@pytest.fixture
def small_study(tmp_path):
    path = write_study(tmp_path, "seeds: [0]\noverrides: [train.steps=4]\n"
                       "variants: {base: {config: configs/demo_baseline.yaml}}\n")
    cfg = load_config(os.path.join(ROOT, "configs/demo_baseline.yaml"), ["train.steps=4", "seed=0"])
    return path, cfg, str(tmp_path / "out"), str(tmp_path / "out" / "base" / "seed0")


def test_finished_run_is_reused_not_retrained(small_study, monkeypatch, capsys):
    path, cfg, out, run_dir = small_study
    fake_run(run_dir, cfg, 4, metrics(0.42))
    monkeypatch.setattr(study, "train", lambda *a: pytest.fail("a finished run was retrained"))
    assert study.run_study(path, out, command="cmd") == 0
    assert f"reused {run_dir} (finished at step 4)" in capsys.readouterr().out
    data = json.load(open(os.path.join(out, "study.json")))
    run = data["variants"]["base"]["runs"][0]
    assert run["status"] == "reused" and run["metrics"]["AP"] == 0.42
    assert data["command"] == "cmd" and data["variants"]["base"]["overrides"] == ["train.steps=4"]
    assert "| base | 1 | 42.0 ± 0.0 |" in open(os.path.join(out, "study.md")).read()
    assert os.path.getsize(os.path.join(out, "study.png")) > 1000


def test_unfinished_run_is_resumed_and_report_only_marks_it_missing(small_study, monkeypatch):
    path, cfg, out, run_dir = small_study
    fake_run(run_dir, cfg, 2)  # interrupted at step 2 of 4 (an old metrics.json does not count)
    assert not study.is_finished(run_dir, cfg.to_dict())
    monkeypatch.setattr(study, "train", lambda *a: pytest.fail("--report_only trained"))
    study.run_study(path, out, report_only=True)
    assert "| base | 0 (seed 0 missing) |" in open(os.path.join(out, "study.md")).read()
    calls = []
    monkeypatch.setattr(study, "train", lambda d, c, o: calls.append((d, o)) or fake_run(d, cfg, 4))
    assert study.run_study(path, out) == 0
    assert calls == [(run_dir, ["train.steps=4", "seed=0"])]
    assert json.load(open(os.path.join(out, "study.json")))["variants"]["base"]["runs"][0]["status"] == "trained"


def test_changed_config_is_refused_or_moved_aside(small_study, monkeypatch):
    path, cfg, out, run_dir = small_study
    fake_run(run_dir, cfg, 4)
    monkeypatch.setattr(study, "train", lambda *a: pytest.fail("a stale run was trained over"))
    with pytest.raises(study.StudyError, match="variant 'base' seed 0.*first difference: 'train.learning_rate'"):
        study.run_study(path, out, overrides=["train.learning_rate=0.5"])
    with pytest.raises(study.StudyError, match="variant 'base'"):
        study.run_study(path, out, overrides=["train.learning_rate=0.5"], report_only=True)
    changed = load_config(os.path.join(ROOT, "configs/demo_baseline.yaml"),
                          ["train.steps=4", "train.learning_rate=0.5", "seed=0"])
    monkeypatch.setattr(study, "train", lambda d, c, o: fake_run(d, changed, 4, metrics(0.9)))
    study.run_study(path, out, overrides=["train.learning_rate=0.5"], rerun_changed=True)
    stale = glob.glob(run_dir + ".stale-*")
    assert len(stale) == 1 and yaml.safe_load(open(os.path.join(stale[0], "config.yaml")))["train"]["learning_rate"] == 0.02
    assert yaml.safe_load(open(os.path.join(run_dir, "config.yaml")))["train"]["learning_rate"] == 0.5


def test_crashed_run_is_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    path = write_study(tmp_path, "seeds: [0, 1]\noverrides: [train.steps=4]\nvariants:\n"
                       "  base: {config: configs/demo_baseline.yaml}\n  new: {config: configs/demo.yaml}\n")
    out = str(tmp_path / "out")

    def train(run_dir, config, overrides):
        if run_dir.endswith(os.path.join("new", "seed1")):
            return "exit code 1\nTypeError: boom\n"
        fake_run(run_dir, load_config(config, overrides), 4)

    monkeypatch.setattr(study, "train", train)
    assert study.run_study(path, out) == 1
    error = os.path.join(out, "new", "seed1", "study_error.txt")
    assert "TypeError: boom" in open(error).read()
    table = open(os.path.join(out, "study.md")).read()
    assert "| base | 2 |" in table and "| new | 1 (seed 1 failed) |" in table
    study.run_study(path, out, report_only=True)  # still marked failed, not missing
    assert "| new | 1 (seed 1 failed) |" in open(os.path.join(out, "study.md")).read()
    assert study.run_study(path, out) == 1 and os.path.exists(error)  # retried, failed again


def test_chained_variant_gets_its_seeds_run_dir_is_trained_after_it_and_blocked_by_its_failure(
        tmp_path, monkeypatch):
    path = write_study(tmp_path, "seeds: [0, 1]\noverrides: [train.steps=4]\nvariants:\n"
                       "  base: {config: configs/demo_baseline.yaml}\n"
                       "  first: {config: configs/demo_labelenc_step1.yaml, report: false}\n"
                       "  second:\n    config: configs/demo_labelenc_step2.yaml\n"
                       "    overrides: ['model.labelenc.step1_dir={run:first}']\n")
    out = str(tmp_path / "out")
    calls = []

    def train(run_dir, config, overrides):
        calls.append(run_dir)
        if run_dir == os.path.join(out, "first", "seed1"):
            return "exit code 1\nboom\n"
        fake_run(run_dir, load_config(config, overrides), 4, metrics(0.9 if "first" in run_dir else 0.5))

    monkeypatch.setattr(study, "train", train)
    assert study.run_study(path, out, only=["second"]) == 2  # first/seed1 failed, second/seed1 blocked
    assert calls == [os.path.join(out, v, f"seed{s}") for v, s in (("first", 0), ("first", 1), ("second", 0))]
    saved = yaml.safe_load(open(os.path.join(out, "second", "seed0", "config.yaml")))
    assert saved["model"]["labelenc"]["step1_dir"] == os.path.join(out, "first", "seed0")
    data = json.load(open(os.path.join(out, "study.json")))
    assert [r["status"] for r in data["variants"]["second"]["runs"]] == ["trained", "blocked"]
    assert data["variants"]["second"]["overrides"][-1] == "model.labelenc.step1_dir={run:first}"
    table = open(os.path.join(out, "study.md")).read()
    assert "| second | 1 (seed 1 blocked) |" in table and "| first |" not in table  # report: false


@pytest.mark.parametrize("variants, message", [
    ("  a: {config: configs/demo.yaml, overrides: ['model.labelenc.step1_dir={run:b}']}\n"
     "  b: {config: configs/demo.yaml}\n", "variant 'a' uses {run:b}, which is not a variant defined before it"),
    ("  a: {config: configs/demo.yaml, report: no-thanks}\n", "'report' must be true or false"),
])
def test_run_references_and_report_are_checked(tmp_path, variants, message):
    with pytest.raises(study.StudyError, match=re.escape(message)):
        study.load_study(write_study(tmp_path, "seeds: [0]\nvariants:\n" + variants))


def test_compare_is_the_compare_study(tmp_path):
    out = tmp_path / "compare"
    proc = subprocess.run([sys.executable, "benchmarks/compare.py", "--out", str(out), "--report_only",
                           "--seeds", "0,1", "--override", "train.steps=7"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "study.json").read_text())
    assert data["study"].endswith(os.path.join("configs", "studies", "compare.yaml"))
    assert {n: v["config"] for n, v in data["variants"].items()} == {
        "baseline": "configs/demo_baseline.yaml", "InterNet": "configs/demo.yaml"}
    assert data["seeds"] == [0, 1] and data["steps"] == ["7"]
    assert data["command"].startswith("python benchmarks/compare.py --out")
    assert "| InterNet | 0 (seed 0 missing, seed 1 missing) |" in (out / "study.md").read_text()


# -- end to end ------------------------------------------------------------------------------
def test_study_cli_trains_then_reuses(tmp_path):
    # One real training of the tiny baseline (what the runner does is the same for any config;
    # the baseline traces faster than InterNet, whose CLI runs are tested in tests/training). The
    # loop over variants and seeds is tested above with train() replaced.
    path = write_study(tmp_path, f"seeds: [0]\nvariants:\n  baseline: {{config: {tiny.CONFIG}, overrides: "
                       f"[model.intertwiner.enabled=false]}}\n")
    out = tmp_path / "out"
    overrides = tiny.OVERRIDES + tiny.embedded_data(str(tmp_path / "data")) + ["train.steps=2", "train.checkpoint_every=2"]
    cmd = [sys.executable, "benchmarks/study.py", "--study", path, "--out", str(out)]
    for o in overrides:
        cmd += ["--override", o]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    for name in ("study.md", "study.json", "study.png"):
        assert (out / name).exists()
    text = (out / "study.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| baseline | 1 |")]
    assert len(rows) == 2  # the metrics table and the error split, from the run's detections.json
    for row in rows:
        assert re.fullmatch(r"-?\d+\.\d ± 0\.0", row.split(" | ")[2])  # AP, one seed
    assert "where the AP is lost" in text
    data = json.loads((out / "study.json").read_text())
    assert [r["status"] for v in data["variants"].values() for r in v["runs"]] == ["trained"]
    assert set(data["variants"]["baseline"]["runs"][0]["error_split"]) == set(study.ERROR_KEYS)
    ckpts = sorted(glob.glob(str(out / "*" / "seed0" / "checkpoints" / "*")))
    assert len(ckpts) >= 3
    mtimes = {p: os.path.getmtime(p) for p in ckpts}

    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"reused {out / 'baseline' / 'seed0'} (finished at step 2)" in second.stdout
    assert "training " not in second.stdout and "Training steps" not in second.stdout
    assert {p: os.path.getmtime(p) for p in glob.glob(str(out / "*" / "seed0" / "checkpoints" / "*"))} == mtimes
    data = json.loads((out / "study.json").read_text())
    assert [r["status"] for v in data["variants"].values() for r in v["runs"]] == ["reused"]


def test_report_splits_the_lost_ap_into_labels_and_boxes(tmp_path, monkeypatch):
    """A run with detections.json gets the error-split row (from its own config's validation
    annotations); a run without one is named as such."""
    gt = {"images": [{"id": 1, "width": 200, "height": 200, "file_name": "a.jpg"}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20],
                           "area": 400, "iscrowd": 0}]}
    (tmp_path / "val.json").write_text(json.dumps(gt))
    (tmp_path / "images").mkdir()
    data = ["data.dataset=coco", f"data.val_annotations={tmp_path / 'val.json'}",
            f"data.val_images={tmp_path / 'images'}", f"data.train_annotations={tmp_path / 'val.json'}",
            f"data.train_images={tmp_path / 'images'}"]
    path = write_study(tmp_path, "seeds: [0]\noverrides: [train.steps=4, " + ", ".join(data) + "]\nvariants:\n"
                       "  base: {config: configs/demo_baseline.yaml}\n  old: {config: configs/demo_baseline.yaml}\n")
    out = str(tmp_path / "out")

    def train(run_dir, config, overrides):
        fake_run(run_dir, load_config(config, overrides), 4)
        if "base" in run_dir:  # the small box found with the wrong label, shifted by 4 px
            with open(os.path.join(run_dir, "eval", "detections.json"), "w") as f:
                json.dump([{"image_id": 1, "category_id": 2, "bbox": [14, 10, 20, 20], "score": 0.9}], f)

    monkeypatch.setattr(study, "train", train)
    assert study.run_study(path, out) == 0
    table = open(os.path.join(out, "study.md")).read()
    # class-aware AP 0; class-agnostic: IoU 0.667 matches at 4 of 10 thresholds (0.5-0.65)
    assert "| base | 1 | 0.0 ± 0.0 | 40.0 ± 0.0 | 0.0 ± 0.0 | 40.0 ± 0.0 | 0.0 ± 0.0 | 0.0 ± 0.0 |" in table
    assert "| old | 0 (seed 0 without error_split) |" in table
    runs = json.load(open(os.path.join(out, "study.json")))["variants"]["base"]["runs"]
    assert runs[0]["error_split"]["AP agnostic"] == pytest.approx(0.4)


def test_pretraining_stage_paired_report_and_a_record_reused_in_a_new_session(tmp_path, monkeypatch):
    """A warm-started variant starts from its seed's baseline (train.init_from={run:base}) and is
    paired with the baseline continued as long; a later session given the study.json as
    --record reuses every recorded run, retraining only the pre-training run that a run still
    to be trained starts from."""
    text = ("seeds: [0, 1]\noverrides: [train.steps=4]\nreference: base\nvariants:\n"
            "  base: {config: configs/demo_baseline.yaml}\n"
            "  new: {config: configs/demo.yaml}\n"
            "  base_cont: {config: configs/demo_baseline.yaml, overrides: ['train.init_from={run:base}']}\n"
            "  new_warm: {config: configs/demo.yaml, overrides: ['train.init_from={run:base}'], reference: base_cont}\n")
    path = write_study(tmp_path, text)
    out = str(tmp_path / "out")
    aps = {"base": 0.30, "new": 0.33, "base_cont": 0.40, "new_warm": 0.41}
    calls = []

    def train(run_dir, config, overrides):
        calls.append(run_dir)
        variant, seed = run_dir.split(os.sep)[-2], int(run_dir[-1])
        fake_run(run_dir, load_config(config, overrides), 4, metrics(0.5 + seed / 100, aps[variant] + seed / 100))

    monkeypatch.setattr(study, "train", train)
    assert study.run_study(path, out) == 0
    saved = yaml.safe_load(open(os.path.join(out, "new_warm", "seed1", "config.yaml")))
    assert saved["train"]["init_from"] == os.path.join(out, "base", "seed1")
    data = json.load(open(os.path.join(out, "study.json")))
    assert {n: p["reference"] for n, p in data["paired"].items()} == {"new": "base", "base_cont": "base",
                                                                     "new_warm": "base_cont"}
    assert data["paired"]["new_warm"]["deltas"]["APs"] == pytest.approx([1.0, 1.0])
    assert data["paired"]["new"]["mean"]["APs"] == pytest.approx(3.0)
    table = open(os.path.join(out, "study.md")).read()
    assert "| new_warm | base_cont | 2 | +0.0 |" in table.replace(" [+0.0, +0.0]", "")
    assert os.path.getsize(os.path.join(out, "study_paired.png")) > 1000

    # A new session (a fresh checkout: the output folder is gone) with the record. Nothing retrains...
    record = str(tmp_path / "record.json")
    os.replace(os.path.join(out, "study.json"), record)
    shutil.rmtree(out)
    calls.clear()
    assert study.run_study(path, out, record_path=record) == 0 and calls == []
    data = json.load(open(os.path.join(out, "study.json")))
    assert {r["status"] for v in data["variants"].values() for r in v["runs"]} == {"recorded"}
    assert data["paired"]["new"]["mean"]["APs"] == pytest.approx(3.0)
    # ...except what changed, and the baseline its warm start needs (only its metrics were kept).
    changed = text.replace("reference: base_cont}", "reference: base_cont}\n  extra: {config: configs/demo.yaml, "
                           "overrides: ['train.init_from={run:base}', train.learning_rate=0.01], reference: base_cont}")
    path = write_study(tmp_path, changed)
    aps["extra"] = 0.5
    shutil.rmtree(out)
    assert study.run_study(path, out, seeds=[0], record_path=record) == 0
    assert calls == [os.path.join(out, v, "seed0") for v in ("base", "extra")]
    with pytest.raises(study.StudyError, match="--record .*not a study.json"):
        study.run_study(path, out, record_path=str(tmp_path / "nothing.json"))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "studies", "*.yaml"))),
                         ids=os.path.basename)
def test_every_shipped_study_file_loads_and_resolves(path, tmp_path):
    loaded = study.load_study(path)
    plan = study.resolve(loaded, seeds=loaded["seeds"][:1], out=str(tmp_path))
    assert set(plan) == set(loaded["variants"])
