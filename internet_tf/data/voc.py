"""PASCAL VOC as distributed, read into the library's one COCO path (Li et al. 2019, Table 5).

A VOC root holds ``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg`` and
``ImageSets/Main/<split>.txt`` (one id per line). :func:`read_voc` turns one split of one
or several roots (VOC2007 + VOC2012) into a COCO-format dict, and :func:`load_voc` builds
the usual :class:`~internet_tf.data.coco.CocoIndex` from it, so everything after this edge
(skip rules for images and boxes, labels, pipeline, pycocotools ground truth) is the COCO
route's. The dict (the contract shared with ``data/convert.py`` and the VOC evaluation):

* ``categories``: ids ``1..K`` in class order, with ``name``: the 20 VOC classes in their
  usual order (``classes="voc"``), or the names found in the training split's XML, sorted
  (``"found"``; the val split takes the training list).
* ``images``: ``id`` sequential ints from 1 (roots in order, then the split file's order),
  ``file_name`` the absolute JPEG path, ``width``/``height``, ``voc_id`` (the file stem,
  as listed in ImageSets, used for the devkit's result files).
* ``annotations``: ``bbox`` ``[x, y, w, h]`` in 0-based continuous pixels. VOC pixel
  coordinates are 1-based and inclusive, so ``x = xmin - 1``, ``w = xmax - xmin + 1``
  (:func:`voc_to_xywh`; :func:`xywh_to_voc` is the inverse used by the converter);
  ``area = w * h``, ``iscrowd`` 0, ``difficult`` 0|1. Difficult boxes stay in the dict:
  evaluation ignores them; a training index leaves them out unless ``data.voc.use_difficult``
  (``CocoIndex(drop_difficult=...)``, skip reason ``difficult_object``).

Bad input. Structural problems are a :class:`DatasetError` naming the path: a missing root,
``Annotations/`` or ``JPEGImages/`` folder, or split file (the training split must exist in
every root; the evaluation split is read from the roots that have it, so 07+12 evaluates on
VOC2007 ``test``, and only none having it is an error). Data noise is a counted skip, each
logged with the file it concerns (the first few per reason): ``missing_annotation_file``,
``malformed_xml`` (the file does not parse or its root is not ``<annotation>``: one broken
file among thousands should cost that image, not the run, as a corrupt image does on the
COCO route), ``duplicate_image`` (an id listed twice, in one or several roots; the first is
kept), ``unknown_category`` (a name outside the classes, or no name), ``malformed_bbox``
(a missing ``<bndbox>`` or a coordinate that is not a finite number), ``malformed_object``
(a ``<difficult>`` flag other than 0/1). Degenerate and out-of-image boxes and missing or
unreadable images are then counted by the index under the COCO route's reasons
(``zero_area_box``, ``box_outside_image``, ``missing_image_file``, ...). A missing or
invalid ``<size>`` is not an error: the size is read from the image header (displayed,
i.e. EXIF-oriented) and counted in ``VocData.notes['size_from_image']``.

If ``JPEGImages/<id>.jpg`` does not exist but the XML's ``<filename>`` names a file in
``JPEGImages/`` (labelling tools write e.g. ``IMG_1.JPG``), that file is used.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import os
import xml.etree.ElementTree as ET
from typing import Sequence

from absl import logging
from PIL import Image

from internet_tf.data.coco import CocoIndex, DatasetError
from internet_tf.data.orientation import displayed_size, read_orientation

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
ANNOTATIONS, IMAGES, IMAGE_SETS = "Annotations", "JPEGImages", os.path.join("ImageSets", "Main")
_LOGGED_PER_REASON = 10


@dataclasses.dataclass
class VocData:
    """One split of one or several VOC roots as a COCO-format dict (see the module docstring)."""
    data: dict
    classes: list
    source: str
    skips: collections.Counter
    notes: collections.Counter


def voc_to_xywh(xmin: float, ymin: float, xmax: float, ymax: float) -> list:
    """VOC 1-based inclusive pixel corners -> COCO ``[x, y, w, h]`` in 0-based continuous pixels."""
    return [xmin - 1.0, ymin - 1.0, xmax - xmin + 1.0, ymax - ymin + 1.0]


def xywh_to_voc(bbox: Sequence[float], width: int, height: int) -> tuple | None:
    """COCO ``[x, y, w, h]`` -> VOC integer ``(xmin, ymin, xmax, ymax)``, 1-based inclusive.

    Each edge is clipped to the image and rounded to the nearest pixel boundary (halves
    up): a pixel belongs to the box when its larger half does. Integral boxes convert
    exactly (``voc_to_xywh`` gives them back); others move each edge by at most half a
    pixel. A box left without a whole pixel after rounding gets the one pixel nearest
    its centre; None when it lies outside the image or has no area.
    """
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    x0, x1 = max(x, 0.0), min(x + w, float(width))
    y0, y1 = max(y, 0.0), min(y + h, float(height))
    if x0 >= x1 or y0 >= y1:
        return None
    corners = []
    for lo, hi, size in ((x0, x1, width), (y0, y1, height)):
        first, end = math.floor(lo + 0.5), math.floor(hi + 0.5)  # pixels first .. end - 1
        if end <= first:
            first = min(max(math.floor((lo + hi) / 2), 0), size - 1)
            end = first + 1
        corners.append((first + 1, end))
    (xmin, xmax), (ymin, ymax) = corners
    return xmin, ymin, xmax, ymax


def _text(node, *tags: str) -> str | None:
    """The stripped text of ``node/tags[0]/tags[1]...`` (one plain tag per step: the C
    parser's fast lookup, not an ElementPath query), or None."""
    for tag in tags:
        node = node.find(tag) if node is not None else None
    return node.text.strip() if node is not None and node.text else None


def _positive_int(text: str | None) -> int | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return int(value) if math.isfinite(value) and value >= 1 and value == int(value) else None


def parse_annotation(xml_path: str) -> dict:
    """Parses one VOC XML file.

    Returns ``{"filename", "size": (width, height) or None, "objects": [...]}``, each
    object ``{"name", "box": (xmin, ymin, xmax, ymax) floats or None (malformed),
    "difficult": 0, 1 or None (malformed)}``. Raises ``ET.ParseError`` (also when the root
    element is not ``<annotation>``) and ``OSError``.
    """
    root = ET.parse(xml_path).getroot()
    if root.tag != "annotation":
        raise ET.ParseError(f"root element is <{root.tag}>, not <annotation>")
    size = root.find("size")
    width, height = _positive_int(_text(size, "width")), _positive_int(_text(size, "height"))
    objects = []
    for obj in root.findall("object"):
        bndbox = obj.find("bndbox")
        try:  # a missing <bndbox> or corner gives float(None): TypeError.
            box = tuple(float(_text(bndbox, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            box = None
        if box is not None and not all(math.isfinite(v) for v in box):
            box = None
        flag = _text(obj, "difficult") or "0"
        objects.append({"name": _text(obj, "name") or "", "box": box,
                        "difficult": int(flag) if flag in ("0", "1") else None})
    return {"filename": _text(root, "filename"), "objects": objects,
            "size": (width, height) if width and height else None}


class _Skips:
    """Counts skip reasons and logs the first few of each with the file concerned."""

    def __init__(self):
        self.counts = collections.Counter()

    def __call__(self, reason: str, where: str, detail: str = "") -> None:
        self.counts[reason] += 1
        if self.counts[reason] <= _LOGGED_PER_REASON:
            logging.warning("VOC: skipped (%s) %s%s", reason.replace("_", " "), where,
                            f": {detail}" if detail else "")
        elif self.counts[reason] == _LOGGED_PER_REASON + 1:
            logging.warning("VOC: more %s skips; see the dataset report for the count", reason)


def _check_folder(path: str, what: str) -> None:
    if not os.path.isdir(path):
        raise DatasetError(f"VOC {what} folder {path!r} does not exist (a VOC root holds "
                           f"{ANNOTATIONS}/, {IMAGES}/ and {IMAGE_SETS}/<split>.txt)")


def split_ids(root: str, split: str) -> list:
    """The image ids listed in ``root/ImageSets/Main/<split>.txt`` (first token per line)."""
    path = os.path.join(root, IMAGE_SETS, f"{split}.txt")
    try:
        with open(path, encoding="utf-8") as f:
            return [line.split()[0] for line in f if line.strip()]
    except OSError as e:
        raise DatasetError(f"Cannot read the VOC split file {path!r} (split {split!r}): {e}") from e


def _split_roots(roots: Sequence[str], split: str, require_all: bool) -> list:
    if not roots:
        raise DatasetError("no VOC root given (data.voc.roots)")
    for root in roots:
        _check_folder(root, "root")
        for sub in (ANNOTATIONS, IMAGES):
            _check_folder(os.path.join(root, sub), sub)
    files = [os.path.join(root, IMAGE_SETS, f"{split}.txt") for root in roots]
    have = [root for root, path in zip(roots, files) if os.path.isfile(path)]
    if require_all or not have:
        for path in files:
            if not os.path.isfile(path):
                raise DatasetError(f"VOC split file {path!r} does not exist (split {split!r})")
    for root, path in zip(roots, files):
        if root not in have:
            logging.info("VOC split %r: %s has no %s; that root is left out of it", split, root, path)
    return have


def _parse_split(roots: Sequence[str], split: str, require_all: bool, skip: _Skips) -> list:
    """[(root, voc_id, parsed XML)] for the split's ids, skipping missing/broken files."""
    seen, parsed = {}, []
    for root in _split_roots([os.path.abspath(r) for r in roots], split, require_all):
        for voc_id in split_ids(root, split):
            xml_path = os.path.join(root, ANNOTATIONS, f"{voc_id}.xml")
            if voc_id in seen:
                skip("duplicate_image", xml_path, f"id {voc_id!r} already read from {seen[voc_id]}")
                continue
            seen[voc_id] = root
            if not os.path.isfile(xml_path):
                skip("missing_annotation_file", xml_path)
                continue
            try:
                parsed.append((root, voc_id, parse_annotation(xml_path)))
            except (ET.ParseError, OSError, UnicodeDecodeError) as e:
                skip("malformed_xml", xml_path, str(e))
    return parsed


def _names(entries: list) -> list:
    return sorted({obj["name"] for _, _, ann in entries for obj in ann["objects"]} - {""})


def found_classes(roots: Sequence[str], split: str) -> list:
    """The object names in the XML of ``split`` (every root must have it), sorted."""
    return _names(_parse_split(roots, split, True, _Skips()))


def _image_path(root: str, voc_id: str, filename: str | None) -> str:
    path = os.path.join(root, IMAGES, f"{voc_id}.jpg")
    if not os.path.isfile(path) and filename:
        named = os.path.join(root, IMAGES, os.path.basename(filename))
        if os.path.isfile(named):
            return named
    return path


def _image_size(path: str) -> tuple[str | None, tuple | None]:
    """(skip reason or None, displayed (width, height)) read from the image header."""
    if not os.path.isfile(path):
        return "missing_image_file", None
    try:
        with Image.open(path) as im:
            return None, displayed_size(im.size, read_orientation(im))
    except Exception:  # PIL raises many types for a damaged file.
        return "corrupt_image", None


def read_voc(roots: Sequence[str], split: str, classes: Sequence[str] | None = None, *,
             require_all: bool = True) -> VocData:
    """Reads ``split`` of the VOC ``roots`` into a COCO-format dict (module docstring).

    Args:
      roots: VOC root folders, read in order.
      split: the ImageSets/Main file name without ``.txt`` (``trainval``, ``test``, ...).
      classes: the class names in label order (e.g. ``VOC_CLASSES``, or a training split's
        ``VocData.classes``); None takes the names found in this split's XML, sorted.
      require_all: every root must list the split (else roots without it are left out).
    Raises:
      DatasetError: a missing root/folder/split file (see the module docstring).
    """
    skip, notes = _Skips(), collections.Counter()
    entries = _parse_split(roots, split, require_all, skip)
    if classes is None:
        classes = _names(entries)
    label = {name: i + 1 for i, name in enumerate(classes)}
    images, annotations = [], []
    for root, voc_id, ann in entries:
        xml_path = os.path.join(root, ANNOTATIONS, f"{voc_id}.xml")
        path = _image_path(root, voc_id, ann["filename"])
        size = ann["size"]
        if size is None:
            reason, size = _image_size(path)
            if reason is not None:
                skip(reason, path, f"needed for the size {xml_path} does not give")
                continue
            notes["size_from_image"] += 1
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": path, "width": size[0], "height": size[1],
                       "voc_id": voc_id})
        for obj in ann["objects"]:
            if obj["name"] not in label:
                skip("unknown_category", xml_path, f"object {obj['name']!r} is not one of "
                     f"the {len(classes)} classes")
            elif obj["box"] is None:
                skip("malformed_bbox", xml_path, f"object {obj['name']!r} has no numeric <bndbox>")
            elif obj["difficult"] is None:
                skip("malformed_object", xml_path, f"object {obj['name']!r}: <difficult> is not 0 or 1")
            else:
                bbox = voc_to_xywh(*obj["box"])
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": label[obj["name"]], "bbox": bbox,
                                    "area": bbox[2] * bbox[3], "iscrowd": 0,
                                    "difficult": obj["difficult"]})
    if notes["size_from_image"]:
        logging.info("VOC %r: %d XML files without a valid <size>; sizes read from the images",
                     split, notes["size_from_image"])
    data = {"info": {"description": f"PASCAL VOC split {split!r} of {list(roots)}"},
            "images": images, "annotations": annotations,
            "categories": [{"id": label[n], "name": n, "supercategory": "voc"} for n in classes]}
    source = f"VOC split {split!r} of {', '.join(roots)}"
    return VocData(data, list(classes), source, skip.counts, notes)


def load_voc(roots: Sequence[str], split: str, classes: Sequence[str] | None = None, *,
             training: bool, verify_images: str = "header", drop_difficult: bool = False,
             require_all: bool = True, unknown_category_fix: str = "") -> CocoIndex:
    """:func:`read_voc`, then the index (``CocoIndex.from_dict``; the reader's skips are
    counted in its report). ``drop_difficult`` leaves difficult boxes out of the records;
    ``unknown_category_fix`` is the advice given when most objects have an unknown class."""
    voc = read_voc(roots, split, classes, require_all=require_all)
    return CocoIndex.from_dict(voc.data, "", training=training, verify_images=verify_images,
                               source=voc.source, drop_difficult=drop_difficult,
                               prior_skips=voc.skips, unknown_category_fix=unknown_category_fix)


def annotation_xml(filename: str, width: int, height: int, depth: int, objects: Sequence) -> bytes:
    """One VOC annotation file, as the devkit's files are laid out. ``objects`` holds
    ``(name, (xmin, ymin, xmax, ymax), difficult)`` with 1-based inclusive integer corners."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = os.path.basename(IMAGES)
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for key, value in (("width", width), ("height", height), ("depth", depth)):
        ET.SubElement(size, key).text = str(int(value))
    ET.SubElement(root, "segmented").text = "0"
    for name, box, difficult in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "1" if difficult else "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bndbox, key).text = str(int(value))
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="utf-8") + b"\n"
