"""From probabilities to events: VALOR's decision rule (runs and dense files: ``data.llp``).

Numpy only, so scoring and writing predictions never import torch.
"""

from __future__ import annotations

import numpy as np

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
