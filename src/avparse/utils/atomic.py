"""Atomic writes: a file is either the old one or the complete new one, never half written.

Every long job writes through these helpers (temp file in the same folder, fsync, rename), so an
interrupted run leaves nothing that a resumed run could mistake for finished work. Files get the
permissions a plain ``open()`` would give them: a new file's follow the umask (the temporary file
is created with mode 0o666 and the umask applied by the system, unlike ``mkstemp``'s 0o600), a
replaced file keeps its mode; folders are created with ``mkdir``'s umask-respecting default.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from avparse.errors import AvparseError


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    ``suffix`` keeps an extension that a writer insists on (``np.save`` adds ``.npy``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = _new_temp(path, suffix)
    except OSError as exc:
        raise _no_space(exc, path) from None
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except Exception as exc:
        # numpy says "7680 requested and 3040 written", torch "file write failed": on a full
        # file system every writer's error becomes one ``PATH: no space left on device``
        if _is_no_space(exc, path.parent):
            raise OSError(errno.ENOSPC, NO_SPACE, str(path)) from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


NO_SPACE = "no space left on device"
FULL_BYTES = 1 << 20
"""Free space below which a writer's failure is taken for a full file system."""


def _is_no_space(exc: BaseException, folder: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, OSError) and exc.errno not in (None, errno.EIO):
        return False  # a permission, a missing folder, ...: its own reason
    if type(exc).__module__.startswith("avparse"):
        return False  # our own errors and control flow say what they mean
    try:
        return shutil.disk_usage(folder).free < FULL_BYTES
    except OSError:
        return False


def _no_space(exc: OSError, path: Path) -> OSError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OSError(errno.ENOSPC, NO_SPACE, str(path))
    return exc


def _new_temp(path: Path, suffix: str) -> Path:
    """Create an empty, uniquely named file beside ``path`` with the mode ``open()`` would give."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)  # open() on an existing file keeps its mode
    except OSError:
        mode = None
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        except FileExistsError:
            continue
        try:
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return tmp
    raise FileExistsError(f"{path.parent}: cannot create a temporary file for {path.name}")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> None:
    write_text(path, json.dumps(data, indent=indent, sort_keys=False) + "\n")


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` that never leaves a truncated ``.npy`` behind."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def prepare_output_folder(folder: Path) -> None:
    """Say in one line why ``folder`` cannot hold the outputs, before any work.

    Nothing is created here: a command that then fails on its input leaves no empty folder
    behind; the atomic writers create the folder with the first file.
    """
    if folder.exists() and not folder.is_dir():
        raise AvparseError(f"{folder}: output folder is an existing file (--out)")
    existing = folder
    while not existing.exists():  # the nearest folder that exists must let us create the rest
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing != folder and not existing.is_dir():
        raise AvparseError(
            f"{folder}: cannot create the output folder ({existing} is not a folder)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AvparseError(
            f"{folder}: output folder is not writable"
            if existing == folder
            else f"{folder}: cannot create the output folder ({existing} is not writable)"
        )


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` (one line of text, no newline) to ``path`` in one ``write`` on an
    ``O_APPEND`` descriptor: processes appending to the same file (torchrun ranks) never
    interleave within a line on a local file system, and an interrupted append leaves at most
    one torn last line, which readers skip."""
    data = (line.replace("\n", " ") + "\n").encode("utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        try:
            written = os.write(fd, data)
        except OSError as exc:
            raise _no_space(exc, path) from None
        if written != len(data):  # a full disk: the line is torn, say so rather than go on
            raise OSError(errno.ENOSPC, NO_SPACE, str(path))
    finally:
        os.close(fd)
