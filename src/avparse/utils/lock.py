"""One job per folder: a run folder, a harvest root or a packed store is held by one job at a time.

:func:`hold_folder` is the one call (a context manager) every job that writes a folder uses::

    with hold_folder(out, flag="--out"):
        ...  # the job

The lock is an OS lock (``fcntl.flock``) on ``FOLDER/.avparse.lock``: the kernel drops it when
the holding process ends in any way (``kill -9`` included), so a lock is never stale. The file
holds who took it (pid, host, command, since); a second job reads it and stops at once with one
line naming the holder and what to do (:class:`FolderBusy`), or, with ``wait=True`` (the packed
store, whose second user only needs the first one's result), says so once and waits.

The ranks of one ``torchrun`` job share their job's lock: the first rank to arrive takes it, and
a rank of the same job (same ``TORCHELASTIC_RUN_ID`` and master address) finds its job there and
goes on. Locks are re-entrant within a process. The lock file is removed when the job ends, and a
folder the lock created for itself is removed again if the job wrote nothing into it. On systems
without ``fcntl`` (Windows), or file systems that refuse ``flock``, jobs run unlocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avparse.errors import AvparseError
from avparse.utils.atomic import prepare_output_folder

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".avparse.lock"
"""The lock file inside a held folder."""

SETTLE_S = 2.0
"""How long a second job waits for a just-started holder to write who it is."""


class FolderBusy(AvparseError):
    """Another job holds the folder; the message names it and what to do."""


_held: dict[str, list[Any]] = {}
"""realpath of a lock file -> [fd or None (shared with another rank), depth] in this process."""


def job_key() -> str | None:
    """What the ranks of one ``torchrun`` job have in common (None outside ``torchrun``)."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "")
    master = f"{os.environ.get('MASTER_ADDR', '')}:{os.environ.get('MASTER_PORT', '')}"
    return f"{run_id}@{master}"


def holder_info(command: str | None = None) -> dict[str, Any]:
    """Who this process is, as the lock file records it."""
    if command is None:
        command = " ".join(["avparse", *sys.argv[1:]])
    if len(command) > 160:
        command = command[:157] + "..."
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "job": job_key(),
    }


def describe_holder(info: dict[str, Any] | None) -> str:
    if not info:
        return "another job (it has not said which yet)"
    return (
        f"pid {info.get('pid', '?')} on {info.get('host', '?')}, "
        f"`{info.get('command', '?')}`, since {info.get('since', '?')}"
    )


@contextlib.contextmanager
def hold_folder(
    folder: str | Path,
    *,
    flag: str = "--out",
    wait: bool = False,
    command: str | None = None,
) -> Iterator[None]:
    """Hold ``folder`` for this job for the duration of the block (see the module docstring).

    ``flag`` names the option that chose the folder (for the hint); ``wait`` waits for another
    job's lock instead of stopping (printing one line first); ``command`` is what the lock
    file records (default: this process's command line).
    """
    folder = Path(folder)
    path = folder / LOCK_NAME
    key = os.path.realpath(path)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    created = _make_folder(folder)
    fd: int | None = None
    try:
        fd = _acquire(path, folder, flag=flag, wait=wait, command=command)
        _held[key] = [fd, 1]
        try:
            yield
        finally:
            del _held[key]
    finally:
        if fd is not None:
            if _same_file(path, fd):  # not a file another job made after ours was removed
                with contextlib.suppress(OSError):
                    path.unlink()  # before the lock goes: no one can take a file about to vanish
            os.close(fd)
        for made in created:  # deepest first; a folder the job wrote into stays
            try:
                made.rmdir()
            except OSError:
                break


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` (after the one-line checks); the folders created, deepest first."""
    if folder.is_dir():
        return []
    prepare_output_folder(folder)
    created = []
    missing = folder
    while not missing.exists():
        created.append(missing)
        if missing.parent == missing:
            break
        missing = missing.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _acquire(path: Path, folder: Path, *, flag: str, wait: bool, command: str | None) -> int | None:
    """The locked fd of ``path``; None when unlocked (no fcntl, or shared with our job)."""
    if fcntl is None:
        return None
    announced = False
    settle_until = time.monotonic() + SETTLE_S
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # the holder we waited for removed the folder it had made
            folder.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
        except OSError:  # a file system without flock: run unlocked
            os.close(fd)
            return None
        else:
            if _same_file(path, fd):
                data = json.dumps(holder_info(command)).encode()
                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, data, 0)
                except OSError:  # a full disk: held all the same, only unnamed
                    pass
                return fd
            os.close(fd)  # the holder removed this file while we took it: take the new one
            continue
        info = _read_info(path)
        mine = job_key()
        if info and mine is not None and info.get("job") == mine:
            return None  # another rank of this job holds it for all of us
        if not _trustworthy(info) and time.monotonic() < settle_until:
            time.sleep(0.05)  # a holder that has just started writes its name in a moment
            continue
        if not wait:
            raise FolderBusy(
                f"{folder}: in use by another avparse job ({describe_holder(info)}); "
                f"wait for it to finish (or stop it), or choose another {flag}"
            )
        if not announced:
            print(
                f"{folder}: in use by another avparse job ({describe_holder(info)}); waiting",
                file=sys.stderr,
                flush=True,
            )
            announced = True
        _wait_unlocked(path)


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _wait_unlocked(path: Path) -> None:
    """Block until the current holder of ``path`` lets go (then the caller tries again)."""
    assert fcntl is not None
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


def _read_info(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _trustworthy(info: dict[str, Any] | None) -> bool:
    """False for no record yet, or a record left by a dead process on this host (the new
    holder has taken the lock but not yet written its name)."""
    if not info:
        return False
    if info.get("host") != socket.gethostname():
        return True
    pid = info.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
