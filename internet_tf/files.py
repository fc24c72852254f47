"""Atomic file writes: the one way this library writes a file that others read (SPEC §5,
"nothing already written is lost or corrupted by a failure")."""
from __future__ import annotations

import json
import os
import tempfile


def write_atomic(path: str, data, fsync: bool = True) -> str:
    """Writes ``data`` (str or bytes) to ``path`` through a uniquely named temporary file in
    the same folder and ``os.replace``: readers see the old file or the whole new one, never a
    part, and concurrent writers of different paths never share a temporary name. ``fsync``
    also flushes the data to disk before the rename. The file gets the usual permissions
    (0666 less the umask), not ``mkstemp``'s private 0600. Returns ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


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
