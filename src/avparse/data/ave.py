"""Readers for the AVE (Audio-Visual Event localisation) annotation and split files.

``Annotations.txt`` has one clip per line, ``Category&VideoID&Quality&StartTime&EndTime``; the
event is audio-visual over segments ``StartTime .. EndTime-1`` and every other segment is
background (label index 28). A header line is accepted but not required. The split files
``{train,val,test}_order.h5`` hold, in the HDF5 dataset ``order``, row indices into the clips of
``Annotations.txt`` (0-based, header excluded).

Quirks of the real file, accepted as the AVE evaluation treats them: one row has
``StartTime == EndTime`` (it marks no segment, so the clip is all background; it is recorded in
``quirks``), and 45 video ids appear in two rows with different categories. Rows, not ids, are
clips; feature and harvest files are named by id, so such a video's files are shared by its rows
(:meth:`AVEClips.id_labels` gives the union of their classes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avparse.data.layout import CLIP_ID_LENGTH, SEGMENTS
from avparse.errors import AvparseError, require
from avparse.vocab import AVE, Vocabulary

AVE_FILES: dict[str, str] = {
    "annotations": "Annotations.txt",
    "train": "train_order.h5",
    "val": "val_order.h5",
    "test": "test_order.h5",
}
"""AVE annotation and split files, at the root of an AVE data root."""

SPLIT_DATASET = "order"
"""Name of the HDF5 dataset holding a split's row indices."""

BACKGROUND = len(AVE)
"""Segment label index of background (28): no audio-visual event in the segment."""

_ID = re.compile(rf"^[A-Za-z0-9_-]{{{CLIP_ID_LENGTH}}}$")
_HEADER = "category&"


class AVEAnnotationError(AvparseError):
    """A malformed AVE annotation or split file; the message is ``file:line: what``."""


@dataclass(frozen=True)
class AVEClips:
    """All clips of an ``Annotations.txt``, one row each, as arrays."""

    ids: list[str]
    """YouTube id of each clip (names its feature and harvest files; may repeat, see module)."""
    labels: np.ndarray
    """(N, 28) bool: the clip's category (weak, video-level label)."""
    segments: np.ndarray
    """(N, 10, 29) bool one-hot segment labels; index 28 is background."""
    onsets: np.ndarray
    """(N,) int: first event segment."""
    offsets: np.ndarray
    """(N,) int: end of the event (exclusive)."""
    quality: list[str] = field(default_factory=list)
    quirks: list[str] = field(default_factory=list)
    """``file:line: what`` for each accepted oddity (zero-length events)."""
    vocab: Vocabulary = field(default=AVE, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def categories(self) -> np.ndarray:
        """(N,) int class index of each clip."""
        return self.labels.argmax(1)

    @property
    def segment_labels(self) -> np.ndarray:
        """(N, 10) int segment label in 0..28 (28 = background)."""
        return self.segments.argmax(2)

    def subset(self, rows: np.ndarray) -> AVEClips:
        """The clips at ``rows`` (e.g. a split's order), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return AVEClips(
            [self.ids[i] for i in rows],
            self.labels[rows],
            self.segments[rows],
            self.onsets[rows],
            self.offsets[rows],
            [self.quality[i] for i in rows] if self.quality else [],
            list(self.quirks),
            self.vocab,
        )

    def id_labels(self) -> tuple[list[str], np.ndarray]:
        """Unique ids (first-appearance order) and the union of their rows' labels (M, 28)."""
        order: dict[str, int] = {}
        for clip in self.ids:
            order.setdefault(clip, len(order))
        out = np.zeros((len(order), len(self.vocab)), dtype=bool)
        index = np.fromiter((order[c] for c in self.ids), dtype=np.int64, count=len(self.ids))
        np.logical_or.at(out, index, self.labels)
        return list(order), out


def read_ave_annotations(path: str | Path, vocab: Vocabulary = AVE) -> AVEClips:
    """Read and validate ``Annotations.txt``; every problem is one ``file:line: what`` error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AVEAnnotationError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AVEAnnotationError(f"{path}: cannot read ({exc})") from None
    ids: list[str] = []
    classes: list[int] = []
    onsets: list[int] = []
    offsets: list[int] = []
    quality: list[str] = []
    quirks: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or (not ids and line.lower().startswith(_HEADER)):
            continue
        where = f"{path}:{number}"
        parts = [p.strip() for p in line.split("&")]
        if len(parts) != 5:
            raise AVEAnnotationError(
                f"{where}: malformed line: {len(parts)} '&'-separated fields, expected 5 "
                "(Category&VideoID&Quality&StartTime&EndTime)"
            )
        category, video, qual, start_text, end_text = parts
        if category not in vocab:
            raise AVEAnnotationError(f"{where}: unknown category {category!r}")
        if not _ID.match(video):
            raise AVEAnnotationError(
                f"{where}: bad video id {video!r} (expected {CLIP_ID_LENGTH} characters "
                "of A-Z, a-z, 0-9, '_' or '-')"
            )
        start = _second(start_text, "StartTime", where)
        end = _second(end_text, "EndTime", where)
        if start > end:
            raise AVEAnnotationError(f"{where}: StartTime {start} is after EndTime {end}")
        if start == end:
            quirks.append(f"{where}: StartTime equals EndTime ({start}); the clip is background")
        ids.append(video)
        classes.append(vocab.index(category))
        onsets.append(start)
        offsets.append(end)
        quality.append(qual)
    if not ids:
        raise AVEAnnotationError(f"{path}: no clips")
    n = len(ids)
    labels = np.zeros((n, len(vocab)), dtype=bool)
    labels[np.arange(n), classes] = True
    on = np.asarray(onsets, dtype=np.int64)
    off = np.asarray(offsets, dtype=np.int64)
    t = np.arange(SEGMENTS)
    event = (t >= on[:, None]) & (t < off[:, None])
    seg_label = np.where(event, np.asarray(classes)[:, None], len(vocab))
    segments = np.zeros((n, SEGMENTS, len(vocab) + 1), dtype=bool)
    np.put_along_axis(segments, seg_label[:, :, None], True, axis=2)
    return AVEClips(ids, labels, segments, on, off, quality, quirks, vocab)


def _second(text: str, column: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise AVEAnnotationError(f"{where}: {column} {text!r} is not a whole second") from None
    if not 0 <= value <= SEGMENTS:
        raise AVEAnnotationError(f"{where}: {column} {value} is outside [0, {SEGMENTS}]")
    return value


def read_ave_split(path: str | Path, num_clips: int | None = None) -> np.ndarray:
    """Row indices of a split file (HDF5 dataset ``order``), validated against ``num_clips``."""
    h5py = require("h5py", "ave")
    path = Path(path)
    if not path.is_file():
        raise AVEAnnotationError(f"{path}: split file not found")
    try:
        with h5py.File(path, "r") as fh:
            if SPLIT_DATASET not in fh:
                raise AVEAnnotationError(f"{path}: no HDF5 dataset {SPLIT_DATASET!r}")
            order = np.asarray(fh[SPLIT_DATASET][()])
    except OSError as exc:
        raise AVEAnnotationError(f"{path}: not a readable HDF5 file ({exc})") from None
    if order.ndim != 1 or not np.issubdtype(order.dtype, np.integer):
        raise AVEAnnotationError(
            f"{path}: '{SPLIT_DATASET}' must be a 1-D integer array, got {order.dtype} "
            f"{order.shape}"
        )
    order = order.astype(np.int64)
    if order.size and order.min() < 0:
        raise AVEAnnotationError(f"{path}: negative row index {int(order.min())}")
    if num_clips is not None and order.size and order.max() >= num_clips:
        raise AVEAnnotationError(
            f"{path}: row index {int(order.max())} is beyond the {num_clips} annotated clips"
        )
    if len(np.unique(order)) != len(order):
        raise AVEAnnotationError(f"{path}: repeated row indices")
    return order


def write_ave_split(path: str | Path, order: np.ndarray) -> None:
    """Write a split file (HDF5 dataset ``order``) atomically."""
    from avparse.utils.atomic import atomic_path

    h5py = require("h5py", "ave")
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as fh:
        fh.create_dataset(SPLIT_DATASET, data=np.asarray(order, dtype=np.int64))


@dataclass
class AVEAnnotations:
    """The AVE annotation and split files at the root of an AVE data root."""

    root: Path
    vocab: Vocabulary = AVE
    _clips: AVEClips | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise AvparseError(f"{self.root}: data root not found")

    @property
    def clips(self) -> AVEClips:
        if self._clips is None:
            path = self.root / AVE_FILES["annotations"]
            if not path.is_file():
                from avparse.data.roots import task_hint

                hint = task_hint(self.root, "ave")
                raise AVEAnnotationError(f"{path}: AVE annotation file not found{hint}")
            self._clips = read_ave_annotations(path, self.vocab)
        return self._clips

    def split(self, name: str) -> AVEClips:
        """The clips of ``train``, ``val`` or ``test`` in the split file's order."""
        if name not in ("train", "val", "test"):
            raise AvparseError(f"unknown split {name!r} (expected train, val or test)")
        order = read_ave_split(self.root / AVE_FILES[name], len(self.clips))
        return self.clips.subset(order)


def is_ave_root(root: str | Path) -> bool:
    """Whether ``root`` holds an AVE ``Annotations.txt``."""
    return (Path(root) / AVE_FILES["annotations"]).is_file()
