"""Tests for internet_tf/data/pipeline.py: shapes, hand-checked scaling and flipping."""
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from internet_tf.data.coco import CocoIndex
from internet_tf.data.pipeline import build_dataset, resize_and_pad

pytestmark = pytest.mark.cost(14)  # seconds in make test (tests/conftest.py schedules by it)

# Box [10, 5, 20, 15] (yxyx) in a 100 x 50 (h x w) image resized to 64 (scale 0.64,
# resized 64 x 32), written in original pixels as COCO xywh.
S = 0.64
TALL_BOX_XYWH = [5 / S, 10 / S, 10 / S, 10 / S]


def ann(image_id, bbox, category_id=1):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "iscrowd": 0}


def index_of(make_dataset, images, annotations, categories=None, training=True):
    path, image_dir = make_dataset(images, annotations, categories)
    return CocoIndex.from_files(path, image_dir, training=training)


@pytest.fixture
def tall_index(make_dataset):
    return index_of(make_dataset, [{"id": 7, "width": 50, "height": 100}],
                    [ann(7, TALL_BOX_XYWH), ann(7, [0, 0, 50, 100])])


def first(dataset):
    return {k: v.numpy() for k, v in next(iter(dataset)).items()}


def test_static_shapes_and_dtypes(tall_index):
    ds = build_dataset(tall_index, image_size=64, batch_size=2, max_instances=5,
                       training=True, seed=0)
    spec = ds.element_spec
    assert spec["images"] == tf.TensorSpec([2, 64, 64, 3], tf.float32)
    assert spec["gt_boxes"] == tf.TensorSpec([2, 5, 4], tf.float32)
    assert spec["gt_classes"] == tf.TensorSpec([2, 5], tf.int32)
    assert spec["image_info"] == tf.TensorSpec([2, 4], tf.float32)
    batch = first(ds)
    assert batch["images"].shape == (2, 64, 64, 3)
    assert 0 <= batch["images"].min() and batch["images"].max() <= 255
    eval_spec = build_dataset(tall_index, image_size=64, batch_size=2, training=False).element_spec
    assert eval_spec["images"].shape.as_list() == [None, 64, 64, 3]


def test_scaling_padding_and_image_info(tall_index):
    batch = first(build_dataset(tall_index, image_size=64, batch_size=1, max_instances=4,
                                training=False))
    np.testing.assert_allclose(batch["image_info"][0], [100, 50, 0.64, 7], rtol=1e-6)
    np.testing.assert_allclose(batch["gt_boxes"][0, :2], [[10, 5, 20, 15], [0, 0, 64, 32]],
                               atol=1e-4)
    np.testing.assert_array_equal(batch["gt_boxes"][0, 2:], -1)
    np.testing.assert_array_equal(batch["gt_classes"][0], [1, 1, -1, -1])
    image = batch["images"][0]
    assert np.all(image[:, 32:] == 0) and image[:, :32].std() > 10  # padded on the right
    original = np.asarray(Image.open(tall_index.records[0]["path"]), np.float32)
    expected = tf.image.resize(original, [64, 32]).numpy()
    np.testing.assert_allclose(image[:, :32], expected, atol=1e-3)


def test_resize_and_pad_any_size_and_dtype():
    for dtype in (tf.uint8, tf.float32):
        image = tf.cast(tf.fill([37, 91, 3], 200), dtype)
        padded, scale = resize_and_pad(image, 64)
        assert padded.dtype == tf.float32 and padded.shape == (64, 64, 3)
        np.testing.assert_allclose(scale.numpy(), 64 / 91, rtol=1e-6)
        rows = round(37 * 64 / 91)  # 26
        np.testing.assert_allclose(padded[:rows].numpy(), 200, atol=1e-3)
        np.testing.assert_array_equal(padded[rows:].numpy(), 0)
    traced = tf.function(lambda x: resize_and_pad(x, 32),
                         input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    assert traced(tf.zeros([5, 9, 3], tf.uint8))[0].shape == (32, 32, 3)


def test_flip_boxes_and_pixels(tall_index):
    unflipped = first(build_dataset(tall_index, image_size=64, batch_size=1,
                                    training=False))
    ds = build_dataset(tall_index, image_size=64, batch_size=1, max_instances=3,
                       training=True, seed=0)
    seen = set()
    for batch in ds.take(24):
        boxes, image = batch["gt_boxes"][0].numpy(), batch["images"][0].numpy()
        np.testing.assert_array_equal(boxes[2], -1)  # padding is not flipped
        if abs(boxes[0, 1] - 5) < 1e-3:
            np.testing.assert_allclose(boxes[:2], [[10, 5, 20, 15], [0, 0, 64, 32]], atol=1e-4)
            np.testing.assert_allclose(image, unflipped["images"][0], atol=1e-4)
            seen.add("plain")
        else:
            np.testing.assert_allclose(boxes[:2], [[10, 17, 20, 27], [0, 0, 64, 32]],
                                       atol=1e-4)
            np.testing.assert_allclose(image[:, :32], unflipped["images"][0, :, 31::-1],
                                       atol=1e-4)
            assert np.all(image[:, 32:] == 0)  # the padding stays on the right
            seen.add("flipped")
    assert seen == {"plain", "flipped"}


def test_no_flip_when_disabled(tall_index):
    ds = build_dataset(tall_index, image_size=64, batch_size=4, training=True, flip=False)
    for batch in ds.take(3):
        np.testing.assert_allclose(batch["gt_boxes"][:, 0, 1], 5, atol=1e-4)


def test_label_mapping_round_trip(make_dataset):
    cats = [{"id": 20, "name": "c"}, {"id": 3, "name": "a"}, {"id": 7, "name": "b"}]
    anns = [ann(1, [0, 0, 5, 5], 7), ann(1, [1, 1, 5, 5], 20), ann(1, [2, 2, 5, 5], 3)]
    index = index_of(make_dataset, [{"id": 1, "width": 30, "height": 30}], anns, cats)
    batch = first(build_dataset(index, image_size=30, batch_size=1, max_instances=4,
                                training=False))
    labels = batch["gt_classes"][0]
    np.testing.assert_array_equal(labels, [2, 3, 1, -1])
    assert [index.label_to_cat_id[int(k)] for k in labels[:3]] == [7, 20, 3]
    assert all(index.label_to_cat_id[index.cat_id_to_label[c]] == c for c in (3, 7, 20))


def test_gray_rgba_palette_jpeg_decode_to_three_channels(make_dataset):
    images = [{"id": i + 1, "width": 20, "height": 16, "mode": mode, "file": f"{i}.{ext}"}
              for i, (mode, ext) in enumerate([("L", "png"), ("RGBA", "png"), ("P", "png"),
                                               ("L", "jpg"), ("RGB", "jpg")])]
    index = index_of(make_dataset, images, [ann(i["id"], [1, 1, 4, 4]) for i in images])
    batch = first(build_dataset(index, image_size=20, batch_size=8, training=False))
    assert batch["images"].shape == (5, 20, 20, 3)
    for k in (0, 3):  # grayscale: the three channels are equal
        np.testing.assert_array_equal(batch["images"][k, ..., 0], batch["images"][k, ..., 2])
    gray = np.asarray(Image.open(index.records[0]["path"]), np.float32)
    np.testing.assert_allclose(batch["images"][0, :16, :, 1], gray, atol=1e-3)


def many_images(make_dataset, n, training):
    images = [{"id": 100 + i, "width": 24 + i, "height": 20} for i in range(n)]
    return index_of(make_dataset, images, [ann(100 + i, [1, 1, 3 + i, 4]) for i in range(n)],
                    training=training)


def test_deterministic_order_with_seed(make_dataset):
    index = many_images(make_dataset, 9, training=True)

    def run(seed):
        ds = build_dataset(index, image_size=32, batch_size=2, training=True, seed=seed)
        return [np.concatenate([b["image_info"][:, 3].numpy(), b["gt_boxes"][:, 0, 1].numpy()])
                for b in ds.take(12)]

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert not np.array_equal(np.stack(a), np.stack(c))
    ids = np.concatenate([x[:2] for x in a[:5]])  # 10 draws span the 9 images (repeat)
    assert set(ids[:9]) == set(range(100, 109))


def test_eval_yields_every_image_once(make_dataset):
    index = many_images(make_dataset, 7, training=False)
    batches = list(build_dataset(index, image_size=32, batch_size=3, training=False))
    assert [int(b["images"].shape[0]) for b in batches] == [3, 3, 1]
    ids = np.concatenate([b["image_info"][:, 3].numpy() for b in batches])
    np.testing.assert_array_equal(ids, np.arange(100, 107))  # in index order


def test_truncated_instances_counted(make_dataset, caplog):
    index = index_of(make_dataset, [{"id": 1, "width": 30, "height": 30}],
                     [ann(1, [i, i, 5, 5]) for i in range(3)])
    batch = first(build_dataset(index, image_size=30, batch_size=1, max_instances=2,
                                training=False))
    assert index.skips["truncated_instances"] == 1
    # The message says what the split loses: boxes of training, nothing of the metrics.
    val = index_of(make_dataset, [{"id": 1, "width": 30, "height": 30}],
                   [ann(1, [i, i, 5, 5]) for i in range(3)], training=False)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="absl")  # another test may have left absl's logger at WARNING
    caplog.clear()
    build_dataset(val, image_size=30, batch_size=1, max_instances=2, training=False)
    assert "1 validation images" in caplog.text and "still scored against every box" in caplog.text
    caplog.clear()
    build_dataset(index, image_size=30, batch_size=1, max_instances=2, training=False)
    assert "1 training images" in caplog.text and "left out of training" in caplog.text
    np.testing.assert_allclose(batch["gt_boxes"][0], [[0, 0, 5, 5], [1, 1, 6, 6]])
    build_dataset(index, image_size=30, batch_size=1, max_instances=3, training=False)
    assert "truncated_instances" not in index.skips  # counts follow the latest build


def test_unreadable_image_is_dropped_not_fatal(make_dataset):
    index = many_images(make_dataset, 3, training=False)
    with open(index.records[1]["path"], "wb") as f:  # corrupted after indexing
        f.write(b"not an image at all")
    batches = list(build_dataset(index, image_size=32, batch_size=4, training=False))
    np.testing.assert_array_equal(batches[0]["image_info"][:, 3], [100, 102])
    assert os.path.isfile(index.records[1]["path"])


@pytest.mark.parametrize("image_id, ok", [(2 ** 24, True), (2 ** 24 + 1, False)])
def test_image_ids_must_travel_exactly_in_float32(make_dataset, image_id, ok):
    """The data pipeline accepts exactly the ids the evaluation accepts ([0, MAX_IMAGE_ID])."""
    from internet_tf.data.coco import MAX_IMAGE_ID, DatasetError

    assert MAX_IMAGE_ID == 2 ** 24
    index = index_of(make_dataset, [{"id": image_id, "width": 50, "height": 100}], [ann(image_id, [0, 0, 10, 10])])
    if ok:
        assert first(build_dataset(index, image_size=64, batch_size=1, training=False))["image_info"][0, 3] == image_id
    else:
        with pytest.raises(DatasetError, match=r"image ids must lie in \[0, 2\*\*24\]"):
            build_dataset(index, image_size=64, batch_size=1, training=False)


def test_image_cache_gives_the_uncached_stream_and_reshuffles_each_epoch(make_dataset):
    """data.cache_images: the decoded images are cached before the shuffle and
    the flip, so the seeded stream is the uncached one, element for element (a new order
    and new flips every epoch), and after the first epoch it no longer reads the files."""
    index = many_images(make_dataset, 6, training=True)

    def batches(cache_images):
        ds = build_dataset(index, image_size=32, batch_size=2, max_instances=2, training=True, seed=5,
                           cache_images=cache_images)
        return iter(ds)

    plain = [{k: v.numpy() for k, v in b.items()} for b, _ in zip(batches(False), range(9))]
    cached_stream = batches(True)
    cached = [{k: v.numpy() for k, v in next(cached_stream).items()}]
    for record in index.records:  # every image is decoded once the shuffle buffer is full
        os.remove(record["path"])
    cached += [{k: v.numpy() for k, v in b.items()} for b, _ in zip(cached_stream, range(8))]
    for a, b in zip(plain, cached):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    epochs = [np.concatenate([b["image_info"][:, 3] for b in cached[i:i + 3]]) for i in (0, 3, 6)]
    assert all(sorted(e) == list(range(100, 106)) for e in epochs)
    assert not np.array_equal(epochs[0], epochs[1]) or not np.array_equal(epochs[1], epochs[2])
    boxes = {}  # each image's first box per epoch: some image is flipped in one epoch only
    for b in cached:
        for image_id, box in zip(b["image_info"][:, 3], b["gt_boxes"][:, 0]):
            boxes.setdefault(int(image_id), set()).add(tuple(np.round(box, 3)))
    assert any(len(v) == 2 for v in boxes.values())


def test_to_accelerator_on_a_cpu_only_machine_is_the_dataset_itself():
    from internet_tf.data.pipeline import to_accelerator

    assert not tf.config.list_logical_devices("GPU")
    ds = tf.data.Dataset.range(3).prefetch(tf.data.AUTOTUNE)
    assert to_accelerator(ds) is ds
