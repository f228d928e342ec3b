"""Reading JSON settings files and building config dataclasses, with one-line errors."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
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
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            default = f.default if f.default is not MISSING else MISSING
            if default is MISSING and f.default_factory is not MISSING:
                default = f.default_factory()
            expected = _expected(default)
            if expected is not None and not _fits(data[f.name], default):
                value = data[f.name]
                raise AvparseError(
                    f"{where}: {what} key {f.name!r} is {value!r} ({_TYPE_NAMES.get(type(value), type(value).__name__)}); "
                    f"expected {expected}"
                )
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise AvparseError(f"{where}: malformed {what} ({exc})") from None


_TYPE_NAMES = {bool: "true/false", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "an object", type(None): "null"}  # fmt: skip


def _expected(default: Any) -> str | None:
    """What a field of this default takes, in words; None when any value is left to the class."""
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, list | tuple):
        return "a list"
    if isinstance(default, dict):
        return "an object"
    return None


def _fits(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list | tuple):
        return isinstance(value, list | tuple)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return True
