"""Load a transformers model by hub id or local folder, with one-line errors (offline aware).

transformers is imported here, lazily: importing it costs seconds, so nothing on the path of
``avparse --help`` or ``avparse score`` may import this module's callers at top level.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from avparse.errors import AvparseError, first_line, require
from avparse.utils.precision import PRECISIONS as _PRECISIONS
from avparse.utils.precision import check_precision, torch_dtype

__all__ = ["PRECISIONS", "cast_modules", "check_precision"]


def offline() -> bool:
    """True when the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _looks_like_path(source: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else is meant as a local folder."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source


def check_source(source: str | Path, what: str) -> str:
    """``source`` as a string, after refusing a local path that is missing or not a folder.

    Cheap (no import), so a job can check all its models before loading any of them.
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise AvparseError(f"{path}: {what} model must be a folder, not a file")
        return str(path)
    if _looks_like_path(text):
        raise AvparseError(f"{path}: {what} model folder not found")
    return text


def resolve_source(source: str | Path) -> str:
    """A model source as a harvest records it: a local folder's absolute path, else the hub id.

    Raises like :func:`check_source` for a missing local path.
    """
    text = check_source(source, "teacher")
    path = Path(text)
    return str(path.resolve()) if path.is_dir() else text


def load(kind: str, source: str | Path, what: str) -> Any:
    """``transformers.<kind>.from_pretrained(source)`` or an :class:`AvparseError` in one line.

    ``source`` is a local folder (saved with ``save_pretrained``) or a hub id such as
    ``openai/clip-vit-large-patch14``; ``what`` names the model in messages ("visual teacher").
    """
    transformers = require("transformers", "teachers")
    text = check_source(source, what)
    path = Path(text)
    cls = getattr(transformers, kind)
    transformers.utils.logging.disable_progress_bar()
    try:
        return cls.from_pretrained(text)
    except (OSError, ValueError, KeyError) as exc:
        if not path.exists() and offline():
            raise AvparseError(
                f"{what} model {text!r} is not in the local Hugging Face cache and offline mode "
                "is on (HF_HUB_OFFLINE): download it once with network access or pass a local folder"
            ) from None
        raise AvparseError(f"cannot load {what} model {text!r}: {first_line(exc)}") from None


def pick_device(device: str | None) -> str:
    """``cuda`` when asked for and available (``cpu`` otherwise asked for); one line if not.

    Accepts ``cpu``, ``cuda``, ``cuda:N`` and ``mps``; anything else (``tpu``, ``cuda:x``) and a
    device that is not there are refused in one line.
    """
    torch = require("torch", "teachers")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise AvparseError(f"--device {device}: expected cpu, cuda, cuda:N or mps")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise AvparseError(f"--device {device}: no CUDA device is available")
        if index and int(index) >= torch.cuda.device_count():
            raise AvparseError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA devices are present"
            )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise AvparseError(f"--device {device}: no MPS device is available")
    return device


PRECISIONS = _PRECISIONS
"""Arithmetic of the teachers' and R(2+1)D-18's forward passes; the first is the default.

``bfloat16`` keeps the weights of the image / audio towers and of R(2+1)D-18 in bfloat16 (cast
once at load; fast on CPUs with AMX or AVX512-BF16 and on GPUs, half the memory); the text
towers stay float32 (the class prompts are embedded once). It changes logits by more than 1e-3
(see docs/performance.md for the decisions it changes), so float32 stays the default.
"""


def cast_modules(modules: Any, precision: str) -> Any:
    """Cast ``modules`` (an iterable of torch modules) to ``precision``'s dtype in place; returns
    that dtype, the one their inputs must have."""
    require("torch", "teachers")
    dtype = torch_dtype(precision)
    for module in modules:
        module.to(dtype)
    return dtype


def embedding(output: Any) -> Any:
    """The embedding tensor of a ``get_*_features`` result (a tensor in 4.x, an output object in 5.x)."""
    return output if hasattr(output, "dim") else output.pooler_output
