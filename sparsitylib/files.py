"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputPathError(ValueError):
    """An output file cannot be written where asked (a folder, a missing or read-only folder, a full
    disk); the message names the path and what to do. Nothing was written."""


def is_write_failure(error: BaseException) -> bool:
    """torch.save reports a failed write (a full disk, a read-only folder) as a RuntimeError from its
    zip writer."""
    text = str(error)
    return isinstance(error, OSError) or (isinstance(error, RuntimeError) and (
        "inline_container" in text or "file write failed" in text or "PytorchStreamWriter" in text))


def write_atomically(path: Path, write) -> None:
    """Call ``write(temporary_path)``, then rename the result to ``path``. If ``write`` fails (a
    full disk), the temporary file is removed and ``path`` is left as it was."""
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def check_output_file(path, option: str = "the output file") -> Path:
    """``path`` as a Path, if a file can be written there; else ``OutputPathError`` saying why.
    Called before any work, so a bad path costs nothing (``option`` names it in the message, e.g.
    ``"--prune"``)."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder: give a file name, e.g. {path / 'pruned.pt'}")
    folder = path.parent
    if not folder.is_dir():
        raise OutputPathError(f"{option} {path}: the folder {folder} does not exist; create it first "
                              f"(mkdir -p {folder}) or choose another path")
    try:  # a probe, not os.access: it also catches read-only file systems, and root ignores permission bits
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputPathError(f"{option} {path}: cannot write in the folder {folder} ({error.strerror or error}); "
                              "choose a folder you can write to") from error
    return path


def save_atomically(obj, path, option: str = "the output file") -> None:
    """``torch.save(obj, path)`` through a temporary file in the same folder: a failed write (a full
    disk) leaves no file, not half of one, and raises ``OutputPathError``."""
    import torch

    path = Path(path)
    try:
        write_atomically(path, lambda temporary: torch.save(obj, temporary))
    except (OSError, RuntimeError) as error:
        if not is_write_failure(error):
            raise
        raise OutputPathError(f"could not write {option} {path} ({error}); free space or choose another folder. "
                              "Nothing was written") from error
