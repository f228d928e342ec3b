"""Packed feature store: per-clip ``.npy`` files as one memory-mapped array per (split, kind).

Training reads a batch with one fancy index into a memory map instead of opening three files per
clip. One builder, :func:`pack_rows`, serves every task: the caller names the rows of a split
(LLP: the clip filenames; AVE: its annotation rows, whose video ids may repeat) and the kinds it
needs; row ``i`` of every array holds the file of ``ids[i]``. Every source file goes through the
one per-file rule (:func:`avparse.data.files.read_feature_file`, as ``data check``), and all
problems are reported at once. The store holds what the model reads: ResNet-152's 80 frames are
averaged to 10 rows (``FeatureKind.pooled``), exact for the student and 8x smaller.

Packing is incremental: a source file whose size, mtime, ctime and inode are unchanged is taken
from the previous array without being read. ``utime`` can restore an mtime but not a ctime, and a
file whose ctime is too recent to be distinguished from a later rewrite is re-read next time
(its content hash decides). Only arrays with changes are rewritten, each atomically, the
manifest last. Files are read by a few threads (numpy and hashlib release the GIL).

Layout of a store folder::

    manifest.json          format, root, and per split and kind: source folder, shape, dtype,
                           content hash, row ids, per-file [size, mtime_ns, ctime_ns, inode, hash]
    <split>/index.json     the row names, in row order
    <split>/<kind>.npy     (rows, 10, dim) float32 features (kinds of FEATURE_KINDS),
                           (rows, 10, classes) uint8 harvests, float32 soft labels and logits;
                           in a ragged split (clips of different lengths, UnAV-100) the rows
                           back to back without padding, (sum of lengths, dim), and the
                           manifest entry records ``"ragged": true`` and the row lengths

A ragged split is packed when the caller gives every row's length (:func:`pack_rows`'s
``lengths``); :meth:`PackedSplit.ragged` returns a :class:`avparse.data.ragged.Ragged` over the
memory map and batches are padded per batch (:meth:`Ragged.pad`). LLP and AVE splits stay as
they are.

Numpy only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avparse.data.ave import AVEAnnotations, is_ave_root
from avparse.data.files import pool_segments, read_feature_file
from avparse.data.layout import (
    FEATURE_KINDS,
    HARVEST_KINDS,
    LLP_FILES,
    PER_CLASS_KINDS,
    SEGMENTS,
    SPLITS,
    TEACHER_KINDS,
    TEMPORAL_KIND_PREFIX,
    expected_shape,
    kind_folder,
    task_kinds,
)
from avparse.data.llp import LLPAnnotations, clip_id
from avparse.data.ragged import Ragged
from avparse.errors import AvparseError
from avparse.utils.atomic import atomic_path, write_json
from avparse.utils.lock import hold_folder
from avparse.utils.progress import progress as show_progress
from avparse.vocab import AVE, LLP, Vocabulary

FORMAT = 2
"""Store format; a store of another format is rebuilt, never read. 2: pooled ResNet-152 rows,
ctime/inode stamps, row-id keyed arrays (1: avparse 0.1)."""
MANIFEST = "manifest.json"
DEFAULT_STORE = "packed"
"""Default store folder inside an LLP data root (``--out`` puts it elsewhere)."""
AVE_STORE = "packed_ave"
"""Default store folder inside an AVE data root (its rows are AVE's annotation rows)."""

UNAV_STORE = "packed_unav"
"""Default store folder inside a UnAV-100 data root (its splits are ragged: videos of any length)."""

RACY_NS = 100_000_000
"""A file changed less than this before it was stat-ed may change again with the same ctime
(the kernel stamps ctime from a coarse clock); it is re-read on the next pack. File systems
that keep whole seconds get a two-second window."""

READ_THREADS = 2
"""Threads reading source files (measured in docs/performance.md, "store")."""


class PackError(AvparseError):
    """Some source files are missing or invalid; ``problems`` holds one line per file."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")


@dataclass(frozen=True)
class _Source:
    kind: str
    folder: str
    dtype: str
    shape: tuple[int, ...]
    """Shape of one packed row (pooled features have fewer rows than their files)."""
    pooled: bool


def _source(kind: str, num_classes: int, ragged: bool = False) -> _Source:
    folder = kind_folder(kind)  # raises for an unknown kind
    if ragged:  # one row per segment; the time axis is the values' first axis
        frames, width = expected_shape(kind, num_classes, 1)  # refuses kinds not per segment
        dtype = "uint8" if kind in HARVEST_KINDS else "float32"
        # frames None: published rows at a frame rate (UnAV-100), pooled to one per segment
        return _Source(kind, folder, dtype, (width,), frames is None or frames > 1)
    if kind in FEATURE_KINDS:
        fk = FEATURE_KINDS[kind]
        if fk.any_length and fk.rate is None:  # segment embeddings of 10-s clips: 10 rows
            return _Source(kind, folder, "float32", (SEGMENTS, fk.dim), False)
        frames = fk.frames  # a one-line error for a kind of any length (not packed here)
        rows = SEGMENTS if fk.pooled else frames
        return _Source(kind, folder, "float32", (rows, fk.dim), fk.pooled)
    dtype = "uint8" if kind in HARVEST_KINDS else "float32"
    return _Source(kind, folder, dtype, (SEGMENTS, num_classes), False)


def _missing_folder(root: Path, kind: str, folder: str) -> str:
    if kind.startswith(TEMPORAL_KIND_PREFIX):
        return (
            f"{root / folder}: folder missing: the temporal teacher's labels (run `avparse "
            f"teacher label --teacher RUN --data {root}`, or train on the frame-wise harvest "
            "with --harvest frame)"
        )
    if kind in TEACHER_KINDS:
        what = "soft labels" if kind.startswith("soft_") else "teacher logits"
        return (
            f"{root / folder}: folder missing: the {what} `avparse harvest` writes beside the "
            "hard labels (harvest this root again with avparse to get them)"
        )
    if kind in HARVEST_KINDS:
        return f"{root / folder}: harvest folder missing (run `avparse harvest` on this root)"
    return (
        f"{root / folder}: feature folder missing (kind {kind!r} of the preset; `avparse data "
        "check` lists the root's folders, --set audio_feature= / visual_feature= / "
        "motion_feature= choose other kinds)"
    )


def _file_hash(data: np.ndarray) -> str:
    """A source file's content digest, for change detection only: SHA-1 runs about twice as
    fast as blake2b where CPUs have SHA instructions (hashing was the largest part of packing
    ResNet-152 frames) and no slower elsewhere."""
    return hashlib.sha1(np.ascontiguousarray(data).data, usedforsecurity=False).hexdigest()


def _names_hash(names: Sequence[str]) -> str:
    return hashlib.blake2b("\n".join(names).encode(), digest_size=16).hexdigest()


@dataclass
class PackReport:
    """What a pack run did: arrays written and arrays found up to date."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    files_read: int = 0

    def add(self, other: PackReport) -> None:
        self.written += other.written
        self.unchanged += other.unchanged
        self.files_read += other.files_read


def _is_ave(root: str | Path) -> bool:
    return is_ave_root(root) and not (Path(root) / LLP_FILES["train"]).is_file()


CACHE_ENV = "AVPARSE_CACHE"
"""Environment variable naming avparse's per-user cache folder (stores of read-only roots)."""


def cache_dir() -> Path:
    """avparse's per-user cache: ``$AVPARSE_CACHE``, else ``$XDG_CACHE_HOME/avparse``, else
    ``~/.cache/avparse``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "avparse"


def can_write(folder: str | Path) -> bool:
    """Whether a file can be created in ``folder``, found by creating (and removing) one.

    Honest where permission bits are not: root ignores them (``os.access`` says yes), a
    read-only mount or a full quota refuses anyway.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=".avparse-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return True


_NOTED: set[Path] = set()


def default_store(root: str | Path, name: str | None = None) -> Path:
    """``ROOT/packed`` for an LLP root, ``ROOT/packed_ave`` for an AVE root (or ``ROOT/name``).

    A root that cannot be written (shared, read-only storage) gets its store in the per-user
    cache instead, ``cache_dir()/stores/<root name>-<hash of its absolute path>/<packed>``, one
    folder per root, and a note on stderr says where (once per process).
    """
    name = name or (AVE_STORE if _is_ave(root) else UNAV_STORE if _is_unav(root) else DEFAULT_STORE)
    root = Path(root)
    if not root.is_dir() or can_write(root):
        return root / name
    resolved = root.resolve()
    key = hashlib.blake2b(str(resolved).encode(), digest_size=6).hexdigest()
    out = cache_dir() / "stores" / f"{resolved.name or 'root'}-{key}" / name
    if out not in _NOTED:
        _NOTED.add(out)
        if os.environ.get("RANK", "0") == "0":
            print(
                f"avparse: note: {root} is not writable; its packed store is {out} "
                "(--store to choose another; delete the folder to free the space)",
                file=sys.stderr,
            )
    return out


def _root_rows(
    root: Path, splits: Sequence[str], vocab: Vocabulary
) -> tuple[dict[str, tuple[list[str], list[str]]], int]:
    """Per split, the row names and file ids of an LLP or AVE root; and its class count."""
    if _is_ave(root):
        ave = AVEAnnotations(root, AVE)
        return {s: (ave.split(s).ids, ave.split(s).ids) for s in splits}, len(AVE)
    llp = LLPAnnotations(root, vocab)
    return {s: (llp.weak(s).filenames, llp.weak(s).ids) for s in splits}, len(vocab)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of a store of this format; {} for none, an unreadable one or another format."""
    data = _read_json(out / MANIFEST)
    return data if isinstance(data, dict) and data.get("format") == FORMAT else {}


def _writable_store(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        writable = os.access(out, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        raise AvparseError(
            f"{out}: cannot write the packed store here; choose another folder "
            "(train/evaluate --store, data pack --out)"
        )


def pack_rows(
    root: str | Path,
    out: str | Path,
    split: str,
    names: Sequence[str],
    kinds: Sequence[str],
    *,
    num_classes: int,
    ids: Sequence[str] | None = None,
    progress: bool = False,
    threads: int | None = None,
    lengths: Sequence[int] | np.ndarray | None = None,
) -> PackReport:
    """Pack the ``kinds`` of one split's rows into store ``out`` (the one store builder).

    Args:
        root: the data root holding the per-clip folders.
        out: the store folder.
        split: the name of the rows' group (``train``, ``val``, ...): ``out/<split>/``.
        names: one name per row, recorded in ``<split>/index.json``.
        kinds: array kinds (``FEATURE_KINDS`` names, ``harvest_*``, ``soft_*``, ``scores_*``).
        num_classes: classes of the per-class kinds.
        ids: the file id of each row (default: ``clip_id`` of each name); ids may repeat.
        progress: show progress while files are read.
        threads: threads reading source files (default :data:`READ_THREADS`).
        lengths: segments of each row, for clips of different lengths: the split is packed
            ragged (every kind's rows back to back, a file of row ``i`` has ``lengths[i]``
            segments). None: every clip has 10 segments (LLP, AVE).

    Raises :class:`PackError` listing every missing or invalid file; arrays of kinds without
    problems are still packed (and kept for the next run), the others are left as they were.
    The store is held while it is packed: a second job packing the same store waits for the
    first (it then finds the arrays packed), saying once who holds it.
    """
    root, out = Path(root), Path(out)
    names = list(names)
    row_ids = [clip_id(n) for n in names] if ids is None else list(ids)
    if len(row_ids) != len(names):
        raise ValueError(f"{len(names)} names but {len(row_ids)} ids")
    row_lengths = None if lengths is None else [int(t) for t in lengths]
    if row_lengths is not None:
        if len(row_lengths) != len(names):
            raise ValueError(f"{len(names)} names but {len(row_lengths)} lengths")
        if any(t < 1 for t in row_lengths):
            raise ValueError("every row needs at least one segment")
    ragged = row_lengths is not None
    sources = [_source(k, num_classes, ragged) for k in dict.fromkeys(kinds)]
    _writable_store(out)
    with hold_folder(out, flag="--store", wait=True):
        return _pack_held(root, out, split, names, row_ids, row_lengths, sources, progress, threads)


def _pack_held(
    root: Path,
    out: Path,
    split: str,
    names: list[str],
    row_ids: list[str],
    row_lengths: list[int] | None,
    sources: list[_Source],
    progress: bool,
    threads: int | None,
) -> PackReport:
    """The body of :func:`pack_rows`, run while the store is held."""
    old = _read_manifest(out)
    old_split = old.get("splits", {}).get(split, {})
    names_hash = _names_hash(
        names
        if row_lengths is None
        else [f"{n}:{t}" for n, t in zip(names, row_lengths, strict=True)]
    )
    same_rows = old_split.get("names_hash") == names_hash
    # arrays of kinds not requested this time stay (a later call may ask for fewer kinds)
    arrays = {
        k: v
        for k, v in old_split.get("arrays", {}).items()
        if same_rows and (out / v["file"]).is_file()
    }
    report = PackReport()
    problems: list[str] = []
    for src in sources:
        if not (root / src.folder).is_dir():
            problems.append(_missing_folder(root, src.kind, src.folder))
            continue
        old_entry = old_split.get("arrays", {}).get(src.kind)
        n_threads = READ_THREADS if threads is None else threads
        if row_lengths is None:
            entry, errs, n_read = _pack_array(
                root, out, split, row_ids, src, old_entry, progress, n_threads
            )
        else:
            entry, errs, n_read = _pack_ragged(
                root, out, split, row_ids, row_lengths, src, old_entry, progress, n_threads,
            )  # fmt: skip
        report.files_read += n_read
        problems.extend(errs)
        if entry is not None:
            unchanged = entry.pop("_unchanged")
            (report.unchanged if unchanged else report.written).append(f"{split}/{src.kind}")
            arrays[src.kind] = entry
    index = out / split / "index.json"
    if _read_json(index) != names:
        write_json(index, names, indent=None)
    manifest = {
        "format": FORMAT,
        "root": str(root.resolve()),
        "splits": {
            **old.get("splits", {}),  # other splits stay as they were
            split: {
                "rows": len(names),
                "names_hash": names_hash,
                "arrays": arrays,
                **({} if row_lengths is None else {"lengths": row_lengths}),
            },
        },
    }
    if manifest != old:  # nothing rewritten when nothing changed (a full disk, a read)
        write_json(out / MANIFEST, manifest)  # records the arrays that packed cleanly
    if problems:
        raise PackError(problems)
    return report


def _stamp(st: os.stat_result) -> list[int]:
    """What must match to trust a packed row without reading its file.

    ``utime`` can restore a file's mtime but not its ctime. A ctime too close to now is recorded
    as -1 (never trusted, see :data:`RACY_NS`): the file is read and its hash compared next time.
    """
    window = 2_000_000_000 if st.st_ctime_ns % 1_000_000_000 == 0 else RACY_NS
    racy = time.time_ns() - st.st_ctime_ns < window
    return [st.st_size, st.st_mtime_ns, -1 if racy else st.st_ctime_ns, st.st_ino]


def _pack_array(
    root: Path,
    out: Path,
    split: str,
    ids: list[str],
    src: _Source,
    old_entry: dict | None,
    progress: bool,
    threads: int,
) -> tuple[dict | None, list[str], int]:
    """Pack one (split, kind), streaming rows into a temporary memory map (bounded memory).

    Pass 1 stats every source file; files whose stamp matches the manifest are taken from the
    previous array without being read. Pass 2 reads and validates the other files (in threads)
    and fills the new array; it replaces the old one only if every row is valid and the content
    differs.
    """
    folder = root / src.folder
    target = out / split / f"{src.kind}.npy"
    old_files: dict[str, list] = old_entry.get("files", {}) if old_entry else {}
    old_array = None
    old_rows: dict[str, int] = {}
    if old_entry and target.is_file():
        try:
            old_array = np.load(target, mmap_mode="r")
            old_rows = {cid: i for i, cid in enumerate(old_entry.get("row_ids", []))}
        except (OSError, ValueError):
            old_array = None
    if old_array is not None and tuple(old_array.shape[1:]) != src.shape:
        old_array, old_rows = None, {}
    files: dict[str, list] = {}
    stamps: dict[str, list[int]] = {}
    problems: list[str] = []
    for cid in dict.fromkeys(ids):
        try:
            stamps[cid] = _stamp((folder / f"{cid}.npy").stat())
        except FileNotFoundError:
            problems.append(f"{folder / cid}.npy: missing (clip of split {split!r})")
            continue
        previous = old_files.get(cid)
        if (
            previous is not None
            and previous[2] != -1
            and previous[:4] == stamps[cid]
            and cid in old_rows
        ):
            files[cid] = previous
    if (
        not problems
        and len(files) == len(stamps)
        and old_entry is not None
        and old_entry.get("row_ids") == ids
    ):
        return {**old_entry, "_unchanged": True}, [], 0
    to_read = [cid for cid in stamps if cid not in files]
    content = ""
    try:
        with atomic_path(target, suffix=".npy") as tmp:
            shape = (len(ids), *src.shape)
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=src.dtype, shape=shape)
            rows_of: dict[str, list[int]] = {}
            for i, cid in enumerate(ids):
                rows_of.setdefault(cid, []).append(i)
            assert old_array is not None or not files
            for cid in files:
                arr[rows_of[cid]] = old_array[old_rows[cid]]  # type: ignore[index]
            results = _read_rows(folder, to_read, src, threads)
            results = show_progress(
                results, desc=f"pack {split}/{src.kind}", total=len(to_read), unit="file",
                enabled=progress and bool(to_read),
            )  # fmt: skip
            for cid, data, digest, problem in results:
                if problem is not None:
                    problems.append(f"{folder / cid}.npy: {problem}")
                    continue
                arr[rows_of[cid]] = data
                files[cid] = [*stamps[cid], digest]
            arr.flush()
            del arr
            if problems:
                raise _KeepOld  # leave the old array (if any) in place
            content = _names_hash([f"{cid}:{files[cid][4]}" for cid in ids])
            if (
                old_entry is not None
                and old_entry.get("sha") == content
                and old_entry.get("row_ids") == ids
                and target.is_file()
            ):
                raise _KeepOld  # touched files, same content: keep the old array
    except _KeepOld:
        if problems:
            return None, problems, len(to_read)
        assert old_entry is not None
        return {**old_entry, "files": files, "_unchanged": True}, [], len(to_read)
    entry = {
        "file": f"{split}/{src.kind}.npy",
        "source": src.folder,
        "shape": [len(ids), *src.shape],
        "dtype": src.dtype,
        "pooled": src.pooled,
        "sha": content,
        "row_ids": ids,
        "files": files,
        "_unchanged": False,
    }
    return entry, [], len(to_read)


def _read_rows(
    folder: Path,
    ids: list[str],
    src: _Source,
    threads: int,
    lengths: dict[str, int] | None = None,
) -> Iterator[tuple[str, np.ndarray | None, str, str | None]]:
    """``(id, packed row, source hash, problem)`` per id, in order, read by ``threads``.

    ``lengths``: segments of each id's clip (a ragged split); None: 10 segments.
    """
    num_classes = src.shape[-1]

    def read(cid: str) -> tuple[str, np.ndarray | None, str, str | None]:
        length = None if lengths is None else lengths[cid]
        fk = FEATURE_KINDS.get(src.kind)
        if length is None and fk is not None and fk.any_length and fk.rate is None:
            length = SEGMENTS  # a segment kind of any length, in a root of 10-s clips
        name = f"{cid}.npy" if fk is None else fk.file_name(cid)
        data, problem = read_feature_file(
            folder / name, src.kind, num_classes=num_classes, length=length
        )
        if data is None:
            return cid, None, "", problem
        digest = _file_hash(data)
        if fk is not None and fk.rate is not None and length is not None:
            data = pool_segments(data, length)  # UWAV's adaptive average pooling
        elif src.pooled:  # as the model does: float32 frames, mean of each segment's group
            frames = data.astype(np.float32, copy=False)
            segments = SEGMENTS if length is None else length
            data = frames.reshape(segments, -1, frames.shape[-1]).mean(axis=1)
        return cid, data, digest, None

    if threads <= 1 or len(ids) < 2:
        yield from map(read, ids)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque = deque()
        for cid in ids:  # a bounded read-ahead: memory stays a few files, not the split
            pending.append(pool.submit(read, cid))
            if len(pending) > 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _pack_ragged(
    root: Path,
    out: Path,
    split: str,
    ids: list[str],
    lengths: list[int],
    src: _Source,
    old_entry: dict | None,
    progress: bool,
    threads: int,
) -> tuple[dict | None, list[str], int]:
    """:func:`_pack_array` for a ragged split: row ``i`` is ``lengths[i]`` segments of the
    values array (sum of lengths, width), rows back to back in row order, no padding.

    The same stamps, the same reuse of unchanged files (a file whose clip length changed is
    read again), the same atomic replacement and content hash (which includes the lengths).
    """
    folder = root / src.folder
    target = out / split / f"{src.kind}.npy"
    was_ragged = old_entry is not None and bool(old_entry.get("ragged"))
    old_files: dict[str, list] = old_entry.get("files", {}) if was_ragged and old_entry else {}
    old_array = None
    old_rows: dict[str, tuple[int, int]] = {}  # id -> (first value row, length)
    if was_ragged and old_entry is not None and target.is_file():
        old_ids, old_lengths = old_entry.get("row_ids", []), old_entry.get("lengths", [])
        try:
            old_array = np.load(target, mmap_mode="r")
        except (OSError, ValueError):
            old_array = None
        if (
            old_array is not None
            and len(old_ids) == len(old_lengths)
            and tuple(old_array.shape) == (sum(old_lengths), *src.shape)
        ):
            starts = np.concatenate([[0], np.cumsum(old_lengths)[:-1]]).astype(np.int64)
            old_rows = {
                c: (int(a), int(t)) for c, a, t in zip(old_ids, starts, old_lengths, strict=True)
            }
        else:
            old_array = None
    length_of: dict[str, int] = {}
    problems: list[str] = []
    for cid, t in zip(ids, lengths, strict=True):
        if length_of.setdefault(cid, t) != t:
            problems.append(
                f"{folder / cid}.npy: rows of one file with different lengths "
                f"({length_of[cid]} and {t} segments)"
            )
    files: dict[str, list] = {}
    stamps: dict[str, list[int]] = {}
    fk = FEATURE_KINDS.get(src.kind)
    for cid in length_of:
        name = f"{cid}.npy" if fk is None else fk.file_name(cid)  # UnAV-100: `<id>_rgb.npy`
        try:
            stamps[cid] = _stamp((folder / name).stat())
        except FileNotFoundError:
            problems.append(f"{folder / name}: missing (clip of split {split!r})")
            continue
        previous = old_files.get(cid)
        if (
            previous is not None
            and previous[2] != -1
            and previous[:4] == stamps[cid]
            and old_rows.get(cid, (0, -1))[1] == length_of[cid]
        ):
            files[cid] = previous
    if (
        not problems
        and len(files) == len(stamps)
        and old_entry is not None
        and was_ragged
        and old_entry.get("row_ids") == ids
        and old_entry.get("lengths") == lengths
    ):
        return {**old_entry, "_unchanged": True}, [], 0
    to_read = [cid for cid in stamps if cid not in files]
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    content = ""
    try:
        with atomic_path(target, suffix=".npy") as tmp:
            shape = (int(offsets[-1]), *src.shape)
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=src.dtype, shape=shape)
            rows_of: dict[str, list[int]] = {}
            for i, cid in enumerate(ids):
                rows_of.setdefault(cid, []).append(i)

            def put(target: np.ndarray, cid: str, data: np.ndarray) -> None:
                for i in rows_of[cid]:
                    target[offsets[i] : offsets[i + 1]] = data

            assert old_array is not None or not files
            for cid in files:
                start, t = old_rows[cid]
                put(arr, cid, old_array[start : start + t])  # type: ignore[index]
            results = _read_rows(folder, to_read, src, threads, length_of)
            results = show_progress(
                results, desc=f"pack {split}/{src.kind}", total=len(to_read), unit="file",
                enabled=progress and bool(to_read),
            )  # fmt: skip
            for cid, data, digest, problem in results:
                if problem is not None:
                    problems.append(f"{folder / cid}.npy: {problem}")
                    continue
                assert data is not None
                put(arr, cid, data)
                files[cid] = [*stamps[cid], digest]
            arr.flush()
            del arr
            if problems:
                raise _KeepOld
            content = _names_hash(
                [f"{cid}:{t}:{files[cid][4]}" for cid, t in zip(ids, lengths, strict=True)]
            )
            if (
                was_ragged
                and old_entry is not None
                and old_entry.get("sha") == content
                and old_entry.get("row_ids") == ids
                and target.is_file()
            ):
                raise _KeepOld
    except _KeepOld:
        if problems:
            return None, problems, len(to_read)
        assert old_entry is not None
        return {**old_entry, "files": files, "_unchanged": True}, [], len(to_read)
    entry = {
        "file": f"{split}/{src.kind}.npy",
        "source": src.folder,
        "shape": [int(offsets[-1]), *src.shape],
        "dtype": src.dtype,
        "pooled": src.pooled,
        "ragged": True,
        "sha": content,
        "row_ids": ids,
        "lengths": lengths,
        "files": files,
        "_unchanged": False,
    }
    return entry, [], len(to_read)


class _KeepOld(Exception):
    """Raised inside ``atomic_path`` to drop a rewritten array identical to the old one."""


@dataclass
class PackedSplit:
    """One split of a store: row names and memory-mapped arrays (opened with mmap_mode="r").

    A ragged split (clips of different lengths) has ``lengths`` (rows,) and ``offsets``
    (rows + 1,); its arrays hold the rows back to back, (sum of lengths, width), and are read
    with :meth:`ragged`. A split of 10-segment clips has ``lengths`` None and (rows, 10, ...)
    arrays read with ``split[kind]``.
    """

    split: str
    filenames: list[str]
    arrays: dict[str, np.ndarray]
    lengths: np.ndarray | None = None
    """(rows,) int64 segments per row of a ragged split; None for 10-segment clips."""

    def __len__(self) -> int:
        return len(self.filenames)

    @property
    def is_ragged(self) -> bool:
        return self.lengths is not None

    @property
    def offsets(self) -> np.ndarray | None:
        """(rows + 1,) int64 where each row starts in a ragged array; None for 10-segment clips."""
        if self.lengths is None:
            return None
        offsets = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=offsets[1:])
        return offsets

    def _array(self, kind: str) -> np.ndarray:
        try:
            return self.arrays[kind]
        except KeyError:
            have = ", ".join(sorted(self.arrays)) or "none"
            raise AvparseError(
                f"packed split {self.split!r} has no {kind!r} array (has: {have})"
            ) from None

    def __getitem__(self, kind: str) -> np.ndarray:
        """The (rows, 10, ...) array of ``kind`` (a ragged split's arrays: :meth:`ragged`)."""
        if self.lengths is not None:
            raise AvparseError(
                f"packed split {self.split!r} holds clips of different lengths; read "
                f"{kind!r} with .ragged()"
            )
        return self._array(kind)

    def ragged(self, kind: str) -> Ragged:
        """``kind`` of a ragged split as a :class:`Ragged` over the memory map (nothing copied)."""
        if self.offsets is None:
            raise AvparseError(f"packed split {self.split!r} is not ragged (10-segment clips)")
        return Ragged(self._array(kind), self.offsets)


def open_split(out: str | Path, split: str, kinds: Sequence[str] | None = None) -> PackedSplit:
    """Open a packed split; ``kinds`` restricts (and requires) the arrays opened."""
    out = Path(out)
    manifest = _read_manifest(out)
    if not manifest:
        found = _read_json(out / MANIFEST)
        if isinstance(found, dict) and "format" in found:
            raise AvparseError(
                f"{out}: store format {found['format']!r}, this avparse reads format {FORMAT}; "
                "`avparse data pack` (or training) rebuilds it"
            )
    entry = manifest.get("splits", {}).get(split)
    if entry is None:
        raise AvparseError(f"{out}: no packed split {split!r}; run `avparse data pack`")
    filenames = _read_json(out / split / "index.json")
    if not isinstance(filenames, list):
        raise AvparseError(f"{out / split / 'index.json'}: missing or unreadable index")
    lengths = entry.get("lengths")
    arrays = {}
    for kind, info in entry["arrays"].items():
        if kinds is not None and kind not in kinds:
            continue
        arr = np.load(out / info["file"], mmap_mode="r")
        if list(arr.shape) != info["shape"]:
            raise AvparseError(f"{out / info['file']}: shape {arr.shape} differs from manifest")
        if bool(info.get("ragged")) != (lengths is not None) or (
            lengths is not None and info.get("lengths") != lengths
        ):
            raise AvparseError(
                f"{out / info['file']}: row lengths differ from the split's; "
                "`avparse data pack` rebuilds it"
            )
        arrays[kind] = arr
    missing = [k for k in kinds or [] if k not in arrays]
    if missing:
        raise AvparseError(f"{out}: split {split!r} has no packed {missing[0]!r} array")
    row_lengths = None if lengths is None else np.asarray(lengths, dtype=np.int64)
    return PackedSplit(split, filenames, arrays, row_lengths)


def ensure_rows(
    root: str | Path,
    out: str | Path,
    split: str,
    names: Sequence[str],
    kinds: Sequence[str],
    *,
    num_classes: int,
    ids: Sequence[str] | None = None,
    progress: bool = False,
    lengths: Sequence[int] | np.ndarray | None = None,
) -> PackedSplit:
    """Pack what is missing or stale (a stat per source file when nothing changed), then open.

    ``lengths``: segments per row, for a ragged split (see :func:`pack_rows`)."""
    pack_rows(
        root, out, split, names, kinds, num_classes=num_classes, ids=ids, progress=progress,
        lengths=lengths,
    )  # fmt: skip
    return open_split(out, split, kinds)


def llp_kinds(root: str | Path, split: str) -> list[str]:
    """What ``data pack`` packs by default: every feature folder present, and for the train
    split the hard harvests present (teacher outputs only when asked for)."""
    root = Path(root)
    kinds = [k for k, fk in task_kinds("llp").items() if (root / fk.folder).is_dir()]
    if split == "train":
        kinds += [k for k, folder in HARVEST_KINDS.items() if (root / folder).is_dir()]
    return kinds


def pack(
    root: str | Path,
    out: str | Path | None = None,
    *,
    splits: tuple[str, ...] = SPLITS,
    kinds: list[str] | None = None,
    vocab: Vocabulary = LLP,
    progress: bool = False,
) -> PackReport:
    """Pack ``splits`` of the LLP, AVE or UnAV-100 data root ``root`` into ``out``
    (:func:`default_store`; a UnAV-100 root's splits are packed ragged).

    An AVE root's rows are its annotation rows (``vocab`` is then AVE's). ``kinds`` limits the arrays (feature kinds and per-class kinds: ``harvest_*``, ``soft_*``,
    ``scores_*``); by default see :func:`llp_kinds`. Per-class kinds are packed for the train
    split only. Raises :class:`PackError` listing every problem of every split.
    """
    out = Path(out) if out is not None else default_store(root)
    for kind in kinds or []:
        kind_folder(kind)  # an unknown kind is one line before anything is read
    if _is_unav(root):
        return _pack_unav(Path(root), out, splits, kinds, progress)
    rows, num_classes = _root_rows(Path(root), splits, vocab)
    report = PackReport()
    problems: list[str] = []
    for split in splits:
        wanted = llp_kinds(root, split) if kinds is None else list(kinds)
        if split != "train":
            wanted = [k for k in wanted if k not in PER_CLASS_KINDS]
        names, ids = rows[split]
        try:
            report.add(
                pack_rows(root, out, split, names, wanted, num_classes=num_classes, ids=ids,
                          progress=progress)
            )  # fmt: skip
        except PackError as exc:
            problems += exc.problems
    if problems:
        raise PackError(problems)
    return report


def _is_unav(root: str | Path) -> bool:
    from avparse.data.unav import is_unav_root

    return is_unav_root(root) and not (Path(root) / LLP_FILES["train"]).is_file()


def _pack_unav(
    root: Path,
    out: Path,
    splits: Sequence[str],
    kinds: list[str] | None,
    progress: bool,
) -> PackReport:
    """:func:`pack` of a UnAV-100 root: each split ragged, rows = videos, T = ceil(duration).

    By default every UnAV-100 feature folder present, and for the train split the hard
    harvests present."""
    from avparse.data.layout import task_kinds
    from avparse.data.unav import UnAVAnnotations
    from avparse.vocab import UNAV

    ann = UnAVAnnotations(root)
    report = PackReport()
    problems: list[str] = []
    for split in splits:
        videos = ann.videos(split)
        if not videos:
            continue
        if kinds is None:
            wanted = [k for k, fk in task_kinds("unav").items() if (root / fk.folder).is_dir()]
            if split == "train":
                wanted += [k for k, folder in HARVEST_KINDS.items() if (root / folder).is_dir()]
        else:
            wanted = [k for k in kinds if split == "train" or k not in PER_CLASS_KINDS]
        try:
            report.add(
                pack_rows(root, out, split, videos, wanted, num_classes=len(UNAV), ids=videos,
                          progress=progress, lengths=ann.lengths(split))
            )  # fmt: skip
        except PackError as exc:
            problems += exc.problems
    if problems:
        raise PackError(problems)
    return report


def ensure_packed(
    root: str | Path,
    out: str | Path | None = None,
    *,
    splits: tuple[str, ...],
    kinds: dict[str, list[str]],
    vocab: Vocabulary = LLP,
    progress: bool = False,
) -> dict[str, PackedSplit]:
    """:func:`ensure_rows` for splits of an LLP root; ``kinds`` maps split -> arrays needed."""
    out = Path(out) if out is not None else default_store(root)
    annotations = LLPAnnotations(Path(root), vocab)
    return {
        split: ensure_rows(
            root,
            out,
            split,
            annotations.weak(split).filenames,
            kinds[split],
            num_classes=len(vocab),
            progress=progress,
        )
        for split in splits
    }


def store_size(out: str | Path) -> int:
    """Bytes used by the arrays of a store."""
    return sum(p.stat().st_size for p in Path(out).rglob("*.npy"))


__all__ = [
    "FORMAT",
    "UNAV_STORE",
    "PackError",
    "PackReport",
    "PackedSplit",
    "cache_dir",
    "can_write",
    "default_store",
    "ensure_packed",
    "ensure_rows",
    "open_split",
    "pack",
    "pack_rows",
    "store_size",
]
