"""Thresholds and segment labels of a synthetic set, by the real teacher code.

The synthetic teachers only produce logits (:func:`avparse.synthetic.world.render`); from there
on a synthetic set goes the way of a real one:

* thresholds: :func:`avparse.teachers.calibrate.calibrate` on the val split, with the truth
  ``avparse calibrate`` reads (LLP: the dense audio and visual labels; AVE: the annotated
  audio-visual event as the truth of both modalities) and no starting thresholds (the synthetic
  teachers have no published ones, so thin classes take the pooled threshold);
* labels: :func:`avparse.teachers.rule.label`, for the modality-independent teachers
  (``modality``, VALOR) and the fused teacher (``fused``, the paper's ablation), exactly as
  ``avparse harvest --teacher modality|fused`` labels a clip.
"""

from __future__ import annotations

import numpy as np

from avparse.harvest.calibration import Calibration
from avparse.harvest.outputs import MODALITIES
from avparse.teachers.calibrate import MIN_CLIPS, calibrate
from avparse.teachers.rule import TEACHERS, label
from avparse.vocab import Vocabulary

Labels = dict[str, tuple[np.ndarray, np.ndarray]]
"""``{modality: (hard, soft)}``, each (n, 10, C) float32, as :func:`avparse.teachers.rule.label`."""


def truth(task: str, audio: np.ndarray, visual: np.ndarray) -> dict[str, np.ndarray]:
    """The dense truth that calibration reads for ``task``: what its annotation files hold."""
    if task == "ave":
        event = audio & visual  # the annotated audio-visual event
        return {"visual": event, "audio": event}
    return {"visual": visual, "audio": audio}


def calibrate_teachers(
    vocab: Vocabulary,
    split: str,
    scores: dict[str, np.ndarray],
    weak: np.ndarray,
    dense: dict[str, np.ndarray],
    *,
    min_clips: int = MIN_CLIPS,
) -> Calibration:
    """Thresholds of both teachers from one split's logits, weak labels and dense truth."""
    classes = {
        m: calibrate(scores[m], weak, dense[m], [None] * len(vocab), min_clips=min_clips)
        for m in MODALITIES
    }
    return Calibration(vocab, split, len(weak), 0, classes)


def label_all(
    scores: dict[str, np.ndarray], thresholds: dict[str, np.ndarray], weak: np.ndarray
) -> dict[str, Labels]:
    """``{teacher: labels}`` for every teacher mode of :data:`avparse.teachers.rule.TEACHERS`."""
    return {t: label(scores, thresholds, weak, t) for t in TEACHERS}
