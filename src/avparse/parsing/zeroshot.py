"""Zero-shot parsing: the teachers alone, over any vocabulary, no training.

Each segment's CLIP logit (frame) and CLAP logit (one-second chunk) is compared with a per-class
threshold by VALOR's rule (:func:`avparse.teachers.rule.elaborate`), with every class a candidate
(there are no weak labels at parse time). The rule's soft label ``sigmoid(logit - threshold)``
serves as the segment probability and the largest one of a window as its video probability, so
the one decision rule (:func:`avparse.eval.events.decide`) reproduces "logit above threshold" and
the outputs have the same form as a student's.

Thresholds, per class and modality, in order of precedence:

1. a thresholds file (``--thresholds``, the JSON written by ``avparse calibrate``);
2. the vocabulary's own (the LLP vocabulary carries VALOR's hand-tuned values);
3. the default: the median of VALOR's LLP thresholds per modality (CLIP 15, CLAP 2). They were
   tuned for the default checkpoints with prompts of the same templates, so their middle value
   is the best prior for a new class; being absolute, they also let a clip contain no event or
   all of them, which a relative rule over the classes (softmax, top-k) cannot. For other
   checkpoints, calibrate.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avparse.errors import AvparseError
from avparse.utils.text import count
from avparse.vocab import LLP, Vocabulary, get_vocabulary, load_thresholds


def default_thresholds() -> dict[str, float]:
    """Median of VALOR's LLP thresholds per modality (the default for classes without one)."""
    return {m: float(statistics.median(LLP.thresholds(m))) for m in ("visual", "audio")}


def zero_shot_vocabulary(
    classes: Sequence[str] | str | None = None,
    vocab: str | Vocabulary | None = None,
    thresholds: str | Path | None = None,
) -> tuple[Vocabulary, list[str]]:
    """The vocabulary to parse with, every threshold set; returns it and notes on the choice.

    Args:
        classes: free-text class names (a list, or one comma-separated string).
        vocab: a built-in vocabulary name (``llp``, ``ave``) or a :class:`Vocabulary`.
        thresholds: a thresholds file (``avparse calibrate`` output) for this vocabulary.
    """
    if (classes is None) == (vocab is None):
        raise AvparseError("zero-shot parsing needs exactly one of --classes or --vocab")
    if classes is not None:
        names = classes.split(",") if isinstance(classes, str) else list(classes)
        voc = Vocabulary.from_names(names)
    elif isinstance(vocab, Vocabulary):
        voc = vocab
    else:
        voc = get_vocabulary(str(vocab))
    notes: list[str] = []
    if thresholds is not None:
        voc = load_thresholds(thresholds, voc)
        notes.append(f"thresholds from {thresholds}")
    defaults = default_thresholds()
    filled = {}
    for modality in ("visual", "audio"):
        values = [c.threshold(modality) for c in voc]
        missing = sum(v is None for v in values)
        if missing:
            notes.append(
                f"{count(missing, 'class uses', 'classes use')} the default {modality} threshold "
                f"{defaults[modality]:g} "
                "(median of VALOR's LLP thresholds; calibrate for other checkpoints)"
            )
        filled[modality] = [defaults[modality] if v is None else float(v) for v in values]
    return voc.with_thresholds(**filled), notes


def window_probabilities(
    clip_logits: np.ndarray | None, clap_logits: np.ndarray | None, vocab: Vocabulary
) -> tuple[np.ndarray, np.ndarray]:
    """Segment probabilities (T, 2, C) and video probabilities (C,) of one window.

    ``clap_logits`` is None for a video without sound: its audio probabilities are 0;
    ``clip_logits`` is None for an audio-only file: its visual probabilities are 0.
    """
    from avparse.teachers.rule import elaborate

    if clip_logits is None and clap_logits is None:
        raise ValueError("a window needs CLIP or CLAP logits")
    every = np.ones(len(vocab), dtype=bool)  # no weak labels: all classes are candidates
    visual = audio = None
    if clip_logits is not None:
        clip_logits = np.asarray(clip_logits, np.float32)
        _, visual = elaborate(clip_logits, np.asarray(vocab.thresholds("visual")), every)
    if clap_logits is not None:
        _, audio = elaborate(clap_logits, np.asarray(vocab.thresholds("audio")), every)
    if visual is None:
        assert audio is not None
        visual = np.zeros_like(audio)
    if audio is None:
        audio = np.zeros_like(visual)
    frame = np.stack([audio, visual], axis=1)  # (T, 2, C)
    return frame, frame.max(axis=(0, 1))
