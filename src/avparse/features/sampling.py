"""How the student's R(2+1)D-18 input is sampled from video (torch-free, so the harvest planner,
the CLI and the parser can read it without importing torch).

The published ``feats/r2plus1d_18`` (10, 512) come from frames decoded at 8 fps and resized to
112x112 (plain resize, no crop), cut into one 8-frame snippet per one-second segment
(:func:`avparse.features.r2plus1d.snippets`).
"""

from __future__ import annotations

from avparse.errors import AvparseError

SNIPPET_FPS = 8
"""Frames per second decoded for the snippets; one snippet = the 8 frames of one second."""
SNIPPET_SIZE = 112
"""Frame side in pixels (the Kinetics training resolution)."""

MAX_SNIPPET_FPS = 120
"""Highest sampling rate accepted (a typo such as 1e308 must not start a decode)."""
MAX_SNIPPET_SIZE = 1024
"""Largest frame side accepted, in pixels."""


def check_snippet_sampling(fps: float, size: int) -> None:
    """One line naming the flag when ``--snippet-fps`` / ``--snippet-size`` cannot be used
    (NaN, infinite, zero, negative, or absurdly large), before any model or video is opened."""
    if not (isinstance(fps, int | float) and 0 < fps <= MAX_SNIPPET_FPS):  # False for NaN
        raise AvparseError(f"--snippet-fps must lie in (0, {MAX_SNIPPET_FPS}], got {fps:g}")
    if not (isinstance(size, int) and 8 <= size <= MAX_SNIPPET_SIZE):
        raise AvparseError(f"--snippet-size must lie in [8, {MAX_SNIPPET_SIZE}] pixels, got {size}")
