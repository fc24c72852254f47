"""Prediction with an exported SavedModel: per-image JSON of detections and a PNG with the
labelled boxes drawn (used by ``internet-predict`` and ``make demo``)."""
from __future__ import annotations

import json
import os

_COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230))


def load_labels(export_dir: str) -> dict:
    """Category id -> name from the export's labels.json (``run_dir.read_labels``); {} without one."""
    from internet_tf.run_dir import read_labels  # deferred with the rest: importing this module stays cheap

    try:
        label_to_cat_id, names = read_labels(export_dir)
    except OSError:
        return {}
    return {int(cat_id): names[label] for label, cat_id in label_to_cat_id.items()}


def detections_for(serve, pixels, labels: dict) -> list:
    import numpy as np
    import tensorflow as tf

    out = serve(images=tf.constant(pixels[None], tf.uint8))
    n = int(out["num_detections"][0])
    boxes = out["detection_boxes"][0, :n].numpy()
    scores = out["detection_scores"][0, :n].numpy()
    classes = out["detection_classes"][0, :n].numpy()
    return [{"box": [round(float(v), 2) for v in b], "score": round(float(s), 4),
             "category_id": int(c), "category": labels.get(int(c), str(int(c)))}
            for b, s, c in zip(boxes, scores, classes.astype(np.int64))]


def draw(image, detections: list, min_score: float):
    from PIL import ImageDraw

    canvas = image.copy()
    pen = ImageDraw.Draw(canvas)
    for det in detections:
        if det["score"] < min_score:
            continue
        y0, x0, y1, x1 = det["box"]
        colour = _COLOURS[det["category_id"] % len(_COLOURS)]
        pen.rectangle([x0, y0, x1, y1], outline=colour, width=2)
        text = f"{det['category']} {det['score']:.2f}"
        pen.rectangle([x0, max(0, y0 - 11), x0 + 6 * len(text) + 2, y0], fill=colour)
        pen.text((x0 + 1, max(0, y0 - 11)), text, fill=(0, 0, 0))
    return canvas


def predict(export_dir: str, images: list, out_dir: str, min_score: float = 0.3) -> list:
    """Returns the written JSON paths. Unreadable images are reported and skipped."""
    import numpy as np
    import tensorflow as tf
    from PIL import UnidentifiedImageError

    from internet_tf.data.orientation import open_oriented  # deferred like TF and PIL above: a cheap module import

    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    labels = load_labels(export_dir)
    os.makedirs(out_dir, exist_ok=True)
    written, failed = [], []
    for path in images:
        try:
            image = open_oriented(path)  # EXIF orientation applied: pixels as displayed
        except (OSError, UnidentifiedImageError) as e:
            failed.append(f"{path}: {e}")
            continue
        dets = detections_for(serve, np.asarray(image), labels)
        stem = os.path.splitext(os.path.basename(path))[0]
        json_path = os.path.join(out_dir, stem + ".json")
        with open(json_path, "w") as f:
            json.dump({"image": os.path.abspath(path), "width": image.width, "height": image.height,
                       "detections": dets}, f, indent=1)
        draw(image, dets, min_score).save(os.path.join(out_dir, stem + ".png"))
        written.append(json_path)
    for message in failed:
        print(f"skipped unreadable image {message}")
    print(f"Wrote detections for {len(written)} image(s) to {out_dir}"
          + (f"; skipped {len(failed)}" if failed else ""))
    return written
