"""The harvest job: videos + weak labels -> teacher features, logits and segment labels.

Pipeline: worker threads decode clips (PyAV) and build CLAP's mel inputs ahead of the model, the
main thread runs CLIP and CLAP on batches of clips, applies the VALOR rule and writes each clip's
files atomically. A clip is skipped when all its files exist; a clip whose features and logits
exist but whose labels do not (new thresholds, ``--overwrite`` of labels) is relabelled from the
saved logits without a model pass. Failures (missing or undecodable videos) are recorded and the
other clips finish. Under ``torchrun`` rank ``r`` of ``w`` takes the clips at sorted positions
``i % w == r``.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avparse import __version__
from avparse.data.llp import clip_id, read_weak
from avparse.errors import AvparseError
from avparse.harvest.outputs import (
    FAILURES,
    MANIFEST,
    NO_AUDIO_FOLDER,
    NO_AUDIO_REPORT,
    ClipOutputs,
)
from avparse.media.decode import WINDOW_SECONDS, VideoDecodeError, decode_clip
from avparse.teachers.clap import DEFAULT_CLAP
from avparse.teachers.clip import DEFAULT_CLIP
from avparse.teachers.rule import elaborate, fused_scores
from avparse.utils.atomic import write_json, write_text
from avparse.vocab import Vocabulary, get_vocabulary, load_thresholds

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg")
TEACHER_MODES = ("modality", "fused")


@dataclass
class HarvestConfig:
    """Everything a harvest run needs; the CLI fills it from its flags."""

    videos: Path
    labels: Path
    out: Path
    clip_model: str = DEFAULT_CLIP
    clap_model: str = DEFAULT_CLAP
    device: str | None = None
    batch_size: int = 8
    task: str = "llp"
    thresholds: Path | None = None
    teacher: str = "modality"
    workers: int = 2
    overwrite: bool = False
    progress: bool = True


@dataclass
class ClipJob:
    clip: str
    filename: str
    weak: np.ndarray
    video: Path | None = None


@dataclass
class HarvestResult:
    """What a run did; ``failures`` and ``no_audio`` are ``(clip, file, reason)`` rows."""

    total: int = 0
    harvested: int = 0
    relabelled: int = 0
    skipped: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    no_audio: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the whole run (model loading included)."""
    model_seconds: float = 0.0
    """Wall time of the decode + model loop, which ``clips_per_second`` uses."""
    rank: int = 0
    world: int = 1
    labelled: bool = True
    """False when the vocabulary had no thresholds: only features and logits were written."""

    @property
    def clips_per_second(self) -> float:
        return self.harvested / self.model_seconds if self.model_seconds > 0 else 0.0


# --- inputs ------------------------------------------------------------------------------------


def read_labels(
    path: Path, task: str, vocab: Vocabulary
) -> tuple[list[str], list[str], np.ndarray]:
    """(filenames, clip ids, weak (N, C) bool) from an LLP weak CSV or AVE ``Annotations.txt``."""
    if task == "ave":
        from avparse.data.ave import read_ave_annotations

        ids, labels = read_ave_annotations(path, vocab).id_labels()
        return list(ids), list(ids), np.asarray(labels, bool)
    weak = read_weak(path, vocab)
    return list(weak.filenames), weak.ids, np.asarray(weak.labels, bool)


def index_videos(folder: Path) -> dict[str, Path]:
    """Video files under ``folder`` (recursively) by file stem."""
    if not folder.is_dir():
        raise AvparseError(f"{folder}: video folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
            found.setdefault(path.stem, path)
    return found


def find_video(videos: dict[str, Path], filename: str) -> Path | None:
    """A clip's video by its full filename (with or without extension) or its 11-character id."""
    stem = Path(filename).stem if Path(filename).suffix.lower() in VIDEO_EXTENSIONS else filename
    return videos.get(filename) or videos.get(stem) or videos.get(clip_id(filename))


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard(jobs: list[ClipJob], rank: int, world: int) -> list[ClipJob]:
    """The jobs of ``rank``: sorted positions ``i % world == rank`` (no clip done twice)."""
    return [j for i, j in enumerate(jobs) if i % world == rank]


def plan(
    filenames: list[str], ids: list[str], weak: np.ndarray, videos: dict[str, Path]
) -> tuple[list[ClipJob], list[tuple[str, str, str]]]:
    """Jobs sorted by clip id, and failures for clips without a video or with a repeated id."""
    jobs: dict[str, ClipJob] = {}
    failures = []
    for name, cid, row in zip(filenames, ids, weak, strict=True):
        if cid in jobs:
            failures.append((cid, name, f"clip id repeats {jobs[cid].filename!r}; harvested once"))
            continue
        jobs[cid] = ClipJob(cid, name, row, find_video(videos, name))
    ordered = [jobs[c] for c in sorted(jobs)]
    return ordered, failures


# --- the run -----------------------------------------------------------------------------------


@dataclass
class _Prepared:
    job: ClipJob
    frames: np.ndarray | None = None
    chunks: Any = None
    whole: Any = None
    audio_note: str = ""
    error: str = ""


class _Teachers:
    """The two teachers, loaded on first use: clips that fail to decode never cost a model load."""

    def __init__(self, config: HarvestConfig, vocab: Vocabulary) -> None:
        from avparse.teachers.clap import AudioInputBuilder
        from avparse.teachers.loading import check_source

        check_source(config.clip_model, "visual teacher (CLIP)")
        check_source(config.clap_model, "audio teacher (CLAP)")
        self.config = config
        self.vocab = vocab
        self.inputs = AudioInputBuilder(config.clap_model)
        self._models: tuple[Any, Any] | None = None
        self.load_seconds = 0.0

    def _load(self) -> tuple[Any, Any]:
        if self._models is None:
            began = time.perf_counter()
            from avparse.teachers.clap import AudioTeacher
            from avparse.teachers.clip import VisualTeacher

            config = self.config
            device = _rank_device(config.device)
            per_call = 10 * config.batch_size  # one model call per batch of clips
            visual = VisualTeacher(
                config.clip_model, vocab=self.vocab, device=device, batch_frames=per_call
            )
            audio = AudioTeacher(
                config.clap_model,
                vocab=self.vocab,
                device=device,
                batch_waves=per_call,
                inputs=self.inputs,
            )
            self._models = (visual, audio)
            self.load_seconds = time.perf_counter() - began
        return self._models

    @property
    def visual(self) -> Any:
        return self._load()[0]

    @property
    def audio(self) -> Any:
        return self._load()[1]


def _rank_device(device: str | None) -> str | None:
    """Under torchrun, a bare ``cuda`` (or the default) means this process's ``cuda:LOCAL_RANK``."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or device not in (None, "cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


def _thresholds(vocab: Vocabulary) -> dict[str, np.ndarray] | None:
    try:
        return {m: np.asarray(vocab.thresholds(m), np.float32) for m in ("visual", "audio")}
    except AvparseError:
        return None


def manifest(config: HarvestConfig, vocab: Vocabulary, thresholds: dict | None) -> dict:
    """The settings that decide a harvest's content (stored as ``harvest.json``)."""
    return {
        "avparse": __version__,
        "task": config.task,
        "vocabulary": vocab.name,
        "classes": vocab.names,
        "clip_model": str(config.clip_model),
        "clap_model": str(config.clap_model),
        "teacher": config.teacher,
        "window_seconds": WINDOW_SECONDS,
        "thresholds": None
        if thresholds is None
        else {m: [float(v) for v in t] for m, t in thresholds.items()},
    }


def _check_manifest(root: Path, current: dict, overwrite: bool) -> str:
    """Compare with the harvest already in ``root``: ``"same"``, ``"labels"`` or ``"models"``.

    Other models or classes are refused (use another ``--out``, or ``--overwrite`` to redo all).
    Other thresholds or teacher mode are refused unless ``--overwrite``, which then relabels from
    the saved logits without a model pass; a root harvested without thresholds (logits only) is
    labelled without ``--overwrite``.
    """
    import json

    path = root / MANIFEST
    if not path.is_file():
        return "same"
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AvparseError(f"{path}: unreadable harvest manifest ({exc})") from None
    model_keys = ("task", "classes", "clip_model", "clap_model")
    changed = [k for k in (*model_keys, "teacher", "thresholds") if old.get(k) != current.get(k)]
    if not changed:
        return "same"
    if old.get("thresholds") is None and not any(k in model_keys for k in changed):
        return "labels"  # logits only so far (no thresholds): labelling overwrites nothing
    if not overwrite:
        raise AvparseError(
            f"{path}: {root} was harvested with other settings ({', '.join(changed)}); "
            "use another --out, or --overwrite to redo it"
        )
    return "models" if any(k in model_keys for k in changed) else "labels"


def _decode(job: ClipJob, inputs: Any) -> _Prepared:
    """Decode one clip and build CLAP inputs with ``inputs`` (runs in a worker thread)."""
    prepared = _Prepared(job)
    if job.video is None:
        prepared.error = "video not found"
        return prepared
    try:
        clip = decode_clip(job.video)
        prepared.frames = clip.frames
        if clip.audio is None:
            prepared.audio_note = clip.audio_note or "no audio"
        else:
            prepared.chunks = inputs.prepare(list(clip.audio_chunks()))
            prepared.whole = inputs.prepare([clip.audio])
    except VideoDecodeError as exc:
        prepared.error = str(exc).removeprefix(f"{job.video}: ")
    except Exception as exc:  # one bad clip must not stop a batch job; the reason is recorded
        first = str(exc).splitlines()[0] if str(exc) else ""
        prepared.error = f"unexpected {type(exc).__name__}: {first}"
    return prepared


def _ahead(
    pool: ThreadPoolExecutor, jobs: list[ClipJob], inputs: Any, depth: int
) -> Iterator[_Prepared]:
    """Decoded clips in job order, with up to ``depth`` clips decoding ahead."""
    queue: collections.deque[Future] = collections.deque()
    it = iter(jobs)
    for job in it:
        queue.append(pool.submit(_decode, job, inputs))
        if len(queue) >= depth:
            break
    while queue:
        yield queue.popleft().result()
        job = next(it, None)
        if job is not None:
            queue.append(pool.submit(_decode, job, inputs))


def _label(
    out: ClipOutputs,
    weak: np.ndarray,
    scores: dict[str, np.ndarray],
    thresholds: dict[str, np.ndarray],
    teacher: str,
) -> None:
    if teacher == "fused" and "audio" in scores:
        fused = fused_scores(
            scores["visual"], scores["audio"], thresholds["visual"], thresholds["audio"]
        )
        hard, soft = elaborate(fused, np.zeros_like(thresholds["visual"]), weak)
        for m in scores:
            out.write_labels(m, hard, soft)
        return
    for m, s in scores.items():
        hard, soft = elaborate(s, thresholds[m], weak)
        out.write_labels(m, hard, soft)


def _run_batch(
    batch: list[_Prepared],
    teachers: _Teachers,
    root: Path,
    thresholds: dict[str, np.ndarray] | None,
    teacher: str,
    result: HarvestResult,
) -> None:
    frames = np.concatenate([p.frames for p in batch])
    emb = teachers.visual.embed_frames(frames)
    vis_scores = teachers.visual.scores(emb)
    heard = [p for p in batch if p.chunks is not None]
    aud: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if heard:
        from avparse.teachers.clap import AudioInputs

        chunk_emb = teachers.audio.embed(AudioInputs.concat([p.chunks for p in heard]))
        chunk_scores = teachers.audio.scores(chunk_emb)
        maps = teachers.audio.token_maps(AudioInputs.concat([p.whole for p in heard]))
        for i, p in enumerate(heard):
            aud[p.job.clip] = (maps[i], chunk_scores[i * 10 : (i + 1) * 10])
    for i, p in enumerate(batch):
        out = ClipOutputs(root, p.job.clip)
        out.no_audio.unlink(missing_ok=True)
        scores = {"visual": vis_scores[i * 10 : (i + 1) * 10]}
        out.write_model("visual", emb[i * 10 : (i + 1) * 10], scores["visual"])
        if p.job.clip in aud:
            maps_i, scores["audio"] = aud[p.job.clip]
            out.write_model("audio", maps_i, scores["audio"])
        else:
            out.mark_no_audio(str(p.job.video), p.audio_note)
            result.no_audio.append((p.job.clip, str(p.job.video), p.audio_note))
        if thresholds is not None:
            _label(out, p.job.weak, scores, thresholds, teacher)
        result.harvested += 1


def run_harvest(config: HarvestConfig) -> HarvestResult:
    """Harvest every clip of ``config.labels`` found in ``config.videos`` into ``config.out``."""
    if config.teacher not in TEACHER_MODES:
        raise AvparseError(f"unknown teacher {config.teacher!r} (expected modality or fused)")
    if config.batch_size < 1:
        raise AvparseError("--batch-size must be at least 1")
    start = time.perf_counter()
    vocab = get_vocabulary(config.task)
    if config.thresholds is not None:
        vocab = load_thresholds(config.thresholds, vocab)
    thresholds = _thresholds(vocab)
    root = Path(config.out)
    info = manifest(config, vocab, thresholds)
    change = _check_manifest(root, info, config.overwrite)
    filenames, ids, weak = read_labels(Path(config.labels), config.task, vocab)
    jobs, failures = plan(filenames, ids, weak, index_videos(Path(config.videos)))
    rank, world = distributed_rank()
    mine = shard(jobs, rank, world)
    result = HarvestResult(total=len(mine), rank=rank, world=world, labelled=thresholds is not None)
    result.failures += [f for i, f in enumerate(failures) if i % world == rank]

    if world > 1:
        _barrier()  # every rank has compared with the old manifest before any rank writes
    # Forget what the new settings replace *before* writing the new manifest, so an interrupted
    # run resumes correctly instead of mixing old and new files under one manifest.
    for job in mine:
        if change == "models":
            ClipOutputs(root, job.clip).remove_all()
        elif change == "labels":
            ClipOutputs(root, job.clip).remove_labels()
    write_json(root / MANIFEST, info)
    redo_models = config.overwrite and change == "same"
    todo, relabel = [], []
    for job in mine:
        out = ClipOutputs(root, job.clip)
        if job.video is None:
            result.failures.append((job.clip, job.filename, "video not found"))
        elif redo_models or not out.model_done():
            todo.append(job)
        elif thresholds is not None and not out.labels_done():
            relabel.append(job)
        else:
            result.skipped += 1
    for job in relabel:
        out = ClipOutputs(root, job.clip)
        _label(out, job.weak, out.load_scores(), thresholds or {}, config.teacher)
        result.relabelled += 1
    if todo:
        _harvest(todo, config, vocab, root, thresholds, result)
    result.seconds = time.perf_counter() - start
    _write_reports(root, result)
    return result


def _harvest(
    todo: list[ClipJob],
    config: HarvestConfig,
    vocab: Vocabulary,
    root: Path,
    thresholds: dict[str, np.ndarray] | None,
    result: HarvestResult,
) -> None:
    from tqdm import tqdm

    teachers = _Teachers(config, vocab)
    began = time.perf_counter()
    bar = tqdm(total=len(todo), unit="clip", desc="harvest", disable=not config.progress)
    batch: list[_Prepared] = []
    depth = max(2 * config.batch_size, config.workers)
    with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
        for prepared in _ahead(pool, todo, teachers.inputs, depth):
            if prepared.error:
                result.failures.append(
                    (
                        prepared.job.clip,
                        str(prepared.job.video or prepared.job.filename),
                        prepared.error,
                    )
                )
                bar.update(1)
                continue
            batch.append(prepared)
            if len(batch) == config.batch_size:
                _run_batch(batch, teachers, root, thresholds, config.teacher, result)
                bar.update(len(batch))
                batch = []
        if batch:
            _run_batch(batch, teachers, root, thresholds, config.teacher, result)
            bar.update(len(batch))
    bar.close()
    result.model_seconds = time.perf_counter() - began - teachers.load_seconds


# --- reports -----------------------------------------------------------------------------------


def _tsv(rows: list[tuple[str, str, str]]) -> str:
    lines = ["clip\tfile\treason"] + ["\t".join(r) for r in sorted(rows)]
    return "\n".join(lines) + "\n"


def _write_reports(root: Path, result: HarvestResult) -> None:
    """Failures of this run (merged over ranks) and all clips recorded without audio."""
    if result.world == 1:
        write_text(root / FAILURES, _tsv(result.failures))
        _write_no_audio(root)
        return
    write_text(root / f"{FAILURES}.rank{result.rank}", _tsv(result.failures))
    if not _barrier():
        return
    if result.rank == 0:
        rows: list[tuple[str, str, str]] = []
        for r in range(result.world):
            part = root / f"{FAILURES}.rank{r}"
            if part.is_file():
                for line in part.read_text().splitlines()[1:]:
                    if line:
                        clip, file, reason = line.split("\t", 2)
                        rows.append((clip, file, reason))
                part.unlink()
        write_text(root / FAILURES, _tsv(rows))
        _write_no_audio(root)
    _barrier()  # rank 0 has merged; then leave the process group cleanly
    import torch.distributed as dist

    dist.destroy_process_group()


def _write_no_audio(root: Path) -> None:
    folder = root / NO_AUDIO_FOLDER
    rows = []
    for p in sorted(folder.glob("*.txt")):
        if not p.name.startswith("."):
            video, _, reason = p.read_text().strip().partition("\t")
            rows.append((p.stem, video, reason))
    if rows or (root / NO_AUDIO_REPORT).exists():
        write_text(root / NO_AUDIO_REPORT, _tsv(rows))


def _barrier() -> bool:
    """Wait for every rank (gloo process group from torchrun's environment); False if none."""
    try:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        dist.barrier()
        return True
    except (ImportError, RuntimeError, ValueError):
        return False


def result_summary(result: HarvestResult) -> dict:
    data = asdict(result)
    data["clips_per_second"] = result.clips_per_second
    return data
