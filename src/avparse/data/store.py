"""Packed feature store: each split's per-clip ``.npy`` files as one memory-mapped array per kind.

Training reads a batch with one fancy index into a memory map instead of opening three files per
clip. Packing validates every source file (shape, dtype, finite values) and reports all problems
at once; it is incremental (a source file whose mtime and size are unchanged is not read again,
a changed one is re-read and re-hashed, and only arrays with changes are rewritten) and atomic
(each array is written to a temporary file and renamed, the manifest last).

Layout of a store folder::

    manifest.json          format, root, and per split and kind: source folder, shape, dtype,
                           content hash of the packed array, per-file [mtime_ns, size, blake2b]
    <split>/index.json     clip filenames, row order of every array of the split
    <split>/<kind>.npy     (clips, frames, dim) float32 feature arrays, kinds of FEATURE_KINDS
    train/harvest_audio.npy, train/harvest_visual.npy   (clips, 10, classes) uint8 harvests

Numpy only.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS, SEGMENTS, SPLITS
from avparse.data.llp import LLPAnnotations, clip_id
from avparse.errors import AvparseError, first_line
from avparse.utils.atomic import atomic_path, write_json
from avparse.vocab import LLP, Vocabulary

FORMAT = 1
MANIFEST = "manifest.json"
DEFAULT_STORE = "packed"
"""Default store folder inside the data root (``--out`` puts it elsewhere)."""

HARVEST_KINDS = {f"harvest_{m}": folder for m, folder in HARVEST_FOLDERS.items()}
"""Packed harvest arrays (train split only, where the student learns from them)."""


class PackError(AvparseError):
    """Some source files are missing or invalid; ``problems`` holds one line per file."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")


@dataclass
class _Source:
    kind: str
    folder: str
    shape: tuple[int, ...]
    dtype: str


def _sources(root: Path, split: str, kinds: list[str] | None, num_classes: int) -> list[_Source]:
    out = []
    for name, kind in FEATURE_KINDS.items():
        if (kinds is None and (root / kind.folder).is_dir()) or (kinds and name in kinds):
            out.append(_Source(name, kind.folder, kind.shape, "float32"))
    if split == "train":
        for name, folder in HARVEST_KINDS.items():
            if (kinds is None and (root / folder).is_dir()) or (kinds and name in kinds):
                out.append(_Source(name, folder, (SEGMENTS, num_classes), "uint8"))
    return out


def _file_hash(data: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=16).hexdigest()


def _validate(path: Path, src: _Source, rel: str) -> tuple[np.ndarray | None, str | None]:
    """Read one source file; return (array, None) or (None, one-line problem)."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None, f"{rel}: missing"
    except (OSError, ValueError, EOFError) as exc:
        return None, f"{rel}: not a readable .npy file ({first_line(exc)})"
    if tuple(data.shape) != src.shape:
        return None, f"{rel}: shape {tuple(data.shape)}, expected {src.shape}"
    if src.dtype == "uint8":
        if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
            return None, f"{rel}: dtype {data.dtype}, expected 0/1 numbers"
        if not np.isin(data, (0, 1)).all():
            return None, f"{rel}: harvest values must be 0 or 1"
        return data.astype(np.uint8), None
    if not np.issubdtype(data.dtype, np.floating):
        return None, f"{rel}: dtype {data.dtype}, expected a float dtype"
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        return None, f"{rel}: {bad} non-finite values (NaN or inf)"
    return data.astype(np.float32, copy=False), None


@dataclass
class PackReport:
    """What a pack run did: arrays written and arrays found up to date."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    files_read: int = 0


def default_store(root: str | Path) -> Path:
    return Path(root) / DEFAULT_STORE


def _read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}  # an unreadable manifest only costs a full repack
    return data if isinstance(data, dict) and data.get("format") == FORMAT else {}


def pack(
    root: str | Path,
    out: str | Path | None = None,
    *,
    splits: tuple[str, ...] = SPLITS,
    kinds: list[str] | None = None,
    vocab: Vocabulary = LLP,
    progress: bool = False,
) -> PackReport:
    """Pack ``splits`` of data root ``root`` into ``out`` (default ``root/packed``).

    ``kinds`` limits the arrays (feature kinds and ``harvest_audio``/``harvest_visual``); by
    default every feature folder present is packed. Raises :class:`PackError` listing every
    missing or invalid file; nothing is renamed into place for a kind with problems.
    """
    root = Path(root)
    out = Path(out) if out is not None else default_store(root)
    annotations = LLPAnnotations(root, vocab)
    if kinds:
        unknown = [k for k in kinds if k not in FEATURE_KINDS and k not in HARVEST_KINDS]
        if unknown:
            raise AvparseError(f"unknown feature kind {unknown[0]!r}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        writable = os.access(out, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        raise AvparseError(
            f"{out}: cannot write the packed store here; choose another folder (train/evaluate --store, data pack --out)"
        )
    old = _read_manifest(out)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "root": str(root.resolve()),
        "splits": dict(old.get("splits", {})),  # splits not packed now stay as they were
    }
    report = PackReport()
    problems: list[str] = []
    plans = []
    for split in splits:
        filenames = annotations.weak(split).filenames
        old_split = old.get("splits", {}).get(split, {})
        sources = _sources(root, split, kinds, len(vocab))
        # keep arrays of kinds not requested this time (a later call may pack fewer kinds)
        arrays = {
            k: v
            for k, v in old_split.get("arrays", {}).items()
            if old_split.get("filenames_hash") == _names_hash(filenames)
            and (out / v["file"]).is_file()
        }
        manifest["splits"][split] = {
            "clips": len(filenames),
            "filenames_hash": _names_hash(filenames),
            "arrays": arrays,
        }
        for src in sources:
            if not (root / src.folder).is_dir():
                problems.append(f"{root / src.folder}: feature folder missing")
                continue
            plans.append((split, filenames, src, old_split))
    for split, filenames, src, old_split in _progress(plans, progress):
        entry, errs, n_read = _pack_array(root, out, split, filenames, src, old_split)
        report.files_read += n_read
        problems.extend(errs)
        if entry is not None:
            name = f"{split}/{src.kind}"
            (report.unchanged if entry.pop("_unchanged") else report.written).append(name)
            manifest["splits"][split]["arrays"][src.kind] = entry
    for split in splits:
        index = out / split / "index.json"
        names = annotations.weak(split).filenames
        if not index.is_file() or _read_index(index) != names:
            write_json(index, names, indent=None)
    if problems:
        # Arrays that packed cleanly are kept for the next run; the manifest records them.
        write_json(out / MANIFEST, manifest)
        raise PackError(problems)
    write_json(out / MANIFEST, manifest)
    return report


def _progress(items: list, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="pack", unit="array")


def _names_hash(names: list[str]) -> str:
    return hashlib.blake2b("\n".join(names).encode(), digest_size=16).hexdigest()


def _read_index(path: Path) -> list[str] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _pack_array(
    root: Path, out: Path, split: str, filenames: list[str], src: _Source, old_split: dict
) -> tuple[dict | None, list[str], int]:
    """Pack one (split, kind), streaming rows into a temporary memory map (bounded memory).

    Pass 1 stats every source file; files whose mtime and size match the manifest are taken
    from the previous array without being read. Pass 2 fills the new array row by row, reading
    and validating only the other files; the array replaces the old one only if all rows are
    valid and its content hash differs.
    """
    folder = root / src.folder
    ids = [clip_id(f) for f in filenames]
    old_entry = old_split.get("arrays", {}).get(src.kind)
    old_files: dict[str, list] = old_entry.get("files", {}) if old_entry else {}
    old_array = None
    old_rows: dict[str, int] = {}
    if old_entry and (out / old_entry["file"]).is_file():
        try:
            old_array = np.load(out / old_entry["file"], mmap_mode="r")
            old_rows = {cid: i for i, cid in enumerate(old_entry.get("row_ids", []))}
        except (OSError, ValueError):
            old_array = None
    usable_old = old_array is not None and tuple(old_array.shape[1:]) == src.shape
    files: dict[str, list] = {}
    stamps: dict[str, list[int]] = {}
    problems: list[str] = []
    for cid in dict.fromkeys(ids):
        try:
            st = (folder / f"{cid}.npy").stat()
        except FileNotFoundError:
            problems.append(f"{folder / cid}.npy: missing (clip of split {split!r})")
            continue
        stamps[cid] = [st.st_mtime_ns, st.st_size]
        previous = old_files.get(cid)
        if previous is not None and previous[:2] == stamps[cid] and usable_old and cid in old_rows:
            files[cid] = previous
    target = out / split / f"{src.kind}.npy"
    if (
        not problems
        and len(files) == len(stamps)
        and old_entry is not None
        and old_entry.get("row_ids") == ids
        and target.is_file()
    ):
        return {**old_entry, "_unchanged": True}, [], 0
    read: set[str] = set()
    content = ""
    try:
        with atomic_path(target, suffix=".npy") as tmp:
            shape = (len(ids), *src.shape)
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=src.dtype, shape=shape)
            for i, cid in enumerate(ids):
                if cid not in stamps:
                    continue
                if cid in files and cid not in read and old_array is not None:
                    arr[i] = old_array[old_rows[cid]]
                    continue
                data, problem = _validate(folder / f"{cid}.npy", src, f"{folder / cid}.npy")
                if cid not in read:
                    read.add(cid)
                    if problem:
                        problems.append(problem)
                if data is not None:
                    arr[i] = data
                    files[cid] = [*stamps[cid], _file_hash(data)]
            arr.flush()
            del arr
            if problems:
                raise _KeepOld  # leave the old array (if any) in place
            content = _names_hash([f"{cid}:{files[cid][2]}" for cid in ids])
            if (
                old_entry is not None
                and old_entry.get("sha") == content
                and old_entry.get("row_ids") == ids
                and target.is_file()
            ):
                raise _KeepOld  # touched files, same content: keep the old array
    except _KeepOld:
        if problems:
            return None, problems, len(read)
        return {**old_entry, "files": files, "_unchanged": True}, [], len(read)
    entry = {
        "file": f"{split}/{src.kind}.npy",
        "source": src.folder,
        "shape": [len(ids), *src.shape],
        "dtype": src.dtype,
        "sha": content,
        "row_ids": ids,
        "files": files,
        "_unchanged": False,
    }
    return entry, [], len(read)


class _KeepOld(Exception):
    """Raised inside ``atomic_path`` to drop a rewritten array identical to the old one."""


@dataclass
class PackedSplit:
    """One split of a store: filenames and memory-mapped arrays (opened with mmap_mode="r")."""

    split: str
    filenames: list[str]
    arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, kind: str) -> np.ndarray:
        try:
            return self.arrays[kind]
        except KeyError:
            have = ", ".join(sorted(self.arrays)) or "none"
            raise AvparseError(
                f"packed split {self.split!r} has no {kind!r} array (has: {have})"
            ) from None


def open_split(out: str | Path, split: str, kinds: list[str] | None = None) -> PackedSplit:
    """Open a packed split; ``kinds`` restricts (and requires) the arrays opened."""
    out = Path(out)
    manifest = _read_manifest(out)
    entry = manifest.get("splits", {}).get(split)
    if entry is None:
        raise AvparseError(f"{out}: no packed split {split!r}; run `avparse data pack`")
    filenames = _read_index(out / split / "index.json")
    if filenames is None:
        raise AvparseError(f"{out / split / 'index.json'}: missing or unreadable index")
    arrays = {}
    for kind, info in entry["arrays"].items():
        if kinds is not None and kind not in kinds:
            continue
        arr = np.load(out / info["file"], mmap_mode="r")
        if list(arr.shape) != info["shape"]:
            raise AvparseError(f"{out / info['file']}: shape {arr.shape} differs from manifest")
        arrays[kind] = arr
    missing = [k for k in kinds or [] if k not in arrays]
    if missing:
        raise AvparseError(f"{out}: split {split!r} has no packed {missing[0]!r} array")
    return PackedSplit(split, filenames, arrays)


def ensure_packed(
    root: str | Path,
    out: str | Path | None = None,
    *,
    splits: tuple[str, ...],
    kinds: dict[str, list[str]],
    vocab: Vocabulary = LLP,
    progress: bool = False,
) -> dict[str, PackedSplit]:
    """Pack what is missing or stale (a stat per source file when nothing changed), then open.

    ``kinds`` maps split -> arrays needed there.
    """
    out = Path(out) if out is not None else default_store(root)
    result = {}
    for split in splits:
        pack(root, out, splits=(split,), kinds=kinds[split], vocab=vocab, progress=progress)
        result[split] = open_split(out, split, kinds[split])
    return result


def store_size(out: str | Path) -> int:
    """Bytes used by the arrays of a store."""
    return sum(p.stat().st_size for p in Path(out).rglob("*.npy"))


__all__ = [
    "HARVEST_KINDS",
    "PackError",
    "PackReport",
    "PackedSplit",
    "default_store",
    "ensure_packed",
    "open_split",
    "pack",
    "store_size",
]
