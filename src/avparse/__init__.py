"""avparse: weakly-supervised audio-visual video parsing with modality-independent teachers.

The package imports with numpy alone; torch, transformers and PyAV load only when the stage that
needs them runs, so ``avparse score`` and ``--help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"
"""The one home of the version (pyproject.toml reads it; CHANGELOG.md has its section)."""

__all__ = ["__version__", "iter_parse", "parse", "parse_many"]

if TYPE_CHECKING:  # pragma: no cover
    from avparse.parsing.api import parse
    from avparse.parsing.batch import iter_parse, parse_many


def __getattr__(name: str) -> Any:
    if name == "parse":
        from avparse.parsing.api import parse

        return parse
    if name in ("parse_many", "iter_parse"):
        from avparse.parsing import batch

        return getattr(batch, name)
    raise AttributeError(f"module 'avparse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
