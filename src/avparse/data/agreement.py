"""Do a harvest and the clip tags agree? The share of harvest positives outside the weak labels.

A harvest (``avparse harvest``, the synthetic generator) marks a segment positive only for a class
the clip is tagged with, so the share is 0 for anything avparse writes. A harvest written with
another class order or a wrong thresholds file puts positives in other columns; training would
then learn the wrong columns (LLP) or multiply them away and learn from all-zero targets (AVE).
``data check`` and training measure it and refuse unless told to accept it. Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avparse.errors import AvparseError

EXAMPLES = 3
"""Clips named in a message."""


class HarvestMismatchError(AvparseError):
    """Harvest positives lie outside the clips' weak labels."""


@dataclass(frozen=True)
class OutsideShare:
    """Harvest positives of one folder, and how many lie outside the clip's weak labels."""

    folder: str
    positives: int
    outside: int
    clips: tuple[str, ...]
    """The first few clips with positives outside their tags."""

    @property
    def share(self) -> float:
        """Outside positives / all positives (0 for an empty harvest)."""
        return self.outside / self.positives if self.positives else 0.0

    def describe(self) -> str:
        """One line: folder, share and a few clips."""
        return (
            f"{self.folder}: {100 * self.share:.1f}% of harvest positives "
            f"({self.outside} of {self.positives}) lie outside the clips' weak labels, e.g. "
            f"{', '.join(self.clips)} (harvested with another class order or thresholds file?)"
        )


def outside_share(
    folder: str, harvest: np.ndarray, weak: np.ndarray, ids: Sequence[str]
) -> OutsideShare:
    """Measure one harvest folder against the tags.

    Args:
        folder: the name shown in messages (the harvest folder).
        harvest: (clips, 10, classes) 0/1 segment harvests, row i for ``ids[i]``.
        weak: (clips, classes) clip tags, bool or 0/1.
        ids: clip ids (or filenames) in row order.
    """
    harvest = np.asarray(harvest)
    weak = np.asarray(weak, dtype=bool)
    if harvest.ndim != 3 or harvest.shape[::2] != weak.shape or len(ids) != len(weak):
        raise ValueError(
            f"harvest {harvest.shape}, weak {weak.shape} and {len(ids)} ids do not match"
        )
    positive = harvest != 0
    outside = positive & ~weak[:, None, :]
    per_clip = outside.sum(axis=(1, 2))
    rows = np.flatnonzero(per_clip)[:EXAMPLES]
    return OutsideShare(
        folder, int(positive.sum()), int(per_clip.sum()), tuple(str(ids[i]) for i in rows)
    )


def refuse_outside(found: OutsideShare, *, accept: bool, how_to_accept: str) -> None:
    """Raise :class:`HarvestMismatchError` (one line) when positives lie outside the tags.

    ``accept`` lets it pass knowingly; ``how_to_accept`` names the flag or setting that does so.
    """
    if found.outside and not accept:
        raise HarvestMismatchError(f"{found.describe()}; to use it anyway: {how_to_accept}")
