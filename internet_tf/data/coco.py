"""COCO-format dataset index (COCO json via pycocotools).

This is the edge where dataset conventions become library conventions
(docs/conventions.md): COCO ``[x, y, w, h]`` boxes in original pixels become float32
``(ymin, xmin, ymax, xmax)`` boxes in original pixels, and the dataset's category ids
become contiguous labels ``1..K`` (sorted by category id; 0 is background).

Every defect in the input is either a :class:`DatasetError` (structural problems:
unreadable JSON, missing keys, malformed image records) or a counted skip (data noise:
missing / corrupt images, degenerate boxes, ...), so nothing fails later inside TF.
Skip reasons, counted in :attr:`CocoIndex.skips`:

image level
  ``missing_image_file``, ``corrupt_image``, ``unsupported_format`` (PIL can read it but
  ``tf.io.decode_image`` cannot, e.g. TIFF), ``size_mismatch`` (the displayed size, i.e.
  the stored size turned by the EXIF orientation, ``data/orientation.py``, differs from the
  JSON ``width``/``height``), ``image_without_annotations`` (training only); the VOC reader
  (``data/voc.py``) adds ``missing_annotation_file``, ``malformed_xml``, ``duplicate_image``.
annotation level
  ``annotation_without_image``, ``crowd_annotation`` (ignored, not an error),
  ``unknown_category``, ``malformed_bbox``, ``zero_area_box``, ``box_outside_image``,
  ``difficult_object`` (VOC ``difficult`` boxes left out of a training index);
  ``truncated_instances`` is set by ``data/pipeline.py``.
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import io
import os

import numpy as np
from absl import logging
from PIL import Image
from pycocotools.coco import COCO

from internet_tf.config import CHOICES
from internet_tf.data.coco_format import (DatasetError, _parse_json, check_dataset, parse_bbox,
                                             read_json)
from internet_tf.data.orientation import displayed_size, read_orientation

# Image ids travel inside the float32 image_info (pipeline.py), which holds every integer in
# [0, 2**24] exactly: the data pipeline and the evaluation both accept exactly that range.
MAX_IMAGE_ID = 2 ** 24

# Formats tf.io.decode_image can decode (MPO is a multi-picture JPEG, decoded as JPEG).
TF_DECODABLE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP"})
VERIFY_MODES = CHOICES["data.verify_images"]
_IMAGE_REASONS = ("missing_image_file", "corrupt_image", "unsupported_format",
                  "size_mismatch", "image_without_annotations", "missing_annotation_file",
                  "malformed_xml", "duplicate_image")


def _make_coco(data: dict) -> COCO:
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # silence "creating index..."
        coco.createIndex()
    return coco


def load_coco(annotation_file: str) -> COCO:
    """Loads a COCO annotation file into a ``pycocotools.coco.COCO`` after validation.

    Raises:
      DatasetError: missing/unreadable file, malformed JSON (with the error position),
        a missing top-level key, or a malformed image / category / annotation record.
    """
    return _make_coco(read_json(annotation_file))


def _probe_image(path: str, verify: str) -> tuple[str | None, tuple[int, int] | None, int]:
    """Returns (skip_reason or None, displayed (width, height) or None, EXIF orientation)
    for one image file (``verify="none"`` reads nothing: orientation 1, size unknown)."""
    if not os.path.isfile(path):
        return "missing_image_file", None, 1
    if verify == "none":
        return None, None, 1
    try:
        with Image.open(path) as im:
            size, fmt = im.size, im.format
            orientation = read_orientation(im)
            if verify == "full":
                im.verify()
        if verify == "full":  # verify() is shallow for JPEG: also decode the pixels.
            with Image.open(path) as im:
                im.load()
    except Exception:  # PIL raises many types (OSError, SyntaxError, ValueError, ...).
        return "corrupt_image", None, 1
    size = displayed_size(size, orientation)
    if fmt not in TF_DECODABLE_FORMATS:
        return "unsupported_format", size, orientation
    return None, size, orientation


class CocoIndex:
    """A validated COCO-format dataset: label mapping plus per-image ground truth.

    Attributes:
      coco: ``pycocotools.coco.COCO`` for evaluation, restricted to the kept images and
        their annotations (malformed boxes and unknown categories dropped; crowd, tiny
        and out-of-image boxes kept, as the official protocol sees them).
      cat_ids: sorted dataset category ids.
      label_to_cat_id / cat_id_to_label: label ``1..K`` <-> dataset category id.
      class_names: ``['background', name_1, ..., name_K]``.
      num_classes: K.
      records: one dict per kept image: ``image_id``, ``path``, ``height``, ``width``
        (as displayed), ``orientation`` (EXIF 1..8, applied by the pipeline; 1 when
        ``verify_images`` is ``"none"``), ``boxes`` float32 [n, 4] yxyx in original
        (displayed) pixels, clipped to the image, ``classes`` int32 [n] labels 1..K.
      skips: ``collections.Counter`` of skip reasons (see the module docstring).
      num_clipped: boxes that were partly outside their image and clipped to it.
    """

    def __init__(self, data: dict, image_dir: str, *, training: bool,
                 verify_images: str = "header", source: str = "<memory>",
                 drop_difficult: bool = False, prior_skips: dict | None = None,
                 num_threads: int = 16):
        if verify_images not in VERIFY_MODES:
            raise ValueError(f"verify_images must be one of {VERIFY_MODES}, got {verify_images!r}")
        self.source = source
        self.image_dir = image_dir
        self.training = training
        self.drop_difficult = drop_difficult
        self.skips: collections.Counter = collections.Counter(prior_skips or {})
        self.num_clipped = 0
        self.num_images_in_file = len(data["images"]) + sum(  # images an earlier stage skipped
            n for reason, n in self.skips.items() if reason in _IMAGE_REASONS)

        cats = sorted(data["categories"], key=lambda c: c["id"])
        self.cat_ids = [c["id"] for c in cats]
        self.label_to_cat_id = {i + 1: c for i, c in enumerate(self.cat_ids)}
        self.cat_id_to_label = {c: i + 1 for i, c in enumerate(self.cat_ids)}
        self.class_names = ["background"] + [str(c["name"]) for c in cats]
        self.num_classes = len(self.cat_ids)

        images = data["images"]
        anns_by_image = collections.defaultdict(list)
        image_ids = {img["id"] for img in images}
        for ann in data["annotations"]:
            if ann["image_id"] in image_ids:
                anns_by_image[ann["image_id"]].append(ann)
            else:
                self.skips["annotation_without_image"] += 1

        paths = [os.path.join(image_dir, img["file_name"]) for img in images]
        with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool:
            probes = list(pool.map(lambda p: _probe_image(p, verify_images), paths))

        self.records: list[dict] = []
        kept_images, kept_anns = [], []
        for img, path, (reason, size, orientation) in zip(images, paths, probes):
            if reason is None and size is not None and size != (img["width"], img["height"]):
                reason = "size_mismatch"
            if reason is not None:
                self.skips[reason] += 1
                continue
            anns = anns_by_image.get(img["id"], [])
            record, eval_anns = self._convert(img, path, anns)
            record["orientation"] = orientation
            if len(record["classes"]) == 0 and training:
                self.skips["image_without_annotations"] += 1
                continue
            self.records.append(record)
            kept_images.append(img)
            kept_anns.extend(eval_anns)

        if not self.records:
            raise DatasetError(
                f"No usable image in {source!r} (image_dir {image_dir!r}, "
                f"{len(images)} images listed): {self._skip_text() or 'nothing listed'}")
        eval_data = {k: v for k, v in data.items()
                     if k not in ("images", "annotations")}
        eval_data.update(images=kept_images, annotations=kept_anns)
        self.coco = _make_coco(eval_data)

    def _convert(self, img: dict, path: str, anns: list[dict]) -> tuple[dict, list[dict]]:
        """Validates one image's annotations; returns its record and its eval annotations."""
        height, width = int(img["height"]), int(img["width"])
        boxes, classes, eval_anns = [], [], []
        for ann in anns:
            known = ann["category_id"] in self.cat_id_to_label
            box = parse_bbox(ann.get("bbox"))
            if known and box is not None:
                eval_anns.append(ann)
            if ann.get("iscrowd", 0):
                self.skips["crowd_annotation"] += 1
                continue
            if not known:
                self.skips["unknown_category"] += 1
                continue
            if box is None:
                self.skips["malformed_bbox"] += 1
                continue
            x, y, w, h = box
            if w <= 0 or h <= 0:
                self.skips["zero_area_box"] += 1
                continue
            if x >= width or y >= height or x + w <= 0 or y + h <= 0:
                self.skips["box_outside_image"] += 1
                continue
            if self.drop_difficult and ann.get("difficult", 0):
                self.skips["difficult_object"] += 1
                continue
            clipped = [max(y, 0.0), max(x, 0.0), min(y + h, float(height)),
                       min(x + w, float(width))]
            if clipped != [y, x, y + h, x + w]:
                self.num_clipped += 1
            boxes.append(clipped)
            classes.append(self.cat_id_to_label[ann["category_id"]])
        record = {
            "image_id": img["id"],
            "path": path,
            "height": height,
            "width": width,
            "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
            "classes": np.asarray(classes, np.int32).reshape(-1),
        }
        return record, eval_anns

    @classmethod
    def from_files(cls, annotation_file: str, image_dir: str, *, training: bool,
                   verify_images: str = "header") -> "CocoIndex":
        """Builds the index from a COCO json file and the directory holding its images.

        Args:
          annotation_file: COCO-format json path.
          image_dir: directory that ``file_name`` entries are relative to.
          training: drop images left without annotations (kept for evaluation).
          verify_images: ``"none"`` (only check the file exists), ``"header"`` (PIL reads
            the header: format, real size and EXIF orientation; the default, fast enough
            for COCO train), or ``"full"`` (also ``Image.verify()`` and a full decode).
        Raises:
          DatasetError: see :func:`load_coco`, or when no usable image remains.
        """
        return cls.from_dict(_parse_json(annotation_file), image_dir, training=training,
                             verify_images=verify_images, source=annotation_file,
                             origin=f"Annotation file {annotation_file!r}")

    @classmethod
    def from_dict(cls, data: dict, image_dir: str, *, training: bool,
                  verify_images: str = "header", source: str = "<memory>",
                  drop_difficult: bool = False, prior_skips: dict | None = None,
                  origin: str | None = None) -> "CocoIndex":
        """Builds the index from a COCO-format dict (``file_name`` relative to ``image_dir``
        or absolute), after the same checks as a file (:func:`check_dataset`); logs the report.

        ``drop_difficult`` leaves annotations flagged ``"difficult": 1`` (VOC) out of the
        records, counted as ``difficult_object``; ``index.coco`` keeps them for evaluation.
        ``prior_skips`` are skip counts of an earlier stage (the VOC reader), reported along;
        ``origin`` starts structural error messages (default: the ``source``).
        """
        data = check_dataset(data, origin or f"Dataset {source!r}")
        index = cls(data, image_dir, training=training, verify_images=verify_images,
                    source=source, drop_difficult=drop_difficult, prior_skips=prior_skips)
        logging.log(logging.WARNING if sum(index.skips.values()) else logging.INFO,
                    "%s", index.report())
        return index

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_boxes(self) -> int:
        return int(sum(len(r["classes"]) for r in self.records))

    def _skip_text(self) -> str:
        parts = []
        for reason, count in sorted(self.skips.items()):
            if count:
                unit = "image" if reason in _IMAGE_REASONS else "annotation"
                parts.append(f"{count} {unit}{'s' if count != 1 else ''} "
                             f"({reason.replace('_', ' ')})")
        return ", ".join(parts)

    def report(self) -> str:
        """A one-paragraph, human-readable summary of what was kept and skipped."""
        mode = "training" if self.training else "evaluation"
        text = (f"Dataset {self.source!r} ({mode}): kept {len(self.records)} of "
                f"{self.num_images_in_file} images with {self.num_boxes} boxes in "
                f"{self.num_classes} classes.")
        skipped = self._skip_text()
        text += f" Skipped: {skipped}." if skipped else " Nothing was skipped."
        if self.num_clipped:
            text += f" {self.num_clipped} partly-outside boxes were clipped to their image."
        return text
