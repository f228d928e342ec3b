"""Reading JSON settings files and building config dataclasses, with one-line errors."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from avparse.errors import AvparseError

T = TypeVar("T")


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; a missing, unreadable or non-object file is one line.

    ``what`` names the file's role in the message ("model config", "thresholds file").
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AvparseError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AvparseError(f"{path}: not a readable JSON {what} ({exc})") from None
    if not isinstance(data, dict):
        raise AvparseError(f"{path}: {what} must be a JSON object")
    return data


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
