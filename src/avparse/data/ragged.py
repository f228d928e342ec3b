"""Rows of different lengths in one flat array: clips of any duration without padding on disk.

A :class:`Ragged` holds the segments of all clips back to back in ``values`` (total segments,
...) and where each clip starts in ``offsets`` (clips + 1,): clip ``i`` is
``values[offsets[i]:offsets[i + 1]]``. It is how the length of a clip travels through avparse:
the UnAV-100 reader, the packed store and the batches all speak it; padding happens only per
batch (:meth:`Ragged.pad`), with a validity mask. Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ragged:
    """Clips of different lengths: ``values`` (sum of lengths, ...) and ``offsets`` (N + 1,)."""

    values: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        off = self.offsets
        if off.ndim != 1 or len(off) == 0 or off[0] != 0 or off[-1] != len(self.values):
            raise ValueError(
                f"offsets must run from 0 to {len(self.values)}, got {len(off)} offsets"
            )
        if len(off) > 1 and np.any(np.diff(off) < 0):
            raise ValueError("offsets must not decrease")

    @classmethod
    def from_arrays(
        cls, arrays: Sequence[np.ndarray], *, tail: tuple[int, ...] = (), dtype=None
    ) -> Ragged:
        """Concatenate per-clip arrays (each (T_i, ...)); ``tail``/``dtype`` for an empty list."""
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if arrays:
            values = np.concatenate(arrays, axis=0)
            if dtype is not None:
                values = values.astype(dtype, copy=False)
        else:
            values = np.zeros((0, *tail), dtype=dtype or np.float32)
        return cls(values, offsets)

    @classmethod
    def from_lengths(cls, values: np.ndarray, lengths: np.ndarray) -> Ragged:
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(np.asarray(lengths, dtype=np.int64), out=offsets[1:])
        return cls(values, offsets)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64: segments per clip."""
        return np.diff(self.offsets)

    @property
    def tail(self) -> tuple[int, ...]:
        """Shape of one segment's row (everything after the time axis)."""
        return tuple(self.values.shape[1:])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def take(self, rows: Sequence[int] | np.ndarray) -> Ragged:
        """A new :class:`Ragged` of the chosen clips, in the given order (copied)."""
        rows = np.asarray(rows, dtype=np.int64)
        return Ragged.from_arrays(
            [self[int(i)] for i in rows], tail=self.tail, dtype=self.values.dtype
        )

    def pad(
        self,
        rows: Sequence[int] | np.ndarray | None = None,
        *,
        length: int | None = None,
        fill: float = 0,
        dtype=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The chosen clips padded to a common length: ``(array (n, T, ...), mask (n, T))``.

        ``T`` is the longest chosen clip unless ``length`` is given (at least that long).
        ``mask`` is True on real segments, False on padding (which holds ``fill``).
        """
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        longest = int(lengths.max()) if len(rows) else 0
        t = longest if length is None else int(length)
        if t < longest:
            raise ValueError(f"length {t} is shorter than the longest chosen clip ({longest})")
        out = np.full((len(rows), t, *self.tail), fill, dtype=dtype or self.values.dtype)
        mask = np.arange(t)[None, :] < lengths[:, None]
        starts = self.offsets[rows]
        # one gather for all real segments: clip-major order matches mask's True entries
        src = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(
            int(lengths.sum())
        )
        out[mask] = self.values[src]
        return out, mask


def unpad(array: np.ndarray, lengths: Sequence[int] | np.ndarray) -> Ragged:
    """Inverse of :meth:`Ragged.pad`: keep the first ``lengths[i]`` segments of row ``i``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    mask = np.arange(array.shape[1])[None, :] < lengths[:, None]
    return Ragged.from_lengths(array[mask], lengths)
