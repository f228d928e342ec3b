"""UnAV-100's annotation file: splits, durations, segments per video, weak and dense labels.

The file (``unav100_annotations.json``, published with UnAV-100's code) is
``{"version": ..., "database": {VIDEO_ID: {"duration": s, "subset": "train" | "validation" |
"test", "annotations": [{"segment": [start, end], "label": name, "label_id": 0..99}, ...]}}}``.
Every event is audio-visual; events may overlap.

Conventions (``docs/reference.md`` section 12, UWAV's ``UnAV_dataset``):

* a video of ``duration`` seconds has ``T = ceil(duration)`` one-second segments;
* an event ``[start, end]`` covers the segments ``floor(start)`` up to ``ceil(end)``
  (exclusive), clipped to ``T`` (a zero-length event at a whole second covers none);
* the weak label of a video is the set of classes of its annotations;
* avparse's split names map to the file's subsets: ``train`` -> ``train``, ``val`` ->
  ``validation``, ``test`` -> ``test`` (the file's own names are accepted too).

Bad input is one line naming the file, the video id and the field. With ``strict=False`` every
problem is collected in :attr:`UnAVAnnotations.problems` (what ``avparse data check`` reports)
and the videos with problems are left out. Numpy only; reading the whole file into dense labels
takes well under a second (``benchmarks/unav_reader.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avparse.data.layout import UNAV_ANNOTATIONS
from avparse.data.ragged import Ragged
from avparse.errors import AvparseError
from avparse.vocab import UNAV, Vocabulary

SUBSETS: dict[str, str] = {"train": "train", "val": "validation", "test": "test"}
"""avparse split name -> the file's ``subset`` value."""

_SPLIT_OF_SUBSET = {v: k for k, v in SUBSETS.items()}

VIDEO_KEYS = ("duration", "subset", "annotations")
EVENT_KEYS = ("segment", "label", "label_id")


def split_name(split: str) -> str:
    """avparse's name of a split given either name (``val`` or ``validation``)."""
    if split in SUBSETS:
        return split
    if split in _SPLIT_OF_SUBSET:
        return _SPLIT_OF_SUBSET[split]
    raise AvparseError(f"unknown UnAV-100 split {split!r} (known: train, val, test)")


@dataclass(frozen=True)
class SplitEvents:
    """One split's videos and events as flat arrays (video rows in file order)."""

    videos: tuple[str, ...]
    durations: np.ndarray
    """(N,) float64 seconds."""
    video: np.ndarray
    """(E,) int64: row of each event's video."""
    label: np.ndarray
    """(E,) int64: class index (= ``label_id``)."""
    start: np.ndarray
    """(E,) float64 seconds."""
    end: np.ndarray
    """(E,) float64 seconds."""

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64: segments per video, ``ceil(duration)``."""
        return np.ceil(self.durations).astype(np.int64)

    def segment_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per event, the first segment and the segment after the last (clipped to T)."""
        first = np.floor(self.start).astype(np.int64)
        stop = np.minimum(np.ceil(self.end).astype(np.int64), self.lengths[self.video])
        return first, np.maximum(stop, first)

    def weak(self, num_classes: int) -> np.ndarray:
        """(N, classes) bool: the classes each video's events name."""
        out = np.zeros((len(self.videos), num_classes), dtype=bool)
        out[self.video, self.label] = True
        return out

    def dense(self, num_classes: int) -> Ragged:
        """Per video (T_i, classes) bool: which classes are on in each segment."""
        lengths = self.lengths
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.zeros((int(offsets[-1]), num_classes), dtype=bool)
        first, stop = self.segment_bounds()
        span = stop - first
        total = int(span.sum())
        if total:
            # every (segment row, class) an event covers, without a Python loop
            starts = offsets[self.video] + first
            run_start = np.repeat(starts - np.cumsum(span) + span, span)
            rows = run_start + np.arange(total)
            values[rows, np.repeat(self.label, span)] = True
        return Ragged(values, offsets)


class UnAVAnnotations:
    """The annotation file of UnAV-100, read once and validated.

    Args:
        path_or_root: the JSON file, or a data root holding ``unav100_annotations.json``.
        vocab: the class vocabulary (``label_id`` = index; names must match).
        strict: raise on the first problem (one line); with False, collect every problem in
            :attr:`problems` and leave the videos that have one out of the splits.
    """

    def __init__(
        self, path_or_root: str | Path, *, vocab: Vocabulary = UNAV, strict: bool = True
    ) -> None:
        path = Path(path_or_root)
        if path.is_dir():
            path = path / UNAV_ANNOTATIONS
        self.path = path
        self.vocab = vocab
        self.problems: list[str] = []
        self._strict = strict
        self.version: str | None = None
        self._splits = self._read()

    # --- reading -----------------------------------------------------------------------------
    def _problem(self, text: str) -> None:
        line = f"{self.path}: {text}"
        if self._strict:
            raise AvparseError(line)
        self.problems.append(line)

    def _read(self) -> dict[str, SplitEvents]:
        empty = {s: _empty_split() for s in SUBSETS}
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            self._problem("missing (UnAV-100's annotation file)")
            return empty
        except OSError as exc:
            self._problem(f"not readable ({exc.strerror or exc})")
            return empty
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._problem(f"not JSON ({str(exc).splitlines()[0]})")
            return empty
        if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
            self._problem("not a UnAV-100 annotation file (no 'database' object)")
            return empty
        version = data.get("version")
        self.version = str(version) if version is not None else None
        names = self.vocab.names
        num_classes = len(names)
        rows: dict[str, list] = {s: [] for s in SUBSETS}
        for vid, item in data["database"].items():
            parsed = self._video(vid, item, names, num_classes)
            if parsed is not None:
                split, duration, events = parsed
                rows[split].append((vid, duration, events))
        return {s: _split_arrays(r) for s, r in rows.items()}

    def _video(
        self, vid: str, item: object, names: list[str], num_classes: int
    ) -> tuple[str, float, list[tuple[int, float, float]]] | None:
        """One video's split, duration and events, or None (after reporting) when it is bad."""
        where = f"video {vid!r}"
        if not isinstance(item, dict):
            self._problem(f"{where}: not an object")
            return None
        missing = [k for k in VIDEO_KEYS if k not in item]
        if missing:
            self._problem(f"{where}: missing key {missing[0]!r}")
            return None
        duration = item["duration"]
        if not _number(duration) or not math.isfinite(duration) or duration <= 0:
            self._problem(f"{where}: duration {duration!r} is not a positive number of seconds")
            return None
        subset = item["subset"]
        if subset not in _SPLIT_OF_SUBSET:
            self._problem(f"{where}: subset {subset!r} is not train, validation or test")
            return None
        annotations = item["annotations"]
        if not isinstance(annotations, list):
            self._problem(f"{where}: annotations is not a list")
            return None
        events: list[tuple[int, float, float]] = []
        ok = True
        for i, event in enumerate(annotations):
            field = f"{where}: annotations[{i}]"
            if not isinstance(event, dict):
                self._problem(f"{field}: not an object")
                ok = False
                continue
            missing = [k for k in EVENT_KEYS if k not in event]
            if missing:
                self._problem(f"{field}: missing key {missing[0]!r}")
                ok = False
                continue
            label, label_id, segment = event["label"], event["label_id"], event["segment"]
            if not isinstance(label_id, int) or isinstance(label_id, bool):
                self._problem(f"{field}.label_id {label_id!r} is not a whole number")
                ok = False
                continue
            if not 0 <= label_id < num_classes:
                self._problem(f"{field}.label_id {label_id} is outside 0..{num_classes - 1}")
                ok = False
                continue
            if label != names[label_id]:
                self._problem(
                    f"{field}.label {label!r} does not match label_id {label_id} "
                    f"({names[label_id]!r})"
                )
                ok = False
                continue
            if (
                not isinstance(segment, list)
                or len(segment) != 2
                or not all(_number(x) and math.isfinite(x) for x in segment)
            ):
                self._problem(f"{field}.segment {segment!r} is not [start, end] in seconds")
                ok = False
                continue
            start, end = float(segment[0]), float(segment[1])
            if end < start:
                self._problem(f"{field}.segment [{start:g}, {end:g}] is reversed")
                ok = False
                continue
            if start < 0 or end > duration:
                self._problem(
                    f"{field}.segment [{start:g}, {end:g}] is outside [0, {duration:g}] "
                    "(the video's duration)"
                )
                ok = False
                continue
            events.append((label_id, start, end))
        if not ok:
            return None
        return _SPLIT_OF_SUBSET[subset], float(duration), events

    # --- per split ---------------------------------------------------------------------------
    def events(self, split: str) -> SplitEvents:
        """One split's videos and events as flat arrays."""
        return self._splits[split_name(split)]

    def videos(self, split: str) -> list[str]:
        """Video ids of ``split`` in file order (a feature file is ``<id>.npy``, or with the
        kind's suffix)."""
        return list(self.events(split).videos)

    def durations(self, split: str) -> np.ndarray:
        """(N,) float64: duration of each video in seconds."""
        return self.events(split).durations.copy()

    def lengths(self, split: str) -> np.ndarray:
        """(N,) int64: one-second segments per video, ``ceil(duration)``."""
        return self.events(split).lengths

    def weak(self, split: str) -> np.ndarray:
        """(N, classes) bool: the classes each video's annotations name."""
        return self.events(split).weak(len(self.vocab))

    def dense(self, split: str) -> Ragged:
        """Per video (T_i, classes) bool: which classes are on in each segment."""
        return self.events(split).dense(len(self.vocab))

    def __len__(self) -> int:
        return sum(len(s.videos) for s in self._splits.values())

    def counts(self) -> dict[str, int]:
        """Videos per split (avparse's names)."""
        return {s: len(e.videos) for s, e in self._splits.items()}


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _empty_split() -> SplitEvents:
    z = np.zeros(0, dtype=np.int64)
    f = np.zeros(0, dtype=np.float64)
    return SplitEvents((), f, z, z, f, f)


def _split_arrays(rows: list[tuple[str, float, list[tuple[int, float, float]]]]) -> SplitEvents:
    if not rows:
        return _empty_split()
    counts = np.fromiter((len(r[2]) for r in rows), dtype=np.int64, count=len(rows))
    flat = [e for r in rows for e in r[2]]
    ev = np.array(flat, dtype=np.float64).reshape(-1, 3)
    return SplitEvents(
        videos=tuple(r[0] for r in rows),
        durations=np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows)),
        video=np.repeat(np.arange(len(rows), dtype=np.int64), counts),
        label=ev[:, 0].astype(np.int64),
        start=ev[:, 1].copy(),
        end=ev[:, 2].copy(),
    )


def is_unav_root(root: str | Path) -> bool:
    """Whether ``root`` holds UnAV-100's annotation file."""
    return (Path(root) / UNAV_ANNOTATIONS).is_file()
