"""Files that hold VINs and pack codes are owner-only (0600), their folders 0700 when we make them.

SQLite gives its -wal and -shm files the mode of the database file, so creating the database
0600 before SQLite opens it covers all three. An existing file that others may read is tightened
(it was made by an older version).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) owner-only; an existing folder keeps its mode."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if missing; take group/other access away if present."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
            log.info("%s was mode %04o; now %04o (it holds pack data)", path, mode, mode & 0o700)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists() and stat.S_IMODE(side.stat().st_mode) & 0o077:
                os.chmod(side, stat.S_IMODE(side.stat().st_mode) & 0o700)
        return
    os.close(fd)


def read_private(
    path: Path, limit: int, fail: Callable[[str], Exception], *, same_owner: bool = False
) -> bytes:
    """Up to ``limit + 1`` bytes of a secret file that only its owner may read.

    The checks apply to the file opened (no symlink followed), not to whatever the path names
    later; a problem raises ``fail(<what is wrong>)``. ``same_owner`` also requires the file to
    belong to this user.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise fail("not found") from None
    except OSError as exc:
        raise fail(f"cannot open: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise fail("not a regular file")
        if st.st_mode & 0o077:
            raise fail(
                f"has mode {stat.S_IMODE(st.st_mode):04o}; it must be readable by its owner "
                f"only (chmod 600 {path})"
            )
        if same_owner and st.st_uid != os.geteuid():
            raise fail(f"owned by uid {st.st_uid}, not by this user ({os.geteuid()})")
        return os.read(fd, limit + 1)
    finally:
        os.close(fd)
