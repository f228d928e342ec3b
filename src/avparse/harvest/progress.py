"""Temporary: progress lines until avparse.utils.progress lands."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(
    iterable: Iterable[T],
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
) -> Iterator[T]:
    from tqdm import tqdm

    yield from tqdm(
        iterable, desc=desc, total=total, unit=unit, disable=not (enabled and sys.stderr.isatty())
    )
