"""The generated embedded dataset for the default run.

Coloured geometric shapes on cluttered, noisy backgrounds, written as a COCO-format
dataset (json + PNG/JPEG files), so the whole system runs without downloading anything::

    root/train.json   root/train/000000.png ...
    root/val.json     root/val/000000.png ...

and, on request (``data.embedded.format: voc``, :func:`write_voc`), the same splits as a
PASCAL VOC root written by the converter (``data/convert.py``)::

    root/voc/Annotations/train_000000.xml   root/voc/JPEGImages/train_000000.jpg ...
    root/voc/ImageSets/Main/train.txt, val.txt

Design choices, each exercising part of the system:

* Category ids are non-contiguous (3, 7, 11, 20, ...) so the id <-> label mapping in
  ``data/coco.py`` and ``evaluation/`` is exercised.
* Object areas are drawn from the three COCO size ranges (small < 32², medium, large
  > 96²) with equal probability, so APs / APm / APl are all meaningful (this needs
  ``image_size`` of about 224 or more; smaller images get fewer large objects).
* A third of the images are landscape and a third portrait (shorter side 75–100 % of
  ``image_size``), so resizing and padding are exercised; every fourth image is a JPEG.
* Placements overlapping an earlier object by more than 0.3 (intersection over the
  smaller box, which bounds IoU by 0.3 too) are rejected; the ``bbox`` and ``area`` of
  each object are those of its *visible* pixels, so boxes are tight.
* Each class has its own colour (``colours="class"``, the demo), which gives the class away
  at any size; ``colours="random"`` draws each object's colour from the same palette
  independently of its class (from a second RNG, so the layouts, shapes and boxes are those
  of ``"class"``), and only the shape tells the class: a small object's few pixels then
  carry less of it than a large one's, the premise of the Feature Intertwiner.
* ``small_blur`` (a Gaussian sigma in pixels, default 0: off) paints the small objects'
  shapes through a blurred mask, so their outline, and with it the class, is only partly in
  the pixels: small objects that are ambiguous in themselves, as in photographs, while the
  large ones stay sharp. Layouts, boxes and areas are those of the sharp shapes.
* Everything is a function of ``seed`` (one RNG per image), the json is byte-identical
  for equal parameters, and existing output with matching parameters is reused.
"""
from __future__ import annotations

import concurrent.futures
import io
import json
import os
from typing import Any

import numpy as np
from absl import logging
from PIL import Image, ImageDraw, ImageFilter

from internet_tf.config.schema import check_choice
from internet_tf.config.validation import check_range
from internet_tf.data.convert import coco_to_voc
from internet_tf.files import write_atomic

GENERATOR_VERSION = 1
# (name, base RGB colour), in category-id order. Colours are jittered per object.
SHAPES = (
    ("circle", (220, 45, 45)),
    ("square", (40, 90, 225)),
    ("triangle", (35, 175, 60)),
    ("cross", (240, 185, 20)),
    ("diamond", (150, 50, 200)),
    ("ring", (20, 190, 200)),
    ("star", (235, 80, 180)),
    ("hexagon", (140, 90, 40)),
)
CATEGORY_IDS = (3, 7, 11, 20, 24, 31, 38, 45)
# Fraction of the box a shape covers (used to aim the pixel area at a size range).
_FILL = {"circle": 0.785, "square": 1.0, "triangle": 0.5, "cross": 0.556,
         "diamond": 0.5, "ring": 0.503, "star": 0.39, "hexagon": 0.75}
# Target visible areas per COCO size range, kept away from the 32² / 96² boundaries.
_AREA_RANGES = ((10 ** 2, 28 ** 2), (40 ** 2, 86 ** 2), (104 ** 2, 150 ** 2))
# Large objects are sometimes left out for lack of room, so they are drawn more often.
_RANGE_PROBS = (0.3, 0.33, 0.37)
SMALL_MAX, MEDIUM_MAX = 32 ** 2, 96 ** 2
_MAX_OVERLAP = 0.3
_SPLITS = {"train": 0, "val": 1}


def _polygon(name: str, x0: float, y0: float, w: float, h: float) -> list[tuple[float, float]]:
    cx, cy = x0 + w / 2, y0 + h / 2
    if name == "triangle":
        return [(cx, y0), (x0 + w, y0 + h), (x0, y0 + h)]
    if name == "diamond":
        return [(cx, y0), (x0 + w, cy), (cx, y0 + h), (x0, cy)]
    if name == "hexagon":
        return [(x0 + w / 4, y0), (x0 + 3 * w / 4, y0), (x0 + w, cy),
                (x0 + 3 * w / 4, y0 + h), (x0 + w / 4, y0 + h), (x0, cy)]
    if name == "cross":
        a, b = w / 3, h / 3
        return [(x0 + a, y0), (x0 + 2 * a, y0), (x0 + 2 * a, y0 + b), (x0 + w, y0 + b),
                (x0 + w, y0 + 2 * b), (x0 + 2 * a, y0 + 2 * b), (x0 + 2 * a, y0 + h),
                (x0 + a, y0 + h), (x0 + a, y0 + 2 * b), (x0, y0 + 2 * b), (x0, y0 + b),
                (x0 + a, y0 + b)]
    if name == "star":  # five points, stretched to fill the box exactly.
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        px, py = radii * np.cos(angles), radii * np.sin(angles)
        px = (px - px.min()) / (px.max() - px.min())
        py = (py - py.min()) / (py.max() - py.min())
        return [(x0 + float(u) * w, y0 + float(v) * h) for u, v in zip(px, py)]
    raise ValueError(name)


def _draw_shape(draw: ImageDraw.ImageDraw, name: str, box: tuple[float, ...]) -> None:
    """Draws shape ``name`` filling box (x0, y0, w, h) with value 255 on an 'L' mask."""
    x0, y0, w, h = box
    x1, y1 = x0 + w - 1, y0 + h - 1
    if name == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=255)
    elif name == "square":
        draw.rectangle([x0, y0, x1, y1], fill=255)
    elif name == "ring":
        draw.ellipse([x0, y0, x1, y1], fill=255)
        draw.ellipse([x0 + 0.2 * w, y0 + 0.2 * h, x1 - 0.2 * w, y1 - 0.2 * h], fill=0)
    else:
        draw.polygon(_polygon(name, x0, y0, w - 1, h - 1), fill=255)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Random two-colour gradient with muted clutter (lines and translucent blobs)."""
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    angle = rng.uniform(0, 2 * np.pi)
    xx = np.arange(width, dtype=np.float32)[None, :] / width
    yy = np.arange(height, dtype=np.float32)[:, None] / height
    t = np.float32(np.cos(angle)) * xx + np.float32(np.sin(angle)) * yy
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    gradient = c0.astype(np.float32) + (c1 - c0).astype(np.float32) * t[..., None]
    clutter = Image.new("RGB", (width, height))
    clutter_mask = Image.new("L", (width, height))
    draw, mdraw = ImageDraw.Draw(clutter), ImageDraw.Draw(clutter_mask)
    for _ in range(rng.integers(2, 6)):
        grey = rng.uniform(60, 200)
        colour = tuple(int(v) for v in np.clip(grey + rng.normal(0, 20, 3), 0, 255))
        pts = [tuple(rng.uniform(0, [width, height])) for _ in range(2)]
        lw = int(rng.integers(1, 4))
        draw.line(pts, fill=colour, width=lw)
        mdraw.line(pts, fill=int(rng.uniform(120, 220)), width=lw)
    for _ in range(rng.integers(1, 4)):
        grey = rng.uniform(60, 200)
        colour = tuple(int(v) for v in np.clip(grey + rng.normal(0, 20, 3), 0, 255))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(6, 30, 2)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=colour)
        mdraw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=int(rng.uniform(60, 140)))
    base = Image.fromarray(gradient.astype(np.uint8))
    return np.asarray(Image.composite(clutter, base, clutter_mask), np.float32)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the smaller of two (x, y, w, h) boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / min(a[2] * a[3], b[2] * b[3])


def base_colour(label: int, num_classes: int, colour_rng=None) -> tuple:
    """The RGB an object of class ``label`` is painted in (before jitter): its class's, or with
    ``colour_rng`` any of the ``num_classes`` classes' colours, uniformly."""
    if colour_rng is None:
        return SHAPES[label][1]
    return SHAPES[int(colour_rng.integers(num_classes))][1]


def _paint(image: np.ndarray, mask: np.ndarray, fill: np.ndarray, x: int, y: int, blur: float) -> None:
    """Paints ``fill`` (h x w x 3) into ``image`` at (x, y) through the shape ``mask``, or with
    ``blur`` > 0 through the mask blurred with that Gaussian sigma (spilling up to 3 sigma
    beyond the box, clipped to the image)."""
    h, w = mask.shape
    if not blur:
        region = image[y:y + h, x:x + w]
        region[mask] = fill[mask]
        return
    pad = int(np.ceil(3 * blur))
    soft = Image.fromarray(np.pad(mask, pad).astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(blur))
    alpha = np.asarray(soft, np.float32)[..., None] / 255.0
    colour = np.pad(fill, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    y0, x0 = max(0, y - pad), max(0, x - pad)
    y1, x1 = min(image.shape[0], y + h + pad), min(image.shape[1], x + w + pad)
    sy, sx = y0 - (y - pad), x0 - (x - pad)
    a = alpha[sy:sy + y1 - y0, sx:sx + x1 - x0]
    image[y0:y1, x0:x1] = a * colour[sy:sy + y1 - y0, sx:sx + x1 - x0] + (1 - a) * image[y0:y1, x0:x1]


def _render(rng: np.random.Generator, image_size: int, num_classes: int, colour_rng=None,
            small_blur: float = 0.0):
    """Renders one image; returns (uint8 HxWx3 array, [(label_index, bbox, area)]). With
    ``colour_rng`` each object's base colour is drawn from it, not taken from its class; with
    ``small_blur`` the objects drawn in the small size range are painted blurred."""
    orientation = int(rng.integers(3))
    short = int(rng.integers(int(0.75 * image_size), image_size + 1))
    height, width = ((image_size, image_size), (short, image_size),
                     (image_size, short))[orientation]
    image = _background(rng, height, width)
    specs = []
    for _ in range(int(rng.integers(1, 7))):
        label = int(rng.integers(num_classes))
        size_range = int(rng.choice(3, p=_RANGE_PROBS))
        lo, hi = _AREA_RANGES[size_range]
        area = np.exp(rng.uniform(np.log(lo), np.log(hi)))
        aspect = np.exp(rng.uniform(np.log(0.75), np.log(1.33)))  # h / w
        side = np.sqrt(area / _FILL[SHAPES[label][0]])
        w = max(10, int(round(min(side / np.sqrt(aspect), 0.9 * width))))
        h = max(10, int(round(min(side * np.sqrt(aspect), 0.9 * height))))
        specs.append((label, w, h, small_blur if size_range == 0 else 0.0))
    specs.sort(key=lambda s: -s[1] * s[2])  # big first: they need the most room.
    placed = []  # (label, (x, y, w, h), visible mask of the box region)
    for label, w, h, blur in specs:
        for _attempt in range(30):
            box = (int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h)
            if all(_overlap(box, other) <= _MAX_OVERLAP for _, other, _ in placed):
                break
        else:
            continue  # no room for this object; the image gets one fewer.
        name, base = SHAPES[label][0], base_colour(label, num_classes, colour_rng)
        mask_img = Image.new("L", (w, h))
        _draw_shape(ImageDraw.Draw(mask_img), name, (0, 0, w, h))
        mask = np.array(mask_img) > 0
        colour = np.clip(np.asarray(base, np.float32) + rng.normal(0, 12, 3), 0, 255)
        shade = 1 + 0.25 * rng.uniform(-1, 1) * np.linspace(-1, 1, h, dtype=np.float32)
        x, y = box[0], box[1]
        fill = np.broadcast_to(shade[:, None, None] * colour[None, None, :], (h, w, 3)).astype(np.float32)
        _paint(image, mask, fill, x, y, blur)
        for _, (bx, by, bw, bh), other in placed:  # hide what the new object covers.
            x0, y0 = max(x, bx), max(y, by)
            x1, y1 = min(x + w, bx + bw), min(y + h, by + bh)
            if x0 < x1 and y0 < y1:
                other[y0 - by:y1 - by, x0 - bx:x1 - bx] &= ~mask[y0 - y:y1 - y, x0 - x:x1 - x]
        placed.append((label, box, mask))
    image += rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(4, 14)
    objects = []
    for label, (bx, by, _, _), mask in placed:
        ys, xs = np.nonzero(mask)
        if len(ys) < 8:
            continue
        x0, y0 = bx + int(xs.min()), by + int(ys.min())
        bbox = [float(x0), float(y0), float(bx + xs.max() + 1 - x0), float(by + ys.max() + 1 - y0)]
        objects.append((label, bbox, int(len(ys))))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), objects


def _write_image(image_dir: str, split: str, i: int, params: dict):
    """Renders and writes image ``i`` of ``split``; returns (file_name, shape, objects)."""
    rng = np.random.default_rng([params["seed"], _SPLITS[split], i])
    colour_rng = (np.random.default_rng([params["seed"], _SPLITS[split], i, 1])
                  if params.get("colours", "class") == "random" else None)
    pixels, objects = _render(rng, params["image_size"], params["num_classes"], colour_rng,
                              params.get("small_blur", 0.0))
    if i % 4 == 3:
        file_name, buf = f"{i:06d}.jpg", _encode(pixels, "JPEG", {"quality": 92})
    else:
        file_name, buf = f"{i:06d}.png", _encode(pixels, "PNG", {"compress_level": 1})
    write_atomic(os.path.join(image_dir, file_name), buf, fsync=False)
    return file_name, pixels.shape, objects


def _generate_split(root: str, split: str, num_images: int, params: dict) -> None:
    image_dir = os.path.join(root, split)
    os.makedirs(image_dir, exist_ok=True)
    images, annotations = [], []
    # Each image has its own RNG, so the thread pool does not affect the output.
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        results = pool.map(lambda i: _write_image(image_dir, split, i, params),
                           range(num_images))
        for i, (file_name, shape, objects) in enumerate(results):
            image_id = i + 1 if split == "train" else 100001 + i
            images.append({"id": image_id, "file_name": file_name,
                           "height": int(shape[0]), "width": int(shape[1])})
            for label, bbox, area in objects:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": CATEGORY_IDS[label], "bbox": bbox,
                                    "area": area, "iscrowd": 0})
    data = {
        "info": {"description": f"InterNet-TF embedded shapes dataset ({split})",
                 "generator_params": params},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": CATEGORY_IDS[k], "name": SHAPES[k][0], "supercategory": "shape"}
                       for k in range(params["num_classes"])],
    }
    write_atomic(os.path.join(root, f"{split}.json"), json.dumps(data, separators=(",", ":")), fsync=False)


def _encode(pixels: np.ndarray, fmt: str, kwargs: dict) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **kwargs)
    return out.getvalue()


def _reusable(root: str, split: str, params: dict) -> bool:
    """True when ``root/split.json`` was generated with ``params`` and its images exist."""
    path = os.path.join(root, f"{split}.json")
    try:
        with open(path, "rb") as f:
            data = json.load(f)
        if data["info"]["generator_params"] != params:
            return False
        return all(os.path.isfile(os.path.join(root, split, img["file_name"]))
                   for img in data["images"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def generate(root: str, *, num_train: int = 800, num_val: int = 100, image_size: int = 256,
             seed: int = 0, num_classes: int = 4, colours: str = "class",
             small_blur: float = 0.0) -> dict[str, str]:
    """Writes (or reuses) the embedded dataset under ``root``.

    Returns a dict with ``train_annotations``, ``train_images``, ``val_annotations`` and
    ``val_images`` paths, ready for ``CocoIndex.from_files``.
    """
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes must be in 1..{len(SHAPES)}, got {num_classes}")
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64, got {image_size}")
    if num_train < 1 or num_val < 1:
        raise ValueError("num_train and num_val must be positive")
    check_choice("data.embedded.colours", colours)
    check_range("data.embedded.small_blur", small_blur)
    os.makedirs(root, exist_ok=True)
    for split, count in (("train", num_train), ("val", num_val)):
        params: dict[str, Any] = {"version": GENERATOR_VERSION, "split": split,
                                  "num_images": count, "image_size": image_size,
                                  "seed": seed, "num_classes": num_classes}
        if colours != "class":  # absent for "class": the demo's data and json stay as they were
            params["colours"] = colours
        if small_blur:  # likewise absent when off
            params["small_blur"] = float(small_blur)
        if _reusable(root, split, params):
            logging.info("Reusing embedded %s split in %s", split, root)
            continue
        logging.info("Generating embedded %s split: %d images in %s", split, count, root)
        _generate_split(root, split, count, params)
    return {
        "train_annotations": os.path.join(root, "train.json"),
        "train_images": os.path.join(root, "train"),
        "val_annotations": os.path.join(root, "val.json"),
        "val_images": os.path.join(root, "val"),
    }


def class_names(num_classes: int) -> list[str]:
    """The category names in category-id order: the label order of both routes."""
    return [name for name, _ in SHAPES[:num_classes]]


def write_voc(root: str, paths: dict[str, str]) -> str:
    """Writes (or reuses) the generated splits as a VOC root, ``root/voc``, with the splits
    ``train`` and ``val`` (image names prefixed ``train_`` / ``val_``, as both folders hold
    ``000000.png``); a split is rewritten when its json's generator parameters changed.
    Returns the VOC root."""
    voc_root = os.path.join(root, "voc")
    for split in ("train", "val"):
        annotations = paths[f"{split}_annotations"]
        with open(annotations, "rb") as f:
            params = json.load(f)["info"]["generator_params"]
        stamp = os.path.join(voc_root, f"embedded_{split}.json")
        try:
            with open(stamp, "rb") as f:
                if json.load(f) == params and os.path.isfile(
                        os.path.join(voc_root, "ImageSets", "Main", f"{split}.txt")):
                    logging.info("Reusing the embedded %s split as VOC in %s", split, voc_root)
                    continue
        except (OSError, ValueError):
            pass
        coco_to_voc(annotations, paths[f"{split}_images"], voc_root, split, prefix=f"{split}_")
        write_atomic(stamp, json.dumps(params), fsync=False)
    return voc_root


def summary(annotation_file: str) -> dict[str, Any]:
    """Counts images and objects (by COCO size range of ``area``, and per category)."""
    with open(annotation_file, "rb") as f:
        data = json.load(f)
    names = {c["id"]: c["name"] for c in data["categories"]}
    counts = {"images": len(data["images"]), "objects": 0, "small": 0, "medium": 0,
              "large": 0, "per_category": {name: 0 for name in names.values()}}
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        area = ann.get("area", ann["bbox"][2] * ann["bbox"][3])
        size = "small" if area < SMALL_MAX else "medium" if area < MEDIUM_MAX else "large"
        counts[size] += 1
        counts["objects"] += 1
        counts["per_category"][names.get(ann["category_id"], str(ann["category_id"]))] += 1
    return counts
