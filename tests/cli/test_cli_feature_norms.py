"""``internet-feature-norms``: LabelEnc's Fig. 1 rows (image | baseline | LabelEnc | h(y)
norms of P3) from two run folders, as PNGs and a TensorBoard image; bad input exits 2."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tiny
from PIL import Image

from internet_tf.evaluation.feature_norms import channel_norm, row_image
from internet_tf.assembly.train import build_trainer

pytestmark = pytest.mark.cost(18)  # seconds in make test (tests/conftest.py schedules by it)

DATA = ["data.embedded.num_train=4", "data.embedded.num_val=3", "data.embedded.image_size=128",
        "data.embedded.num_classes=2", "model.intertwiner.enabled=false"]


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    """A baseline and a LabelEnc step-1 folder as internet-train leaves them (config.yaml,
    labels.json, a checkpoint), with their initial weights: no training needed here."""
    root = tmp_path_factory.mktemp("norms")
    dirs = {}
    for name, extra in (("baseline", []), ("labelenc", ["model.labelenc.enabled=true"])):
        cfg = tiny.config(*DATA, *extra, f"data.embedded.root={root / 'data'}")
        trainer = build_trainer(cfg, str(root / name))
        trainer.manager.save(checkpoint_number=0)
        dirs[name] = str(root / name)
    return dirs


def test_channel_norm_and_row_layout():
    x = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    np.testing.assert_allclose(channel_norm(x).numpy(), np.sqrt((x ** 2).sum(-1)), rtol=1e-6)
    image = np.full((4, 4, 3), 200, np.float32)
    maps = {"baseline": np.array([[[0.0, 1.0], [2.0, 3.0]]]), "LabelEnc": np.ones((1, 2, 2)),
            "h(y)": np.array([[[0.0, 0.0], [0.0, 5.0]]])}
    row = row_image(image, maps, 0)
    assert row.shape == (4, 16, 3) and row.dtype == np.uint8
    assert np.all(row[:, :4] == 200)  # the image itself
    assert row[0, 4, 0] == 0 and row[3, 7, 0] == 255 and row[0, 6, 0] == 85  # min-max, 2x nearest
    assert np.all(row[:, 8:12] == 0)  # a constant map is drawn black
    assert row[3, 15, 0] == 255 and row[0, 12, 0] == 0


def test_cli_writes_rows_and_tensorboard_image(run_dirs, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from internet_tf.cli.feature_norms import feature_norm_pictures

    out = str(tmp_path / "norms")
    paths = feature_norm_pictures(run_dirs["baseline"], run_dirs["labelenc"], out, num_images=2)
    assert [os.path.basename(p) for p in paths] == ["feature_norms_0.png", "feature_norms_1.png"]
    row = np.asarray(Image.open(paths[0]))
    assert row.shape == (128, 4 * 128, 3)
    assert row[:, 3 * 128:].max() == 255 and row[:, 3 * 128:].min() == 0  # h(y) shows the boxes
    events = EventAccumulator(out, size_guidance={"tensors": 0})
    events.Reload()
    (image_event,) = events.Tensors("feature_norms/P3")
    assert tf.make_ndarray(image_event.tensor_proto).shape[0] == 2 + 2  # width, height, 2 PNGs


def test_cli_refuses_a_run_without_labelenc(run_dirs, tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "internet_tf.cli.feature_norms", f"--baseline_dir={run_dirs['baseline']}",
           f"--labelenc_dir={run_dirs['baseline']}", f"--norms_out={tmp_path / 'x'}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "is not a LabelEnc run" in result.stderr
    assert "Traceback" not in result.stderr
