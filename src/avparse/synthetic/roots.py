"""Synthetic LLP-like and AVE-like data roots in the published layout, or the same in memory.

A root holds what a real data root plus a real harvest hold: the annotation files, the student
features, and per teacher the files ``avparse harvest`` writes (``segment_scores``,
``segment_soft_labels``, ``segment_pseudo_labels``, see :mod:`avparse.harvest.outputs`), labelled
by the real calibration and rule (:mod:`avparse.synthetic.labels`); the fused teacher's labels go
to ``fused/`` (what ``avparse harvest --teacher fused`` writes, same scores). Every split is
rendered chunk by chunk from random streams keyed by (seed, split, chunk), so output does not
depend on the machine.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avparse.data.layout import (
    FEATURE_KINDS,
    HARVEST_FOLDERS,
    LLP_FILES,
    SCORE_FOLDERS,
    SEGMENTS,
    SOFT_HARVEST_FOLDERS,
)
from avparse.data.llp import write_dense_tsv, write_weak_tsv
from avparse.errors import AvparseError
from avparse.harvest.calibration import Calibration, write_thresholds
from avparse.harvest.outputs import MODALITIES, ClipOutputs
from avparse.synthetic.config import SPLIT_CODE, SyntheticConfig, chunks, video_ids
from avparse.synthetic.config import rng as rng_of
from avparse.synthetic.events import ave_activity, sample_ave_events, sample_llp_events
from avparse.synthetic.labels import Labels, calibrate_teachers, label_all, truth
from avparse.synthetic.world import World, render
from avparse.teachers.calibrate import MIN_CLIPS
from avparse.utils.atomic import write_json, write_text
from avparse.utils.progress import progress
from avparse.vocab import AVE, LLP, Vocabulary

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "valor": ("vggish", "res152", "r2plus1d_18"),
    "valor++": ("clap", "clip", "r2plus1d_18"),
}
"""Feature kinds written for each preset family (names from ``layout.FEATURE_KINDS``)."""

COMPLETE_MARKER = ".synthetic_complete.json"
"""Written last, holding the generation settings: a root with it is finished and reusable."""

STARTED_MARKER = ".synthetic_started.json"
"""Written first, before any data file, and removed after :data:`COMPLETE_MARKER`: a root with
it is an unfinished synthetic root (ours, made again). A non-empty folder with neither marker is
not ours and is never written into."""

THRESHOLDS_FILE = "synthetic_thresholds.json"
"""The calibrated thresholds, in the file format of ``avparse calibrate`` (``--thresholds``)."""

FUSED = "fused"
"""Folder of the fused teacher's labels inside a root, laid out like a harvest root."""

CHUNK = 128
"""Clips rendered at once (bounds memory; part of the random stream key, so never change it)."""

FORMAT = 2
"""Version of what a root holds (2: teacher logits and soft labels, real calibration and rule);
part of the settings in the completion marker, so a root of another version is made again."""

_GENERATED = (
    *(k.folder for k in FEATURE_KINDS.values()),
    *HARVEST_FOLDERS.values(), *SOFT_HARVEST_FOLDERS.values(), *SCORE_FOLDERS.values(), FUSED,
)  # fmt: skip
"""Per-clip folders a generator writes (their top folders are removed before regenerating)."""


Sink = Callable[[str, slice, dict[str, np.ndarray]], None]
"""Receives a split's rendered features chunk by chunk: (split, rows, {kind: array})."""


@dataclass
class SplitArrays:
    """One split held in memory: truth, features, teacher logits and labels."""

    filenames: list[str]
    weak: np.ndarray
    audio: np.ndarray
    visual: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    """``{modality: (n, 10, C) float32}`` teacher logits (``segment_scores``)."""
    labels: dict[str, Labels] = field(default_factory=dict)
    """``{teacher: {modality: (hard, soft)}}`` for ``modality`` and ``fused`` teachers."""

    @property
    def ids(self) -> list[str]:
        return [f[:11] for f in self.filenames]


def _check_features(features: str | None) -> tuple[str, ...]:
    if features is None:
        return ()
    if features not in FEATURE_SETS:
        known = ", ".join(FEATURE_SETS)
        raise AvparseError(f"unknown synthetic feature set {features!r} (known: {known})")
    return FEATURE_SETS[features]


def _render_splits(
    splits: dict[str, SplitArrays],
    kinds: tuple[str, ...],
    seed: int,
    config: SyntheticConfig,
    vocab: Vocabulary,
    task: str,
    sink: Sink,
    min_clips: int = MIN_CLIPS,
    segments: bool = False,
    show: bool = False,
) -> Calibration:
    """Render every split chunk by chunk (features go to ``sink``), calibrate the teachers on
    val (else the first split) and label every split; returns the calibration.

    ``segments``: the frame-wise teachers are those of the name-based world shared with the
    UnAV-like roots (:func:`avparse.synthetic.unav.teacher_segments`), whose CLIP (10, 768) and
    CLAP (10, 512) segment embeddings are also rendered (``clip_segments``, ``clap_segments``);
    the teachers' logits are those embeddings against the class text embeddings.
    ``show``: progress per split (:func:`avparse.utils.progress.progress`)."""
    world = World.build(len(vocab), seed, config)
    concept_world = None
    if segments:
        from avparse.synthetic.unav import ConceptWorld

        concept_world = ConceptWorld.build(vocab, (), config)
    for name, split in splits.items():
        parts: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
        pieces = list(chunks(len(split.filenames), CHUNK))
        for k, sl in progress(pieces, desc=f"synth {name}", unit="chunk", enabled=show):
            out = render(
                world, split.audio[sl], split.visual[sl], kinds,
                rng_of(seed, 7, SPLIT_CODE[name], k), config,
            )  # fmt: skip
            if concept_world is not None:
                _segment_teachers(concept_world, split, sl, out, rng_of(seed, 31, SPLIT_CODE[name], k), config)  # fmt: skip
            sink(name, sl, out.features)
            for m in MODALITIES:
                parts[m].append(out.scores[m])
        split.scores = {
            m: np.concatenate(v) if v else np.zeros((0, SEGMENTS, len(vocab)), np.float32)
            for m, v in parts.items()
        }
    cal_name = "val" if "val" in splits else next(iter(splits))
    cal = splits[cal_name]
    calibration = calibrate_teachers(
        vocab, cal_name, cal.scores, cal.weak, truth(task, cal.audio, cal.visual),
        min_clips=min_clips,
    )  # fmt: skip
    for split in splits.values():
        split.labels = label_all(split.scores, calibration.thresholds, split.weak)
    return calibration


def _segment_teachers(
    world, split: SplitArrays, sl: slice, out, rng: np.random.Generator, config: SyntheticConfig
) -> None:
    """Replace ``out``'s teacher logits by the name-based world's and add its segment features."""
    from avparse.synthetic.unav import SEGMENT_KIND_OF, teacher_segments

    audio, visual = split.audio[sl], split.visual[sl]
    n, t, c = audio.shape
    seg_video = np.repeat(np.arange(n), t)
    emb, logits, _ = teacher_segments(
        world, audio.reshape(n * t, c), visual.reshape(n * t, c), seg_video, n, rng, config
    )
    for m, kind in SEGMENT_KIND_OF.items():
        out.features[kind] = emb[m].reshape(n, t, -1)
        out.scores[m] = logits[m].reshape(n, t, c)


def _llp_splits(
    n_train: int, n_val: int, n_test: int, seed: int, config: SyntheticConfig
) -> dict[str, SplitArrays]:
    taken: set[str] = set()
    splits = {}
    for name, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n < 0:
            raise AvparseError(f"clip count of {name} must be >= 0, got {n}")
        rng = rng_of(seed, 1, SPLIT_CODE[name])
        weak, audio, visual = sample_llp_events(n, rng, config)
        ids = video_ids(n, rng_of(seed, 2, SPLIT_CODE[name]), taken)
        starts = rng.integers(0, 30, size=n) * 10
        names = [f"{i}_{s}_{s + 10}" for i, s in zip(ids, starts.tolist(), strict=True)]
        splits[name] = SplitArrays(names, weak, audio, visual)
    return splits


def generate_arrays(
    *,
    n_train: int,
    n_val: int,
    n_test: int,
    features: str | None = "valor",
    seed: int = 0,
    config: SyntheticConfig | None = None,
    task: str = "llp",
    min_clips: int = MIN_CLIPS,
    segments: bool = False,
) -> dict[str, SplitArrays]:
    """The same data as :func:`generate_llp` (or, with ``task="ave"``, the synthetic clips of
    :func:`generate_ave`), held in memory (no files), for benchmarks.

    ``features=None`` renders no student features (teacher logits and labels only: fast);
    ``min_clips`` is the calibration's (:func:`avparse.teachers.calibrate.calibrate`);
    ``segments``: the name-based teachers and their segment features (:func:`_render_splits`).
    Mind the size of features: ResNet-152's take 655 kB per clip.
    """
    config = config or SyntheticConfig()
    kinds = _check_features(features)
    if task == "ave":
        splits = _ave_splits(n_train, n_val, n_test, None, None, seed, config)[0]
        vocab = AVE
    elif task == "llp":
        splits, vocab = _llp_splits(n_train, n_val, n_test, seed, config), LLP
    else:
        raise AvparseError(f"unknown synthetic task {task!r} (expected llp or ave)")
    kinds_out = (*kinds, "clip_segments", "clap_segments") if segments else kinds
    store: dict[str, dict[str, list[np.ndarray]]] = {s: {k: [] for k in kinds_out} for s in splits}

    def sink(name: str, sl: slice, feats: dict[str, np.ndarray]) -> None:
        for k, v in feats.items():
            store[name][k].append(v)

    _render_splits(splits, kinds, seed, config, vocab, task, sink, min_clips, segments)
    for name, split in splits.items():
        split.features = {
            k: np.concatenate(v)
            if v
            else np.zeros(
                (0, FEATURE_KINDS[k].shape[0] or SEGMENTS, FEATURE_KINDS[k].dim), np.float32
            )
            for k, v in store[name].items()
        }
    return splits


# --- writing data roots --------------------------------------------------------------------------


def _settings(kind: str, counts: dict, features: str, seed: int, config: SyntheticConfig) -> dict:
    return {
        "format": FORMAT,
        "kind": kind,
        "counts": counts,
        "features": features,
        "seed": seed,
        "config": config.to_dict(),
    }


def is_synthetic(root: str | Path) -> bool:
    """Whether ``root`` is a synthetic root made by avparse (finished or not)."""
    root = Path(root)
    return (root / COMPLETE_MARKER).is_file() or (root / STARTED_MARKER).is_file()


def _drop_generated(root: Path) -> None:
    """Remove the per-clip folders a generator writes (only ever called on a root of ours)."""
    for top in sorted({f.split("/")[0] for f in _GENERATED}):
        shutil.rmtree(root / top, ignore_errors=True)


def _begin(root: Path, settings: dict, overwrite: bool) -> bool:
    """True when ``root`` already holds exactly this data (nothing to do).

    Otherwise ``root`` is made ready for writing: a missing or empty folder is used; a finished
    synthetic root of other settings only with ``overwrite``; an unfinished synthetic root
    (started marker) is made again; any other non-empty folder is refused whatever the flags,
    so real data (a copy of LLP's annotation files, a harvest root) is never replaced.
    """
    marker = root / COMPLETE_MARKER
    if root.exists() and not root.is_dir():
        raise AvparseError(f"{root}: exists and is not a folder")
    if marker.is_file():
        try:
            done = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            done = None
        if done == settings:
            return True
        if not overwrite:
            raise AvparseError(
                f"{root}: holds synthetic data made with other settings; "
                "choose another folder or pass --overwrite (overwrite=True) to replace it"
            )
    elif not (root / STARTED_MARKER).is_file() and root.is_dir() and any(root.iterdir()):
        raise AvparseError(
            f"{root}: not empty and not a synthetic root made by avparse; refusing to write "
            "synthetic data into it (--overwrite replaces only a synthetic root); "
            "choose a new or empty folder"
        )
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / STARTED_MARKER, settings)  # first: from here on the folder is ours
    marker.unlink(missing_ok=True)
    # Ours: drop the per-clip folders, so no clip of an older set stays.
    _drop_generated(root)
    return False


FRAME_DTYPES = ("float32", "float16")
"""dtypes of the synthetic frame-level feature files (:func:`generate_llp`'s ``frame_dtype``)."""


def _feature_sink(root: Path, ids_of: dict[str, list[str]], frame_dtype: str = "float32") -> Sink:
    folders = {k: root / FEATURE_KINDS[k].folder for k in FEATURE_KINDS}

    def sink(name: str, sl: slice, feats: dict[str, np.ndarray]) -> None:
        ids = ids_of[name][sl]
        for kind, arr in feats.items():
            folders[kind].mkdir(parents=True, exist_ok=True)
            if frame_dtype != "float32" and FEATURE_KINDS[kind].frames > SEGMENTS:
                arr = arr.astype(frame_dtype)  # frame-level files only (ResNet-152's 80 rows)
            for clip, x in zip(ids, arr, strict=True):
                np.save(folders[kind] / f"{clip}.npy", x)

    return sink


def _write_harvest(root: Path, split: SplitArrays) -> None:
    """The files ``avparse harvest`` writes, by its own path names (:class:`ClipOutputs`).

    Plain ``np.save``, not the harvest's atomic per-file writes: the completion marker, written
    last, is what tells a finished root, and a root without it is regenerated.
    """
    for teacher, base in (("modality", root), (FUSED, root / FUSED)):
        labels = split.labels[teacher]
        for m in MODALITIES:
            for folder in (HARVEST_FOLDERS[m], SOFT_HARVEST_FOLDERS[m]):
                (base / folder).mkdir(parents=True, exist_ok=True)
            hard, soft = labels[m]
            for i, clip in enumerate(split.ids):
                out = ClipOutputs(base, clip)
                np.save(out.soft(m), soft[i].astype(np.float32, copy=False))
                np.save(out.hard(m), hard[i].astype(np.float32, copy=False))
    for m in MODALITIES:
        (root / SCORE_FOLDERS[m]).mkdir(parents=True, exist_ok=True)
        for clip, x in zip(split.ids, split.scores[m], strict=True):
            np.save(ClipOutputs(root, clip).scores(m), x.astype(np.float32, copy=False))


def _write_clips(
    root: Path,
    splits: dict[str, SplitArrays],
    kinds: tuple[str, ...],
    seed: int,
    config: SyntheticConfig,
    vocab: Vocabulary,
    task: str,
    segments: bool = False,
    show: bool = False,
    frame_dtype: str = "float32",
) -> Calibration:
    """Every clip's features and harvest files under ``root``; returns the calibration."""
    ids_of = {name: s.ids for name, s in splits.items()}
    calibration = _render_splits(
        splits, kinds, seed, config, vocab, task, _feature_sink(root, ids_of, frame_dtype),
        segments=segments, show=show,
    )  # fmt: skip
    for split in splits.values():
        _write_harvest(root, split)
    return calibration


def _finish(root: Path, settings: dict, calibration: Calibration) -> None:
    write_thresholds(calibration, root / THRESHOLDS_FILE)
    write_json(root / COMPLETE_MARKER, settings)
    (root / STARTED_MARKER).unlink(missing_ok=True)


def generate_llp(
    root: str | Path,
    *,
    n_train: int,
    n_val: int,
    n_test: int,
    features: str = "valor",
    seed: int = 0,
    config: SyntheticConfig | None = None,
    overwrite: bool = False,
    segments: bool = False,
    progress: bool = False,
    frame_dtype: str = "float32",
) -> Path:
    """Write a complete LLP-like data root in the published layout; returns ``root``.

    ``frame_dtype`` ``float16`` writes the frame-level feature files (ResNet-152's (80, 2048),
    nine tenths of the root's bytes) in half precision, half the disk (``avparse demo`` does);
    the store averages them to 10 rows in float64 and keeps float32.

    Annotation files (weak labels of every split, dense labels of val and test), features of
    ``features`` (``valor``: VGGish / ResNet-152 / R(2+1)D; ``valor++``: CLAP maps / CLIP /
    R(2+1)D), the teachers' harvest files (module docstring) and the fused teacher's labels
    under ``fused/``. A root finished with the same settings is reused as is (completion
    marker); other settings are refused unless ``overwrite``. ``segments``: the frame-wise
    teachers of the name-based world shared with the UnAV-like roots, and their CLIP / CLAP
    segment features (``feats_CLIP|feats_CLAP/segment_feats``, (10, 768) / (10, 512); see
    :func:`_render_splits`) and the class text embeddings in UWAV's ``event_feats`` files, for
    the temporal teacher.
    """
    root = Path(root)
    config = config or SyntheticConfig()
    kinds = _check_features(features)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    splits = _llp_splits(n_train, n_val, n_test, seed, config)  # checks the counts
    settings = _settings("llp", counts, features, seed, config)
    if segments:  # only then, so the settings of existing roots stay what they were
        settings["segments"] = True
    if frame_dtype not in FRAME_DTYPES:
        raise AvparseError(f"frame_dtype must be one of {', '.join(FRAME_DTYPES)}")
    if frame_dtype != "float32":  # likewise
        settings["frame_dtype"] = frame_dtype
    if _begin(root, settings, overwrite):
        return root
    calibration = _write_clips(
        root, splits, kinds, seed, config, LLP, "llp", segments, show=progress,
        frame_dtype=frame_dtype,
    )  # fmt: skip
    if segments:
        from avparse.synthetic.unav import write_event_features

        write_event_features(root, LLP, config)
    for name, split in splits.items():
        write_weak_tsv(root / LLP_FILES[name], split.filenames, split.weak, LLP)
    everything = [splits[s] for s in ("train", "val", "test")]
    write_weak_tsv(
        root / LLP_FILES["full"],
        [f for s in everything for f in s.filenames],
        np.concatenate([s.weak for s in everything]),
        LLP,
    )
    scored = [splits["val"], splits["test"]]
    filenames = [f for s in scored for f in s.filenames]
    for key, attr in (("dense_audio", "audio"), ("dense_visual", "visual")):
        matrix = np.concatenate([getattr(s, attr) for s in scored])
        write_dense_tsv(root / LLP_FILES[key], filenames, matrix, LLP)
    _finish(root, settings, calibration)
    return root


# --- AVE -------------------------------------------------------------------------------------------


def _ave_by_id(
    ids: list[str], audio: np.ndarray, visual: np.ndarray, weak: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge rows sharing a video id (activity and labels OR-ed); returns row -> id index too."""
    order: dict[str, int] = {}
    for clip in ids:
        order.setdefault(clip, len(order))
    index = np.fromiter((order[c] for c in ids), dtype=np.int64, count=len(ids))
    m = len(order)
    out = [np.zeros((m, *x.shape[1:]), dtype=bool) for x in (audio, visual, weak)]
    for dst, src in zip(out, (audio, visual, weak), strict=True):
        np.logical_or.at(dst, index, src)
    return list(order), out[0], out[1], out[2], index


def _ave_splits(
    n_train: int,
    n_val: int,
    n_test: int,
    annotations: str | Path | None,
    per_split: int | None,
    seed: int,
    config: SyntheticConfig,
) -> tuple[dict[str, SplitArrays], dict[str, np.ndarray], tuple, dict]:
    """AVE splits by video id (without features), the row order of each split, the rows'
    (ids, categories, spans) and the settings' ``counts``."""
    from avparse.data.ave import AVE_FILES, AVEAnnotations, read_ave_split

    if annotations is not None:
        source = AVEAnnotations(Path(annotations))
        clips = source.clips
        orders = {
            s: read_ave_split(source.root / AVE_FILES[s], len(clips))
            for s in ("train", "val", "test")
        }
        if per_split is not None:
            keep = np.sort(np.concatenate([o[:per_split] for o in orders.values()]))
            new_row = {int(r): i for i, r in enumerate(keep)}
            orders = {
                s: np.asarray([new_row[int(r)] for r in o[:per_split]]) for s, o in orders.items()
            }
            clips = clips.subset(keep)
        category = clips.categories
        spans = np.stack([clips.onsets, clips.offsets], 1)
        ids = clips.ids
        counts = {"annotations": str(Path(annotations).resolve()), "per_split": per_split}
    else:
        for name, n in (("train", n_train), ("val", n_val), ("test", n_test)):
            if n < 0:
                raise AvparseError(f"clip count of {name} must be >= 0, got {n}")
        n = n_train + n_val + n_test
        rng = rng_of(seed, 11)
        category, spans = sample_ave_events(n, rng)
        ids = video_ids(n, rng_of(seed, 12), set())
        bounds = np.cumsum([0, n_train, n_val, n_test])
        orders = {
            s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(("train", "val", "test"))
        }
        counts = {"train": n_train, "val": n_val, "test": n_test}
    audio, visual = ave_activity(category, spans, rng_of(seed, 13), config)
    weak = np.zeros((len(ids), len(AVE)), dtype=bool)
    weak[np.arange(len(ids)), category] = True
    uids, u_audio, u_visual, u_weak, row_to_id = _ave_by_id(ids, audio, visual, weak)
    # Render per unique id; an id is assigned to the split of its first row.
    split_of = np.full(len(uids), -1)
    for code, s in enumerate(("train", "val", "test")):
        for r in orders[s]:
            if split_of[row_to_id[r]] < 0:
                split_of[row_to_id[r]] = code
    splits = {}
    for code, s in enumerate(("train", "val", "test")):
        sel = np.flatnonzero(split_of == code)
        if len(sel) or s == "val":
            splits[s] = SplitArrays(
                [uids[i] for i in sel], u_weak[sel], u_audio[sel], u_visual[sel]
            )
    if len(splits["val"].filenames) == 0:
        splits.pop("val")
    return splits, orders, (ids, category, spans), counts


def generate_ave(
    root: str | Path,
    *,
    n_train: int = 0,
    n_val: int = 0,
    n_test: int = 0,
    annotations: str | Path | None = None,
    per_split: int | None = None,
    features: str = "valor",
    seed: int = 0,
    config: SyntheticConfig | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an AVE data root: ``Annotations.txt``, split files, features and (10, 28) harvests.

    With ``annotations`` (a folder holding the real ``Annotations.txt`` and split files) the real
    clips, segment labels and splits are used and only the features and harvests are synthetic;
    ``per_split`` keeps only the first clips of each real split (rows renumbered) for quick runs;
    otherwise ``n_*`` AVE-like clips are drawn (one audio-visual event per clip). Either way one
    modality may continue past the event (``SyntheticConfig.ave_unaligned``), as in real AVE
    background segments. The teachers are calibrated as ``avparse calibrate --task ave`` does:
    the annotated event is the truth of both modalities.
    """
    from avparse.data.ave import AVE_FILES, write_ave_split

    root = Path(root)
    config = config or SyntheticConfig()
    kinds = _check_features(features)
    splits, orders, clips, counts = _ave_splits(
        n_train, n_val, n_test, annotations, per_split, seed, config
    )
    settings = _settings("ave", counts, features, seed, config)
    if _begin(root, settings, overwrite):
        return root
    calibration = _write_clips(root, splits, kinds, seed, config, AVE, "ave")
    names = AVE.names
    ids, category, spans = clips
    lines = [
        f"{names[c]}&{clip}&good&{int(on)}&{int(off)}"
        for clip, c, (on, off) in zip(ids, category.tolist(), spans.tolist(), strict=True)
    ]
    write_text(root / AVE_FILES["annotations"], "\n".join(lines) + "\n")
    for s in ("train", "val", "test"):
        write_ave_split(root / AVE_FILES[s], orders[s])
    _finish(root, settings, calibration)
    return root


def is_complete(root: str | Path) -> bool:
    """Whether ``root`` is a finished synthetic data root."""
    return (Path(root) / COMPLETE_MARKER).is_file() and not (Path(root) / STARTED_MARKER).exists()


def fused_root(root: str | Path, out: str | Path) -> Path:
    """A data root at ``out`` that is ``root`` with the fused teacher's labels (hard and soft) in
    place of the one-modality teachers' (symbolic links, nothing copied): what a harvest with
    ``--teacher fused`` would have written. Train on ``out`` exactly as on ``root`` for the
    ablation "modality-independent teachers vs a fused teacher"."""
    root, out = Path(root).resolve(), Path(out)
    if not is_complete(root):
        raise AvparseError(f"{root}: not a finished synthetic data root")
    swapped = {*HARVEST_FOLDERS.values(), *SOFT_HARVEST_FOLDERS.values()}
    out.mkdir(parents=True, exist_ok=True)
    links: dict[Path, Path] = {}
    for item in root.iterdir():
        if item.name in (FUSED, "packed", "packed_ave", COMPLETE_MARKER, STARTED_MARKER):
            continue
        if item.is_dir() and any(h.startswith(item.name + "/") for h in swapped):
            for sub in item.iterdir():
                rel = f"{item.name}/{sub.name}"
                links[out / rel] = root / FUSED / rel if rel in swapped else sub
        else:
            links[out / item.name] = item
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == target.resolve():
                continue
            raise AvparseError(f"{link}: exists; choose an empty folder for the fused root")
        link.symlink_to(target, target_is_directory=target.is_dir())
    return out
