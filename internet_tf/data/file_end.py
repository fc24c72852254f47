"""Whether an image file is complete: it reaches the end its format marks (system code).

A file cut short (an interrupted copy or download) still has a readable header, so the index's
default header check (``data.verify_images: header``) would keep it and the decoder in the
``tf.data`` pipeline would fail on it later. These checks read a few bytes more than the
header instead of decoding the pixels:

JPEG (and MPO)
  the end-of-image marker ``FF D9`` lies after the first start-of-scan marker. Entropy-coded
  scan data never holds ``FF D9`` (a ``FF`` there is followed by ``00`` or a restart marker),
  so a file cut inside a scan has none; the search runs backwards from the end, so a complete
  file answers from its last block, and bytes appended after the image (camera trailers,
  a phone's motion-photo video) are allowed.
PNG
  the chunks, walked by their length fields, reach a whole ``IEND`` chunk within the file.
WEBP
  the file holds the bytes its RIFF header declares.

Other formats are not checked here (``data.verify_images: full`` decodes every file).
"""
from __future__ import annotations

import os
import struct

_BLOCK = 64 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_EOI = b"\xff\xd9"
_JPEG_SOS = 0xDA
# Markers without a length field: TEM, RST0-7, SOI, EOI.
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8), 0xD8, 0xD9}


def is_complete(path: str, fmt: str) -> bool:
    """False when the file at ``path``, of PIL format ``fmt``, ends before its format's end
    (see the module docstring); True when complete or when ``fmt`` is not checked."""
    check = _CHECKS.get(fmt)
    if check is None:
        return True
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        return check(f, size)


def _jpeg_scan_start(f, size: int) -> int | None:
    """The offset of the first start-of-scan marker, walking the segments from the start."""
    pos = 2  # after SOI
    while pos + 4 <= size:
        f.seek(pos)
        head = f.read(4)
        if len(head) < 2 or head[0] != 0xFF:
            return None
        marker = head[1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _JPEG_SOS:
            return pos
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if len(head) < 4:
            return None
        pos += 2 + struct.unpack(">H", head[2:4])[0]
    return None


def _jpeg_complete(f, size: int) -> bool:
    start = _jpeg_scan_start(f, size)
    if start is None:
        return False
    end = size
    while end > start:
        # Blocks overlap by one byte so a marker split across two blocks is found.
        begin = max(start, end - _BLOCK)
        f.seek(begin)
        if _JPEG_EOI in f.read(end - begin):
            return True
        end = begin + 1 if begin > start else start
    return False


def _png_complete(f, size: int) -> bool:
    f.seek(0)
    if f.read(8) != _PNG_SIGNATURE:
        return False
    pos = 8
    while pos + 12 <= size:  # length, type, data, CRC
        f.seek(pos)
        length, kind = struct.unpack(">I4s", f.read(8))
        pos += 12 + length
        if kind == b"IEND":
            return pos <= size
    return False


def _webp_complete(f, size: int) -> bool:
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF":
        return False
    return 8 + struct.unpack("<I", head[4:8])[0] <= size


_CHECKS = {"JPEG": _jpeg_complete, "MPO": _jpeg_complete, "PNG": _png_complete,
           "WEBP": _webp_complete}
