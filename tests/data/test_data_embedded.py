"""Tests for internet_tf/data/embedded.py: determinism, content and idempotent reuse."""
import json
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from internet_tf.config.loading import load_config
from internet_tf.config.schema import ConfigError
from internet_tf.data import embedded
from internet_tf.data.coco import CocoIndex
from internet_tf.data.pipeline import build_dataset

SMALL = dict(num_train=48, num_val=8, seed=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return embedded.generate(str(tmp_path_factory.mktemp("embedded")), **SMALL)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_layout(dataset):
    assert set(dataset) == {"train_annotations", "train_images", "val_annotations",
                            "val_images"}
    train = json.loads(read(dataset["train_annotations"]))
    assert len(train["images"]) == 48
    assert len(json.loads(read(dataset["val_annotations"]))["images"]) == 8
    files = sorted(os.listdir(dataset["train_images"]))
    assert {os.path.splitext(f)[1] for f in files} == {".png", ".jpg"}
    assert not [f for f in files if ".tmp" in f]
    assert train["info"]["generator_params"]["seed"] == 0


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    again = embedded.generate(str(tmp_path / "again"), **SMALL)
    for key in ("train_annotations", "val_annotations"):
        assert read(again[key]) == read(dataset[key])
    png = "000000.png"
    assert read(os.path.join(again["train_images"], png)) == read(
        os.path.join(dataset["train_images"], png))
    other = embedded.generate(str(tmp_path / "other"), **dict(SMALL, seed=1))
    a = json.loads(read(other["train_annotations"]))["annotations"]
    b = json.loads(read(dataset["train_annotations"]))["annotations"]
    assert [x["bbox"] for x in a] != [x["bbox"] for x in b]


def test_categories_are_non_contiguous(dataset):
    data = json.loads(read(dataset["train_annotations"]))
    ids = [c["id"] for c in data["categories"]]
    assert ids == [3, 7, 11, 20]
    assert [c["name"] for c in data["categories"]] == ["circle", "square", "triangle", "cross"]
    assert {a["category_id"] for a in data["annotations"]} == set(ids)


def test_object_sizes_span_coco_ranges(dataset):
    counts = embedded.summary(dataset["train_annotations"])
    assert counts["images"] == 48 and counts["objects"] >= 48
    for size in ("small", "medium", "large"):
        assert counts[size] >= 0.15 * counts["objects"], counts
    assert sum(counts["per_category"].values()) == counts["objects"]


def test_boxes_inside_images_and_image_sizes(dataset):
    data = json.loads(read(dataset["train_annotations"]))
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    per_image = {}
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        width, height = sizes[a["image_id"]]
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert w >= 1 and h >= 1 and 0 < a["area"] <= w * h and a["iscrowd"] == 0
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
    assert set(per_image) == set(sizes) and max(per_image.values()) <= 6
    assert len(set(sizes.values())) > 3  # non-square images of several sizes
    for im in data["images"][:6]:
        real = Image.open(os.path.join(dataset["train_images"], im["file_name"])).size
        assert real == (im["width"], im["height"])


@pytest.mark.parametrize("name", [name for name, _ in embedded.SHAPES])
def test_every_shape_touches_all_four_sides_of_its_box(name):
    # _render takes each bbox from the visible pixel mask, so boxes are tight; this
    # checks the drawn shapes also fill the box they were aimed at (sizes are right).
    for w, h in [(10, 10), (13, 17), (40, 31), (150, 120)]:
        mask = Image.new("L", (w + 20, h + 20))
        embedded._draw_shape(ImageDraw.Draw(mask), name, (5, 7, w, h))
        ys, xs = np.nonzero(np.asarray(mask))
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (5, 7, 5 + w, 7 + h)


def test_rendered_boxes_are_integral_and_within_image():
    for i in range(4):
        pixels, objects = embedded._render(np.random.default_rng([5, 0, i]), 256, 8)
        height, width = pixels.shape[:2]
        assert 1 <= len(objects) <= 6
        for label, (x, y, w, h), area in objects:
            assert 0 <= label < 8 and 8 <= area <= w * h
            assert all(float(v).is_integer() for v in (x, y, w, h))
            assert x + w <= width and y + h <= height


def test_idempotent_reuse_and_regeneration(tmp_path):
    root = str(tmp_path / "reuse")
    paths = embedded.generate(root, num_train=6, num_val=2)
    train_mtime = os.stat(paths["train_annotations"]).st_mtime_ns
    val_bytes = read(paths["val_annotations"])
    assert embedded.generate(root, num_train=6, num_val=2) == paths
    assert os.stat(paths["train_annotations"]).st_mtime_ns == train_mtime
    # Changing only the val split regenerates val and reuses train.
    embedded.generate(root, num_train=6, num_val=3)
    assert os.stat(paths["train_annotations"]).st_mtime_ns == train_mtime
    assert read(paths["val_annotations"]) != val_bytes
    # A damaged json or a missing image is regenerated, not trusted.
    with open(paths["train_annotations"], "w") as f:
        f.write('{"images": [')
    os.remove(os.path.join(paths["val_images"], "000000.png"))
    embedded.generate(root, num_train=6, num_val=3)
    assert len(json.loads(read(paths["train_annotations"]))["images"]) == 6
    assert os.path.isfile(os.path.join(paths["val_images"], "000000.png"))


def test_loads_cleanly_through_index_and_pipeline(dataset):
    index = CocoIndex.from_files(dataset["train_annotations"], dataset["train_images"],
                                 training=True)
    assert not index.skips and len(index) == 48 and index.num_classes == 4
    batch = next(iter(build_dataset(index, image_size=128, batch_size=4, training=True,
                                    seed=0)))
    info, boxes, classes = (batch[k].numpy() for k in ("image_info", "gt_boxes", "gt_classes"))
    valid = classes >= 0
    assert np.all((classes[valid] >= 1) & (classes[valid] <= 4))
    resized = np.round(info[:, :2] * info[:, 2:3])  # (h, w) after resizing
    for b in range(4):
        bx = boxes[b][valid[b]]
        assert np.all(bx >= 0) and np.all(bx[:, 2] <= resized[b, 0])
        assert np.all(bx[:, 3] <= resized[b, 1]) and np.all(bx[:, :2] < bx[:, 2:])


def test_invalid_parameters(tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        embedded.generate(str(tmp_path), num_classes=9)


def test_random_colours_keep_the_layout_and_do_not_follow_the_class(dataset, tmp_path):
    paths = embedded.generate(str(tmp_path / "random"), num_train=8, num_val=2, seed=0, colours="random")
    by_class = json.loads(read(dataset["train_annotations"]))
    random = json.loads(read(paths["train_annotations"]))
    assert random["info"]["generator_params"]["colours"] == "random"
    assert "colours" not in by_class["info"]["generator_params"]  # the demo's json is unchanged
    # Image i has its own RNG: the first 8 of the 48-image split have the same objects and boxes.
    first = {img["id"] for img in by_class["images"][:8]}
    assert random["annotations"] == [a for a in by_class["annotations"] if a["image_id"] in first]
    differ = [not np.array_equal(np.asarray(Image.open(os.path.join(paths["train_images"], img["file_name"]))),
                                 np.asarray(Image.open(os.path.join(dataset["train_images"], img["file_name"]))))
              for img in random["images"]]
    assert sum(differ) >= 4  # a quarter of the objects draw their own class's colour
    # Each class is painted in every class's colour, about equally often.
    rng = np.random.default_rng(0)
    for label in range(4):
        drawn = [embedded.base_colour(label, 4, rng) for _ in range(400)]
        counts = [drawn.count(embedded.SHAPES[k][1]) for k in range(4)]
        assert sum(counts) == 400 and min(counts) > 60, counts
    assert embedded.base_colour(2, 4) == embedded.SHAPES[2][1]
    with pytest.raises(ValueError, match="colours"):
        embedded.generate(str(tmp_path / "bad"), colours="blue")


def test_small_blur_softens_only_the_small_objects(dataset, tmp_path):
    sigma = 2.0
    paths = embedded.generate(str(tmp_path / "blur"), num_train=8, num_val=2, seed=0, small_blur=sigma)
    sharp = json.loads(read(dataset["train_annotations"]))
    blurred = json.loads(read(paths["train_annotations"]))
    assert blurred["info"]["generator_params"]["small_blur"] == sigma
    assert "small_blur" not in sharp["info"]["generator_params"]  # the demo's json is unchanged
    first = {img["id"] for img in sharp["images"][:8]}
    assert blurred["annotations"] == [a for a in sharp["annotations"] if a["image_id"] in first]
    pad = int(np.ceil(3 * sigma))
    changed_small = 0
    for img in blurred["images"]:
        a = np.asarray(Image.open(os.path.join(paths["train_images"], img["file_name"])), np.int16)
        b = np.asarray(Image.open(os.path.join(dataset["train_images"], img["file_name"])), np.int16)
        if img["file_name"].endswith(".jpg"):
            continue  # JPEG blocks spread a difference beyond the object
        near_small = np.zeros(a.shape[:2], bool)
        for ann in (x for x in blurred["annotations"] if x["image_id"] == img["id"]):
            if ann["area"] < embedded.SMALL_MAX:
                x, y, w, h = (int(v) for v in ann["bbox"])
                near_small[max(0, y - pad - 2):y + h + pad + 2, max(0, x - pad - 2):x + w + pad + 2] = True
        diff = np.abs(a - b).max(axis=-1) > 0
        assert not (diff & ~near_small).any(), img["file_name"]  # large and medium objects stay sharp
        changed_small += int(diff.any())
    assert changed_small >= 3


def test_small_blur_range_is_checked(tmp_path):
    with pytest.raises(ValueError, match="small_blur"):
        embedded.generate(str(tmp_path), small_blur=-1)
    with pytest.raises(ConfigError, match="data.embedded.small_blur"):
        load_config(None, ["data.embedded.small_blur=9"])
