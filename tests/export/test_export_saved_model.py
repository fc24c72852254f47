"""SavedModel export: outputs equal in-process inference on two image sizes, no
training-only variables, a process without internet_tf can load it, predict writes files."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tiny
from PIL import Image

from internet_tf.data.pipeline import resize_and_pad
from internet_tf.export.saved_model import export
from internet_tf.assembly.factory import build_model

pytestmark = pytest.mark.cost(36)  # seconds in make test (tests/conftest.py schedules by it)

EVERY_SCORE = "model.head.score_threshold=0.0"  # the untrained model's low scores too
CATS = {1: 17, 2: 4, 3: 90}
NAMES = ["background", "lamp", "cup", "book"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg = tiny.config(EVERY_SCORE)
    keras.utils.set_random_seed(3)
    model = build_model(cfg.model, 3)
    model.build_all()
    out = str(tmp_path_factory.mktemp("export") / "saved")
    export(model, CATS, NAMES, out)
    return model, out


def reference(model, image):
    padded, scale = resize_and_pad(tf.constant(image), model.image_size)
    h, w = image.shape[:2]
    dets = model.inference(padded[None], tf.constant([[h, w, float(scale), 0.0]]))
    n = int(dets["num_detections"][0])
    boxes = np.clip(dets["detection_boxes"][0, :n].numpy() / float(scale), 0, [h, w, h, w])
    classes = np.array([CATS[int(c)] for c in dets["detection_classes"][0, :n].numpy()])
    return boxes, dets["detection_scores"][0, :n].numpy(), classes


@pytest.mark.parametrize("size", [(96, 160), (200, 120)])
def test_export_matches_in_process_inference(exported, size):
    model, path = exported
    image = np.random.default_rng(size[0]).integers(0, 255, size + (3,), dtype=np.uint8)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    out = serve(images=tf.constant(image[None]))
    assert out["detection_boxes"].shape == (1, 100, 4) and out["detection_classes"].dtype == tf.int32
    boxes, scores, classes = reference(model, image)
    n = int(out["num_detections"][0])
    assert n == len(scores) > 0
    np.testing.assert_allclose(out["detection_boxes"][0, :n].numpy(), boxes, atol=1e-4)
    np.testing.assert_allclose(out["detection_scores"][0, :n].numpy(), scores, atol=1e-4)
    np.testing.assert_array_equal(out["detection_classes"][0, :n].numpy(), classes)
    assert np.all(out["detection_classes"][0, n:].numpy() == -1)


def test_export_has_no_training_only_variables(exported):
    model, path = exported
    loaded = tf.saved_model.load(path)  # keep a reference: its variables die with it
    names = [v.name for v in loaded.signatures["serving_default"].variables]
    keys = [k for k, _ in tf.train.list_variables(os.path.join(path, "variables", "variables"))]
    training_only = ("buffer", "ot_", "generator", "sums", "counts", "window")
    assert names and not [n for n in names + keys if any(t in n for t in training_only)]
    assert any(n.startswith("make_up/") for n in names)  # InterNet's make-up and critic are in
    assert any(n.startswith("critic/") for n in names)
    inference = [model.backbone, model.fpn, model.rpn_head, model.box_head, model.predictor,
                 model.intertwiner.make_up, model.intertwiner.critic]
    trainable_inference = sum(len(layer.variables) for layer in inference)
    assert len(names) == trainable_inference


def test_export_and_run_dir_share_one_labels_schema_that_predict_reads(exported, tmp_path):
    from internet_tf.export.predict import load_labels
    from internet_tf.run_dir import read_labels, write_labels

    _, path = exported
    with open(os.path.join(path, "labels.json")) as f:
        assert json.load(f) == [{"label": 1, "category_id": 17, "name": "lamp"},
                                {"label": 2, "category_id": 4, "name": "cup"},
                                {"label": 3, "category_id": 90, "name": "book"}]
    write_labels(str(tmp_path), CATS, NAMES)  # what internet-train writes into a run dir
    with open(os.path.join(path, "labels.json")) as f, open(tmp_path / "labels.json") as g:
        assert f.read() == g.read()
    assert read_labels(path) == (CATS, NAMES)
    assert load_labels(path) == {17: "lamp", 4: "cup", 90: "book"}
    assert load_labels(str(tmp_path / "nowhere")) == {}


def test_loads_without_internet_tf_and_lists_its_signature(exported):
    """A process without internet_tf loads and runs the export; its serving_default
    SignatureDef, read as ``saved_model_cli show --tag_set serve --signature_def
    serving_default`` reads it (``saved_model_utils.get_meta_graph_def``), names the inputs
    and outputs (one process, one TensorFlow import, for both)."""
    _, path = exported
    code = ("import sys, numpy as np, tensorflow as tf\n"
            f"m = tf.saved_model.load({path!r})\n"
            "out = m.signatures['serving_default'](images=tf.zeros([2, 50, 70, 3], tf.uint8))\n"
            "assert out['detection_boxes'].shape == (2, 100, 4)\n"
            "assert not [k for k in sys.modules if k.startswith('internet_tf')]\n"
            "from tensorflow.python.tools import saved_model_utils\n"
            f"sig = saved_model_utils.get_meta_graph_def({path!r}, 'serve').signature_def['serving_default']\n"
            "print(sorted(sig.inputs), sorted(sig.outputs))\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd="/")
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
    inputs, outputs = proc.stdout.splitlines()[-2].split("] [")
    assert "'images'" in inputs
    for name in ("detection_boxes", "detection_scores", "detection_classes", "num_detections"):
        assert f"'{name}'" in outputs


def test_predict_writes_json_and_png(exported, tmp_path):
    from internet_tf.export.predict import predict

    _, path = exported
    files = []
    for i, size in enumerate([(60, 90), (120, 80)]):
        f = tmp_path / f"img{i}.{'png' if i else 'jpg'}"
        Image.fromarray(np.full(size + (3,), 90 * i, np.uint8)).save(f)
        files.append(str(f))
    # A phone photo: stored 90 wide and 60 high with EXIF orientation 6 (turn 90° clockwise to
    # display), so predict sees (and reports) the displayed 60 × 90 picture.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((60, 90, 3), 30, np.uint8)).save(tmp_path / "img2.jpg", exif=exif)
    files.append(str(tmp_path / "img2.jpg"))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    written = predict(path, files + [str(bad)], str(tmp_path / "out"))
    assert len(written) == 3
    photo = json.load(open(tmp_path / "out" / "img2.json"))
    assert (photo["width"], photo["height"]) == (60, 90)
    for i in range(3):
        data = json.load(open(tmp_path / "out" / f"img{i}.json"))
        assert {"image", "width", "height", "detections"} <= set(data)
        for det in data["detections"]:
            assert det["category_id"] in CATS.values() and len(det["box"]) == 4
        assert Image.open(tmp_path / "out" / f"img{i}.png").size == (data["width"], data["height"])


def test_export_of_internet_with_labelenc_has_none_of_labelenc(tmp_path):
    """LabelEnc (Hao et al. 2020) is training-only: h, its FPN and adapt never reach the SavedModel,
    also when it is combined with the intertwiner."""
    cfg = tiny.config(EVERY_SCORE, "model.labelenc.enabled=true")
    model = build_model(cfg.model, 3)
    model.build_all()
    labelenc = model.labelenc
    assert labelenc.encoder.weights and labelenc.adapt.weights
    out = export(model, CATS, NAMES, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(out)
    exported = loaded.signatures["serving_default"].variables
    names = [v.name for v in exported]
    keys = [k for k, _ in tf.train.list_variables(os.path.join(out, "variables", "variables"))]
    inference = [v for layer in model.inference_layers() for v in layer.variables]
    # exactly the detector's and the intertwiner's inference layers (same count and shapes) ...
    assert sorted(map(str, (v.shape for v in exported))) == sorted(map(str, (v.shape for v in inference)))
    assert not [n for n in names + keys if "label" in n]  # ... and nothing named after LabelEnc
