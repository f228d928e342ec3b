"""Scoring prediction files against the LLP dense labels (``avparse score``).

Predictions are two files in the dense annotation format (``filename, onset, offset,
event_labels``), one for audio and one for visual events, as ``data.llp.write_dense_tsv``
writes them. Both files and the annotations are read into arrays once, so scoring the 1,200
test clips takes a few tens of milliseconds. Numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avparse.data.llp import DenseRows, LLPAnnotations, clip_id, dense_matrix, read_dense_rows
from avparse.errors import AvparseError
from avparse.eval.metrics import (
    PER_CLASS_COLUMNS,
    SCORE_KEYS,
    LLPCounts,
    PerClassTable,
    bootstrap_intervals,
    llp_counts,
    per_class_from_counts,
    scores_from_counts,
)
from avparse.utils.text import count
from avparse.vocab import LLP, Vocabulary

EVAL_SPLITS = ("val", "test")
"""Splits with dense labels."""


@dataclass(frozen=True)
class Outside:
    """Prediction events naming clips that are not in the scored split (they are ignored)."""

    events: int = 0
    clips: frozenset[str] = frozenset()
    example: str = ""
    id_only: str = ""
    """A name that is only the 11-character id of a split clip (not its full filename), if any."""


@dataclass(frozen=True)
class ScoreReport:
    """Result of :func:`score_files`: the ten numbers, the per-class table and what was odd."""

    split: str
    num_clips: int
    scores: dict[str, float]
    per_class: PerClassTable
    clips_with_predictions: int
    outside: dict[str, Outside] = field(default_factory=dict)
    """Per prediction file (``audio``, ``visual``): events of clips outside the split."""
    notes: list[str] = field(default_factory=list)
    """Accepted quirks of the annotation files, one line each."""
    counts: LLPCounts | None = field(default=None, repr=False)
    """The per-clip counts behind every number (for intervals and further analysis)."""

    def intervals(
        self, *, samples: int = 1000, level: float = 0.95, seed: int = 0
    ) -> dict[str, tuple[float, float]]:
        """Bootstrap intervals of the ten numbers over clips (see ``bootstrap_intervals``)."""
        if self.counts is None:
            raise AvparseError("this report carries no counts to resample")
        return bootstrap_intervals(self.counts, samples=samples, level=level, seed=seed)

    def headline(self) -> str:
        """The line above the score table: split, clips, clips with predictions."""
        return (
            f"LLP {self.split}: {count(self.num_clips, 'clip')}, "
            f"{self.clips_with_predictions} with predicted events"
        )

    def warning(self) -> str | None:
        """One line about ignored prediction events, or None when every event was scored."""
        total = sum(o.events for o in self.outside.values())
        if not total:
            return None
        parts = ", ".join(f"{k} {o.events}" for k, o in self.outside.items() if o.events)
        example = next(o.example for o in self.outside.values() if o.events)
        clips = len(frozenset().union(*(o.clips for o in self.outside.values())))
        hint = next((o.id_only for o in self.outside.values() if o.id_only), "")
        if hint:
            hint = (
                f" ({hint!r} is a clip id: predictions must name clips by their full filename"
                " as in the split file)"
            )
        return (
            f"ignored {count(total, 'predicted event')} ({parts}) of {count(clips, 'clip')} outside the "
            f"{self.split} split, e.g. {example!r}{hint}"
        )

    def to_json(
        self,
        *,
        per_class: bool = False,
        intervals: dict[str, tuple[float, float]] | None = None,
        level: float = 0.95,
    ) -> dict:
        """The ten keys (percent); with ``per_class`` also ``"per_class"`` (one row per class),
        with ``intervals`` also ``"intervals"``: ``{"level": level, key: [low, high], ...}``."""
        out: dict = {k: self.scores[k] for k in SCORE_KEYS}
        if per_class:
            out["per_class"] = self.per_class.rows()
        if intervals is not None:
            out["intervals"] = {"level": level, **{k: list(v) for k, v in intervals.items()}}
        return out


def _outside(rows: DenseRows, split_names: set[str], filenames: list[str]) -> Outside:
    names = [n for n in rows.filenames if n not in split_names]
    if not names:
        return Outside()
    clips = frozenset(names)
    split_ids = {clip_id(f) for f in filenames}  # only when some rows name other clips
    id_only = next((n for n in sorted(clips) if n in split_ids), "")
    return Outside(len(names), clips, names[0], id_only)


def score_arrays(
    ann: LLPAnnotations, split: str, audio: DenseRows, visual: DenseRows
) -> ScoreReport:
    """Score already-read prediction rows against ``split`` of ``ann``."""
    if split not in EVAL_SPLITS:
        raise AvparseError(f"split {split!r} has no dense labels (use {' or '.join(EVAL_SPLITS)})")
    filenames = ann.weak(split).filenames
    true_a, true_v = ann.dense(split)
    n_classes = len(ann.vocab)
    pred_a, _ = dense_matrix(audio, filenames, n_classes)
    pred_v, _ = dense_matrix(visual, filenames, n_classes)
    names = set(filenames)
    counts = llp_counts(pred_a, pred_v, true_a, true_v)
    predicted = (pred_a | pred_v).any(axis=(1, 2))
    return ScoreReport(
        split=split,
        num_clips=len(filenames),
        scores=scores_from_counts(counts),
        per_class=per_class_from_counts(counts, ann.vocab.names),
        clips_with_predictions=int(np.count_nonzero(predicted)),
        outside={
            k: _outside(rows, names, filenames)
            for k, rows in (("audio", audio), ("visual", visual))
        },
        notes=ann.dense_quirks(),
        counts=counts,
    )


def score_files(
    annotations: str | Path,
    split: str,
    audio: str | Path,
    visual: str | Path,
    vocab: Vocabulary = LLP,
) -> ScoreReport:
    """Score audio and visual prediction files against the dense labels of ``split``.

    Args:
        annotations: folder holding the LLP annotation files (a data root).
        split: ``val`` or ``test``.
        audio, visual: prediction files in the dense format. They are read strictly: a malformed
            row, unknown class, onset after offset, time outside [0, 10], missing column or
            unsafe filename raises :class:`AvparseError` naming ``file:line``. Clips of the
            split without rows predict nothing; rows of other clips are ignored and counted.
    """
    if split not in EVAL_SPLITS:
        raise AvparseError(f"split {split!r} has no dense labels (use {' or '.join(EVAL_SPLITS)})")
    audio_rows = read_dense_rows(audio, vocab)
    visual_rows = read_dense_rows(visual, vocab)
    return score_arrays(LLPAnnotations(Path(annotations), vocab), split, audio_rows, visual_rows)


def format_per_class(table: PerClassTable) -> str:
    """Per-class F (pooled over clips) and true segment counts; ``-`` where a class never occurs."""
    width = max(len(n) for n in table.names)
    header = (
        f"{'class':<{width}}  {'segment: a':>10}{'v':>6}{'av':>6}{'a+v':>6}"
        f"  {'event: a':>8}{'v':>6}{'av':>6}{'a+v':>6}  {'true seg a':>10}{'v':>6}"
    )
    lines = ["per-class F (%), counts pooled over clips", header]
    for c, name in enumerate(table.names):
        cells = [_cell(table.f[col][c]) for col in PER_CLASS_COLUMNS]
        seg, evt = cells[:4], cells[4:]
        lines.append(
            f"{name:<{width}}  {seg[0]:>10}{seg[1]:>6}{seg[2]:>6}{seg[3]:>6}"
            f"  {evt[0]:>8}{evt[1]:>6}{evt[2]:>6}{evt[3]:>6}"
            f"  {table.true_segments['a'][c]:>10}{table.true_segments['v'][c]:>6}"
        )
    return "\n".join(lines)


def _cell(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"
