"""Arithmetic precision and compilation of the student (``--precision``, ``--compile``).

``bfloat16`` in training and ``avparse evaluate`` is *autocast*: the forward pass runs its
matrix products in bfloat16 where the hardware has bfloat16 units (CPUs with AMX / AVX512-BF16,
recent GPUs), while the master weights, the gradients and the optimiser's state stay float32
and the losses are computed on float32 outputs. ``--compile`` wraps the model in
:func:`torch.compile`; where the platform cannot compile (no C++ compiler for the CPU backend,
an unsupported Python), the model runs eagerly after one line saying why.

Parsing and harvesting use bfloat16 *weights* instead (``avparse parse|harvest --precision``):
the teachers' image and audio towers and R(2+1)D-18 are cast to bfloat16 once, their inputs
follow, their outputs come back as float32 (:func:`avparse.teachers.loading.cast_modules`).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable
from typing import Any

from avparse.errors import AvparseError

PRECISIONS = ("float32", "bfloat16")
"""Values of ``--precision``; float32 is the default everywhere."""


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise AvparseError(f"unknown precision {precision!r} (expected {' or '.join(PRECISIONS)})")
    return precision


def torch_dtype(precision: str) -> Any:
    """The torch dtype of a precision name."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[check_precision(precision)]


def autocast(device: Any, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The forward pass's context: nothing for float32, bfloat16 autocast otherwise (the device
    type of ``device``, a ``torch.device`` or a name: ``cpu`` / ``cuda``)."""
    if check_precision(precision) == "float32":
        return contextlib.nullcontext()
    import torch

    kind = torch.device(device).type
    return torch.autocast(device_type=kind, dtype=torch.bfloat16)


def as_float32(out: Any) -> Any:
    """A model's outputs (a tensor or a named tuple of tensors) in float32, so losses and
    decisions are computed in float32 after a bfloat16 forward pass; float32 ones unchanged."""
    import torch

    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, tuple) and hasattr(out, "_fields"):
        return type(out)(*(as_float32(t) for t in out))
    return out


def cannot_compile() -> str | None:
    """Why :func:`torch.compile` cannot work here (None: it can)."""
    try:
        import torch._dynamo
    except Exception as exc:  # pragma: no cover - a torch without dynamo
        return f"torch.compile is unavailable ({exc})"
    if not torch._dynamo.is_dynamo_supported():
        return f"torch.compile does not support Python {sys.version.split()[0]} here"
    if not any(shutil.which(cc) for cc in ("c++", "g++", "clang++")):
        return "torch.compile needs a C++ compiler (c++, g++ or clang++) on the PATH"
    return None


def compiled(module: Any, enabled: bool, note: Callable[[str], None] | None = None) -> Any:
    """``module`` compiled with :func:`torch.compile` when ``enabled`` and the platform can;
    otherwise ``module`` itself after one ``note`` line. A compilation that fails at the first
    call also falls back to the eager module (:class:`_EagerFallback`), with the note."""
    if not enabled:
        return module
    why = cannot_compile()
    if why is not None:
        if note is not None:
            note(f"--compile: {why}; running the model uncompiled")
        return module
    import torch

    return _EagerFallback(module, torch.compile(module), note)


class _EagerFallback:
    """Calls the compiled module; if its first call fails to compile, the eager one from then
    on (the failed call changed nothing: no backward pass ran). Attribute access (``train``,
    ``eval``, ``parameters`` ...) goes to the eager module, which shares the weights."""

    def __init__(self, eager: Any, fast: Any, note: Callable[[str], None] | None) -> None:
        self._eager, self._fast, self._note, self._tried = eager, fast, note, False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._fast is None:
            return self._eager(*args, **kwargs)
        if self._tried:
            return self._fast(*args, **kwargs)
        try:
            out = self._fast(*args, **kwargs)
        except AvparseError:
            raise
        except Exception as exc:
            from avparse.errors import first_line

            self._fast = None
            if self._note is not None:
                self._note(f"--compile: compilation failed ({first_line(exc)}); running uncompiled")
            return self._eager(*args, **kwargs)
        self._tried = True
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._eager, name)
