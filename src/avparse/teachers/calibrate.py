"""Per-class teacher thresholds chosen on dense labels (``avparse calibrate``), numpy only.

For each class and modality the threshold maximises the class's segment-level F over all val
segments, with the VALOR rule applied as in the harvest: a segment is predicted positive when its
logit exceeds the threshold *and* the class is in the clip's weak labels. True segments of clips
without the weak label can never be found and count as misses for every threshold.

Candidates are the midpoints between consecutive distinct logits of weak-positive segments (and
one below the lowest), so the search is exact and takes one sort per class.

A threshold fitted to a handful of clips follows their noise: with about seven val clips per
class (synthetic AVE), per-class thresholds scored 94 on val but 85 on train, where one pooled
threshold scored 89. So a class gets a threshold of its own only when at least ``min_clips``
(default :data:`MIN_CLIPS`) clips have a true segment of it. A class with fewer keeps its current
threshold when it has one (the published thresholds were tuned on more data than such a class
offers), else takes the *pooled* threshold: the F-maximising one over the segments of all
classes together. :func:`best_threshold` alone (one class, no pooling) keeps the current
threshold of a class without true segments, or, with none, goes one above its highest logit so
the class is never predicted; a class whose best F is 0 does the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_CLIPS = 10
"""Fewest clips with a true segment of a class before the class gets a threshold of its own."""

SOURCES = ("class", "kept", "pooled")
"""Where a threshold came from: fitted to the class, its current one kept, or the pooled one."""


@dataclass
class ClassCalibration:
    threshold: float
    f_before: float | None
    """F of the class at its previous threshold (None when it had none)."""
    f_after: float
    positives: int
    """True segments of the class in the data."""
    clips: int = 0
    """Clips with at least one true segment of the class."""
    source: str = "class"
    """One of :data:`SOURCES`."""


def _f(tp: np.ndarray | float, predicted: np.ndarray | float, true: int) -> np.ndarray:
    denom = np.asarray(predicted, float) + true
    return np.where(denom > 0, 2 * np.asarray(tp, float) / np.maximum(denom, 1), 0.0)


def class_f(scores: np.ndarray, truth: np.ndarray, inside: np.ndarray, threshold: float) -> float:
    """Segment F of one class at ``threshold`` (flattened arrays; ``inside`` = weak label)."""
    pred = (scores > threshold) & inside
    return float(_f((pred & truth).sum(), pred.sum(), int(truth.sum())))


def best_threshold(
    scores: np.ndarray, truth: np.ndarray, inside: np.ndarray, current: float | None
) -> ClassCalibration:
    """The F-maximising threshold of one class (flattened segments of all clips)."""
    scores = np.asarray(scores, np.float64).ravel()
    truth = np.asarray(truth, bool).ravel()
    inside = np.asarray(inside, bool).ravel()
    total = int(truth.sum())
    before = class_f(scores, truth, inside, current) if current is not None else None
    cand = scores[inside]
    if total == 0 or cand.size == 0:
        keep = current if current is not None else float(scores.max(initial=0.0)) + 1.0
        return ClassCalibration(float(keep), before, class_f(scores, truth, inside, keep), total)
    order = np.argsort(-cand, kind="stable")
    s = cand[order]
    tp = np.cumsum(truth[inside][order])
    k = np.arange(1, len(s) + 1)
    f = _f(tp, k, total)
    # Only cut where the next logit is strictly lower (ties are predicted together).
    valid = np.append(s[1:] < s[:-1], True)
    f = np.where(valid, f, -1.0)
    best = int(np.argmax(f))
    if f[best] <= 0:
        keep = current if current is not None else float(s[0]) + 1.0
        return ClassCalibration(float(keep), before, class_f(scores, truth, inside, keep), total)
    below = s[best + 1] if best + 1 < len(s) else s[best] - 1.0
    threshold = float(np.round((s[best] + below) / 2, 4))
    if not s[best] > threshold:  # rounding must not swallow the chosen logit
        threshold = float((s[best] + below) / 2)
    return ClassCalibration(threshold, before, float(f[best]), total)


def calibrate(
    scores: np.ndarray,
    weak: np.ndarray,
    dense: np.ndarray,
    current: list[float | None],
    *,
    min_clips: int = MIN_CLIPS,
) -> list[ClassCalibration]:
    """Per-class calibration of one modality (see the module docstring for the fallbacks).

    Args:
        scores: (N, T, C) teacher logits.
        weak: (N, C) bool weak labels.
        dense: (N, T, C) bool true segment labels of this modality.
        current: the present thresholds (None where a class has none).
        min_clips: fewest clips with a true segment for a threshold of the class's own.
    """
    scores = np.asarray(scores)
    dense = np.asarray(dense, bool)
    n, t, c = scores.shape
    if weak.shape != (n, c) or dense.shape != (n, t, c) or len(current) != c:
        raise ValueError(
            f"shapes disagree: scores {scores.shape}, weak {weak.shape}, dense {dense.shape}"
        )
    if min_clips < 1:
        raise ValueError(f"min_clips must be >= 1, got {min_clips}")
    inside = np.broadcast_to(np.asarray(weak, bool)[:, None, :], (n, t, c))
    clips = dense.any(1).sum(0)
    rows = []
    pooled: ClassCalibration | None = None
    for k in range(c):
        row = best_threshold(scores[..., k], dense[..., k], inside[..., k], current[k])
        row.clips = int(clips[k])
        cur = current[k]
        if clips[k] < min_clips:
            if cur is not None:
                threshold, source = float(cur), "kept"
            else:
                if pooled is None:
                    pooled = best_threshold(scores, dense, inside, None)
                threshold, source = pooled.threshold, "pooled"
            f = class_f(scores[..., k], dense[..., k], inside[..., k], threshold)
            row = ClassCalibration(threshold, row.f_before, f, row.positives, row.clips, source)
        rows.append(row)
    return rows
