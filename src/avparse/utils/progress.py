"""Progress for long jobs: a bar on a terminal, plain lines in pipes and log files.

A ``tqdm`` bar redraws itself with ``\\r``, which turns a log file or a pipe into one long line of
frames. So the bar is shown only when stderr is a terminal; otherwise each step may print one
plain line (``desc: 12/40 video``), at most one every few seconds plus the last, so a log stays
readable. ``--no-progress`` turns both off and ``--quiet`` also drops the per-item lines a
command prints (see :func:`add_progress_flags`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

LINE_INTERVAL_S = 5.0
"""Least seconds between two plain progress lines (the first and the last always print)."""


def add_progress_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-progress`` and ``--quiet`` (the latter implies the former) to a subcommand."""
    group = parser.add_argument_group("output")
    group.add_argument(
        "--no-progress", action="store_true", help="no progress bar or progress lines"
    )
    group.add_argument(
        "--quiet", action="store_true", help="print only warnings, errors and the final result"
    )


def progress_enabled(args: argparse.Namespace) -> bool:
    """Whether a command given :func:`add_progress_flags` should show progress."""
    return not (getattr(args, "no_progress", False) or getattr(args, "quiet", False))


def progress(
    iterable: Iterable[T],
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
) -> Iterator[T]:
    """Yield ``iterable``'s items while showing progress on stderr (see the module docstring)."""
    if not enabled:
        yield from iterable
        return
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    if _is_tty(sys.stderr):
        from tqdm import tqdm

        yield from tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr)
        return
    yield from _lines(iterable, desc, total, unit)


def _is_tty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def _lines(iterable: Iterable[T], desc: str, total: int | None, unit: str) -> Iterator[T]:
    start = last = time.monotonic()
    done = printed = 0
    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if done == 1 or done == total or now - last >= LINE_INTERVAL_S:
            last, printed = now, done
            _line(desc, done, total, unit, now - start)
    if done and printed != done:  # an iterable of unknown length: say where it ended
        _line(desc, done, total, unit, time.monotonic() - start)


def _line(desc: str, done: int, total: int | None, unit: str, seconds: float) -> None:
    of = f"/{total}" if total is not None else ""
    rate = done / seconds if seconds > 0 else 0.0
    speed = f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"
    print(f"{desc}: {done}{of} {unit} ({speed} {unit}/s)", file=sys.stderr, flush=True)
