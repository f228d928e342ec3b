"""Building config dataclasses from JSON mappings, with one-line errors naming the bad key."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from avparse.errors import AvparseError

T = TypeVar("T")


def from_mapping(cls: type[T], data: dict[str, Any], where: str, what: str) -> T:
    """``cls(**data)`` that refuses unknown keys and malformed values in one line.

    ``where`` names the source (a file or "config"), ``what`` the kind of key ("model config").
    """
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise AvparseError(f"{where}: unknown {what} key {unknown[0]!r}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise AvparseError(f"{where}: malformed {what} ({exc})") from None
