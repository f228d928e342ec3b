"""Per-class teacher thresholds chosen on dense labels (``avparse calibrate``), numpy only.

For each class and modality the threshold maximises the class's segment-level F over all val
segments, with the VALOR rule applied as in the harvest: a segment is predicted positive when its
logit exceeds the threshold *and* the class is in the clip's weak labels. True segments of clips
without the weak label can never be found and count as misses for every threshold.

Candidates are the midpoints between consecutive distinct logits of weak-positive segments (and
one below the lowest), so the search is exact and takes one sort per class. A class without any
true segment in the data keeps its current threshold (or, with none, one above its highest
logit, so it is never predicted); a class whose best F is 0 does the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ClassCalibration:
    threshold: float
    f_before: float | None
    """F of the class at its previous threshold (None when it had none)."""
    f_after: float
    positives: int
    """True segments of the class in the data."""


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
    scores: np.ndarray, weak: np.ndarray, dense: np.ndarray, current: list[float | None]
) -> list[ClassCalibration]:
    """Per-class calibration of one modality.

    Args:
        scores: (N, T, C) teacher logits.
        weak: (N, C) bool weak labels.
        dense: (N, T, C) bool true segment labels of this modality.
        current: the present thresholds (None where a class has none).
    """
    scores = np.asarray(scores)
    n, t, c = scores.shape
    if weak.shape != (n, c) or dense.shape != (n, t, c) or len(current) != c:
        raise ValueError(
            f"shapes disagree: scores {scores.shape}, weak {weak.shape}, dense {dense.shape}"
        )
    inside = np.broadcast_to(np.asarray(weak, bool)[:, None, :], (n, t, c))
    return [
        best_threshold(scores[..., k], dense[..., k], inside[..., k], current[k]) for k in range(c)
    ]
