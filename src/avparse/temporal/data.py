"""A data root's split as the temporal teacher reads it: segment embeddings and labels.

One :class:`TeacherSplit` per split: clip ids, CLAP (T, 512) and CLIP (T, 768) segment
embeddings as :class:`~avparse.data.ragged.Ragged` arrays (``feats_CLAP/segment_feats`` and
``feats_CLIP/segment_feats``, :data:`SEGMENT_FOLDERS`), weak labels, and dense labels where the
root has them: audio and visual (LLP val/test), or audio-visual (UnAV-100, AVE: every event is
audio-visual, so audio = visual = audio-visual). A clip's length is its number of 1-s segments
(LLP / AVE 10, UnAV-100 ``ceil(duration)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avparse.data.layout import LLP_FILES, SEGMENT_FOLDERS
from avparse.data.ragged import Ragged
from avparse.errors import AvparseError
from avparse.utils.progress import progress as progress_bar
from avparse.utils.text import count
from avparse.vocab import Vocabulary, get_vocabulary

SEGMENT_DIMS = {"audio": 512, "visual": 768}
"""Widths of UWAV's segment embeddings (CLAP after projection, CLIP ViT-L/14 after projection)."""


@dataclass
class TeacherSplit:
    split: str
    ids: list[str]
    audio: Ragged
    visual: Ragged
    weak: np.ndarray
    """(N, C) bool."""
    dense_audio: Ragged | None = None
    """(T_i, C) bool per clip, or None where the split has no dense labels."""
    dense_visual: Ragged | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return self.audio.lengths

    @property
    def dense_av(self) -> Ragged | None:
        if self.dense_audio is None or self.dense_visual is None:
            return None
        return Ragged(self.dense_audio.values & self.dense_visual.values, self.dense_audio.offsets)


def root_kind(root: str | Path) -> str:
    """``llp``, ``ave`` or ``unav``: which annotations ``root`` holds."""
    from avparse.data.ave import is_ave_root

    root = Path(root)
    if not root.is_dir():
        raise AvparseError(f"{root}: data root not found")
    if (root / LLP_FILES["train"]).is_file() or (root / LLP_FILES["val"]).is_file():
        return "llp"
    if is_ave_root(root):
        return "ave"
    if _unav_root(root):
        return "unav"
    raise AvparseError(f"{root}: no LLP, AVE or UnAV-100 annotations found (is this a data root?)")


def _unav_root(root: Path) -> bool:
    from avparse.data.unav import is_unav_root

    return is_unav_root(root)


def root_vocabulary(root: str | Path) -> Vocabulary:
    return get_vocabulary(root_kind(root))


def harvest_hint(root: Path, modality: str) -> str:
    return (
        f"make it with `avparse harvest` (CLIP / CLAP segment embeddings, "
        f"`{SEGMENT_FOLDERS[modality]}`) into {root}"
    )


def read_segments(
    root: str | Path,
    ids: list[str],
    modality: str,
    lengths: np.ndarray | None,
    dim: int,
    *,
    progress: bool = False,
) -> Ragged:
    """Per-clip (T, dim) segment embeddings of ``ids`` as one Ragged (float32).

    ``lengths`` (when known) is each clip's T; every problem is one line naming the file.
    """
    root = Path(root)
    folder = root / SEGMENT_FOLDERS[modality]
    if not folder.is_dir():
        raise AvparseError(f"{folder}: folder not found; {harvest_hint(root, modality)}")
    arrays = []
    for i, clip in enumerate(progress_bar(ids, desc=f"{modality} segments", enabled=progress)):
        path = folder / f"{clip}.npy"
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise AvparseError(f"{path}: missing; {harvest_hint(root, modality)}") from None
        except (OSError, ValueError) as exc:
            raise AvparseError(f"{path}: not a readable .npy file ({exc})") from None
        if arr.ndim != 2 or arr.shape[1] != dim:
            raise AvparseError(f"{path}: shape {arr.shape}, expected (T, {dim})")
        if lengths is not None and len(arr) != int(lengths[i]):
            raise AvparseError(f"{path}: {count(len(arr), 'segment')}, expected {int(lengths[i])}")
        if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
            raise AvparseError(f"{path}: expected finite floating-point values")
        arrays.append(arr)
    return Ragged.from_arrays(arrays, tail=(dim,), dtype=np.float32)


def load_split(
    root: str | Path,
    split: str,
    *,
    dims: dict[str, int] | None = None,
    vocab: Vocabulary | None = None,
    progress: bool = False,
    segments: bool = True,
) -> TeacherSplit:
    """The ``split`` of ``root`` with its segment embeddings (widths ``dims``) and labels.

    ``segments=False`` reads the labels only (the embeddings are then (T_i, 0) arrays).
    """
    root = Path(root)
    kind = root_kind(root)
    vocab = vocab or get_vocabulary(kind)
    dims = dims or SEGMENT_DIMS
    dense_a = dense_v = None
    if kind == "llp":
        from avparse.data.llp import LLPAnnotations

        ann = LLPAnnotations(root, vocab)
        weak_labels = ann.weak(split)
        ids, weak = weak_labels.ids, weak_labels.labels.astype(bool)
        lengths = np.full(len(ids), 10, dtype=np.int64)
        if split != "train" and ann.path("dense_audio").is_file():
            a, v = ann.dense(split)
            dense_a = Ragged.from_arrays(list(a.astype(bool)), tail=(len(vocab),), dtype=bool)
            dense_v = Ragged.from_arrays(list(v.astype(bool)), tail=(len(vocab),), dtype=bool)
    elif kind == "ave":
        from avparse.data.ave import AVEAnnotations

        clips = AVEAnnotations(root, vocab).split(split)
        # an id may have several annotation rows: one clip per id, the union of its rows
        ids, weak = clips.id_labels()
        row_of = {c: i for i, c in enumerate(ids)}
        lengths = np.full(len(ids), 10, dtype=np.int64)
        seg = np.zeros((len(ids), 10, len(vocab)), dtype=bool)
        rows = np.array([row_of[c] for c in clips.ids], dtype=np.int64)
        np.logical_or.at(seg, rows, clips.segments[:, :, : len(vocab)].astype(bool))
        dense_a = Ragged.from_arrays(list(seg), tail=(len(vocab),), dtype=bool)
        dense_v = dense_a
    else:
        from avparse.data.unav import UnAVAnnotations

        unav = UnAVAnnotations(root)
        ids = list(unav.videos(split))
        weak = np.asarray(unav.weak(split), dtype=bool)
        lengths = np.asarray(unav.lengths(split), dtype=np.int64)
        dense = unav.dense(split)
        dense_a = Ragged(np.asarray(dense.values, dtype=bool), np.asarray(dense.offsets))
        dense_v = dense_a
    if not segments:
        empty = Ragged.from_lengths(np.zeros((int(lengths.sum()), 0), np.float32), lengths)
        return TeacherSplit(split, ids, empty, empty, weak, dense_a, dense_v)
    audio = read_segments(root, ids, "audio", lengths, dims["audio"], progress=progress)
    visual = read_segments(root, ids, "visual", lengths, dims["visual"], progress=progress)
    return TeacherSplit(split, ids, audio, visual, weak, dense_a, dense_v)
