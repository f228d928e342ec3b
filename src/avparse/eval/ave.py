"""AVE scoring: the 29-way segment decision and segment accuracy (reference section 9).

Numpy only. Labels are ints in 0..28 per segment, 28 = background.

Decision (documented in ``docs/ave.md``): an AVE clip has exactly one event class, so the clip's
class is the argmax of the student's video-level probabilities; a segment takes that class when
its audio-visual probability passes the threshold (the LLP rule: audio AND visual segment
probability of that class both >= 0.5), else it is background.
"""

from __future__ import annotations

import numpy as np

from avparse.eval.events import THRESHOLD


def decide_ave(
    frame_prob: np.ndarray, video_prob: np.ndarray, threshold: float = THRESHOLD
) -> np.ndarray:
    """29-way segment labels (N, 10) from (N, T, 2, C) segment and (N, C) video probabilities."""
    frame_prob = np.asarray(frame_prob)
    video_prob = np.asarray(video_prob)
    if frame_prob.ndim != 4 or frame_prob.shape[2] != 2:
        raise ValueError(f"frame_prob must be (N, T, 2, C), got {frame_prob.shape}")
    n, _, _, c = frame_prob.shape
    if video_prob.shape != (n, c):
        raise ValueError(f"video_prob must be (N, C) = {(n, c)}, got {video_prob.shape}")
    cls = video_prob.argmax(1)
    picked = np.take_along_axis(frame_prob, cls[:, None, None, None], axis=3)[..., 0]  # (N,T,2)
    present = (picked >= threshold).all(axis=2)
    return np.where(present, cls[:, None], c).astype(np.int64)


def _check(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth {true.shape}")
    return pred, true


def segment_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Percent of all segments whose predicted label equals the true label (AVE's metric)."""
    pred, true = _check(pred, true)
    if true.size == 0:
        raise ValueError("no segments to score")
    return float(100.0 * (pred == true).mean())


def per_class_accuracy(pred: np.ndarray, true: np.ndarray, num_labels: int) -> np.ndarray:
    """Percent correct among segments of each true label (``num_labels`` incl. background);
    NaN for a label with no segment."""
    pred, true = _check(pred, true)
    total = np.bincount(true.ravel(), minlength=num_labels).astype(np.float64)
    right = np.bincount(true[pred == true].ravel(), minlength=num_labels).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * right / np.maximum(total, 1), np.nan)


def ave_scores(pred: np.ndarray, true: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """``accuracy`` plus ``acc/<class>`` for every class with segments and ``acc/background``."""
    names = [*class_names, "background"]
    per = per_class_accuracy(pred, true, len(names))
    out = {"accuracy": segment_accuracy(pred, true)}
    out.update({f"acc/{n}": float(v) for n, v in zip(names, per, strict=True) if not np.isnan(v)})
    return out
