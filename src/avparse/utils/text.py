"""Words in the lines commands print."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 clip"``, ``"0 clips"``, ``"2 clips"``: a number and its noun, singular for one
    (``plural`` where adding ``s`` is wrong)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
