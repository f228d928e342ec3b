"""From probabilities to events: VALOR's decision rule, maximal runs and dense TSV files.

Numpy only, so scoring and writing predictions never import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avparse.data.llp import DENSE_COLUMNS
from avparse.utils.atomic import atomic_open
from avparse.vocab import Vocabulary

THRESHOLD = 0.5
"""Published decision threshold for both the video-level and the segment-level probabilities."""


def decide(
    frame_prob: np.ndarray, video_prob: np.ndarray, threshold: float = THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the published inference rule (reference section 6).

    Args:
        frame_prob: (N, T, 2, C) segment probabilities, modality 0 audio and 1 visual.
        video_prob: (N, C) video-level probabilities.

    Returns:
        ``(audio, visual)`` bool arrays of shape (N, T, C): a segment event is present when its
        segment probability and the clip's video probability both reach ``threshold``.
        Audio-visual events are ``audio & visual``.
    """
    frame_prob = np.asarray(frame_prob)
    video_prob = np.asarray(video_prob)
    if frame_prob.ndim != 4 or frame_prob.shape[2] != 2:
        raise ValueError(f"frame_prob must be (N, T, 2, C), got {frame_prob.shape}")
    if video_prob.shape != (frame_prob.shape[0], frame_prob.shape[3]):
        raise ValueError(
            f"video_prob must be (N, C) = {frame_prob.shape[::3]}, got {video_prob.shape}"
        )
    present = (video_prob >= threshold)[:, None, :]
    return (frame_prob[:, :, 0] >= threshold) & present, (
        frame_prob[:, :, 1] >= threshold
    ) & present


def runs(matrix: np.ndarray) -> np.ndarray:
    """Maximal runs of positive segments in a (N, T, C) bool array.

    Returns an int array of rows ``(clip, class, onset, offset)`` (offset exclusive), sorted by
    clip, then class, then onset.
    """
    m = np.asarray(matrix, dtype=bool)
    n, t, c = m.shape
    padded = np.zeros((n, c, t + 2), dtype=np.int8)
    padded[:, :, 1:-1] = m.transpose(0, 2, 1)
    edges = np.diff(padded, axis=2)
    clip_s, cls_s, onset = np.nonzero(edges == 1)
    _, _, offset = np.nonzero(edges == -1)
    return np.stack([clip_s, cls_s, onset, offset], axis=1).astype(np.int64)


def write_dense_tsv(
    path: str | Path, filenames: Sequence[str], matrix: np.ndarray, vocab: Vocabulary
) -> int:
    """Write events in the dense annotation format, one row per maximal run; returns row count.

    The file is written atomically; clips without events have no rows.
    """
    rows = runs(matrix)
    names = vocab.names
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(DENSE_COLUMNS) + "\n")
        for clip, cls, onset, offset in rows.tolist():
            fh.write(f"{filenames[clip]}\t{onset}\t{offset}\t{names[cls]}\n")
    return len(rows)
