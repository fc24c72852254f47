"""internet_tf.files: the one atomic write, and the atomic link-or-copy of a file."""
import json
import math
import os

import pytest

from internet_tf.files import place_atomic, write_atomic, write_json_atomic


def test_write_atomic_text_and_bytes_replace_the_whole_file(tmp_path):
    path = str(tmp_path / "a.txt")
    assert write_atomic(path, "first") == path
    write_atomic(path, b"\x00second", fsync=False)
    with open(path, "rb") as f:
        assert f.read() == b"\x00second"
    assert os.listdir(tmp_path) == ["a.txt"]  # no temporary file left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "m.json")
    write_json_atomic(path, {"AP": 0.5}, indent=2)
    with pytest.raises(ValueError):
        write_json_atomic(path, {"AP": math.nan})  # strict JSON: refused before writing
    with pytest.raises(TypeError):
        write_atomic(path, 123)  # neither str nor bytes: fails inside the temporary file
    with open(path) as f:
        assert json.load(f) == {"AP": 0.5}
    assert os.listdir(tmp_path) == ["m.json"]


def test_written_files_get_the_umask_permissions_not_private_ones(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_atomic(str(tmp_path / "config.yaml"), "a: 1\n")
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644  # readable by others, like open(..., "w")


def test_place_atomic_links_else_copies_and_replaces_the_whole_file(tmp_path, monkeypatch):
    source, target = tmp_path / "src.jpg", tmp_path / "out" / "a.jpg"
    source.write_bytes(b"\xff\xd8 new")
    target.parent.mkdir()
    target.write_bytes(b"old")
    assert place_atomic(str(source), str(target)) == "linked"
    assert os.path.samefile(source, target) and target.read_bytes() == b"\xff\xd8 new"

    def no_link(src, dst):  # another file system
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    other = tmp_path / "out" / "b.jpg"
    assert place_atomic(str(source), str(other)) == "copied"
    assert not os.path.samefile(source, other) and other.read_bytes() == b"\xff\xd8 new"
    assert sorted(os.listdir(target.parent)) == ["a.jpg", "b.jpg"]  # no temporary left
    with pytest.raises(FileNotFoundError):
        place_atomic(str(tmp_path / "missing.jpg"), str(target))
    assert target.read_bytes() == b"\xff\xd8 new" and sorted(os.listdir(target.parent)) == ["a.jpg", "b.jpg"]
