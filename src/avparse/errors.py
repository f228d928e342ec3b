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


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``exc``'s message, or its type name when the message is empty.

    Library errors (torch, FFmpeg, pickle) often span many lines; a user sees one. An
    ``OSError`` or PyAV ``FFmpegError`` loses its ``[Errno N]`` prefix. Never raises, even
    for an exception whose ``__str__`` fails.
    """
    try:
        text = str(exc)
        strerror = getattr(exc, "strerror", None)  # OSError and PyAV's FFmpegError
        if isinstance(strerror, str) and strerror.strip():  # no "[Errno 1094995529]" for a user
            text = strerror
            filename = getattr(exc, "filename", None)
            if filename is not None:
                text += f": {filename!r}"
    except Exception:  # a broken __str__ must not hide the original error
        text = ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def torch_load_reason(exc: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in words that never advise
    unpickling it (torch's own message suggests ``weights_only=False``)."""
    import pickle

    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text or "Weights only" in text:
        return (
            "torch.load with weights_only=True cannot read it: another kind of file, or a "
            "pickle holding code, which avparse never loads"
        )
    return first_line(exc)


def unreadable_state(exc: BaseException) -> str:
    """``not a state dict (...)`` or ``cannot read checkpoint (...)`` for a refused load."""
    reason = torch_load_reason(exc)
    if reason != first_line(exc):
        return f"not a state dict ({reason})"
    return f"cannot read checkpoint ({reason})"
