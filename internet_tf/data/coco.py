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
  ``truncated_instances`` is set by ``data/pipeline.py``, and ``undecodable_image`` (a file
  that passed the checks but did not decode, left out by the pipeline) by the evaluation
  (``evaluation/runner.py``).

``corrupt_image`` covers a file PIL cannot open and, under the default ``header`` check too, a
JPEG, PNG or WEBP file that ends before its format's end (``data/file_end.py``): a copy cut
short, which the pipeline's decoder would otherwise drop later without a name. The report names
the first files skipped for each image-level reason.

Building the index at COCO scale takes a while, so each phase (json, checks, image headers,
records, and for evaluation the pycocotools ground truth) writes a line with its counts and
time when it ends, and a ``still running`` line every 10 s while it lasts
(``progress.py: Phase``). A training index keeps only its compact records (what the
pipeline reads): the pycocotools ground truth is built for evaluation only, and COCO's
segmentation polygons, which box detection never reads, are dropped while the json is parsed.
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import io
import itertools
import os

import numpy as np
from absl import logging
from PIL import Image
from pycocotools.coco import COCO

from internet_tf.config import CHOICES
from internet_tf.data.coco_format import (DatasetError, _parse_json, check_dataset, parse_bbox,
                                             read_json)
from internet_tf.data.file_end import is_complete
from internet_tf.data.orientation import displayed_size, read_orientation
from internet_tf.progress import Phase

# Image ids travel inside the float32 image_info (pipeline.py), which holds every integer in
# [0, 2**24] exactly: the data pipeline and the evaluation both accept exactly that range.
MAX_IMAGE_ID = 2 ** 24

# Formats tf.io.decode_image can decode (MPO is a multi-picture JPEG, decoded as JPEG).
TF_DECODABLE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP"})
VERIFY_MODES = CHOICES["data.verify_images"]
_IMAGE_REASONS = ("missing_image_file", "corrupt_image", "unsupported_format",
                  "size_mismatch", "image_without_annotations", "missing_annotation_file",
                  "malformed_xml", "duplicate_image", "undecodable_image")
# Keys of the json that the index never reads (boxes only): dropped while parsing.
_UNUSED_KEYS = frozenset({"segmentation"})
_NAMED_FILES = 5  # file names the report gives per unreadable-image reason
_NAMED_REASONS = ("missing_image_file", "corrupt_image", "unsupported_format", "size_mismatch")


def _phase_name(training: bool) -> str:
    """How the progress lines name an index: ``index train`` or ``index val``."""
    return f"index {'train' if training else 'val'}"


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
        elif not is_complete(path, fmt):
            return "corrupt_image", None, 1
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
        and out-of-image boxes kept, as the official protocol sees them); an evaluation
        index only (``training=False``): a training index raises ``AttributeError``.
      cat_ids: sorted dataset category ids.
      label_to_cat_id / cat_id_to_label: label ``1..K`` <-> dataset category id.
      class_names: ``['background', name_1, ..., name_K]``.
      num_classes: K.
      records: one dict per kept image: ``image_id``, ``path``, ``height``, ``width``
        (as displayed), ``orientation`` (EXIF 1..8, applied by the pipeline; 1 when
        ``verify_images`` is ``"none"``), ``boxes`` float32 [n, 4] yxyx in original
        (displayed) pixels, clipped to the image, ``classes`` int32 [n] labels 1..K.
      skips: ``collections.Counter`` of skip reasons (see the module docstring).
      skipped_files: ``{image-level reason: [paths]}`` of the images skipped here.
      num_clipped: boxes that were partly outside their image and clipped to it.
    """

    def __init__(self, data: dict, image_dir: str, *, training: bool,
                 verify_images: str = "header", source: str = "<memory>",
                 drop_difficult: bool = False, prior_skips: dict | None = None,
                 num_threads: int = 16, unknown_category_fix: str = ""):
        if verify_images not in VERIFY_MODES:
            raise ValueError(f"verify_images must be one of {VERIFY_MODES}, got {verify_images!r}")
        self.source = source
        self.image_dir = image_dir
        self.training = training
        self.drop_difficult = drop_difficult
        self.skips: collections.Counter = collections.Counter(prior_skips or {})
        self.num_clipped = 0
        self.unknown_category_fix = unknown_category_fix
        self.unknown_cat_ids: set = set()
        self._prior_objects = sum(n for reason, n in self.skips.items()  # the reader's skipped objects
                                  if reason not in _IMAGE_REASONS)
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
        done = itertools.count()
        self._counted = 0

        def probe(path):
            result = _probe_image(path, verify_images)
            self._counted = next(done) + 1
            return result

        with Phase(f"{self.phase_name}: image headers ({verify_images})",
                   count=lambda: self._counted) as phase:
            with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool:
                probes = list(pool.map(probe, paths))
            phase.result = f"{len(paths)} files"

        self.records: list[dict] = []
        self.skipped_files = collections.defaultdict(list)  # image-level reason -> file names
        kept_images, kept_anns = [], []
        with Phase(f"{self.phase_name}: records") as phase:
            for img, path, (reason, size, orientation) in zip(images, paths, probes):
                if reason is None and size is not None and size != (img["width"], img["height"]):
                    reason = "size_mismatch"
                if reason is not None:
                    self._skip_image(reason, path)
                    continue
                anns = anns_by_image.get(img["id"], [])
                record, eval_anns = self._convert(img, path, anns)
                record["orientation"] = orientation
                if len(record["classes"]) == 0 and training:
                    self._skip_image("image_without_annotations", path)
                    continue
                self.records.append(record)
                if not training:
                    kept_images.append(img)
                    kept_anns.extend(eval_anns)
            phase.result = f"{len(self.records)} images, {self.num_boxes} boxes"

        if not self.records:
            raise DatasetError(
                f"No usable image in {source!r} (image_dir {image_dir!r}, "
                f"{len(images)} images listed): {self._skip_text() or 'nothing listed'}"
                + self._unknown_hint(len(data["annotations"])))
        self.unknown_hint = self._unknown_hint(len(data["annotations"]))
        self._coco = None
        if not training:
            with Phase(f"{self.phase_name}: pycocotools ground truth") as phase:
                eval_data = {k: v for k, v in data.items() if k not in ("images", "annotations")}
                eval_data.update(images=kept_images, annotations=kept_anns)
                self._coco = _make_coco(eval_data)
                phase.result = f"{len(kept_images)} images, {len(kept_anns)} annotations"

    @property
    def phase_name(self) -> str:
        return _phase_name(self.training)

    @property
    def coco(self) -> COCO:
        """``pycocotools.coco.COCO`` ground truth of an evaluation index (see the class)."""
        if self._coco is None:
            raise AttributeError(
                f"{self.source!r} was indexed for training, which keeps only the records; "
                "index it with training=False for pycocotools ground truth")
        return self._coco

    def _skip_image(self, reason: str, path: str) -> None:
        self.skips[reason] += 1
        self.skipped_files[reason].append(path)

    def _unknown_hint(self, num_annotations: int) -> str:
        """The likely fix when most of the split's objects have an unknown category, or ''."""
        unknown = self.skips.get("unknown_category", 0)
        objects = num_annotations + self._prior_objects
        if not unknown or 2 * unknown <= objects:
            return ""
        if self.unknown_category_fix:
            return f". Most objects have an unknown class: {self.unknown_category_fix}"
        listed = ", ".join(str(c) for c in self.cat_ids[:20]) + (" ..." if len(self.cat_ids) > 20 else "")
        unseen = ", ".join(str(c) for c in sorted(self.unknown_cat_ids)[:20])
        return (f". Most objects have a category_id that the 'categories' list of {self.source!r} "
                f"does not hold (it lists {listed}; the objects use {unseen}): add those "
                "categories to the list, or use the annotation file they belong with")

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
                self.unknown_cat_ids.add(ann["category_id"])
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
        with Phase(f"{_phase_name(training)}: json {annotation_file}") as phase:
            data = _parse_json(annotation_file, drop=_UNUSED_KEYS)
            if isinstance(data, dict):
                phase.result = ", ".join(f"{len(data[k])} {k}" for k in ("images", "annotations", "categories")
                                         if isinstance(data.get(k), list))
        return cls.from_dict(data, image_dir, training=training,
                             verify_images=verify_images, source=annotation_file,
                             origin=f"Annotation file {annotation_file!r}")

    @classmethod
    def from_dict(cls, data: dict, image_dir: str, *, training: bool,
                  verify_images: str = "header", source: str = "<memory>",
                  drop_difficult: bool = False, prior_skips: dict | None = None,
                  origin: str | None = None, unknown_category_fix: str = "") -> "CocoIndex":
        """Builds the index from a COCO-format dict (``file_name`` relative to ``image_dir``
        or absolute), after the same checks as a file (:func:`check_dataset`); logs the report.

        ``drop_difficult`` leaves annotations flagged ``"difficult": 1`` (VOC) out of the
        records, counted as ``difficult_object``; ``index.coco`` keeps them for evaluation.
        ``prior_skips`` are skip counts of an earlier stage (the VOC reader), reported along;
        ``origin`` starts structural error messages (default: the ``source``);
        ``unknown_category_fix`` is the advice given when most objects have an unknown
        category (default: the COCO route's, naming the category list and the ids used).
        """
        with Phase(f"{_phase_name(training)}: checks"):
            data = check_dataset(data, origin or f"Dataset {source!r}")
        index = cls(data, image_dir, training=training, verify_images=verify_images,
                    source=source, drop_difficult=drop_difficult, prior_skips=prior_skips,
                    unknown_category_fix=unknown_category_fix)
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
        for reason in _NAMED_REASONS:
            files = self.skipped_files.get(reason, [])
            if files:
                more = len(files) - _NAMED_FILES
                text += (f" {reason.replace('_', ' ').capitalize()}: "
                         f"{', '.join(files[:_NAMED_FILES])}{f' and {more} more' if more > 0 else ''}.")
        if self.num_clipped:
            text += f" {self.num_clipped} partly-outside boxes were clipped to their image."
        return text + (self.unknown_hint[2:] + "." if self.unknown_hint else "")
