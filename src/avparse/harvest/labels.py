"""Labelling a clip from its teachers' logits: the VALOR rule, the fused teacher, silent clips."""

from __future__ import annotations

import numpy as np

from avparse.errors import AvparseError
from avparse.harvest.outputs import ClipOutputs
from avparse.teachers.rule import elaborate, fused_scores
from avparse.vocab import Vocabulary

TEACHER_MODES = ("modality", "fused")

Thresholds = dict[str, np.ndarray]
"""Per-class thresholds (C,) float32 by modality (``visual``, ``audio``)."""


def thresholds_of(vocab: Vocabulary) -> Thresholds | None:
    """The vocabulary's thresholds, or None when it has none (logits only are harvested)."""
    try:
        return {m: np.asarray(vocab.thresholds(m), np.float32) for m in ("visual", "audio")}
    except AvparseError:
        return None


def label_clip(
    out: ClipOutputs,
    weak: np.ndarray,
    scores: dict[str, np.ndarray],
    thresholds: Thresholds,
    teacher: str,
    silent: bool = False,
) -> None:
    """Apply the rule; a silent clip hears nothing (all-zero audio labels, visual rule alone)."""
    if silent:
        hard, soft = elaborate(scores["visual"], thresholds["visual"], weak)
        zeros = np.zeros_like(soft)
        out.write_labels("audio", zeros, zeros)
        out.write_labels("visual", hard, soft)
        return
    if teacher == "fused":
        fused = fused_scores(
            scores["visual"], scores["audio"], thresholds["visual"], thresholds["audio"]
        )
        hard, soft = elaborate(fused, np.zeros_like(thresholds["visual"]), weak)
        for m in scores:
            out.write_labels(m, hard, soft)
        return
    for m, s in scores.items():
        hard, soft = elaborate(s, thresholds[m], weak)
        out.write_labels(m, hard, soft)
