"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, write) -> None:
    """Call ``write(temporary_path)``, then rename the result to ``path``."""
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(temporary)
    os.replace(temporary, path)
