"""Errors that the CLI turns into one line and a non-zero exit, without a traceback."""

from __future__ import annotations


class AvparseError(Exception):
    """A problem with the user's input or environment, described in one line.

    The message names the offending file (and line or key where there is one) and what is wrong.
    """


class MissingExtraError(AvparseError):
    """An optional dependency is not installed; the message says which ``pip install`` fixes it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this needs the Python package {module!r}: pip install 'avparse[{extra}]'"
        )


def require(module: str, extra: str):
    """Import an optional dependency or raise :class:`MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(module, extra) from None
