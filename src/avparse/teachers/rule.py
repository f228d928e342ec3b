"""VALOR's label-elaboration rule and the fused teacher, in numpy.

For each segment and class: positive where the teacher's logit exceeds the class threshold,
restricted to the clip's weak labels (classes outside the weak set are always 0). Soft labels are
``sigmoid(score - threshold)`` inside the weak set and 0 outside, so ``soft > 0.5`` is exactly the
hard label and the margin's size says how sure the teacher is.

The fused teacher (the paper's ablation, a teacher that sees both modalities) scores each class
by the mean of the two teachers' margins, ``((v - t_v) + (a - t_a)) / 2``, and gives the same
label to both modalities; CLIP and CLAP embeddings live in different spaces, so averaging
calibrated logits is the comparable way to fuse them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

TEACHERS = ("modality", "fused")
"""Teacher modes: one teacher per modality (VALOR) or one fused teacher for both (ablation)."""


def _check(scores: np.ndarray, thresholds: np.ndarray, weak: np.ndarray) -> None:
    if scores.shape[-1] != thresholds.shape[-1] or scores.shape[-1] != weak.shape[-1]:
        raise ValueError(
            f"classes disagree: scores {scores.shape}, thresholds {thresholds.shape}, "
            f"weak {weak.shape}"
        )


def margins(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``scores - thresholds`` (classes on the last axis), float32."""
    return (np.asarray(scores, np.float32) - np.asarray(thresholds, np.float32)).astype(np.float32)


def elaborate(
    scores: np.ndarray, thresholds: np.ndarray, weak: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Hard and soft segment labels from teacher logits.

    Args:
        scores: (..., T, C) logits of one modality.
        thresholds: (C,) per-class thresholds.
        weak: (..., C) bool weak labels (one row per clip, broadcast over segments).

    Returns:
        ``(hard, soft)``: float32 (..., T, C); hard is 0/1, soft is ``sigmoid(margin)`` in the
        weak set and 0 outside.
    """
    scores = np.asarray(scores, np.float32)
    thresholds = np.asarray(thresholds, np.float32)
    weak = np.asarray(weak, bool)
    _check(scores, thresholds, weak)
    margin = margins(scores, thresholds)
    inside = weak[..., None, :]
    hard = ((margin > 0) & inside).astype(np.float32)
    with np.errstate(over="ignore"):  # exp overflows to inf for margins below -88: soft 0
        soft = np.where(inside, 1.0 / (1.0 + np.exp(-margin)), 0.0).astype(np.float32)
    return hard, soft


def fused_scores(
    visual: np.ndarray,
    audio: np.ndarray,
    visual_thresholds: np.ndarray,
    audio_thresholds: np.ndarray,
) -> np.ndarray:
    """Mean of the two modalities' margins; threshold it at 0 (``elaborate(f, zeros, weak)``)."""
    return (margins(visual, visual_thresholds) + margins(audio, audio_thresholds)) / 2


def label(
    scores: Mapping[str, np.ndarray],
    thresholds: Mapping[str, np.ndarray],
    weak: np.ndarray,
    teacher: str = "modality",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{modality: (hard, soft)}`` of both modalities (``visual``, ``audio``) under ``teacher``.

    The one labelling step of a harvest (and of the synthetic generator): ``modality`` applies
    each teacher's rule to its own logits; ``fused`` gives both modalities the labels of
    :func:`fused_scores` thresholded at 0.
    """
    if teacher == "fused":
        fused = fused_scores(
            scores["visual"], scores["audio"], thresholds["visual"], thresholds["audio"]
        )
        pair = elaborate(fused, np.zeros(fused.shape[-1], np.float32), weak)
        return {m: pair for m in scores}
    if teacher != "modality":
        raise ValueError(f"unknown teacher {teacher!r} (expected one of {', '.join(TEACHERS)})")
    return {m: elaborate(s, thresholds[m], weak) for m, s in scores.items()}
