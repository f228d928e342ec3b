"""AVE scoring: the 29-way segment decision and segment accuracy (reference section 9).

Numpy only. Labels are ints in 0..28 per segment, 28 = background.

Decision (documented in ``docs/ave.md``): an AVE clip has exactly one event class, so the clip's
class is the argmax of the student's video-level probabilities; a segment takes that class when
its audio-visual probability passes the threshold (the LLP rule: audio AND visual segment
probability of that class both >= 0.5), else it is background.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avparse.eval.events import THRESHOLD


def decide_ave(
    frame_prob: np.ndarray, video_prob: np.ndarray, threshold: float = THRESHOLD
) -> np.ndarray:
    """29-way segment labels (N, 10) from (N, T, 2, C) segment and (N, C) video probabilities."""
    frame_prob = np.asarray(frame_prob)
    video_prob = np.asarray(video_prob)
    if frame_prob.ndim != 4 or frame_prob.shape[2] != 2:
        raise ValueError(f"frame_prob must be (N, T, 2, C), got {frame_prob.shape}")
    n, _, _, c = frame_prob.shape
    if video_prob.shape != (n, c):
        raise ValueError(f"video_prob must be (N, C) = {(n, c)}, got {video_prob.shape}")
    cls = video_prob.argmax(1)
    picked = np.take_along_axis(frame_prob, cls[:, None, None, None], axis=3)[..., 0]  # (N,T,2)
    present = (picked >= threshold).all(axis=2)
    return np.where(present, cls[:, None], c).astype(np.int64)


def _check(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth {true.shape}")
    return pred, true


def segment_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Percent of all segments whose predicted label equals the true label (AVE's metric)."""
    pred, true = _check(pred, true)
    if true.size == 0:
        raise ValueError("no segments to score")
    return float(100.0 * (pred == true).mean())


def per_class_accuracy(pred: np.ndarray, true: np.ndarray, num_labels: int) -> np.ndarray:
    """Percent correct among segments of each true label (``num_labels`` incl. background);
    NaN for a label with no segment."""
    pred, true = _check(pred, true)
    total = np.bincount(true.ravel(), minlength=num_labels).astype(np.float64)
    right = np.bincount(true[pred == true].ravel(), minlength=num_labels).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * right / np.maximum(total, 1), np.nan)


def ave_scores(pred: np.ndarray, true: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """``accuracy`` plus ``acc/<class>`` for every class with segments and ``acc/background``."""
    names = [*class_names, "background"]
    per = per_class_accuracy(pred, true, len(names))
    out = {"accuracy": segment_accuracy(pred, true)}
    out.update({f"acc/{n}": float(v) for n, v in zip(names, per, strict=True) if not np.isnan(v)})
    return out


# --- prediction files -------------------------------------------------------------------------

AVE_PREDICTIONS = "predictions.tsv"
"""What ``avparse evaluate --task ave`` writes beside ``metrics.json``: the 29-way decision."""

PREDICTION_COLUMNS = ("row", "video_id", "segment", "label_index", "label")
"""One line per clip and segment, tab-separated, with a header. ``row``: the clip's position in
the split file (0-based; unique, where video ids repeat); ``label_index`` 0..27 a class, 28
background; ``label`` its name (class names contain commas, never tabs)."""

BACKGROUND_NAME = "background"


def write_ave_predictions(
    path: str | Path, ids: list[str], pred: np.ndarray, class_names: list[str]
) -> Path:
    """Write the (N, T) 29-way labels of :func:`decide_ave` as :data:`PREDICTION_COLUMNS`."""
    from avparse.utils.atomic import write_text

    pred = np.asarray(pred)
    if pred.ndim != 2 or pred.shape[0] != len(ids):
        raise ValueError(f"pred must be (N, T) with N = {len(ids)}, got {pred.shape}")
    names = [*class_names, BACKGROUND_NAME]
    lines = ["\t".join(PREDICTION_COLUMNS)]
    for row, (clip, labels) in enumerate(zip(ids, pred.tolist(), strict=True)):
        lines.extend(f"{row}\t{clip}\t{t}\t{k}\t{names[k]}" for t, k in enumerate(labels))
    write_text(path, "\n".join(lines) + "\n")
    return Path(path)


def read_ave_predictions(path: str | Path, class_names: list[str]) -> tuple[list[str], np.ndarray]:
    """``(video ids, (N, T) int labels)`` of a file written by :func:`write_ave_predictions`;
    one-line :class:`AvparseError` naming the file and line on anything else."""
    from avparse.errors import AvparseError

    path = Path(path)
    names = [*class_names, BACKGROUND_NAME]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AvparseError(f"{path}: AVE prediction file not found") from None
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != PREDICTION_COLUMNS:
        raise AvparseError(f"{path}:1: header must be {' '.join(PREDICTION_COLUMNS)}")
    ids: list[str] = []
    rows: list[list[int]] = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        try:
            row, clip, seg, index = int(cells[0]), cells[1], int(cells[2]), int(cells[3])
            ok = len(cells) == 5 and 0 <= index < len(names) and names[index] == cells[4]
        except (ValueError, IndexError):
            ok = False
        if not ok or row > len(rows) or (row == len(rows)) != (seg == 0):
            raise AvparseError(f"{path}:{number}: malformed prediction line {line!r}")
        if row == len(rows):
            ids.append(clip)
            rows.append([])
        if clip != ids[row] or seg != len(rows[row]):
            raise AvparseError(f"{path}:{number}: rows and segments must run in order")
        rows[row].append(index)
    if len({len(r) for r in rows}) > 1:
        raise AvparseError(f"{path}: clips have different numbers of segments")
    return ids, np.asarray(rows, dtype=np.int64).reshape(len(rows), -1)
