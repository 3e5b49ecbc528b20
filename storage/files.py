"""Files that hold the institutions' data are the operator's alone: 0600, folders 0700.

Modes are set explicitly, never left to the umask (``deploy/zicha-admin`` and container
runtimes set none, so 022 would make every file world-readable). SQLite gives its
``-wal`` and ``-shm`` files the mode of the database file, so a private database keeps
them private too.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_file(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist; tighten it (and a
    database's ``-wal``/``-shm``/``-journal`` beside it) to 0600 if it does."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))):
        tighten(candidate, FILE_MODE)


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create the folder ``path`` (and missing parents) with mode 0700; tighten it if it exists."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tighten(path, DIR_MODE)
    return path


def tighten(path: Path, mode: int) -> None:
    """Remove every permission beyond ``mode``; a file of another user is left alone."""
    try:
        current = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return
    if path.is_symlink() or current & ~mode == 0:
        return
    # PermissionError: not ours to change (e.g. a read-only mount); SQLite's own checks still apply
    with contextlib.suppress(PermissionError):
        os.chmod(path, current & mode)
