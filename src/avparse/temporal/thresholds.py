"""Per-class logit thresholds of the temporal teacher (reference section 12), in numpy.

On the target's validation split, a class's logits are masked to the clips' weak labels
(``-inf`` elsewhere) and the threshold is the one that maximises that class's segment F-score
when a segment is labelled ``logit > threshold``: the midpoint between two consecutive distinct
logits (``-inf`` below the smallest), as UWAV's ``get_best_f_threshold``. A class without a
positive segment there gets ``-inf``. Ties are handled exactly (UWAV's cumulative sums also
score the positions inside a run of equal logits, which no threshold can realise; on distinct
logits the two agree).
"""

from __future__ import annotations

import numpy as np

NEG_INF = float("-inf")


def masked_logits(logits: np.ndarray, weak: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Segment logits (sum T, C) with ``-inf`` outside each clip's weak labels (N, C)."""
    rows = np.repeat(np.arange(len(lengths)), lengths)
    return np.where(weak[rows], logits, NEG_INF)


def best_threshold(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """``(threshold, F-score)`` of one class over segments (1-D logits and 0/1 labels)."""
    labels = np.asarray(labels, dtype=bool)
    total = int(labels.sum())
    if total == 0:
        return NEG_INF, 0.0
    finite = np.isfinite(logits)
    x = np.asarray(logits, dtype=np.float64)[finite]
    y = labels[finite]
    if len(x) == 0:
        return NEG_INF, 0.0
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    tp = np.cumsum(y[::-1])[::-1]  # positives at or above position i
    predicted = len(x) - np.arange(len(x))
    first = np.r_[True, x[1:] != x[:-1]]  # thresholds a rule ``logit > t`` can realise
    f = np.where(first, 2 * tp / (predicted + total), -1.0)
    best = int(np.argmax(f))
    below = x[best - 1] if best > 0 else NEG_INF
    return float((below + x[best]) / 2), float(f[best])


def classwise_thresholds(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C,) thresholds of (S, C) masked logits against (S, C) dense labels."""
    return np.array(
        [best_threshold(logits[:, c], labels[:, c])[0] for c in range(logits.shape[1])],
        dtype=np.float64,
    )


def pooled_threshold(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One class-agnostic threshold (UWAV's ``class_agnostic``), repeated for every class."""
    t, _ = best_threshold(logits.ravel(), labels.ravel())
    return np.full(logits.shape[1], t, dtype=np.float64)


def soft_labels(logits: np.ndarray, thresholds: np.ndarray, weak_rows: np.ndarray) -> np.ndarray:
    """Stored soft labels ``sigmoid(logit - threshold)`` inside the weak labels, 0 outside.

    The student's ``--loss uwav`` reads ``sigmoid(margin)`` and applies UWAV's temperature
    (``sigmoid(margin / 2)``). A ``-inf`` threshold is replaced, as UWAV's training code does,
    by the smallest logit of that class minus 1, the minimum taken over the labelled split
    (UWAV takes it over a training batch; the whole split is the deterministic equivalent).
    ``weak_rows`` is (S, C): each segment's clip weak labels.
    """
    theta = np.asarray(thresholds, dtype=np.float64).copy()
    low = ~np.isfinite(theta)
    if low.any() and len(logits):
        theta[low] = logits[:, low].min(axis=0) - 1.0
    margin = logits.astype(np.float64) - theta
    with np.errstate(over="ignore"):
        soft = 1.0 / (1.0 + np.exp(-margin))
    return np.where(weak_rows, soft, 0.0).astype(np.float32)
