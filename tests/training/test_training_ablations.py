"""Every shipped config, and every ablation row of Tables 1 and 2, trains for 2 steps on a
tiny model without NaN on a synthetic batch — each distinct code path once.

Many rows build the very same code: they differ only in a number that selects no branch (a
loss weight, a buffer window or decay, the Eq. 6 base, ResNet-101 instead of ResNet-50 once
the tiny backbone replaces both). ``code_path`` reduces a config (with the tiny model on top)
to what selects code: every string and bool switch of ``model`` and ``train`` (merge, loss,
split, reliable source, alignment, buffer mode, per-level, detach, make-up placement, frozen
BN, ...), the LabelEnc step, whether each number is zero (the warm-ups, ``freeze_at``) or unset
(``clip_norm``, the schedule's), with a disabled method's options left out. ``SAME_PATH``
names, for each representative, the configs that reduce to exactly its code path:
``test_config_trains_two_steps_without_nan`` trains every config that is no other's member,
and ``test_config_builds_its_representatives_code_path`` loads each member and checks that it
still reduces to its representative's path, while ``test_trained_configs_are_distinct_paths``
checks that no two trained configs share one. Nothing is lost: two configs with one code path
run the same branches and differ only in numbers fed through them, and a config that
changes its path (a new switch, a switch flipped) fails the membership test instead of
silently going untrained.

Groups that hold one of the shipped top-level configs (not LabelEnc) train with the compiled
step, as those configs did before, so the compiled step still covers every code path of a
top-level config; the others run the same step eagerly (tracing this graph takes ~10 s on 2
cores). The LabelEnc configs run eagerly too: tests/training/test_training_labelenc.py
trains LabelEnc through the compiled trainer step. ``COMPILED_ELSEWHERE`` are the top-level
configs whose code path the suite already trains compiled on tests/tiny.yaml, so they run
eagerly here: the InterNet of ``demo`` (test_training_trainer.py, test_cli_train_eval.py) and
its baseline (tests/benchmarks/test_study.py). Their paths differ from tiny.yaml's only in
``train.warmup_steps`` (non-zero here), which selects a straight-line ramp in the learning-rate
schedule — the same tensor code compiled or not; ``test_configs_compiled_elsewhere_...``
checks that."""
import glob
import os

import numpy as np
import pytest
import tiny

from internet_tf.config import load_config
from internet_tf.data.synthetic import synthetic_batch
from internet_tf.assembly.factory import build_model_and_optimizer
from internet_tf.training.step import build_train_step

pytestmark = pytest.mark.cost(143)  # seconds in make test (tests/conftest.py schedules by it)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
CONFIGS = sorted(os.path.relpath(p, ROOT)[:-5] for p in
                 glob.glob(os.path.join(ROOT, "*.yaml")) + glob.glob(os.path.join(ROOT, "ablations", "*.yaml")))
# The tiny model (tests/tiny.yaml) on top of each config; each row keeps its own Eq. 6 base.
TINY = tiny.overrides("model.", exclude=("model.roi.level_base",)) + ["data.max_instances=8", "train.batch_size=2"]
# representative -> the configs whose code path is exactly the representative's
SAME_PATH = {
    "internet_r50_fpn_coco": [
        "internet_r101_fpn_coco", "ablations/table1_d_ot", "ablations/table2a_intertwiner_default",
        "ablations/table2a_intertwiner_more_on_higher", "ablations/table2b_l2", "ablations/table2b_l2_fac0.1",
        "ablations/table2c_linear", "ablations/table2d_all_history_equal", "ablations/table2e_detach",
        "ablations/table2e_unified_buffer"],
    "baseline_r50_fpn_coco": [
        "baseline_r101_fpn_coco", "ablations/table2a_baseline_default", "ablations/table2a_baseline_more_on_higher"],
    "ablations/table2b_kl": ["ablations/table2b_kl_fac10"],
    "ablations/table2b_l1": ["ablations/table2b_l1_fac10"],
    "ablations/table2d_partial_2000": ["ablations/table2d_partial_epoch"],
    # The embedded data read through the VOC route: the same model; the route itself is
    # trained in tests/cli/test_cli_voc.py.
    "demo": ["demo_voc"],
    # VGG-16 and ResNet-101 without FPN: under the tiny backbone the same path.
    "baseline_r101_voc0712": ["baseline_vgg16_voc07"],
    "internet_r101_voc0712": ["internet_vgg16_voc07"],
}
MEMBERS = {member: rep for rep, members in SAME_PATH.items() for member in members}
# representative -> the tiny.yaml overrides giving its code path (but train.warmup_steps),
# which other test modules train with the compiled step (see the docstring)
COMPILED_ELSEWHERE = {"demo": [], "demo_baseline": ["model.intertwiner.enabled=false"]}
TRAINED = [name for name in CONFIGS if name not in MEMBERS]


def _load(name):
    return load_config(os.path.join(ROOT, name + ".yaml"), TINY)


def _leaves(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def code_path(cfg) -> dict:
    """What of ``cfg`` selects code in the model and the train step (see the docstring)."""
    parts = {"model": cfg.to_dict()["model"], "train": cfg.to_dict()["train"]}
    for method in ("intertwiner", "labelenc"):
        if not parts["model"][method]["enabled"]:
            parts["model"][method] = {"enabled": False}
    path = {}
    for key, value in _leaves(parts):
        if key == "model.labelenc.step1_dir":  # a folder, read by the trainer only
            continue
        if isinstance(value, (bool, str)) or value is None or key == "model.labelenc.step":
            path[key] = value
        elif isinstance(value, (int, float)):
            path[key] = "zero" if value == 0 else "nonzero"
    return path


def _compiled(name):
    """Whether representative ``name``'s group trains with the compiled step here."""
    group = [name] + SAME_PATH.get(name, [])
    return name not in COMPILED_ELSEWHERE and any("/" not in n and "labelenc" not in n for n in group)


def test_every_table_row_has_a_config():
    names = {os.path.basename(p) for p in CONFIGS}
    assert sum(n.startswith("table1_") for n in names) == 8
    for table, rows in (("2a", 5), ("2b", 6), ("2c", 3), ("2d", 4), ("2e", 4)):
        assert sum(n.startswith(f"table{table}_") for n in names) == rows, table


def test_same_path_names_existing_configs_once():
    listed = list(SAME_PATH) + list(MEMBERS)
    assert len(listed) == len(set(listed)) and set(listed) <= set(CONFIGS), set(listed) - set(CONFIGS)


@pytest.mark.parametrize("name", sorted(MEMBERS))
def test_config_builds_its_representatives_code_path(name):
    mine, theirs = code_path(_load(name)), code_path(_load(MEMBERS[name]))
    assert mine == theirs, {k: (mine.get(k), theirs.get(k)) for k in set(mine) | set(theirs)
                            if mine.get(k) != theirs.get(k)}


def test_trained_configs_are_distinct_paths():
    paths = {}
    for name in TRAINED:
        paths.setdefault(tuple(sorted(code_path(_load(name)).items(), key=str)), []).append(name)
    assert [names for names in paths.values() if len(names) > 1] == []


def test_configs_compiled_elsewhere_are_the_tiny_configs_path():
    for name, overrides in COMPILED_ELSEWHERE.items():
        assert name in TRAINED and not _compiled(name)
        mine, theirs = code_path(_load(name)), code_path(tiny.config(*overrides))
        assert {k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)} == {"train.warmup_steps"}, name


@pytest.mark.parametrize("name", TRAINED)
def test_config_trains_two_steps_without_nan(name):
    cfg = _load(name)
    model, optimizer = build_model_and_optimizer(cfg, 3, 100)
    compiled = _compiled(name)
    step = build_train_step(model, optimizer, cfg.train.clip_norm, compiled=compiled)
    batch = synthetic_batch(2, 128, 8, 3, boxes_per_image=4)
    for _ in range(2):
        values = {k: float(v) for k, v in step(batch).items()}
        assert all(np.isfinite(v) for v in values.values()), values
    assert int(optimizer.iterations.numpy()) == 2
    expected = {"intertwiner"} if cfg.model.intertwiner.enabled else set()
    if cfg.model.intertwiner.enabled and cfg.model.intertwiner.alignment != "none":
        expected.add("alignment")
    if cfg.model.labelenc.enabled:  # LabelEnc's step 1 also trains the heads on h(y)
        expected |= {"distill"} | ({f"labelenc_{t}" for t in ("rpn_class", "rpn_box", "head_class", "head_box")}
                                   if cfg.model.labelenc.step == 1 else set())
    assert {k[5:] for k in values if k.startswith("loss/")} - {"total", "rpn_class", "rpn_box",
                                                               "head_class", "head_box"} == expected
