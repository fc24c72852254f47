"""Tests for internet_tf/data/file_end.py: a file cut short is told from a complete one."""
import io

import numpy as np
import pytest
from PIL import Image

from internet_tf.data.file_end import is_complete


def _encoded(fmt, **options):
    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **options)
    return out.getvalue()


def _with_thumbnail(jpeg):
    """``jpeg`` with an APP1 segment that holds a whole small JPEG, as a camera's EXIF
    thumbnail does: its end marker lies before the main image's scan."""
    thumbnail = _encoded("JPEG", quality=20)
    payload = b"Exif\x00\x00" + thumbnail
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


@pytest.mark.parametrize("fmt, options", [
    ("JPEG", {}), ("JPEG", {"progressive": True}), ("JPEG", {"thumbnail": True}),
    ("PNG", {}), ("WEBP", {})])
def test_complete_files_pass_and_every_cut_fails(tmp_path, fmt, options):
    if options.pop("thumbnail", False):
        data = _with_thumbnail(_encoded(fmt))
        assert Image.open(io.BytesIO(data)).size == (64, 48)
    else:
        data = _encoded(fmt, **options)
    path = tmp_path / "image"
    path.write_bytes(data)
    assert is_complete(str(path), fmt)
    path.write_bytes(data + b"trailer appended by a camera" * 10)
    assert is_complete(str(path), fmt)
    for keep in (0.3, 0.6, 0.9, (len(data) - 1) / len(data)):
        path.write_bytes(data[: int(len(data) * keep)])
        assert not is_complete(str(path), fmt), keep


def test_jpeg_end_is_found_across_blocks(tmp_path, monkeypatch):
    from internet_tf.data import file_end

    monkeypatch.setattr(file_end, "_BLOCK", 7)  # the marker straddles a block boundary somewhere
    data = _encoded("JPEG")
    for tail in range(0, 8):
        path = tmp_path / f"{tail}.jpg"
        path.write_bytes(data + b"\x00" * tail)
        assert is_complete(str(path), "JPEG")
    path.write_bytes(data[:-1])
    assert not is_complete(str(path), "JPEG")


def test_formats_without_a_check_count_as_complete(tmp_path):
    path = tmp_path / "a.gif"
    path.write_bytes(b"GIF89a")
    assert is_complete(str(path), "GIF")
