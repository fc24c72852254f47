"""Atomic file writes: the one way this library writes a file that others read:
nothing already written is lost or corrupted by a failure."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def _replacing(path: str):
    """Yields a uniquely named temporary file in ``path``'s folder (created, empty) for the
    block to fill; renames it to ``path`` when the block ends, removes it if the block fails.
    Concurrent writers of different paths never share a temporary name."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_atomic(path: str, data, fsync: bool = True) -> str:
    """Writes ``data`` (str or bytes) to ``path`` through a temporary file in the same folder
    and ``os.replace``: readers see the old file or the whole new one, never a part. ``fsync``
    also flushes the data to disk before the rename. The file gets the usual permissions
    (0666 less the umask), not ``mkstemp``'s private 0600. Returns ``path``."""
    with _replacing(path) as tmp:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
    return path


def place_atomic(source: str, path: str) -> str:
    """Puts the file ``source`` at ``path`` as ``write_atomic`` writes: a hard link (no bytes
    copied) when the file system allows one, else a copy, made under a temporary name and
    renamed into place. Returns ``"linked"`` or ``"copied"``."""
    with _replacing(path) as tmp:
        os.remove(tmp)  # os.link needs a free name; the block's file only reserved a unique one
        try:
            os.link(source, tmp)
            how = "linked"
        except OSError:
            shutil.copyfile(source, tmp)
            how = "copied"
    return how


def _read_umask() -> int:
    """The process umask (read by setting and restoring it; os has no getter). Read once, at
    import: setting it is process-wide, so doing it per write would race with the embedded
    dataset's writer threads."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_json_atomic(path: str, obj, indent=None) -> str:
    """``write_atomic`` of ``obj`` as strict JSON (NaN/Inf raise ValueError before anything
    is written)."""
    return write_atomic(path, json.dumps(obj, indent=indent, allow_nan=False))
