"""Fine-tuning from a trained detector: ``train.init_from`` and ``train.init_parts``.

At a fresh start (a run without a checkpoint of its own) the chosen parts of a detector
trained by ``internet-train`` are copied into the new one — the practice of Model Garden's
``init_checkpoint`` / ``init_checkpoint_modules`` and detectron2's ``MODEL.WEIGHTS``, and the
warm start from a trained detector that the authors' OT configuration uses. The optimizer
and its step start afresh.

``init_from`` is a run directory (its latest checkpoint) or a checkpoint path inside one
(``RUN/checkpoints/ckpt-N``): the run's ``config.yaml`` and ``labels.json`` say which
detector the checkpoint holds, so it is rebuilt as trained and restored completely before
anything is copied. Within each part, variables are paired in their creation order: a part
whose variables differ in number is another architecture (an error), a variable of another
shape (a predictor for another class count) is skipped and listed. ``methods`` pairs each
training-time method with the source's method of the same name; a method the source lacks
(an InterNet started from a baseline) keeps its fresh initialisation and is listed as
absent. What was loaded, skipped and absent is logged in one line and written to
``RUN/init.json``.
"""
from __future__ import annotations

import dataclasses
import os

from absl import logging

from internet_tf.files import write_json_atomic
from internet_tf.run_dir import CHECKPOINTS, CONFIG_FILE, RunDirError, read_run

INIT_FILE = "init.json"
# Part name -> the detector's attribute (``methods`` is handled per method).
PART_LAYERS = {"backbone": "backbone", "fpn": "fpn", "rpn": "rpn_head", "box_head": "box_head",
               "predictor": "predictor"}


class InitFromError(ValueError):
    """``train.init_from`` cannot initialise this run; the message names the key and path."""


def _error(path: str, what: str) -> InitFromError:
    return InitFromError(f"config key 'train.init_from' = {path!r}: {what}")


def locate(path: str) -> tuple[str, str | None]:
    """``init_from`` -> (its run directory, the checkpoint path or None for "the latest").
    Checks only that the files exist (no TensorFlow), so a wrong path is refused at once."""
    if os.path.isdir(path):
        run_dir, checkpoint = path, None
        if not os.path.isfile(os.path.join(path, CHECKPOINTS, "checkpoint")):
            raise _error(path, f"is a folder without {CHECKPOINTS}/checkpoint: not a run trained by "
                               "internet-train (or it has saved no checkpoint yet)")
    elif os.path.isfile(path + ".index"):
        run_dir, checkpoint = os.path.dirname(os.path.dirname(os.path.abspath(path))), path
    else:
        raise _error(path, "does not exist (give a run directory or a checkpoint path such as "
                           "RUN/checkpoints/ckpt-500)")
    if not os.path.isfile(os.path.join(run_dir, CONFIG_FILE)):
        raise _error(path, f"is not a checkpoint written by internet-train: {run_dir} has no "
                           f"{CONFIG_FILE} saying which detector it holds")
    return run_dir, checkpoint


@dataclasses.dataclass
class InitReport:
    """What ``initialise`` copied: per part the number of variables loaded, the skipped
    variables (name, checkpoint shape, this run's shape) and the parts the source lacks."""
    init_from: str
    checkpoint: str
    parts: list
    loaded: dict = dataclasses.field(default_factory=dict)
    skipped: list = dataclasses.field(default_factory=list)
    absent: list = dataclasses.field(default_factory=list)

    def line(self) -> str:
        loaded = ", ".join(f"{p} ({n} variables)" for p, n in self.loaded.items()) or "nothing"
        text = f"Initialised from {self.checkpoint}: loaded {loaded}"
        if self.skipped:
            text += "; skipped (another shape): " + ", ".join(
                f"{s['variable']} {s['checkpoint_shape']} -> {s['shape']}" for s in self.skipped)
        if self.absent:
            text += "; not in the checkpoint: " + ", ".join(self.absent)
        return text + "."


def _pairs(init_from: str, part: str, source, target) -> list:
    src, dst = source.weights, target.weights
    if len(src) != len(dst):
        raise _error(init_from, f"part '{part}' has {len(src)} variables in the checkpoint and {len(dst)} "
                                "in this run: another architecture (compare the two config.yaml files, "
                                "or leave the part out of 'train.init_parts')")
    return list(zip(src, dst))


def _name(part: str, variable) -> str:
    return f"{part}:{getattr(variable, 'path', variable.name)}"


def initialise(detector, init_from: str, parts, restore_model) -> InitReport:
    """Copies ``parts`` of the detector saved at ``init_from`` into ``detector`` (built).

    Args:
      detector: the run's ``Detector`` with every variable created.
      init_from: a run directory or a checkpoint path (``train.init_from``).
      parts: names from ``config.INIT_PARTS`` (``train.init_parts``).
      restore_model: ``(ModelConfig, num_classes, checkpoint) -> Detector``, the factory that
        rebuilds the source detector from its saved config and restores it.

    Returns:
      An ``InitReport``. Raises ``InitFromError`` for a missing or foreign checkpoint, a
      part of another architecture, or when nothing at all could be loaded.
    """
    import tensorflow as tf  # deferred: locate() serves the CLI's check before TensorFlow starts

    run_dir, checkpoint = locate(init_from)
    try:
        run = read_run(run_dir)
    except RunDirError as err:
        raise _error(init_from, err.problem) from err
    checkpoint = checkpoint or run.checkpoint
    try:
        source = restore_model(run.cfg.model, run.num_classes, checkpoint)
    except (ValueError, tf.errors.OpError) as err:
        raise _error(init_from, f"{checkpoint} does not hold the detector its {CONFIG_FILE} describes "
                                f"({str(err).splitlines()[0][:200]})") from err
    report = InitReport(init_from, checkpoint, list(parts))
    pairs = []
    for part in parts:
        if part == "methods":
            by_name = {m.name: m for m in source.methods}
            for method in detector.methods:
                if method.name not in by_name:
                    report.absent.append(f"methods:{method.name}")
                    continue
                pairs += [(f"methods:{method.name}", *p) for p in
                          _pairs(init_from, f"methods:{method.name}", by_name[method.name], method)]
        else:
            layer = PART_LAYERS[part]
            pairs += [(part, *p) for p in _pairs(init_from, part, getattr(source, layer),
                                                 getattr(detector, layer))]
    for part, src, dst in pairs:
        if tuple(src.shape) != tuple(dst.shape):
            report.skipped.append({"variable": _name(part, dst), "checkpoint_shape": list(src.shape),
                                   "shape": list(dst.shape)})
            continue
        dst.assign(src)
        report.loaded[part] = report.loaded.get(part, 0) + 1
    if not report.loaded:
        raise _error(init_from, f"none of the variables of {', '.join(parts)} fits this run "
                                f"({len(report.skipped)} of another shape)")
    return report


def write_report(model_dir: str, report: InitReport) -> str:
    """``model_dir/init.json``: the report, for the run's record."""
    return write_json_atomic(os.path.join(model_dir, INIT_FILE), dataclasses.asdict(report), indent=1)


def init_at_fresh_start(detector, cfg, model_dir: str, restore_model, is_chief: bool = True):
    """The trainer's hook at a fresh start: initialises from ``cfg.train.init_from`` when set,
    logs the report's line and (chief) records it; returns the report or None."""
    if not cfg.train.init_from:
        return None
    if restore_model is None:
        raise ValueError("train.init_from needs the trainer's restore_model (built by assembly.train.build_trainer)")
    report = initialise(detector, cfg.train.init_from, cfg.train.init_parts, restore_model)
    logging.info("%s", report.line())
    print(report.line(), flush=True)
    if is_chief:
        write_report(model_dir, report)
    return report


def note_resume(cfg, latest: str) -> None:
    """On resume the run's own checkpoint wins over ``train.init_from``; says so."""
    if cfg.train.init_from:
        logging.info("Resuming from %s: train.init_from (%s) applies only at a fresh start.",
                     latest, cfg.train.init_from)

