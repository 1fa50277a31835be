"""How sparsitylib speaks on a terminal: a warning is one line, ``warning: <message>``, whether it
comes from the command line or from a notebook that ``reproduce`` runs (its kernel's stderr is
echoed there), without the source path and code line of Python's default format."""

from __future__ import annotations

import warnings


def plain_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def speak_plainly() -> None:
    """Format every warning of this process as ``plain_warning`` does."""
    warnings.formatwarning = plain_warning
