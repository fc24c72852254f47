"""The COCO annotation format's structure: reading the JSON, the checks that
make a malformed file a :class:`DatasetError` naming its record, and the box parser; used by
the COCO index (``data/coco.py``) and the VOC reader's in-memory dicts alike."""
from __future__ import annotations

import json
import math
from typing import Any

_REQUIRED_KEYS = ("images", "annotations", "categories")
_IMAGE_KEYS = ("id", "file_name", "width", "height")


class DatasetError(ValueError):
    """A dataset that cannot be used as given; the message names the file and record."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_json(annotation_file: str) -> dict:
    """Reads and structurally validates a COCO annotation file (no image access)."""
    return check_dataset(_parse_json(annotation_file), f"Annotation file {annotation_file!r}")


def _without(keys: frozenset):
    """A json ``object_hook`` that drops ``keys`` from every object as it is parsed."""
    def hook(obj: dict) -> dict:
        for key in keys & obj.keys():
            del obj[key]
        return obj
    return hook


def _parse_json(annotation_file: str, drop: frozenset = frozenset()):
    """The parsed file; ``drop`` names keys left out of every object while parsing (so, e.g.,
    COCO's polygons never take memory when only boxes are read)."""
    try:
        with open(annotation_file, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError(f"Cannot read annotation file {annotation_file!r}: {e}") from e
    try:
        data = json.loads(raw, object_hook=_without(drop) if drop else None)
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"Annotation file {annotation_file!r} is not valid JSON: {e.msg} at line "
            f"{e.lineno} column {e.colno} (char {e.pos})") from e
    except UnicodeDecodeError as e:
        raise DatasetError(f"Annotation file {annotation_file!r} is not UTF-8 text: {e}") from e
    return data


def check_dataset(data: Any, origin: str) -> dict:
    """Structurally validates a COCO-format dict (from a file or built in memory); fills the
    optional annotation fields. ``origin`` starts every error message (names the source)."""
    if not isinstance(data, dict):
        raise DatasetError(f"{origin}: top level must be a JSON object, got {type(data).__name__}")
    for key in _REQUIRED_KEYS:
        if key not in data:
            raise DatasetError(f"{origin} has no {key!r} key "
                               f"(a COCO file needs {', '.join(_REQUIRED_KEYS)})")
        if not isinstance(data[key], list):
            raise DatasetError(f"{origin}: {key!r} must be a list, got {type(data[key]).__name__}")
    _check_images(data["images"], origin)
    _check_categories(data["categories"], origin)
    _check_annotations(data["annotations"], origin)
    return data


def _check_images(images: list, origin: str) -> None:
    seen = set()
    for i, img in enumerate(images):
        where = f"{origin}: images[{i}]"
        if not isinstance(img, dict):
            raise DatasetError(f"{where} is not an object")
        where += f" (id={img.get('id')!r})"
        missing = [k for k in _IMAGE_KEYS if k not in img]
        if missing:
            raise DatasetError(f"{where} lacks required field(s) {missing}")
        if not isinstance(img["id"], int) or isinstance(img["id"], bool):
            raise DatasetError(f"{where}: 'id' must be an integer")
        for k in ("width", "height"):
            v = img[k]
            if not _is_number(v) or v <= 0 or int(v) != v:
                raise DatasetError(f"{where}: {k!r} must be a positive integer, got {v!r}")
        if not isinstance(img["file_name"], str) or not img["file_name"]:
            raise DatasetError(f"{where}: 'file_name' must be a non-empty string")
        if img["id"] in seen:
            raise DatasetError(f"{where}: duplicate image id {img['id']}")
        seen.add(img["id"])


def _check_categories(categories: list, origin: str) -> None:
    if not categories:
        raise DatasetError(f"{origin} has an empty 'categories' list")
    seen = set()
    for i, cat in enumerate(categories):
        where = f"{origin}: categories[{i}]"
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise DatasetError(f"{where} must be an object with 'id' and 'name'")
        if not isinstance(cat["id"], int) or isinstance(cat["id"], bool):
            raise DatasetError(f"{where}: 'id' must be an integer, got {cat['id']!r}")
        if cat["id"] in seen:
            raise DatasetError(f"{where}: duplicate category id {cat['id']}")
        seen.add(cat["id"])


def _check_annotations(annotations: list, origin: str) -> None:
    """Requires the fields pycocotools indexes by; fills COCOeval's optional ones."""
    used_ids = {a["id"] for a in annotations if isinstance(a, dict) and "id" in a}
    next_id = max([i for i in used_ids if _is_number(i)], default=0) + 1
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise DatasetError(f"{origin}: annotations[{i}] is not an object")
        for k in ("image_id", "category_id"):
            if k not in ann:
                raise DatasetError(f"{origin}: annotations[{i}] "
                                   f"(id={ann.get('id')!r}) lacks required field {k!r}")
            if not isinstance(ann[k], (int, str)) or isinstance(ann[k], bool):
                raise DatasetError(f"{origin}: annotations[{i}] "
                                   f"(id={ann.get('id')!r}): {k!r} must be an integer, "
                                   f"got {ann[k]!r}")
        if "id" not in ann:  # pycocotools indexes annotations by id.
            ann["id"] = next_id
            next_id += 1
        ann.setdefault("iscrowd", 0)
        if "area" not in ann:  # COCOeval reads 'area' for its size ranges.
            box = parse_bbox(ann.get("bbox"))
            ann["area"] = float(box[2] * box[3]) if box is not None else 0.0


def parse_bbox(bbox: Any) -> tuple[float, float, float, float] | None:
    """Returns (x, y, w, h) as floats, or None when not 4 finite numbers."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return None
    if not all(_is_number(v) and math.isfinite(v) for v in bbox):
        return None
    return tuple(float(v) for v in bbox)
