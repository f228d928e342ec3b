"""From probabilities to events: VALOR's decision rule (runs and dense files: ``data.llp``).

Numpy only, so scoring and writing predictions never import torch.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.5
"""Published decision threshold for both the video-level and the segment-level probabilities."""


def decide(
    frame_prob: np.ndarray,
    video_prob: np.ndarray,
    threshold: float = THRESHOLD,
    *,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the published inference rule (reference section 6).

    Args:
        frame_prob: (N, T, 2, C) segment probabilities, modality 0 audio and 1 visual.
        video_prob: (N, C) video-level probabilities.
        lengths: (N,) real segments per clip when clips of different lengths are padded to a
            common ``T``; segments at and after ``lengths[i]`` are never events. None: all ``T``
            segments are real (LLP, AVE).

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
    audio = (frame_prob[:, :, 0] >= threshold) & present
    visual = (frame_prob[:, :, 1] >= threshold) & present
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (frame_prob.shape[0],):
            raise ValueError(
                f"lengths must be (N,) = ({frame_prob.shape[0]},), got {lengths.shape}"
            )
        real = (np.arange(frame_prob.shape[1])[None, :] < lengths[:, None])[:, :, None]
        audio &= real
        visual &= real
    return audio, visual
