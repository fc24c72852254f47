"""Tests for internet_tf/data/datasets.py's VOC routes: ``data.dataset: voc`` (roots, splits,
classes, difficult) and the embedded data written as VOC, which must give the COCO route's
boxes and labels; the advice when most objects have an unknown class."""
import json
import os

import numpy as np
import pytest
import tiny
from PIL import Image
from voc_files import write_root, xml

from internet_tf.data.coco import CocoIndex, DatasetError
from internet_tf.data.datasets import load_datasets


def test_embedded_as_voc_gives_the_coco_routes_boxes(tmp_path):
    root = str(tmp_path / "embedded")
    coco = load_datasets(tiny.config(f"data.embedded.root={root}"))
    voc = load_datasets(tiny.config(f"data.embedded.root={root}", "data.embedded.format=voc"))
    assert (coco.kind, voc.kind) == ("coco", "voc")
    assert voc.class_names == coco.class_names and voc.num_classes == 4
    for split in ("train", "val"):
        coco_index, voc_index = getattr(coco, split), getattr(voc, split)
        by_stem = {os.path.splitext(os.path.basename(r["path"]))[0]: r for r in coco_index.records}
        assert len(voc_index.records) == len(coco_index.records) > 0 and not voc_index.skips
        for record in voc_index.records:
            # The VOC id travels with the evaluation ground truth (a training index keeps none).
            voc_id = (voc_index.coco.imgs[record["image_id"]]["voc_id"] if split == "val"
                      else os.path.splitext(os.path.basename(record["path"]))[0])
            assert voc_id.startswith(f"{split}_") and record["path"].endswith(f"/{voc_id}.jpg")
            same = by_stem[voc_id[len(split) + 1:]]
            assert (record["height"], record["width"]) == (same["height"], same["width"])
            np.testing.assert_array_equal(record["boxes"], same["boxes"])
            np.testing.assert_array_equal(record["classes"], same["classes"])
    # A second load reuses the VOC copy.
    stamp = os.path.join(root, "voc", "Annotations", "train_000000.xml")
    before = os.stat(stamp).st_mtime_ns
    load_datasets(tiny.config(f"data.embedded.root={root}", "data.embedded.format=voc"), train=False)
    assert os.stat(stamp).st_mtime_ns == before


def test_voc_dataset_roots_splits_classes_and_difficult(tmp_path):
    r07 = write_root(tmp_path / "VOC2007", {"trainval": ["1", "2"], "test": ["3"]}, {
        "1": xml(objects=[("horse", 1, 1, 20, 20), ("cat", 5, 5, 9, 9, 1)]),
        "2": xml(objects=[("cat", 2, 2, 30, 20)]),
        "3": xml(objects=[("cat", 2, 2, 30, 20, 1), ("horse", 1, 1, 9, 9), ("emu", 1, 1, 4, 4)])})
    r12 = write_root(tmp_path / "VOC2012", {"trainval": ["2008_1"]},
                     {"2008_1": xml(objects=[("dog", 1, 1, 5, 5)])}, seed=1)
    settings = ["data.dataset=voc", f"data.voc.roots={json.dumps([r07, r12])}"]
    bundle = load_datasets(tiny.config(*settings, "data.voc.classes=found"))
    assert bundle.kind == "voc" and bundle.class_names == ["background", "cat", "dog", "horse"]
    assert len(bundle.train) == 3 and dict(bundle.train.skips) == {"difficult_object": 1}
    assert len(bundle.val) == 1 and dict(bundle.val.skips) == {"unknown_category": 1}  # emu
    gt = bundle.val.coco.loadAnns(bundle.val.coco.getAnnIds())
    assert sorted((a["category_id"], a["difficult"]) for a in gt) == [(1, 1), (3, 0)]
    # Evaluation alone finds the training split's classes too.
    val_only = load_datasets(tiny.config(*settings, "data.voc.classes=found"), train=False)
    assert val_only.train is None and val_only.class_names == bundle.class_names
    with_difficult = load_datasets(tiny.config(*settings, "data.voc.use_difficult=true"), val=False)
    assert with_difficult.num_classes == 20 and not with_difficult.train.skips
    assert sum(len(r["classes"]) for r in with_difficult.train.records) == 4


def test_mostly_unknown_classes_name_the_likely_fix(tmp_path):
    # A VOC-format dataset of one's own: its class names are not PASCAL's 20.
    root = write_root(tmp_path / "own", {"train": ["1", "2"], "val": ["3"]}, {
        "1": xml(objects=[("widget", 1, 1, 20, 20), ("gadget", 2, 2, 9, 9)]),
        "2": xml(objects=[("widget", 2, 2, 30, 20)]),
        "3": xml(objects=[("gadget", 1, 1, 9, 9)])})
    settings = ["data.dataset=voc", f"data.voc.roots={json.dumps([root])}",
                "data.voc.train_split=train", "data.voc.val_split=val"]
    with pytest.raises(DatasetError, match=r"unknown category\).*Most objects have an unknown class: "
                       r"the classes are PASCAL's 20.*set data\.voc\.classes: found"):
        load_datasets(tiny.config(*settings))
    bundle = load_datasets(tiny.config(*settings, "data.voc.classes=found"))
    assert bundle.class_names == ["background", "gadget", "widget"] and not bundle.train.skips
    # The COCO route names the category list and the ids the objects use.
    ann = tmp_path / "coco.json"
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "imgs" / "a.png")
    ann.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": [{"id": i, "image_id": 1, "category_id": c, "bbox": [1, 1, 9, 9]}
                        for i, c in enumerate([7, 8, 1], 1)],
        "categories": [{"id": 1, "name": "thing"}]}))
    index = CocoIndex.from_files(str(ann), str(tmp_path / "imgs"), training=True)
    assert dict(index.skips) == {"unknown_category": 2}
    assert ("Most objects have a category_id that the 'categories' list of" in index.report()
            and "(it lists 1; the objects use 7, 8)" in index.report())


def test_embedded_options_reach_the_generator(tmp_path):
    root = str(tmp_path / "blurred")
    load_datasets(tiny.config(f"data.embedded.root={root}", "data.embedded.colours=random",
                              "data.embedded.small_blur=1.5"), train=False)
    with open(os.path.join(root, "val.json")) as f:
        params = json.load(f)["info"]["generator_params"]
    assert (params["colours"], params["small_blur"]) == ("random", 1.5)
