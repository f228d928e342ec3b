"""The one rule for a per-clip ``.npy`` file of a data root, shared by ``data check`` and packing.

A file of kind ``k`` must be a readable, complete ``.npy`` of ``expected_shape(k)``; features and
teacher logits have a floating dtype and only finite values, soft labels also lie in [0, 1];
harvests have a bool, integer or floating dtype and only the values 0 and 1. Problems are one
line without the path (callers prefix the name they show). Numpy only.

Kinds of any length (UnAV-100, ``layout.FeatureKind.any_length``) are checked against the clip:
a file with one row per segment (``clip_segments``, ``clap_segments``, and per-class kinds given
a ``length``) must have exactly ``T`` rows, the clip's segments; a published file at a frame
rate (UnAV-100's VGGish and I3D, ``FeatureKind.rate``) must cover the video's duration to within
``layout.UNAV_FEATURE_TOLERANCE`` seconds or 10 % of the duration (whichever is more): UWAV
average-pools whatever rows there are to ``T`` (:func:`pool_segments`), so a few rows more or
less at the ends are normal (a 0.96-s window at a 0.32-s stride gives about ``3.125 d - 2`` rows),
while a file of another video or a truncated extraction is not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avparse.data.layout import (
    FEATURE_KINDS,
    HARVEST_KINDS,
    SOFT_KINDS,
    UNAV_FEATURE_TOLERANCE,
    expected_shape,
)
from avparse.errors import first_line
from avparse.utils.text import count
from avparse.vocab import LLP


@dataclass(frozen=True)
class _Npy:
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int
    size: int
    """File length in bytes."""


def _header(fh) -> _Npy:
    """The header of an open ``.npy`` file, by numpy's own reader (the file is left after it).

    A hand-written header regex beside it did not make ``data check`` 2x faster
    (benchmarks/readers.py: 1.2-1.3x), so there is only this one.
    """
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(fh)
    else:
        shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    return _Npy(tuple(shape), dtype, fortran, fh.tell(), os.fstat(fh.fileno()).st_size)


def _open_npy(path: str, *, values: bool) -> tuple[_Npy, np.ndarray | None]:
    """Header (and, with ``values``, the array) of a ``.npy`` file.

    Raises OSError / ValueError / EOFError for files that are not readable arrays.
    """
    with open(path, "rb") as fh:
        npy = _header(fh)
        content = fh.read() if values and not npy.dtype.hasobject else b""
    size = npy.size
    if npy.dtype.hasobject:
        raise ValueError("holds Python objects (pickled), not numbers")
    items = int(np.prod(npy.shape, dtype=np.int64))
    needed = npy.offset + items * npy.dtype.itemsize
    if size < needed:
        raise EOFError(f"truncated: {count(size, 'byte')}, the header needs {needed}")
    if not values:
        return npy, None
    flat = np.frombuffer(content, dtype=npy.dtype, count=items)
    return npy, flat.reshape(npy.shape, order="F" if npy.fortran else "C")


def read_feature_file(
    path: str | Path,
    kind: str,
    *,
    num_classes: int = len(LLP),
    quick: bool = False,
    length: int | None = None,
    duration: float | None = None,
) -> tuple[np.ndarray | None, str | None]:
    """Read and check one per-clip file of ``kind``: ``(array, None)`` or ``(None, problem)``.

    ``kind`` is a name of ``FEATURE_KINDS`` or of ``PER_CLASS_KINDS`` (``harvest_audio``,
    ``soft_visual``, ``scores_audio``, ...). ``quick`` reads the header and the file length only
    (the array returned is then None even for a sound file). ``length``: the clip has that many
    segments (:func:`avparse.data.layout.expected_shape`; default 10). ``duration`` (seconds):
    what a published file at a frame rate is checked against (see the module docstring); a kind
    of any length without them passes with any number of rows (at least one). Each file is read
    with a single ``read`` after numpy's header reader; the array returned is read-only, in the
    file's dtype.
    """
    harvest = kind in HARVEST_KINDS
    shape = expected_shape(kind, num_classes, length)
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
    problem = _shape_problem(npy.shape, shape, kind, duration)
    if problem is not None:
        return None, problem
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
        return None, f"{count(int(np.count_nonzero(~finite)), 'non-finite value')} (NaN or inf)"
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


def _shape_problem(
    found: tuple[int, ...], shape: tuple[int | None, int], kind: str, duration: float | None
) -> str | None:
    """What is wrong with a file's shape for ``kind`` (None rows: any length), or None."""
    rows, dim = shape
    if rows is not None:
        return None if found == shape else f"shape {found}, expected {shape}"
    if len(found) != 2 or found[1] != dim or found[0] < 1:
        return f"shape {found}, expected (rows, {dim})"
    fk = FEATURE_KINDS.get(kind)
    if fk is None or fk.rate is None or duration is None:
        return None
    covered = found[0] / fk.rate
    tolerance = max(UNAV_FEATURE_TOLERANCE, 0.1 * duration)
    if abs(covered - duration) > tolerance:
        return (
            f"{count(found[0], 'row')} cover {covered:.1f} s at {fk.rate:g} rows/s, the video lasts "
            f"{duration:g} s (tolerance {tolerance:.1f} s)"
        )
    return None


def pool_segments(array: np.ndarray, length: int) -> np.ndarray:
    """Average ``array`` (rows, dim) to ``length`` rows, as UWAV does (adaptive average pooling).

    Output row ``i`` is the mean of rows ``floor(i * rows / length)`` up to
    ``ceil((i + 1) * rows / length)`` (exclusive), ``torch.nn.functional.adaptive_avg_pool1d``'s
    bins; with fewer rows than ``length`` rows are repeated. float32 out, sums in float64.
    """
    rows = len(array)
    if rows < 1 or length < 1:
        raise ValueError(f"cannot pool {rows} rows to {length}")
    i = np.arange(length, dtype=np.int64)
    start = (i * rows) // length
    stop = -((-(i + 1) * rows) // length)
    sums = np.zeros((rows + 1, *array.shape[1:]), dtype=np.float64)
    np.cumsum(array, axis=0, dtype=np.float64, out=sums[1:])
    counts = (stop - start).reshape(-1, *([1] * (array.ndim - 1)))
    return ((sums[stop] - sums[start]) / counts).astype(np.float32)
