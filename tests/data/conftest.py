"""Shared fixtures for the data-package tests: tiny hand-made COCO datasets."""
import json

import numpy as np
import pytest
from PIL import Image


def write_image(path, width, height, mode="RGB", fmt=None, seed=0):
    """Writes a random image of the given size and PIL mode; returns its path."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format=fmt)
    return str(path)


@pytest.fixture
def make_dataset(tmp_path):
    """Factory: ``make_dataset(images, annotations, categories=None)`` -> (json, dir).

    ``images`` is a list of dicts ``{id, width, height, [mode], [file], [write]}``; an
    image file is written unless ``write`` is False (``file`` defaults to ``<id>.png``).
    """
    counter = [0]

    def make(images, annotations, categories=None):
        counter[0] += 1
        image_dir = tmp_path / f"images{counter[0]}"
        image_dir.mkdir()
        records = []
        for img in images:
            file_name = img.get("file", f"{img['id']}.png")
            if img.get("write", True):
                write_image(image_dir / file_name, img["width"], img["height"],
                            img.get("mode", "RGB"), img.get("fmt"), seed=img["id"])
            records.append({"id": img["id"], "file_name": file_name,
                            "width": img["width"], "height": img["height"]})
        anns = [dict(a, id=i + 1) for i, a in enumerate(annotations)]
        cats = categories if categories is not None else [{"id": 1, "name": "thing"}]
        path = tmp_path / f"ann{counter[0]}.json"
        path.write_text(json.dumps({"images": records, "annotations": anns,
                                    "categories": cats}))
        return str(path), str(image_dir)

    return make


@pytest.fixture(name="write_image")
def write_image_fixture():
    """The ``write_image(path, width, height, mode='RGB', fmt=None, seed=0)`` helper."""
    return write_image
