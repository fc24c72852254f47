"""docs/configuration.md is generated from the schema (``config/reference.py``): the checked-in
page equals what the generator writes now, lists every key with its default and allowed values,
and every key has a meaning; a key the table does not describe takes its field's comment."""
import dataclasses
import os
import subprocess
import sys
from typing import Optional

from internet_tf.config import CHOICES, Config
from internet_tf.config import reference
from internet_tf.config.validation import RANGES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "configuration.md")


def leaf_keys(obj, prefix=""):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from leaf_keys(value, prefix + f.name + ".")
        else:
            yield prefix + f.name, value


def test_the_page_is_what_the_generator_writes_from_the_schema():
    with open(PAGE) as f:
        assert f.read() == reference.render(), \
            "docs/configuration.md is out of date: run python -m internet_tf.config.reference"


def test_every_schema_key_is_a_row_with_its_default_and_allowed_values():
    with open(PAGE) as f:
        rows = {line.split("|")[1].strip().strip("`"): line for line in f if line.startswith("| `")}
    schema = dict(leaf_keys(Config()))
    assert set(rows) == set(schema)
    for key, default in schema.items():
        assert f"| `{reference._yaml(default)}` |" in rows[key], key
        for choice in CHOICES.get(key, ()):
            assert f"`{choice}`" in rows[key], (key, choice)
        if key in RANGES and key not in reference.CHECKED_IN_VALIDATE:
            assert RANGES[key].text in rows[key], key


def test_every_key_has_a_meaning():
    undescribed = [k.name for k in reference.keys() if k.meaning == reference.UNDESCRIBED]
    assert not undescribed, f"add a line to config/reference.py DESCRIPTIONS for {undescribed}"


@dataclasses.dataclass
class Extended:
    described: int = 1
    # an option the table does not know,
    commented: Optional[str] = None  # described by its comments
    bare: float = 0.5
    parts: list = dataclasses.field(default_factory=lambda: ["a", "b"])


def test_a_key_missing_from_the_table_takes_its_field_comment():
    rows = {k.name: k for k in reference.keys(Extended, "x.")}
    assert rows["x.commented"].meaning == "an option the table does not know, described by its comments"
    assert rows["x.commented"].allowed == "string or null"
    assert rows["x.bare"].meaning == reference.UNDESCRIBED


def test_check_mode_reports_an_outdated_page(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text(reference.render().replace("`train.steps`", "`train.stepz`"))
    command = [sys.executable, "-m", "internet_tf.config.reference", "--check", "--out", str(stale)]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "out of date" in proc.stderr


def test_a_list_key_with_choices_lists_them_for_each_entry(monkeypatch):
    monkeypatch.setitem(CHOICES, "x.parts", ("a", "b", "c"))
    rows = {k.name: k for k in reference.keys(Extended, "x.")}
    assert rows["x.parts"].allowed == "each of `a`, `b`, `c`" and rows["x.parts"].default == ["a", "b"]
