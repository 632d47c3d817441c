"""Files only their owner can read: identity stores, keys, models and exports that identify people.

Every helper sets the mode itself (600 for files, 700 for folders) with `os.open` flags and
`os.chmod`/`os.fchmod`, so the result does not depend on the process's umask. Existing files are
tightened before anything is written into them.

- `private_dir(path)`: a folder, created if missing, mode 700;
- `write_private(path, data)`: a whole file written at once (atomically: a private temporary file
  beside it, then renamed over it), mode 600; its folder, if created here, 700;
- `open_private(path)`: a file opened for writing (truncated), mode 600 before the first byte;
- `touch_private(path)`: a file created empty (or an existing one left as it is) with mode 600, for
  code that opens the file itself afterwards;
- `make_private(*paths)`: existing files 600 and folders 700 (those missing are skipped);
- `owner_only_umask()`: from now on, files this process creates (including those created by
  libraries such as DuckDB, which cannot be given a mode) are the owner's only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def private_dir(path: Path, tighten: bool = True) -> Path:
    """`path` as a folder of mode 700: created if missing (its missing parents with the usual mode);
    an existing folder is tightened to 700 unless `tighten` is False."""
    path = Path(path)
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, DIR_MODE)
        os.chmod(path, DIR_MODE)
    elif tighten:
        os.chmod(path, DIR_MODE)
    return path


def _parent(path: Path) -> None:
    """The file's folder: created 700 if missing, an existing one left as it is."""
    if not path.parent.is_dir():
        private_dir(path.parent)


def write_private(path: Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write `data` to `path` with mode 600, replacing any file there (atomically, so a reader sees
    the old file or the new one, and a symlink at `path` is replaced rather than followed)."""
    path = Path(path)
    _parent(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def open_private(path: Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None) -> IO:
    """`path` opened for writing ("w" or "wb"), truncated, with mode 600 set before anything is
    written (an existing file is tightened too); its folder, if created here, 700."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_private writes only ('w' or 'wb'), not {mode!r}")
    path = Path(path)
    _parent(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    if mode == "wb":
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding=encoding, newline=newline)


def touch_private(path: Path) -> bool:
    """Create `path` empty with mode 600, or tighten an existing file to 600 without changing its
    contents; its folder, if created here, 700. True if the file was created here."""
    path = Path(path)
    _parent(path)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | _NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return created


@contextlib.contextmanager
def private_output(path: Path) -> Iterator[Path]:
    """For a writer that opens `path` itself: the file exists with mode 600 before the writer runs
    (so not one byte is written to a file others can read); if the writer fails, a file created
    here is removed again."""
    path = Path(path)
    created = touch_private(path)
    try:
        yield path
    except BaseException:
        if created:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise


def make_private(*paths: Path) -> None:
    """Existing files to mode 600 and folders to 700; paths that do not exist are skipped."""
    for p in paths:
        try:
            st = os.stat(p, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            os.chmod(p, DIR_MODE)
        elif stat.S_ISREG(st.st_mode):
            os.chmod(p, FILE_MODE)


def owner_only_umask() -> int:
    """Add 077 to the process's umask (group and others get no access to files created from now
    on, by this code or by libraries); returns the previous umask."""
    old = os.umask(0o077)
    os.umask(old | 0o077)
    return old


def mode(path: Path) -> int:
    """The permission bits of `path` (e.g. 0o600)."""
    return stat.S_IMODE(os.stat(path).st_mode)
