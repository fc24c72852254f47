"""Loading a configuration: defaults, then a YAML file's ``base:`` chain, then
``key=value`` overrides, each leaf type-checked against the schema; unknown keys are errors
naming the full dotted key."""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import typing
from typing import Any, Optional

import yaml

from internet_tf.config.schema import CHOICES, Config, ConfigError, check_choice
from internet_tf.config.validation import validate


def _check_value(key: str, annotation: Any, value: Any) -> Any:
    """Type-check one leaf value against its dataclass annotation; returns the coerced value."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _check_value(key, [a for a in args if a is not type(None)][0], value)
    if annotation in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if annotation in ("float", float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"config key '{key}' must be finite, got {value!r}")
        return float(value)
    if annotation in ("bool", bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if annotation in ("str", str):
        if isinstance(value, bool) and "true" in CHOICES.get(key, ()):  # auto | true | false options
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return check_choice(key, value) if key in CHOICES else value
    if annotation in ("list", list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return list(value)
    return value


def _resolve_type(cls, name):
    hints = typing.get_type_hints(cls)
    return hints[name]


def _merge(obj, updates: dict, prefix: str = ""):
    """Merge a nested dict of updates into dataclass ``obj`` in place, validating keys."""
    if not isinstance(updates, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {updates!r}")
    names = {f.name for f in dataclasses.fields(obj)}
    for name, value in updates.items():
        key = prefix + str(name)
        if name not in names:
            raise ConfigError(
                f"unknown config key '{key}' (known keys here: {', '.join(sorted(names))})")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            _merge(current, value, key + ".")
        else:
            setattr(obj, name, _check_value(key, _resolve_type(type(obj), name), value))


def _load_yaml_chain(path: str, seen=None) -> list:
    """Returns the list of mappings from the outermost ``base`` to ``path`` itself."""
    seen = seen or []
    path = os.path.abspath(path)
    if path in seen:
        raise ConfigError(f"config 'base' cycle: {' -> '.join(seen + [path])}")
    if not os.path.exists(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    base = data.pop("base", None)
    chain = []
    if base is not None:
        base_path = base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)
        chain = _load_yaml_chain(base_path, seen + [path])
    return chain + [data]


def parse_override(text: str) -> dict:
    """``'model.rpn.nms_iou=0.6'`` -> ``{'model': {'rpn': {'nms_iou': 0.6}}}`` (YAML-typed value)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{text}': value is not valid YAML: {e}") from e
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(path: Optional[str] = None, overrides: Optional[list] = None) -> Config:
    """Loads defaults, then the YAML chain of ``path``, then each ``key=value`` override."""
    cfg = Config()
    if path:
        for mapping in _load_yaml_chain(path):
            _merge(cfg, mapping)
    for text in overrides or []:
        _merge(cfg, parse_override(text))
    return validate(cfg)


def copy_config(cfg: Config, overrides: Optional[list] = None) -> Config:
    """A deep copy of ``cfg`` with overrides applied (used by tests and benchmarks)."""
    new = copy.deepcopy(cfg)
    for text in overrides or []:
        _merge(new, parse_override(text))
    return validate(new)
