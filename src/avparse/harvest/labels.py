"""Labelling a clip from its teachers' logits: the VALOR rule, the fused teacher, silent clips."""

from __future__ import annotations

import numpy as np

from avparse.errors import AvparseError
from avparse.harvest.outputs import ClipOutputs
from avparse.teachers.rule import TEACHERS, elaborate, label
from avparse.vocab import Vocabulary

TEACHER_MODES = TEACHERS

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
    blind: bool = False,
) -> None:
    """Apply the rule; a silent clip hears nothing (all-zero audio labels, visual rule alone),
    an audio-only file sees nothing (all-zero visual labels, audio rule alone). Any length T."""
    if silent or blind:
        zeros = np.zeros(np.shape(scores["visual"]), np.float32)
        pairs = {m: (zeros, zeros) for m in ("audio", "visual")}
        for m, off in (("visual", blind), ("audio", silent)):
            if not off:
                pairs[m] = elaborate(scores[m], thresholds[m], weak)
        out.write_labels("audio", *pairs["audio"])
        out.write_labels("visual", *pairs["visual"])
        return
    for m, (hard, soft) in label(scores, thresholds, weak, teacher).items():
        out.write_labels(m, hard, soft)
