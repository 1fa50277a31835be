"""Output files are checked before any work and written whole or not at all."""

import os
import tempfile

import pytest
import torch

from sparsitylib.files import OutputPathError, check_output_file, save_atomically, write_atomically


def test_an_output_path_is_checked_before_any_work(tmp_path, monkeypatch):
    assert check_output_file(tmp_path / "pruned.pt") == tmp_path / "pruned.pt"
    with pytest.raises(OutputPathError, match="is a folder: give a file name"):
        check_output_file(tmp_path, "--prune")
    with pytest.raises(OutputPathError, match=r"--save .*: the folder .*missing does not exist; create it first"):
        check_output_file(tmp_path / "missing" / "pruned.pt", "--save")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.geteuid() != 0:  # root writes into a read-only folder anyway; below, a read-only file system for it
        with pytest.raises(OutputPathError, match="cannot write in the folder .*read-only"):
            check_output_file(read_only / "pruned.pt")

    def read_only_file_system(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only_file_system)
    with pytest.raises(OutputPathError, match=r"cannot write in the folder .*read-only \(Read-only file system\); "
                                              "choose a folder you can write to"):
        check_output_file(read_only / "pruned.pt")
    assert list(read_only.iterdir()) == []


def test_a_full_disk_leaves_no_half_written_file(tmp_path, monkeypatch):
    target = tmp_path / "pruned.pt"
    target.write_bytes(b"the previous file")

    def disk_full(obj, path):
        with open(path, "wb") as handle:
            handle.write(b"half a zip")
        raise RuntimeError("[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OutputPathError, match=r"could not write the output file .*pruned.pt .*Nothing was written"):
        save_atomically({"x": torch.zeros(2)}, target)
    assert target.read_bytes() == b"the previous file" and sorted(p.name for p in tmp_path.iterdir()) == ["pruned.pt"]
    with pytest.raises(ZeroDivisionError):  # any failure, not only a full disk, removes the temporary file
        write_atomically(tmp_path / "other.txt", lambda temporary: (temporary.write_text("half"), 1 / 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pruned.pt"]
