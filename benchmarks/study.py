"""Study runner: trains named config variants × seeds at an equal step budget and writes
``OUT/study.md`` (mean ± std table), ``OUT/study.png`` (bar chart) and ``OUT/study.json``
(raw per-seed metrics). Run from the repository root:

    python benchmarks/study.py --study configs/studies/demo_causes.yaml
    python benchmarks/study.py --study configs/studies/demo_causes.yaml --seeds 0 \\
        --variants baseline,internet_default --override train.steps=300 --out runs/quick
    python benchmarks/study.py --study configs/studies/demo_causes.yaml --report_only

A study file (see ``configs/studies/``) has ``seeds``, ``variants`` (name -> ``{config:
FILE relative to the repository root, overrides: [key=value, ...]}``), optional
``overrides`` for every variant and ``reference`` (default: the first variant); a variant may
name its own ``reference`` (a warm-started variant against the baseline continued as long), or a
list of them (LabelEnc against the baseline at 1× and 2× its schedule).
Overrides apply in the order file, variant, ``--override``, then ``seed=S``. Besides the
mean ± std table the report pairs each variant with its reference by seed: per seed Δ, the
mean Δ and its 95 % t-interval (``paired.py``; ``study_paired.png``).

An override may name another variant's run of the same seed as ``{run:NAME}`` (replaced by
``OUT/NAME/seed<S>``), e.g. LabelEnc step 2's ``model.labelenc.step1_dir={run:step1}``;
NAME must come earlier in the file, it is trained first (also when ``--variants`` leaves it
out), and a run whose NAME run failed is not trained (status ``blocked``). A pre-training
stage is such a variant: ``train.init_from={run:baseline}`` warm-starts each seed's run from
that seed's baseline, trained once and reused. A variant with
``report: false`` (such a first stage) is trained but left out of the table and chart.

Each run is ``internet_tf.cli.train`` in its own subprocess into ``OUT/<variant>/seed<S>``.
A run is reused when ``eval/metrics.json`` exists and its latest checkpoint is at
``train.steps`` (any checkpoint when the budget is in epochs); rerunning resumes an
interrupted one. ``--record FILE`` (the ``study.json`` of an earlier session, kept under
``benchmarks/results/``) reuses the runs it holds when their config is the one the study would
use (status ``recorded``); a recorded run that a variant still to be trained starts from is
trained again here, since only its metrics were kept. A run dir whose saved ``config.yaml`` differs from the config the study
would use is an error, or with ``--rerun_changed`` is moved aside and retrained. A crashed
run leaves ``study_error.txt`` and the study goes on (exit code 1 at the end; 2 for a bad
study file, flag or config).
"""
from __future__ import annotations

import collections
import functools
import json
import os
import re
import shlex
import subprocess
import sys
import time

import yaml
from absl import app, flags

# The study and its training subprocesses use the internet_tf of the tree this file is in
# (not whatever an installed or editable package points at), wherever it is run from.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from internet_tf.config import Config, ConfigError, load_config  # noqa: E402
from internet_tf.files import write_atomic  # noqa: E402
from paired import as_list, format_paired, paired, paired_chart  # noqa: E402
from study_report import (ERROR_KEYS, aggregate, bar_chart, error_split_of_run,  # noqa: E402,F401
                          format_error_table, format_table)
RUN_REF = re.compile(r"\{run:([A-Za-z0-9_.-]+)\}")
FLAGS = flags.FLAGS


class StudyError(ValueError):
    """A problem with the study file, the flags or an existing run dir."""


def load_study(path: str) -> dict:
    """Reads and checks the study file's structure (the configs are loaded by ``resolve``)."""
    where = f"study file {path}"
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise StudyError(f"cannot read {where}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise StudyError(f"{where} is not valid YAML: {e}") from e
    _check(data, ("seeds", "overrides", "variants", "reference"), ("seeds", "variants"), where)
    seeds, variants = data["seeds"], data["variants"]
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise StudyError(f"{where}: 'seeds' must be a list of integers, got {seeds!r}")
    if not isinstance(variants, dict) or not variants:
        raise StudyError(f"{where}: 'variants' must map names to {{config: FILE, overrides: [...]}}")
    earlier = []
    for name, spec in variants.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)):
            raise StudyError(f"{where}: variant name '{name}' may hold only letters, digits, '_', '-', '.'")
        _check(spec, ("config", "overrides", "report", "reference"), ("config",), f"{where}: variant '{name}'")
        if not isinstance(spec.get("report", True), bool):
            raise StudyError(f"{where}: variant '{name}': 'report' must be true or false")
        for needed in needs({"overrides": spec.get("overrides", [])}):
            if needed not in earlier:
                raise StudyError(f"{where}: variant '{name}' uses {{run:{needed}}}, which is not a variant "
                                 "defined before it")
        earlier.append(str(name))
    reference = data.get("reference", next(iter(variants)))
    if reference not in variants:
        raise StudyError(f"{where}: reference '{reference}' is not one of the variants")
    references = {}  # a variant's reference name, or the list of them where the file gives a list
    for name, spec in variants.items():
        refs = spec.get("reference", reference)
        if refs == []:
            raise StudyError(f"{where}: variant '{name}': 'reference' is an empty list")
        for ref in as_list(refs):
            if ref not in variants or variants[ref].get("report", True) is False:
                raise StudyError(f"{where}: reference '{ref}'{f' of variant {name!r}' if ref != reference else ''} "
                                 "is not a reported variant of the study")
        references[name] = [str(r) for r in refs] if isinstance(refs, list) else str(refs)
    return {"seeds": seeds, "overrides": data.get("overrides", []), "reference": reference,
            "variants": {str(n): {"config": str(v["config"]), "overrides": v.get("overrides", []),
                                  "report": v.get("report", True), "reference": references[n]}
                         for n, v in variants.items()}}


def needs(variant: dict) -> list:
    """The variants whose runs ``variant``'s overrides name as ``{run:NAME}``."""
    return [m.group(1) for o in variant["overrides"] for m in RUN_REF.finditer(o)]


def _check(mapping, known: tuple, required: tuple, where: str):
    if not isinstance(mapping, dict):
        raise StudyError(f"{where} must be a mapping, got {mapping!r}")
    for key in mapping:
        if key not in known:
            raise StudyError(f"{where}: unknown key '{key}' (known keys: {', '.join(known)})")
    for key in required:
        if key not in mapping:
            raise StudyError(f"{where}: missing key '{key}'")
    overrides = mapping.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise StudyError(f"{where}: 'overrides' must be a list of key=value strings, got {overrides!r}")


def resolve(study: dict, seeds=None, overrides=(), only=None, out: str = ".") -> dict:
    """Loads every variant's config per seed before anything trains (``only`` and the
    variants they need). Returns ``{variant: {"config", "overrides", "report", "needs",
    "seed_overrides": {seed: [...]}, "configs": {seed: config dict}}}`` in file order."""
    names = list(study["variants"])
    for name in only or []:
        if name not in names:
            raise StudyError(f"--variants: unknown variant '{name}' (study has: {', '.join(names)})")
    wanted = set(only or names)
    for name in reversed(names):  # a variant's needs come earlier in the file
        if name in wanted:
            wanted.update(needs(study["variants"][name]))
    plan = {}
    for name in [n for n in names if n in wanted]:
        spec = study["variants"][name]
        path = spec["config"] if os.path.isabs(spec["config"]) else os.path.join(ROOT, spec["config"])
        over = study["overrides"] + spec["overrides"] + list(overrides)
        per_seed = {s: [RUN_REF.sub(lambda m: os.path.join(out, m.group(1), f"seed{s}"), o) for o in over]
                    + [f"seed={s}"] for s in seeds or study["seeds"]}
        try:
            configs = {s: load_config(path, o).to_dict() for s, o in per_seed.items()}
        except ConfigError as e:
            raise StudyError(f"variant '{name}' ({spec['config']}): config error: {e}") from e
        plan[name] = {"config": path, "overrides": over, "report": spec["report"], "needs": needs(spec),
                      "reference": spec.get("reference", study["reference"]),
                      "seed_overrides": per_seed, "configs": configs}
    return plan


# Options added after some runs were saved, whose default has changed since: the value the
# code had before the option existed (for any other missing option, its default).
BEFORE_ADDED = {"model.intertwiner.makeup_residual": "none"}


def config_diff(saved, wanted, prefix: str = "", defaults=None):
    """The first dotted key where two config dicts differ, or None when equal. With
    ``defaults`` (the schema's default config dict), a key the saved config lacks is no
    difference when the wanted value is what the code did before the option existed:
    ``BEFORE_ADDED``'s value, else the option's default."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        defaults = defaults if isinstance(defaults, dict) else {}
        for key in list(wanted) + [k for k in saved if k not in wanted]:
            if (key not in saved and key in wanted and key in defaults
                    and BEFORE_ADDED.get(prefix + str(key), defaults[key]) == wanted[key]):
                continue
            if key not in saved or key not in wanted:
                return prefix + str(key)
            diff = config_diff(saved[key], wanted[key], f"{prefix}{key}.", defaults.get(key))
            if diff:
                return diff
        return None
    return None if saved == wanted else prefix.rstrip(".")


def relevant(cfg):
    """The parts of a config dict that shape a run: a section with ``enabled: false`` (a
    disabled method, such as the baseline's intertwiner) is left out, so adding or changing
    the options of a disabled method — or adding a new method that is off — still reuses
    the run."""
    if not isinstance(cfg, dict):
        return cfg
    return {k: relevant(v) for k, v in cfg.items()
            if not (isinstance(v, dict) and v.get("enabled") is False)}


def checkpoint_step(run_dir: str):
    """Step of the latest checkpoint named in ``checkpoints/checkpoint`` (None if none)."""
    try:
        with open(os.path.join(run_dir, "checkpoints", "checkpoint")) as f:
            match = re.search(r'^model_checkpoint_path: ".*-(\d+)"', f.read(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def is_finished(run_dir: str, cfg: dict) -> bool:
    step, steps = checkpoint_step(run_dir), cfg["train"]["steps"]
    return (os.path.exists(os.path.join(run_dir, "eval", "metrics.json")) and step is not None
            and (steps is None or step == steps))


def differs(saved: dict, cfg: dict):
    """The first key where a saved run's config dict and the study's differ in what shapes a
    run (``relevant``), or None."""
    return config_diff(relevant(saved), relevant(yaml.safe_load(yaml.safe_dump(cfg))), defaults=Config().to_dict())


def load_record(path: str | None) -> dict:
    """``{(variant, seed): run record with "config" and "metrics"}`` of an earlier study.json."""
    if not path:
        return {}
    try:
        with open(path) as f:
            data = json.load(f)
        return {(name, r["seed"]): r for name, v in data["variants"].items() for r in v["runs"]
                if r.get("metrics") and r.get("config")}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StudyError(f"--record {path}: not a study.json written by this runner ({e})") from e


def check_config(run_dir: str, cfg: dict, where: str, rerun_changed: bool = False):
    """Refuses a run dir trained with another config, or moves it aside (``rerun_changed``)."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        return
    with open(path) as f:
        diff = differs(yaml.safe_load(f), cfg)
    if diff is None:
        return
    if not rerun_changed:
        raise StudyError(f"{where}: {run_dir} was trained with another config (first difference: "
                         f"'{diff}'); use --rerun_changed to move it aside and retrain, or another --out")
    stale = f"{run_dir}.stale-{time.strftime('%Y%m%d-%H%M%S')}"
    os.replace(run_dir, stale)
    print(f"{where}: config changed at '{diff}'; moved the old run to {stale}")


def train(run_dir: str, config: str, overrides: list) -> str | None:
    """Trains one run in a fresh subprocess; returns None, or the error (stderr tail)."""
    cmd = [sys.executable, "-m", "internet_tf.cli.train", "--config", config, "--model_dir", run_dir]
    for o in overrides:
        cmd += ["--override", o]
    tail = collections.deque(maxlen=60)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env) as proc:
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line)
    if proc.returncode:
        return f"exit code {proc.returncode}\n" + "".join(tail)
    return None


@functools.lru_cache(maxsize=None)
def _load_ground_truth(path: str):
    from internet_tf.evaluation.error_split import load_ground_truth

    return load_ground_truth(path)


def ground_truth(run_dir: str):
    """The pycocotools COCO of a run's validation split (from its saved config.yaml)."""
    from internet_tf.data.datasets import dataset_paths

    return _load_ground_truth(dataset_paths(load_config(os.path.join(run_dir, "config.yaml")))["val_annotations"])


def run_one(run_dir: str, variant: dict, seed: int, report_only: bool, blocked_by=()) -> str:
    """Reuses, trains (recording a crash in study_error.txt) or, with ``report_only``, only
    inspects one run; returns its status: reused, trained, failed, missing, or blocked (a
    run it needs, ``blocked_by``, did not finish)."""
    cfg, error_path = variant["configs"][seed], os.path.join(run_dir, "study_error.txt")
    if is_finished(run_dir, cfg):
        print(f"reused {run_dir} (finished at step {checkpoint_step(run_dir)})")
        return "reused"
    if blocked_by:
        print(f"not training {run_dir}: it needs {', '.join(blocked_by)}, which did not finish", file=sys.stderr)
        return "blocked"
    if report_only:
        return "failed" if os.path.exists(error_path) else "missing"
    print(f"training {run_dir}", flush=True)
    if os.path.exists(error_path):
        os.remove(error_path)
    error = train(run_dir, variant["config"], variant["seed_overrides"][seed])
    if error is None and not is_finished(run_dir, cfg):
        error = "training ended without eval/metrics.json at the final step"
    if error is None:
        return "trained"
    os.makedirs(run_dir, exist_ok=True)
    write_atomic(error_path, error)
    print(f"FAILED {run_dir}; see {error_path}", file=sys.stderr)
    return "failed"


def run_study(study_path: str, out: str, seeds=None, overrides=(), only=None,
              report_only=False, rerun_changed=False, command="", record_path=None) -> int:
    """Trains what is missing, writes the report files; returns the number of failed runs."""
    study = load_study(study_path)
    record = load_record(record_path)
    plan = resolve(study, seeds, overrides, only, out)
    seeds = seeds or study["seeds"]
    reported = [n for n, v in plan.items() if v["report"]]
    reference = study["reference"] if study["reference"] in plan else reported[0]
    runs = {name: [] for name in plan}
    for name, variant in plan.items():
        for seed in seeds:
            run_dir = os.path.join(out, name, f"seed{seed}")
            cfg = variant["configs"][seed]
            check_config(run_dir, cfg, f"variant '{name}' seed {seed}", rerun_changed and not report_only)
            kept = record.get((name, seed))
            if kept and not is_finished(run_dir, cfg) and differs(kept["config"], cfg) is None:
                print(f"recorded {run_dir} (metrics from {record_path})")
                runs[name].append({"seed": seed, "status": "recorded", "model_dir": run_dir,
                                   "metrics": kept["metrics"], "config": cfg})
                continue
            needed = [runs[n][seeds.index(seed)] for n in variant["needs"]]
            for n, r in zip(variant["needs"], needed):  # only the metrics were kept: train it here
                if r["status"] == "recorded" and not report_only:
                    r["status"] = run_one(r["model_dir"], plan[n], seed, False)
            blocked_by = [f"{n}/seed{seed}" for n, r in zip(variant["needs"], needed)
                          if r["status"] not in ("reused", "trained", "recorded")]
            status = run_one(run_dir, variant, seed, report_only, blocked_by)
            metrics = None
            if status in ("reused", "trained"):
                with open(os.path.join(run_dir, "eval", "metrics.json")) as f:
                    metrics = json.load(f)
            runs[name].append({"seed": seed, "status": status, "model_dir": run_dir, "metrics": metrics,
                               "config": cfg})
    for records in runs.values():
        for r in records:
            if r["metrics"] and "AP" in r["metrics"]:  # COCO-format runs
                try:
                    r["error_split"] = error_split_of_run(r["model_dir"], ground_truth)
                except (ConfigError, OSError, ValueError) as e:
                    print(f"no error split for {r['model_dir']}: {e}", file=sys.stderr)
    summary = aggregate({n: runs[n] for n in reported})
    steps = sorted({str(c["train"]["steps"] or f"{c['train']['epochs']} epochs")
                    for v in plan.values() for c in v["configs"].values()})
    seed_text = ", ".join(map(str, seeds))
    text = format_table(summary, reference, f"`{command}`: step budget {', '.join(steps)}, seeds {seed_text}")
    pairs = paired({n: runs[n] for n in reported}, {n: plan[n]["reference"] for n in reported})
    if pairs:
        text += "\n\n" + format_paired(pairs)
    errors = aggregate({n: runs[n] for n in reported}, ERROR_KEYS, "error_split")
    if any(s["n"] for s in errors.values()):
        text += "\n\n" + format_error_table(errors)
    os.makedirs(out, exist_ok=True)
    write_atomic(os.path.join(out, "study.md"), text + "\n")
    write_atomic(os.path.join(out, "study.json"), json.dumps({
        "command": command, "study": study_path, "seeds": seeds, "steps": steps, "reference": reference,
        "paired": pairs,
        "variants": {n: {"config": os.path.relpath(v["config"], ROOT), "overrides": v["overrides"],
                         "report": v["report"], "reference": v["reference"],
                         "steps": sorted({c["train"]["steps"] or 0 for c in v["configs"].values()}),
                         "runs": runs[n]} for n, v in plan.items()}}, indent=1))
    bar_chart(summary, os.path.join(out, "study.png"),
              f"{os.path.basename(study_path)}: mean ± std over seeds {seed_text}")
    if pairs:
        paired_chart(pairs, os.path.join(out, "study_paired.png"),
                     f"{os.path.basename(study_path)}: paired Δ, mean and 95 % t-interval, seeds {seed_text}")
    print(text + f"\n\nwrote {out}/study.md, study.json, study.png" + (", study_paired.png" if pairs else ""))
    return sum(r["status"] in ("failed", "blocked") for rs in runs.values() for r in rs)


def define_flags(study=None, out=None):
    flags.DEFINE_string("study", study, "Study YAML file (see configs/studies/).")
    flags.DEFINE_string("out", out, "Output folder (default runs/study/<study file stem>).")
    flags.DEFINE_string("seeds", None, "Comma-separated seeds (default: the study file's).")
    flags.DEFINE_multi_string("override", [], "key=value applied to every variant, after the file's.")
    flags.DEFINE_list("variants", None, "Run only these variants (comma-separated).")
    flags.DEFINE_bool("report_only", False, "Train nothing; tabulate the finished runs.")
    flags.DEFINE_bool("rerun_changed", False, "Move runs trained with another config aside and retrain.")
    flags.DEFINE_string("record", None, "An earlier session's study.json: its runs with the same config "
                        "are reused from their recorded metrics.")
    if study is None:
        flags.mark_flag_as_required("study")


def main(argv):
    del argv
    out = FLAGS.out or os.path.join("runs", "study", os.path.splitext(os.path.basename(FLAGS.study))[0])
    command = shlex.join(["python"] + sys.argv)
    try:
        if FLAGS.seeds and not re.fullmatch(r"-?\d+(,-?\d+)*", FLAGS.seeds):
            raise StudyError(f"--seeds must be comma-separated integers, got {FLAGS.seeds!r}")
        seeds = [int(s) for s in FLAGS.seeds.split(",")] if FLAGS.seeds else None
        failed = run_study(FLAGS.study, out, seeds, FLAGS.override, FLAGS.variants,
                           FLAGS.report_only, FLAGS.rerun_changed, command, FLAGS.record)
    except (StudyError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    define_flags()
    app.run(main)
