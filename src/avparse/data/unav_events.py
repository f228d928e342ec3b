"""Events of clips of any length as TSV with onsets and offsets in seconds (UnAV-100 predictions).

``avparse evaluate --task unav`` writes one file per modality (``audio.tsv``, ``visual.tsv``,
``audio_visual.tsv``)::

    video_id<TAB>onset<TAB>offset<TAB>event_labels
    --HuBNHXu9I<TAB>3<TAB>7<TAB>dog barking

One row per maximal run of positive 1-s segments of one class (the runs of
:func:`avparse.data.llp.runs`), sorted by video (in the split's order), class, onset. ``onset``
is the run's first segment in seconds; ``offset`` is the end of its last segment, except that
the last segment of a video ends at the video's duration (a 12.4-s video's last segment is
[12, 12.4)). Both are written with up to three decimals. Videos without events have no rows.
:func:`read_events_tsv` reads a file back to per-segment labels: segments ``floor(onset)`` up to
``ceil(offset)`` (exclusive), the rounding UnAV-100's annotations use. Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avparse.data.llp import runs
from avparse.data.ragged import Ragged
from avparse.errors import AvparseError
from avparse.vocab import Vocabulary

EVENT_COLUMNS = ("video_id", "onset", "offset", "event_labels")
"""Header of an events TSV (times in seconds)."""


def _seconds(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def write_events_tsv(
    path: str | Path,
    videos: Sequence[str],
    durations: Sequence[float] | np.ndarray,
    matrix: np.ndarray,
    vocab: Vocabulary,
) -> int:
    """Write events (atomically); returns the number of rows.

    Args:
        path: the TSV file.
        videos: video ids, row ``i`` of ``matrix`` for ``videos[i]``.
        durations: (N,) seconds per video; a video has ``ceil(duration)`` segments.
        matrix: (N, T, classes) bool, clips padded with False to a common T (at least the
            longest video's segments); segments past a video's end must be False.
        vocab: the class names.
    """
    from avparse.utils.atomic import atomic_open  # writers only

    m = np.asarray(matrix, dtype=bool)
    durations = np.asarray(durations, dtype=np.float64)
    if m.ndim != 3 or m.shape[0] != len(videos) or len(durations) != len(videos):
        raise ValueError(
            f"matrix {m.shape}, {len(videos)} videos and {len(durations)} durations do not match"
        )
    lengths = np.ceil(durations).astype(np.int64)
    past = np.arange(m.shape[1])[None, :] >= lengths[:, None]
    if m[past].any():
        raise ValueError("events after the end of a video")
    rows = runs(m)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(EVENT_COLUMNS) + "\n")
        for clip, cls, onset, offset in rows.tolist():
            end = min(float(offset), float(durations[clip]))
            fh.write(f"{videos[clip]}\t{_seconds(onset)}\t{_seconds(end)}\t{vocab.names[cls]}\n")
    return len(rows)


def read_events_tsv(
    path: str | Path, videos: Sequence[str], lengths: Sequence[int] | np.ndarray, vocab: Vocabulary
) -> Ragged:
    """Per video (T_i, classes) bool from an events TSV (the inverse of :func:`write_events_tsv`).

    Rows of videos not in ``videos`` or of unknown classes, times that are not numbers, reversed
    or outside ``[0, T_i]`` are refused with one line naming the file and row.
    """
    path = Path(path)
    lengths = np.asarray(lengths, dtype=np.int64)
    row_of = {v: i for i, v in enumerate(videos)}
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.zeros((int(offsets[-1]), len(vocab)), dtype=bool)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AvparseError(f"{path}: cannot read ({exc})") from None
    if not lines or tuple(lines[0].split("\t")) != EVENT_COLUMNS:
        raise AvparseError(f"{path}: header must be {' '.join(EVENT_COLUMNS)} (tab-separated)")
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        where = f"{path}:{n}"
        if len(cells) != len(EVENT_COLUMNS):
            raise AvparseError(f"{where}: expected {len(EVENT_COLUMNS)} tab-separated cells")
        video, onset_text, offset_text, label = cells
        if video not in row_of:
            raise AvparseError(f"{where}: video {video!r} is not in the split")
        if label not in vocab:
            raise AvparseError(f"{where}: unknown class {label!r}")
        try:
            onset, offset = float(onset_text), float(offset_text)
        except ValueError:
            raise AvparseError(f"{where}: onset and offset must be numbers of seconds") from None
        i = row_of[video]
        t = int(lengths[i])
        if not (0 <= onset <= offset <= t):
            raise AvparseError(f"{where}: [{onset_text}, {offset_text}] is not inside [0, {t}]")
        first, stop = math.floor(onset), min(math.ceil(offset), t)
        values[offsets[i] + first : offsets[i] + stop, vocab.index(label)] = True
    return Ragged(values, offsets)


__all__ = ["EVENT_COLUMNS", "read_events_tsv", "write_events_tsv"]
