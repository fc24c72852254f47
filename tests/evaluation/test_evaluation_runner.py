"""evaluate_model end to end on the embedded data: metrics files, the eval/* scalars and the
eval/detections image summary read back from the event file; a bundle read as VOC gets the
VOC metrics and the devkit files."""
import copy
import os

import numpy as np
import pytest
import tensorflow as tf
import tiny
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from internet_tf.data.datasets import load_datasets
from internet_tf.evaluation.coco_eval import METRIC_KEYS
from internet_tf.evaluation.runner import dataset_kind, evaluate_model, metrics_text
from internet_tf.evaluation.voc_eval import RESULTS_DIR
from internet_tf.assembly.factory import build_model

pytestmark = pytest.mark.cost(10)  # seconds in make test (tests/conftest.py schedules by it)

SIZE = 128  # tests/tiny.yaml's model.image_size and data.embedded.image_size


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = tiny.config("data.embedded.num_train=1", "data.embedded.num_val=6",
                      f"data.embedded.root={tmp_path_factory.mktemp('embedded')}")
    assert cfg.model.image_size == cfg.data.embedded.image_size == SIZE
    bundle = load_datasets(cfg, train=False)
    return cfg, bundle


def _evaluate(model, cfg, bundle, out_dir, **kwargs):
    writer = tf.summary.create_file_writer(str(out_dir))
    metrics = evaluate_model(model, bundle, cfg, str(out_dir), summary_writer=writer, step=7,
                             **kwargs)
    writer.close()
    acc = EventAccumulator(str(out_dir), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    return metrics, acc


def _pictures(acc):
    """The eval/detections images as uint8 arrays, and the event's step."""
    (event,) = acc.Tensors("eval/detections")
    encoded = tf.make_ndarray(event.tensor_proto)       # [width, height, png, png, ...]
    images = [tf.io.decode_png(png).numpy() for png in encoded[2:]]
    return images, (int(encoded[0]), int(encoded[1])), event.step


def _expected_crop(bundle, count):
    """Largest round(orig * scale) over the first ``count`` val images (eval order)."""
    sizes = [(r["height"], r["width"]) for r in bundle.val.records[:count]]
    scales = [SIZE / max(h, w) for h, w in sizes]
    return (max(int(np.round(h * s)) for (h, _), s in zip(sizes, scales)),
            max(int(np.round(w * s)) for (_, w), s in zip(sizes, scales)))


def test_tiny_model_writes_metrics_and_detection_images(setup, tmp_path, capsys):
    cfg, bundle = setup
    model = build_model(cfg.model, bundle.num_classes)
    model.build_all()
    # 5 images span the first two batches of 4.
    capsys.readouterr()
    metrics, acc = _evaluate(model, cfg, bundle, tmp_path / "eval", num_images=5)
    # Progress as a piped log shows it: plain lines, images of the split, then COCOeval's phases.
    # (a wait over 10 s adds "still running" lines, as many as the machine's load makes)
    lines = [line for line in capsys.readouterr().out.splitlines() if "still running" not in line]
    assert lines[0].startswith("images 4/6  first batch ") and lines[0].endswith("s (incl. tracing)")
    assert lines[1].startswith("images 6/6  ") and " img/s  took " in lines[1]
    assert [line.split("  ")[0] for line in lines[2:]] == [
        "COCOeval: load detections", "COCOeval: match", "COCOeval: accumulate"]
    tags = acc.Tags()["tensors"]
    assert {"eval/" + k for k in METRIC_KEYS} <= set(tags)
    assert "eval/detections" in tags
    (ap,) = acc.Tensors("eval/AP")
    assert ap.step == 7 and float(tf.make_ndarray(ap.tensor_proto)) == pytest.approx(metrics["AP"])
    assert {"detections.json", "metrics.json"} <= set(os.listdir(tmp_path / "eval"))

    images, (width, height), step = _pictures(acc)
    crop_h, crop_w = _expected_crop(bundle, 5)
    assert step == 7 and len(images) == 5
    assert (height, width) == (crop_h, crop_w)
    assert all(im.shape == (crop_h, crop_w, 3) for im in images)
    # Every embedded val image has objects; their GT boxes are drawn in pure green.
    for im in images:
        assert np.all(im == [0, 255, 0], axis=-1).sum() > 0


class FixedDetector:
    """Stands in for a model: one confident box at a fixed place, one weak one, per image."""
    image_size = SIZE

    def inference(self, images, image_info):
        b = tf.shape(images)[0]
        boxes = tf.constant([[10.0, 20.0, 40.0, 60.0], [50.0, 50.0, 90.0, 90.0]])
        return {"detection_boxes": tf.tile(boxes[None], [b, 1, 1]),
                "detection_scores": tf.tile(tf.constant([[0.9, 0.2]]), [b, 1]),
                "detection_classes": tf.ones([b, 2], tf.int32),
                "num_detections": tf.fill([b], 2)}


def test_detections_drawn_in_red_from_the_eval_pass(setup, tmp_path):
    cfg, bundle = setup
    _, acc = _evaluate(FixedDetector(), cfg, bundle, tmp_path / "eval", num_images=1)
    (im,), _, _ = _pictures(acc)
    # A single non-square image: the bottom/right padding is cropped away.
    crop = _expected_crop(bundle, 1)
    assert crop != (SIZE, SIZE) and im.shape == crop + (3,)
    red = np.all(im == [255, 0, 0], axis=-1)
    # Outline of rows 10..39, cols 20..59; the 0.2-score box is not drawn.
    assert red[10, 20:60].all() and red[39, 20:60].all()
    assert red[10:40, 20].all() and red[10:40, 59].all()
    assert red.sum() == 2 * 40 + 2 * 28


def test_no_image_summary_when_num_images_is_zero(setup, tmp_path):
    cfg, bundle = setup
    _, acc = _evaluate(FixedDetector(), cfg, bundle, tmp_path / "eval", num_images=0)
    assert "eval/detections" not in acc.Tags()["tensors"]
    assert "eval/AP" in acc.Tags()["tensors"]


def _as_voc(bundle):
    """The bundle read as VOC (its ``kind``), the rest unchanged."""
    voc = copy.copy(bundle)
    voc.kind = "voc"
    return voc


def test_voc_bundle_gets_voc_metrics_scalars_and_devkit_files(setup, tmp_path):
    cfg, bundle = setup
    assert dataset_kind(bundle) == "coco"
    metrics, acc = _evaluate(FixedDetector(), cfg, _as_voc(bundle), tmp_path / "eval", num_images=1)
    names = bundle.class_names[1:]
    assert list(metrics)[:3] == ["mAP", "mAP_07", "AP50"]
    assert {f"AP/{n}" for n in names} | {f"AP07/{n}" for n in names} <= set(metrics)
    assert all(-1.0 <= v <= 1.0 for v in metrics.values())
    tags = set(acc.Tags()["tensors"])
    assert {"eval/mAP", "eval/mAP_07", "eval/AP50", f"eval/AP/{names[0]}", "eval/detections"} <= tags
    assert "eval/AP" not in tags                      # no COCO metric on the VOC route
    (m,) = acc.Tensors("eval/mAP")
    assert float(tf.make_ndarray(m.tensor_proto)) == pytest.approx(metrics["mAP"])
    out = tmp_path / "eval"
    assert {"detections.json", "metrics.json", RESULTS_DIR} <= set(os.listdir(out))
    files = sorted(os.listdir(out / RESULTS_DIR))
    assert files == sorted(f"comp4_det_test_{n}.txt" for n in names)
    # FixedDetector gives every image two label-1 boxes: they all land in class 1's file.
    lines = (out / RESULTS_DIR / f"comp4_det_test_{names[0]}.txt").read_text().splitlines()
    assert len(lines) == 2 * len(bundle.val.records)
    assert metrics_text(metrics)[0] == "VOC" and metrics_text({"AP": 0.5})[0] == "COCO"


def test_unknown_dataset_kind_is_a_clear_error(setup):
    bundle = copy.copy(setup[1])
    bundle.kind = "kitti"
    with pytest.raises(ValueError, match="'kitti' has no evaluator"):
        dataset_kind(bundle)
