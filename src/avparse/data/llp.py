"""Readers for the LLP annotation files: weak clip tags and dense audio / visual events.

The files are read once into arrays (no per-clip filtering), validated row by row, and every
problem is reported as one line naming the file and line number. The real files' quirks are
accepted exactly as the published evaluation treats them: zero-length events mark nothing,
training filenames may carry decimal times, and dense rows of clips outside the split are ignored.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avparse.data.layout import CLIP_ID_LENGTH, LLP_FILES, SEGMENTS, SPLITS
from avparse.errors import AvparseError
from avparse.vocab import LLP, Vocabulary

WEAK_COLUMNS = ("filename", "event_labels")
DENSE_COLUMNS = ("filename", "onset", "offset", "event_labels")

_UNSAFE = re.compile(r"[/\\\x00-\x1f]")


class AnnotationError(AvparseError):
    """A malformed annotation or prediction file; the message is ``file:line: what``."""


def check_filename(name: str, where: str = "") -> str:
    """Refuse a clip filename that could escape a folder or is empty."""
    prefix = f"{where}: " if where else ""
    if not name:
        raise AnnotationError(f"{prefix}empty filename")
    if _UNSAFE.search(name) or ".." in name or name == ".":
        raise AnnotationError(f"{prefix}unsafe filename {name!r} (path separators or '..')")
    return name


def clip_id(filename: str) -> str:
    """The id naming a clip's feature files: the first 11 characters of its filename."""
    return filename[:CLIP_ID_LENGTH]


def _rows(path: Path, columns: Sequence[str]):
    """Yield ``(line_number, row_dict)`` for a tab-separated file with a header row."""
    try:
        fh = open(path, newline="", encoding="utf-8")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found") from None
    except OSError as exc:
        raise AnnotationError(f"{path}: cannot read ({exc.strerror})") from None
    with fh:
        reader = csv.reader(fh, delimiter="\t")
        try:
            header = next(reader)
        except StopIteration:
            raise AnnotationError(f"{path}:1: empty file, expected a header row") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AnnotationError(f"{path}:1: unreadable header ({exc})") from None
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise AnnotationError(
                f"{path}:1: missing column {missing[0]!r} (header has {', '.join(header)})"
            )
        positions = [header.index(c) for c in columns]
        width = len(header)
        try:
            for number, row in enumerate(reader, start=2):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != width:
                    raise AnnotationError(
                        f"{path}:{number}: malformed row: {len(row)} fields, expected {width}"
                    )
                yield number, {c: row[p].strip() for c, p in zip(columns, positions, strict=True)}
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AnnotationError(f"{path}: unreadable row ({exc})") from None


def _classes(text: str, vocab: Vocabulary, where: str) -> list[int]:
    out = []
    for name in text.split(","):
        name = name.strip()
        if not name:
            raise AnnotationError(f"{where}: empty class name in {text!r}")
        if name not in vocab:
            raise AnnotationError(f"{where}: unknown class {name!r}")
        out.append(vocab.index(name))
    return out


def _seconds(text: str, column: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value) or value != int(value):
        raise AnnotationError(f"{where}: {column} {text!r} is not a whole second")
    value = int(value)
    if not 0 <= value <= SEGMENTS:
        raise AnnotationError(f"{where}: {column} {value} is outside [0, {SEGMENTS}]")
    return value


@dataclass(frozen=True)
class WeakLabels:
    """Clip-level tags of one split: ``labels[i, c]`` is True if class c occurs in clip i."""

    filenames: list[str]
    labels: np.ndarray
    vocab: Vocabulary = field(default=LLP, repr=False)

    def __len__(self) -> int:
        return len(self.filenames)

    @property
    def ids(self) -> list[str]:
        """Feature-file ids (first 11 characters of each filename)."""
        return [clip_id(f) for f in self.filenames]


def read_weak(path: str | Path, vocab: Vocabulary = LLP) -> WeakLabels:
    """Read a weak-label file (``filename<TAB>event_labels``) into a (clips, classes) array."""
    path = Path(path)
    filenames: list[str] = []
    rows: list[list[int]] = []
    seen: dict[str, int] = {}
    for number, row in _rows(path, WEAK_COLUMNS):
        where = f"{path}:{number}"
        name = check_filename(row["filename"], where)
        if name in seen:
            raise AnnotationError(
                f"{where}: duplicate filename {name!r} (first on line {seen[name]})"
            )
        seen[name] = number
        filenames.append(name)
        rows.append(_classes(row["event_labels"], vocab, where))
    labels = np.zeros((len(filenames), len(vocab)), dtype=bool)
    for i, classes in enumerate(rows):
        labels[i, classes] = True
    return WeakLabels(filenames, labels, vocab)


@dataclass(frozen=True)
class DenseRows:
    """Validated rows of a dense file: clip filename, class index, onset, offset per event."""

    filenames: list[str]
    classes: np.ndarray
    onsets: np.ndarray
    offsets: np.ndarray
    quirks: list[str] = field(default_factory=list)
    """``file:line: what`` for each accepted reversed row (it marks nothing)."""


def read_dense_rows(
    path: str | Path, vocab: Vocabulary = LLP, *, reversed_rows: str = "error"
) -> DenseRows:
    """Read and validate a dense file (``filename, onset, offset, event_labels``).

    A row may name several comma-separated classes (as prediction files written by other tools
    do); each becomes its own event. ``reversed_rows="ignore"`` accepts a row with onset after
    offset as the published evaluation does (the slice ``onset:offset`` is empty, so it marks
    nothing) and records it in ``quirks``; the real ``AVVP_eval_audio.csv`` has one such row.
    Predictions are read with the default, ``"error"``.
    """
    path = Path(path)
    names: list[str] = []
    classes: list[int] = []
    onsets: list[int] = []
    offsets: list[int] = []
    quirks: list[str] = []
    for number, row in _rows(path, DENSE_COLUMNS):
        where = f"{path}:{number}"
        name = check_filename(row["filename"], where)
        onset = _seconds(row["onset"], "onset", where)
        offset = _seconds(row["offset"], "offset", where)
        if onset > offset:
            message = f"{where}: onset {onset} is after offset {offset}"
            if reversed_rows != "ignore":
                raise AnnotationError(message)
            quirks.append(message + " (marks nothing, as in the published evaluation)")
            continue
        for c in _classes(row["event_labels"], vocab, where):
            names.append(name)
            classes.append(c)
            onsets.append(onset)
            offsets.append(offset)
    return DenseRows(
        names,
        np.asarray(classes, dtype=np.int64),
        np.asarray(onsets, dtype=np.int64),
        np.asarray(offsets, dtype=np.int64),
        quirks,
    )


def dense_matrix(
    rows: DenseRows, filenames: Sequence[str], num_classes: int = len(LLP)
) -> tuple[np.ndarray, int]:
    """Scatter dense rows into a (clips, 10, classes) bool array, in one vectorised pass.

    Rows whose filename is not in ``filenames`` are skipped (the published evaluation never
    scores them); their count is returned beside the array. An event covers segments
    ``onset .. offset-1``, so a zero-length event marks nothing.
    """
    position = {name: i for i, name in enumerate(filenames)}
    clip = np.fromiter(
        (position.get(n, -1) for n in rows.filenames), dtype=np.int64, count=len(rows.filenames)
    )
    keep = clip >= 0
    out = np.zeros((len(filenames), SEGMENTS, num_classes), dtype=bool)
    segments = np.arange(SEGMENTS)
    covered = (segments >= rows.onsets[keep, None]) & (segments < rows.offsets[keep, None])
    r, s = np.nonzero(covered)
    out[clip[keep][r], s, rows.classes[keep][r]] = True
    return out, int((~keep).sum())


def read_dense(path: str | Path, filenames: Sequence[str], vocab: Vocabulary = LLP) -> np.ndarray:
    """Dense labels of ``filenames`` from a dense file, as a (clips, 10, classes) bool array."""
    matrix, _ = dense_matrix(read_dense_rows(path, vocab), filenames, len(vocab))
    return matrix


@dataclass
class LLPAnnotations:
    """The annotation files at the root of a data root in the published layout."""

    root: Path
    vocab: Vocabulary = LLP
    _weak: dict[str, WeakLabels] = field(default_factory=dict, repr=False)
    _dense: dict[str, DenseRows] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise AvparseError(f"{self.root}: data root not found")

    def path(self, key: str) -> Path:
        return self.root / LLP_FILES[key]

    def weak(self, split: str) -> WeakLabels:
        """Clip tags of ``train``, ``val`` or ``test``."""
        if split not in SPLITS:
            raise AvparseError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
        if split not in self._weak:
            path = self.path(split)
            if not path.is_file():
                raise AvparseError(f"{path}: split file for {split!r} not found")
            self._weak[split] = read_weak(path, self.vocab)
        return self._weak[split]

    def dense(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Dense (audio, visual) labels of a split's clips, each (clips, 10, classes) bool."""
        filenames = self.weak(split).filenames
        out = []
        for key in ("dense_audio", "dense_visual"):
            if key not in self._dense:
                path = self.path(key)
                if not path.is_file():
                    raise AvparseError(f"{path}: dense annotation file not found")
                self._dense[key] = read_dense_rows(path, self.vocab, reversed_rows="ignore")
            out.append(dense_matrix(self._dense[key], filenames, len(self.vocab))[0])
        return out[0], out[1]

    def dense_quirks(self) -> list[str]:
        """Accepted oddities of the dense files (reversed rows), one line each."""
        return [q for rows in self._dense.values() for q in rows.quirks]
