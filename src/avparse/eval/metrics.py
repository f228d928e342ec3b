"""The LLP metric: segment- and event-level F-scores, equal to the published evaluation.

Counts first, scores after: per clip and per class the true positives, false positives and false
negatives are computed once, for every modality, as (clips, classes) integer arrays; every
published number and the per-class table are derived from those counts. Everything is
vectorised over clips, so the 1,200 test clips score in milliseconds (the published code loops
over clips and classes in Python). See ``docs/evaluation.md`` and reference section 7.

Semantics (the published ``eval_metrics.py``, per clip on class x segment matrices):

- segment level: TP/FP/FN of each class summed over segments;
- event level: events are maximal runs of positive segments ``[start, end)``; a predicted event
  is a TP when some true event of its class has IoU >= 0.5, else an FP; a true event that no
  predicted event overlaps with IoU >= 0.5 is an FN (no one-to-one matching, as published);
- a class counts for a clip when ``TP + FP > 0`` or ``TP + FN > 0``; its F is
  ``2TP / (2TP + FP + FN)``; the clip's score is the mean F over counted classes, 1.0 when no
  class counts; the dataset value is the mean over clips, in percent;
- audio-visual events are ``audio & visual``; Type@AV is the mean of the audio, visual and
  audio-visual values; Event@AV adds the audio and visual counts per class before the F.

Numpy only: this module must never import torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SCORE_KEYS = (
    "seg_a",
    "seg_v",
    "seg_av",
    "seg_type",
    "seg_event",
    "evt_a",
    "evt_v",
    "evt_av",
    "evt_type",
    "evt_event",
)
"""Keys of :func:`llp_scores`, in the published reporting order (segment level, then event)."""

MODALITIES = ("a", "v", "av", "event")
"""Count sets per level: audio, visual, audio-visual, and audio+visual pooled (Event@AV)."""


@dataclass(frozen=True)
class Counts:
    """Per-clip, per-class counts of one modality at one level, each (clips, classes) int64."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def clip_scores(self) -> np.ndarray:
        """The published per-clip F: mean over counted classes, 1.0 if none counts; (clips,)."""
        denom = 2 * self.tp + self.fp + self.fn  # > 0 exactly when TP+FP != 0 or TP+FN != 0
        f = (2 * self.tp) / np.maximum(denom, 1)  # an uncounted class has TP = 0, so F = 0
        n = np.count_nonzero(denom, axis=1)
        return np.where(n > 0, f.sum(axis=1) / np.maximum(n, 1), 1.0)

    def pooled_f(self) -> np.ndarray:
        """Per-class F from counts summed over clips, in percent; NaN for a class never seen."""
        tp, fp, fn = (x.sum(axis=0) for x in (self.tp, self.fp, self.fn))
        denom = 2 * tp + fp + fn
        out = np.full(denom.shape, np.nan)
        np.divide(200.0 * tp, denom, out=out, where=denom > 0)
        return out


@dataclass(frozen=True)
class LLPCounts:
    """All counts the LLP metric needs: ``segment[m]`` and ``event[m]`` for m in MODALITIES."""

    segment: dict[str, Counts]
    event: dict[str, Counts]
    true_segments: dict[str, np.ndarray]
    """Number of true positive segments per class, for ``a``, ``v`` and ``av``; (classes,)."""
    true_events: dict[str, np.ndarray]
    """Number of true events (maximal runs) per class, for ``a``, ``v`` and ``av``; (classes,)."""

    @property
    def num_clips(self) -> int:
        return int(self.segment["a"].tp.shape[0])


def _as_bool(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be boolean or 0/1, got other values")
        arr = arr.astype(bool)
    return arr


def _check(pred_a, pred_v, true_a, true_v) -> tuple[np.ndarray, ...]:
    names = ("pred_a", "pred_v", "true_a", "true_v")
    arrays = tuple(
        _as_bool(x, n) for x, n in zip((pred_a, pred_v, true_a, true_v), names, strict=True)
    )
    shape = arrays[0].shape
    if len(shape) != 3:
        raise ValueError(f"pred_a must be (clips, segments, classes), got shape {shape}")
    for arr, name in zip(arrays, names, strict=True):
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}, expected {shape} like pred_a")
    if shape[0] == 0:
        raise ValueError("no clips to score")
    return arrays


def _per_row(x: np.ndarray) -> np.ndarray:
    """Positive segments per clip and class of a (clips, segments, classes) bool array."""
    if x.shape[1] < 128:  # int8 sums cannot overflow; einsum is ~5x faster than count_nonzero
        return np.einsum("ntc->nc", x.view(np.int8)).astype(np.int64)
    return np.count_nonzero(x, axis=1).astype(np.int64)


def segment_counts(pred: np.ndarray, true: np.ndarray) -> Counts:
    """Segment-level counts of (clips, segments, classes) bool arrays."""
    pred, true = np.asarray(pred, dtype=bool), np.asarray(true, dtype=bool)
    tp = _per_row(pred & true)
    return Counts(tp, _per_row(pred) - tp, _per_row(true) - tp)


def _runs(rows: np.ndarray, empty: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of (rows, segments) bool as (rows, K) start, end (exclusive), and run counts.

    ``K = ceil(segments / 2)``, the most runs a row can hold. Unused slots are the run
    ``[empty, empty + (empty > 0))``: the caller picks values that can never match.
    """
    r, t = rows.shape
    prev = np.zeros_like(rows)
    prev[:, 1:] = rows[:, :-1]
    nxt = np.zeros_like(rows)
    nxt[:, :-1] = rows[:, 1:]
    starts = rows & ~prev
    k = (t + 1) // 2
    start = np.full((r, k), empty, dtype=np.int16)
    end = np.full((r, k), empty + (empty > 0), dtype=np.int16)
    rank = np.cumsum(starts, axis=1, dtype=np.int16)  # 1 + run number at each start and end
    ri, ti = np.nonzero(starts)
    start[ri, rank[ri, ti] - 1] = ti
    ri, ti = np.nonzero(rows & ~nxt)
    end[ri, rank[ri, ti] - 1] = ti + 1
    return start, end, rank[:, -1]


def event_counts(
    pred: np.ndarray, true: np.ndarray, segments: Counts | None = None
) -> tuple[Counts, np.ndarray]:
    """Event-level counts of (clips, segments, classes) bool arrays, and the number of true
    events per clip and class (clips, classes).

    Only (clip, class) rows with a predicted or true segment are matched (the others count
    nothing), which keeps sparse real data fast; ``segments``, the segment counts of the same
    arrays when already known, tells which rows those are. IoU >= 0.5 is decided in integers:
    ``inter / (lp + lg - inter) >= 1/2`` is ``3 * inter >= lp + lg``, so a borderline pair such
    as [0, 2) vs [0, 4) matches exactly as in the published float comparison.

    A run matches at most one run of the other row: IoU >= 0.5 needs at least half of the run
    inside the other one, and two runs of a row are separated by a gap, so a run cannot hold
    half of itself in each of two. So the predicted events with a match (TP) and the true events
    with a match (true events minus FN) both equal the number of matching pairs, which is all
    that needs counting (the reference loop in the tests checks this on random rows).
    """
    pred, true = np.asarray(pred, dtype=bool), np.asarray(true, dtype=bool)
    n, t, c = pred.shape
    if segments is None:
        segments = segment_counts(pred, true)
    clip, cls = np.nonzero((segments.tp + segments.fp + segments.fn) > 0)
    ps, pe, n_pred = _runs(pred[clip, :, cls], 0)
    gs, ge, n_true_active = _runs(true[clip, :, cls], t + 1)
    pairs = _matching_pairs(ps, pe, gs, ge)
    out = np.zeros((4, n, c), dtype=np.int64)
    out[:, clip, cls] = (pairs, n_pred - pairs, n_true_active - pairs, n_true_active)
    return Counts(out[0], out[1], out[2]), out[3]


def _matching_pairs(ps, pe, gs, ge) -> np.ndarray:
    """Per row, the number of (predicted, true) run pairs with IoU >= 0.5; (rows, K) inputs.

    Unused predicted slots are [0, 0) and unused true slots [t + 1, t + 2), so they never match.
    """
    inter = np.minimum(pe[:, :, None], ge[:, None, :]) - np.maximum(ps[:, :, None], gs[:, None, :])
    np.maximum(inter, 0, out=inter)
    inter *= 3
    match = inter >= (pe - ps)[:, :, None] + (ge - gs)[:, None, :]
    return np.count_nonzero(match, axis=(1, 2))


def llp_counts(
    pred_a: np.ndarray, pred_v: np.ndarray, true_a: np.ndarray, true_v: np.ndarray
) -> LLPCounts:
    """Every count of the LLP metric for (clips, segments, classes) audio / visual arrays."""
    pred_a, pred_v, true_a, true_v = _check(pred_a, pred_v, true_a, true_v)
    pairs = {"a": (pred_a, true_a), "v": (pred_v, true_v), "av": (pred_a & pred_v, true_a & true_v)}
    segment: dict[str, Counts] = {}
    event: dict[str, Counts] = {}
    true_segments: dict[str, np.ndarray] = {}
    true_events: dict[str, np.ndarray] = {}
    for m, (pred, true) in pairs.items():
        segment[m] = segment_counts(pred, true)
        event[m], n_true = event_counts(pred, true, segment[m])
        true_segments[m] = (segment[m].tp + segment[m].fn).sum(axis=0)
        true_events[m] = n_true.sum(axis=0)
    segment["event"] = segment["a"] + segment["v"]
    event["event"] = event["a"] + event["v"]
    return LLPCounts(segment, event, true_segments, true_events)


def clip_scores(counts: LLPCounts) -> dict[str, np.ndarray]:
    """Per-clip F (0..1) for ``seg_a, seg_v, seg_av, seg_event`` and the ``evt_`` equivalents."""
    out = {}
    for level, table in (("seg", counts.segment), ("evt", counts.event)):
        for m in MODALITIES:
            out[f"{level}_{m}"] = table[m].clip_scores()
    return out


def scores_from_counts(counts: LLPCounts) -> dict[str, float]:
    """The ten published numbers (percent) from precomputed counts; keys :data:`SCORE_KEYS`."""
    per_clip = clip_scores(counts)
    out: dict[str, float] = {}
    for level in ("seg", "evt"):
        a, v, av, ev = (100 * float(np.mean(per_clip[f"{level}_{m}"])) for m in MODALITIES)
        out.update(
            {
                f"{level}_a": a,
                f"{level}_v": v,
                f"{level}_av": av,
                # published: avg_type = (100*mean(F_av) + 100*mean(F_a) + 100*mean(F_v)) / 3
                f"{level}_type": (av + a + v) / 3.0,
                f"{level}_event": ev,
            }
        )
    return {k: out[k] for k in SCORE_KEYS}


def bootstrap_intervals(
    counts: LLPCounts, *, samples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals (percent) of the ten numbers, resampling clips.

    Each of ``samples`` replicates draws the clips with replacement and recomputes every value
    from the per-clip scores (Type@AV as the mean of its three values in the same replicate),
    so the intervals show how much a score could move with another draw of test clips. Seeded,
    so the same inputs give the same intervals.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    per_clip = clip_scores(counts)
    keys = list(per_clip)
    values = np.stack([per_clip[k] for k in keys])  # (8, clips)
    n = values.shape[1]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(samples, n))
    offsets = (np.arange(samples) * n)[:, None]
    weights = np.bincount((draws + offsets).ravel(), minlength=samples * n).reshape(samples, n)
    means = 100 * (weights.astype(np.float64) @ values.T) / n  # (samples, 8)
    reps = {k: means[:, i] for i, k in enumerate(keys)}
    for lvl in ("seg", "evt"):
        reps[f"{lvl}_type"] = (reps[f"{lvl}_av"] + reps[f"{lvl}_a"] + reps[f"{lvl}_v"]) / 3.0
    tail = 100 * (1 - level) / 2
    out = {}
    for k in SCORE_KEYS:
        lo, hi = np.percentile(reps[k], [tail, 100 - tail])
        out[k] = (float(lo), float(hi))
    return out


def llp_scores(
    pred_a: np.ndarray, pred_v: np.ndarray, true_a: np.ndarray, true_v: np.ndarray
) -> dict[str, float]:
    """The LLP metric, equal to the published evaluation (to float rounding, < 1e-9).

    Args:
        pred_a, pred_v: predicted audio / visual events, (clips, segments, classes) bool or 0/1.
        true_a, true_v: true events, same shape. Audio-visual events are ``a & v`` of each.

    Returns:
        ``seg_a, seg_v, seg_av, seg_type, seg_event, evt_a, evt_v, evt_av, evt_type, evt_event``
        as percentages (``*_type`` is Type@AV, ``*_event`` is Event@AV).
    """
    return scores_from_counts(llp_counts(pred_a, pred_v, true_a, true_v))


PER_CLASS_COLUMNS = tuple(f"{lvl}_{m}" for lvl in ("seg", "evt") for m in MODALITIES)
"""Columns of :func:`per_class_table`: ``seg_a, seg_v, seg_av, seg_event, evt_a, ...``."""


@dataclass(frozen=True)
class PerClassTable:
    """Per-class F (percent) from counts pooled over all clips; NaN where a class never occurs.

    ``f[col][c]`` for ``col`` in :data:`PER_CLASS_COLUMNS`. Pooled, not averaged: the F of class c
    is ``2 sum(TP) / (2 sum(TP) + sum(FP) + sum(FN))`` over clips, which weighs long and frequent
    events more than the published clip mean does, so the table explains where the published
    numbers come from but its mean is not one of them.
    """

    names: list[str]
    f: dict[str, np.ndarray]
    true_segments: dict[str, np.ndarray]
    true_events: dict[str, np.ndarray]

    def rows(self) -> list[dict[str, object]]:
        """One dict per class: name, the F columns (None for NaN), true segment/event counts."""
        out = []
        for c, name in enumerate(self.names):
            row: dict[str, object] = {"class": name}
            for col in PER_CLASS_COLUMNS:
                value = float(self.f[col][c])
                row[col] = None if np.isnan(value) else value
            for m in ("a", "v", "av"):
                row[f"true_segments_{m}"] = int(self.true_segments[m][c])
                row[f"true_events_{m}"] = int(self.true_events[m][c])
            out.append(row)
        return out


def per_class_from_counts(counts: LLPCounts, names: Sequence[str]) -> PerClassTable:
    """The per-class table of precomputed counts; ``names`` label the class axis."""
    num_classes = counts.segment["a"].tp.shape[1]
    if len(names) != num_classes:
        raise ValueError(f"got {len(names)} class names for {num_classes} classes")
    f = {}
    for level, table in (("seg", counts.segment), ("evt", counts.event)):
        for m in MODALITIES:
            f[f"{level}_{m}"] = table[m].pooled_f()
    return PerClassTable(list(names), f, counts.true_segments, counts.true_events)


def per_class_table(
    pred_a: np.ndarray,
    pred_v: np.ndarray,
    true_a: np.ndarray,
    true_v: np.ndarray,
    names: Sequence[str],
) -> PerClassTable:
    """Per-class F for each modality at segment and event level (see :class:`PerClassTable`)."""
    return per_class_from_counts(llp_counts(pred_a, pred_v, true_a, true_v), names)


_TABLE_ROWS = (
    ("audio", "a"),
    ("visual", "v"),
    ("audio-visual", "av"),
    ("Type@AV", "type"),
    ("Event@AV", "event"),
)


def format_scores(
    scores: Mapping[str, float],
    *,
    intervals: Mapping[str, tuple[float, float]] | None = None,
    level: float = 0.95,
    title: str | None = None,
) -> str:
    """The ten LLP numbers as the one table every command prints (``score``, ``evaluate``,
    ``train``, ``harvest --report``): rows audio .. Event@AV, columns segment and event, each
    followed by its interval when ``intervals`` is given. Scores of other tasks (AVE accuracy)
    print as ``key  value`` lines; ``title`` is a first line above either."""
    lines = [title] if title else []
    if not all(k in scores for k in SCORE_KEYS):
        width = max((len(k) for k in scores), default=0)  # AVE's long class names
        lines += [f"{k:<{width}}  {v:6.2f}" for k, v in scores.items()]
        return "\n".join(lines)
    ci = f"{round(100 * level)}% interval"
    header = f"{'F-score (%)':<16}{'segment':>9}"
    header += f"  {ci:<16}{'event':>7}  {ci}" if intervals else f"{'event':>9}"
    lines.append(header)
    for label, key in _TABLE_ROWS:
        seg, evt = scores[f"seg_{key}"], scores[f"evt_{key}"]
        if intervals:
            lines.append(
                f"{label:<16}{seg:>9.2f}  {_span(intervals[f'seg_{key}']):<16}"
                f"{evt:>7.2f}  {_span(intervals[f'evt_{key}'])}"
            )
        else:
            lines.append(f"{label:<16}{seg:>9.2f}{evt:>9.2f}")
    return "\n".join(lines)


def _span(interval: tuple[float, float]) -> str:
    return f"[{interval[0]:.2f}, {interval[1]:.2f}]"
