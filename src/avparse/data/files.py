"""The one rule for a per-clip ``.npy`` file of a data root, shared by ``data check`` and packing.

A file of kind ``k`` must be a readable, complete ``.npy`` of ``expected_shape(k)``; features and
teacher logits have a floating dtype and only finite values, soft labels also lie in [0, 1];
harvests have a bool, integer or floating dtype and only the values 0 and 1. Problems are one
line without the path (callers prefix the name they show). Numpy only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avparse.data.layout import HARVEST_KINDS, SOFT_KINDS, expected_shape
from avparse.errors import first_line
from avparse.vocab import LLP

_MAGIC = b"\x93NUMPY"
_PLAIN_HEADER = re.compile(
    r"\{'descr': '([<>|=]?[a-zA-Z]\d*)', 'fortran_order': (True|False), "
    r"'shape': \(((?:\d+, ?)*\d*)\), \}[ \n]*"
)
"""The header numpy writes for plain arrays; anything else goes through numpy's own parser."""


@dataclass(frozen=True)
class _Npy:
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int
    size: int
    """File length in bytes."""


def _parse_header(head: bytes, size: int) -> _Npy | None:
    """Parse a ``.npy`` header from the file's first bytes; None when the fast rule does not apply."""
    if len(head) < 10 or head[:6] != _MAGIC or head[6] not in (1, 2, 3):
        return None
    if head[6] == 1:
        length, start = int.from_bytes(head[8:10], "little"), 10
    else:
        length, start = int.from_bytes(head[8:12], "little"), 12
    text = head[start : start + length]
    if len(text) < length:
        return None
    match = _PLAIN_HEADER.fullmatch(text.decode("latin1"))
    if match is None:
        return None
    descr, fortran, dims = match.groups()
    shape = tuple(int(d) for d in dims.replace(" ", "").split(",") if d)
    return _Npy(shape, np.dtype(descr), fortran == "True", start + length, size)


def _numpy_header(fh) -> _Npy:
    """The general (slow, ast-based) header reader of numpy, for unusual files."""
    fmt = np.lib.format
    fh.seek(0)
    version = fmt.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(fh)
    else:
        shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    return _Npy(tuple(shape), dtype, fortran, fh.tell(), os.fstat(fh.fileno()).st_size)


def _open_npy(path: str, *, values: bool) -> tuple[_Npy, np.ndarray | None]:
    """Header (and, with ``values``, the array) of a ``.npy`` file, read with one ``read``.

    Raises OSError / ValueError / EOFError for files that are not readable arrays.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        content = fh.read() if values else fh.read(4096)
        npy = _parse_header(content, size)
        if npy is None:
            npy = _numpy_header(fh)
            if values:
                fh.seek(0)
                content = fh.read()
    if npy.dtype.hasobject:
        raise ValueError("holds Python objects (pickled), not numbers")
    count = int(np.prod(npy.shape, dtype=np.int64))
    needed = npy.offset + count * npy.dtype.itemsize
    if size < needed:
        raise EOFError(f"truncated: {size} bytes, the header needs {needed}")
    if not values:
        return npy, None
    flat = np.frombuffer(content, dtype=npy.dtype, count=count, offset=npy.offset)
    return npy, flat.reshape(npy.shape, order="F" if npy.fortran else "C")


def read_feature_file(
    path: str | Path, kind: str, *, num_classes: int = len(LLP), quick: bool = False
) -> tuple[np.ndarray | None, str | None]:
    """Read and check one per-clip file of ``kind``: ``(array, None)`` or ``(None, problem)``.

    ``kind`` is a name of ``FEATURE_KINDS`` or of ``PER_CLASS_KINDS`` (``harvest_audio``,
    ``soft_visual``, ``scores_audio``, ...). ``quick`` reads the header and the file length only
    (the array returned is then None even for a sound file). Each file is read with a single
    ``read``; the array returned is read-only and in the file's dtype.
    """
    harvest = kind in HARVEST_KINDS
    shape = expected_shape(kind, num_classes)
    try:
        npy, values = _open_npy(os.fspath(path), values=not quick)
    except FileNotFoundError:
        return None, "missing"
    except EOFError as exc:
        if str(exc).startswith("truncated"):
            return None, str(exc)
        return None, f"not a readable .npy file ({exc})"
    except (OSError, ValueError) as exc:
        return None, f"not a readable .npy file ({first_line(exc)})"
    dtype = npy.dtype
    if npy.shape != shape:
        return None, f"shape {npy.shape}, expected {shape}"
    if harvest:
        if not (dtype.kind == "b" or np.issubdtype(dtype, np.integer) or _floating(dtype)):
            return None, f"dtype {dtype}, expected 0/1 numbers"
    elif not _floating(dtype):
        return None, f"dtype {dtype}, expected a floating dtype"
    if values is None:
        return None, None
    if harvest:
        if dtype.kind != "b" and not ((values == 0) | (values == 1)).all():
            return None, "harvest values must be 0 or 1"
        return values, None
    finite = np.isfinite(values)
    if not finite.all():
        return None, f"{int(np.count_nonzero(~finite))} non-finite values (NaN or inf)"
    if kind in SOFT_KINDS and not ((values >= 0) & (values <= 1)).all():
        return None, "probabilities must lie in [0, 1]"
    return values, None


def validate_feature_file(
    path: str | Path, kind: str, *, num_classes: int = len(LLP), quick: bool = False
) -> str | None:
    """What is wrong with one per-clip file of ``kind`` (see :func:`read_feature_file`), or None."""
    return read_feature_file(path, kind, num_classes=num_classes, quick=quick)[1]


def _floating(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.floating)
