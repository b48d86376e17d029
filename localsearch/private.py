"""The data directory holds every page read and every question asked: it is the user's alone."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_directory", "private_umask"]


def private_directory(path: str | os.PathLike) -> Path:
    """Create ``path`` (mode 0700) before anything is written in it, and tighten an existing
    one that others could read."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_umask() -> None:
    """Make every file this process creates from now on readable by its user only (0600, and
    0700 for folders), whichever library creates it (chroma's database files included)."""
    os.umask(os.umask(0o077) | 0o077)
