"""Score a harvest against the dense labels of val or test (``avparse harvest --report``).

The teachers' segment labels are treated as predictions and scored with the same metric as
``avparse score`` (:func:`avparse.eval.metrics.llp_scores`). Clips of the split that were not
harvested are left out of the score (their count is reported), so a partial harvest still scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avparse.data.layout import SEGMENTS
from avparse.data.llp import LLPAnnotations
from avparse.errors import AvparseError
from avparse.harvest.outputs import ClipOutputs
from avparse.vocab import LLP, Vocabulary


@dataclass
class HarvestScore:
    split: str
    scored: int
    missing: int
    scores: dict[str, float]

    def to_json(self) -> dict:
        return {"split": self.split, "clips": self.scored, "missing": self.missing, **self.scores}


def load_labels(
    root: Path, ids: list[str], num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(audio, visual) harvested labels (N, 10, C) bool and a mask of clips that have them.

    A clip recorded without audio counts as silent (no audio event).
    """
    audio = np.zeros((len(ids), SEGMENTS, num_classes), bool)
    visual = np.zeros_like(audio)
    have = np.zeros(len(ids), bool)
    for i, clip in enumerate(ids):
        out = ClipOutputs(root, clip)
        if not out.hard("visual").is_file():
            continue
        visual[i] = np.load(out.hard("visual")) > 0.5
        if out.hard("audio").is_file():
            audio[i] = np.load(out.hard("audio")) > 0.5
        elif not out.no_audio.is_file():
            continue
        have[i] = True
    return audio, visual, have


def score_harvest(
    root: str | Path, annotations: str | Path, split: str, vocab: Vocabulary = LLP
) -> HarvestScore:
    """Score the harvest in ``root`` on ``split`` of the LLP annotations in ``annotations``."""
    from avparse.eval.metrics import llp_scores

    if split not in ("val", "test"):
        raise AvparseError(f"--split {split}: dense labels exist for val and test only")
    ann = LLPAnnotations(Path(annotations), vocab)
    ids = ann.weak(split).ids
    true_a, true_v = ann.dense(split)
    pred_a, pred_v, have = load_labels(Path(root), ids, len(vocab))
    if not have.any():
        raise AvparseError(f"{root}: no harvested clip of the {split} split to score")
    scores = llp_scores(pred_a[have], pred_v[have], true_a[have], true_v[have])
    return HarvestScore(split, int(have.sum()), int((~have).sum()), scores)
