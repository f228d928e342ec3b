"""The LLP annotation formats, read and written: weak clip tags and dense audio / visual events.

This is the one module that knows these tab-separated formats; the evaluation, the synthetic
generator and prediction writers all go through it. The files are read once into arrays (no per-clip filtering), validated row by row, and every
problem is reported as one line naming the file and line number. The real files' quirks are
accepted exactly as the published evaluation treats them: zero-length events mark nothing,
training filenames may carry decimal times, and dense rows of clips outside the split are ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np

from avparse.data.layout import CLIP_ID_LENGTH, LLP_FILES, SEGMENTS, SPLITS
from avparse.errors import AvparseError
from avparse.utils.text import count
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


def _read_text(path: Path) -> str:
    """The text of an annotation file; an unreadable or non-UTF-8 file is one line naming where."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found") from None
    except OSError as exc:
        raise AnnotationError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise AnnotationError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column})"
        ) from None


def _table(path: Path) -> list[list[str]]:
    """All rows of a tab-separated file, split by ``csv`` (quotes as the csv module reads them)."""
    import csv  # the careful path only: plain files are split by _plain_table
    import io

    reader = csv.reader(io.StringIO(_read_text(path), newline=""), delimiter="\t")
    try:
        return list(reader)
    except csv.Error as exc:
        raise AnnotationError(f"{path}:{reader.line_num}: unreadable row ({exc})") from None


def _header(path: Path, table: list[list[str]], columns: Sequence[str]) -> list[str]:
    if not table:
        raise AnnotationError(f"{path}:1: empty file, expected a header row")
    header = [h.strip() for h in table[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise AnnotationError(
            f"{path}:1: missing column {missing[0]!r} (header has {', '.join(header)})"
        )
    return header


def _rows(path: Path, columns: Sequence[str]):
    """Yield ``(row_number, row_dict)`` for a tab-separated file with a header row."""
    table = _table(path)
    header = _header(path, table, columns)
    positions = [header.index(c) for c in columns]
    width = len(header)
    for number, row in enumerate(table[1:], start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            raise AnnotationError(
                f"{path}:{number}: malformed row: {count(len(row), 'field')}, expected {width}"
            )
        yield number, {c: row[p].strip() for c, p in zip(columns, positions, strict=True)}


def _fast_columns(path: Path, columns: Sequence[str]) -> list[Sequence[str]] | None:
    """The stripped ``columns`` of a plain table, row ``i`` (from 0) being table row ``i + 2``.

    Returns None whenever the rows need a closer look (blank rows, rows of the wrong width, a
    missing column, an unreadable file): the caller then takes the careful path, which accepts or
    reports exactly as before. The split is ``csv``'s, the checks are on whole columns.
    """
    try:
        text = _read_text(path)
        table = _plain_table(text)
        if table is None:  # quotes, carriage returns, NUL: csv's own reader
            table = _table(path)
        header = _header(path, table, columns)
    except AnnotationError:
        return None
    width = len(header)
    body = table[1:]
    if body and set(map(len, body)) != {width}:
        return None  # a blank row or a row of another width
    cells = list(zip(*body, strict=True)) if body else [() for _ in header]
    return [list(map(str.strip, cells[header.index(c)])) for c in columns]


def _plain_table(text: str) -> list[list[str]] | None:
    """The rows of a tab-separated text that has nothing for ``csv`` to interpret (no quote,
    carriage return or NUL): split on newlines and tabs, exactly the rows ``csv.reader`` gives
    (a blank line is the row ``[""]`` here and ``[]`` there: both have the wrong width, so the
    careful path reads such a file). None when the text needs ``csv``."""
    if '"' in text or "\r" in text or "\x00" in text:
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last row
    return list(map(str.split, lines, repeat("\t")))


def _all_safe(names: Sequence[str]) -> bool:
    """Whether every name passes :func:`check_filename` (checked once on the joined names)."""
    unique = set(names)
    joined = ":".join(unique)  # ':' can neither create '..' nor match _UNSAFE
    return not (_UNSAFE.search(joined) or ".." in joined or "" in unique or "." in unique)


_WHOLE_SECONDS = {str(i): i for i in range(SEGMENTS + 1)}


def _fast_classes(labels: Sequence[str], vocab: Vocabulary) -> tuple[list[int], list[int]] | None:
    """(row, class) pairs of the label cells, or None if any cell needs the careful path."""
    index = {name: i for i, name in enumerate(vocab.names)}
    single = list(map(index.get, labels))
    if None not in single:
        return list(range(len(single))), single  # type: ignore[return-value]
    rows: list[int] = []
    classes: list[int] = []
    start = 0
    while True:  # rows naming one class are copied in stretches; the others are split
        try:
            i = single.index(None, start)
        except ValueError:
            i = len(single)
        rows.extend(range(start, i))
        classes.extend(single[start:i])  # type: ignore[arg-type]
        if i == len(single):
            return rows, classes
        parts = [index.get(p.strip()) for p in labels[i].split(",")]
        if None in parts:
            return None
        rows.extend([i] * len(parts))
        classes.extend(parts)  # type: ignore[arg-type]
        start = i + 1


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
    if not 0 <= value <= SEGMENTS:  # echo the text: int(1e308) would print 309 digits
        raise AnnotationError(f"{where}: {column} {text.strip()} is outside [0, {SEGMENTS}]")
    return int(value)


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
    parsed = _fast_weak(path, vocab)
    filenames, rows = parsed if parsed is not None else _careful_weak(path, vocab)
    labels = np.zeros((len(filenames), len(vocab)), dtype=bool)
    labels[rows[0], rows[1]] = True
    return WeakLabels(filenames, labels, vocab)


_Pairs = tuple[list[int], list[int]]


def _fast_weak(path: Path, vocab: Vocabulary) -> tuple[list[str], _Pairs] | None:
    parsed = _fast_columns(path, WEAK_COLUMNS)
    if parsed is None:
        return None
    filenames, labels = list(parsed[0]), parsed[1]
    if len(set(filenames)) != len(filenames) or not _all_safe(filenames):
        return None
    pairs = _fast_classes(labels, vocab)
    return None if pairs is None else (filenames, pairs)


def _careful_weak(path: Path, vocab: Vocabulary) -> tuple[list[str], _Pairs]:
    filenames: list[str] = []
    rows: list[int] = []
    classes: list[int] = []
    seen: dict[str, int] = {}
    for number, row in _rows(path, WEAK_COLUMNS):
        where = f"{path}:{number}"
        name = check_filename(row["filename"], where)
        if name in seen:
            raise AnnotationError(
                f"{where}: duplicate filename {name!r} (first on line {seen[name]})"
            )
        seen[name] = number
        for c in _classes(row["event_labels"], vocab, where):
            rows.append(len(filenames))
            classes.append(c)
        filenames.append(name)
    return filenames, (rows, classes)


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

    Plain files take a fast path (split, dictionary look-ups); anything unusual, including every
    error, goes through the careful csv path, so both accept and refuse exactly the same files.
    """
    path = Path(path)
    rows = _fast_dense(path, vocab, reversed_rows)
    return rows if rows is not None else _careful_dense(path, vocab, reversed_rows)


def _reversed_quirk(where: str, onset: int, offset: int) -> str:
    return (
        f"{where}: onset {onset} is after offset {offset}"
        " (marks nothing, as in the published evaluation)"
    )


def _fast_dense(path: Path, vocab: Vocabulary, reversed_rows: str) -> DenseRows | None:
    parsed = _fast_columns(path, DENSE_COLUMNS)
    if parsed is None:
        return None
    filenames, onset_text, offset_text, labels = parsed
    if not _all_safe(filenames):
        return None
    onsets = list(map(_WHOLE_SECONDS.get, onset_text))
    offsets = list(map(_WHOLE_SECONDS.get, offset_text))
    if None in onsets or None in offsets:
        return None
    pairs = _fast_classes(labels, vocab)
    if pairs is None:
        return None
    row = np.asarray(pairs[0], dtype=np.int64)
    cls = np.asarray(pairs[1], dtype=np.int64)
    on = np.asarray(onsets, dtype=np.int64)
    off = np.asarray(offsets, dtype=np.int64)
    quirks = []
    reversed_at = np.flatnonzero(on > off).tolist()
    if reversed_at:
        if reversed_rows != "ignore":
            return None
        quirks = [_reversed_quirk(f"{path}:{i + 2}", on[i], off[i]) for i in reversed_at]
        keep = on[row] <= off[row]
        row, cls = row[keep], cls[keep]
    if not reversed_at and len(row) == len(filenames):  # one class a row: row i is event i
        return DenseRows(list(filenames), cls, on, off, quirks)
    return DenseRows([filenames[i] for i in row.tolist()], cls, on[row], off[row], quirks)


def _careful_dense(path: Path, vocab: Vocabulary, reversed_rows: str) -> DenseRows:
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
            if reversed_rows != "ignore":
                raise AnnotationError(f"{where}: onset {onset} is after offset {offset}")
            quirks.append(_reversed_quirk(where, onset, offset))
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
        map(position.get, rows.filenames, repeat(-1)), dtype=np.int64, count=len(rows.filenames)
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
                from avparse.data.roots import task_hint

                hint = task_hint(self.root, "llp")
                raise AvparseError(f"{path}: split file for {split!r} not found{hint}")
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


# --- writing ---------------------------------------------------------------------------------------


def runs(matrix: np.ndarray) -> np.ndarray:
    """Maximal runs of positive segments in a (N, T, C) bool array: the rows of a dense file.

    Returns an int array of rows ``(clip, class, onset, offset)`` (offset exclusive), sorted by
    clip, then class, then onset.
    """
    m = np.asarray(matrix, dtype=bool)
    n, t, c = m.shape
    padded = np.zeros((n, c, t + 2), dtype=np.int8)
    padded[:, :, 1:-1] = m.transpose(0, 2, 1)
    edges = np.diff(padded, axis=2)
    clip_s, cls_s, onset = np.nonzero(edges == 1)
    _, _, offset = np.nonzero(edges == -1)
    return np.stack([clip_s, cls_s, onset, offset], axis=1).astype(np.int64)


def write_dense_tsv(
    path: str | Path, filenames: Sequence[str], matrix: np.ndarray, vocab: Vocabulary = LLP
) -> int:
    """Write events in the dense annotation format, one row per maximal run; returns row count.

    ``matrix`` is (clips, 10, classes) bool, row i for ``filenames[i]``. The file is written
    atomically; clips without events have no rows. :func:`read_dense` reads it back exactly.
    """
    rows = runs(matrix)
    names = vocab.names
    from avparse.utils.atomic import atomic_open  # writers only: `score` never loads it

    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(DENSE_COLUMNS) + "\n")
        for clip, cls, onset, offset in rows.tolist():
            fh.write(f"{filenames[clip]}\t{onset}\t{offset}\t{names[cls]}\n")
    return len(rows)


def write_weak_tsv(
    path: str | Path, filenames: Sequence[str], labels: np.ndarray, vocab: Vocabulary = LLP
) -> None:
    """Write clip tags in the weak annotation format (``filename<TAB>a,b``), atomically.

    ``labels`` is (clips, classes) bool; every clip needs at least one tag, as :func:`read_weak`
    refuses an empty label cell.
    """
    labels = np.asarray(labels, dtype=bool)
    if labels.shape != (len(filenames), len(vocab)):
        raise ValueError(f"labels must be ({len(filenames)}, {len(vocab)}), got {labels.shape}")
    untagged = np.flatnonzero(~labels.any(axis=1))
    if untagged.size:
        raise ValueError(f"clip {filenames[int(untagged[0])]!r} has no tag")
    names = vocab.names
    from avparse.utils.atomic import atomic_open  # writers only: `score` never loads it

    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(WEAK_COLUMNS) + "\n")
        for name, row in zip(filenames, labels, strict=True):
            fh.write(f"{name}\t{','.join(names[c] for c in np.flatnonzero(row))}\n")
