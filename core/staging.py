"""The hidden folders a version is assembled in before it is renamed into place.

A staging folder is named ``.tmp-<pid>-<random>`` so a later run can tell whether the
process writing it is still alive: a folder left by a killed run is removed by the next
write (or by :func:`remove_stale`), one a live run is writing never is. Folders from
another machine sharing the store cannot be checked that way; they are treated as live
until they are a day old.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

PREFIX = ".tmp-"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")
STALE_AFTER_S = 24 * 3600  # a staging folder whose writer cannot be checked counts as dead after this


def current_umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_staging(parent: Path) -> Path:
    """A fresh staging folder in ``parent``, named after this process."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))


def open_permissions(folder: Path) -> None:
    """Give ``folder`` the mode a plain ``mkdir`` would (mkdtemp makes it 0700)."""
    folder.chmod(0o777 & ~current_umask())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale(folder: Path, now: float | None = None) -> bool:
    """Whether nobody is writing ``folder`` any more."""
    match = _NAME.match(folder.name)
    if match and not _alive(int(match[1])):
        return True
    try:
        age = (now or time.time()) - folder.stat().st_mtime
    except FileNotFoundError:
        return False  # renamed into place (or removed) while we looked
    return age > STALE_AFTER_S


def remove_stale(parent: Path) -> list[Path]:
    """Remove the staging folders in ``parent`` left by runs that are gone; returns them."""
    if not parent.is_dir():
        return []
    removed = []
    for child in parent.iterdir():
        if child.name.startswith(PREFIX) and child.is_dir() and is_stale(child):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed
