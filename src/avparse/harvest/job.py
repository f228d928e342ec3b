"""The harvest job: videos + weak labels -> teacher features, logits and segment labels.

:func:`run_harvest` validates the settings, compares them with the root's manifest
(:mod:`avparse.harvest.manifest`), plans the clips (:mod:`avparse.harvest.plan`), relabels what
saved logits allow, and runs the models on the rest: worker threads decode clips ahead
(:mod:`avparse.harvest.prefetch`), the main thread runs CLIP, CLAP (and with ``r2plus1d``
R(2+1)D-18) on batches of clips, labels them (:mod:`avparse.harvest.labels`) and writes each
clip's files atomically. With ``span="full"`` (UnAV-100, videos of any length) each video is read
whole, in 10 s windows, by :mod:`avparse.harvest.whole`. The manifest and the removal of files that new settings replace happen
once, just before the first write, after the models needed have loaded, so a run that fails on a
model or device leaves the root as it was. Under ``torchrun`` rank ``r`` of ``w`` takes the clips
at sorted positions ``i % w == r``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from avparse.data.layout import SEGMENTS
from avparse.errors import AvparseError
from avparse.features.sampling import SNIPPET_FPS, SNIPPET_SIZE, check_snippet_sampling
from avparse.harvest import manifest
from avparse.harvest.failures import write_reports
from avparse.harvest.labels import TEACHER_MODES, Thresholds, label_clip, thresholds_of
from avparse.harvest.models import DOWNLOAD, HarvestModels, ModelSources
from avparse.harvest.outputs import MANIFEST, SPANS, ClipOutputs
from avparse.harvest.plan import ClipJob, Failure, assign, index_videos, plan, read_clips, shard
from avparse.media.decode import TEACHER_SIZE
from avparse.teachers.clap import DEFAULT_CLAP
from avparse.teachers.clip import DEFAULT_CLIP, TEACHER_INPUTS, check_inputs, frame_decoding
from avparse.teachers.loading import check_precision
from avparse.utils import distributed
from avparse.utils.atomic import prepare_output_folder, write_json
from avparse.utils.jsonio import read_json_object
from avparse.utils.progress import progress
from avparse.vocab import Vocabulary, get_vocabulary, load_thresholds

if TYPE_CHECKING:
    from avparse.harvest.prefetch import Prepared

__all__ = ["DOWNLOAD", "TEACHER_MODES", "HarvestConfig", "HarvestResult", "run_harvest"]


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
    teacher_inputs: str = TEACHER_INPUTS[0]
    """``published`` (VALOR's frame sampling, resize and int16 audio) or ``0.1``."""
    precision: str = "float32"
    """Teachers' and R(2+1)D-18's arithmetic: ``float32`` or ``bfloat16`` (autocast)."""
    workers: int = 2
    overwrite: bool = False
    progress: bool = True
    r2plus1d: str | None = None
    """R(2+1)D-18 weights (a ``.pth`` file, or ``download``) to also write ``feats/r2plus1d_18``;
    None writes no 3D features."""
    snippet_fps: float = float(SNIPPET_FPS)
    snippet_size: int = SNIPPET_SIZE
    span: str | None = None
    """``window`` (each video's first 10 s as 10 segments: LLP, AVE) or ``full`` (the whole
    video in one-second segments: UnAV-100); None: ``full`` for task ``unav``, else ``window``."""

    @property
    def read_span(self) -> str:
        return self.span or ("full" if self.task == "unav" else "window")

    def validate(self) -> None:
        """Refuse bad settings in one line, before anything is read or written."""
        if self.teacher not in TEACHER_MODES:
            raise AvparseError(f"unknown teacher {self.teacher!r} (expected modality or fused)")
        check_inputs(self.teacher_inputs)
        check_precision(self.precision)
        if self.batch_size < 1:
            raise AvparseError("--batch-size must be at least 1")
        if self.workers < 1:
            raise AvparseError(f"--workers {self.workers}: must be at least 1")
        check_snippet_sampling(self.snippet_fps, self.snippet_size)
        if self.read_span not in SPANS:
            raise AvparseError(f"--span {self.span}: expected {' or '.join(SPANS)}")
        if self.read_span == "full" and self.r2plus1d is not None:
            raise AvparseError(
                "--r2plus1d writes the 10-segment student input feats/r2plus1d_18, which a "
                "whole-video harvest (--span full) does not make; harvest it with --span window"
            )

    def sources(self) -> ModelSources:
        return ModelSources(
            clip_model=str(self.clip_model),
            clap_model=str(self.clap_model),
            teacher_inputs=self.teacher_inputs,
            precision=self.precision,
            r2plus1d=self.r2plus1d,
            device=self.device,
            clips_per_call=self.batch_size,
        )

    def motion_settings(self) -> dict | None:
        """What decides the R(2+1)D-18 features (None: not asked for in this run)."""
        if self.r2plus1d is None:
            return None
        weights = self.r2plus1d
        return {
            "weights": weights if weights == DOWNLOAD else str(Path(weights).resolve()),
            "snippet_fps": float(self.snippet_fps),
            "snippet_size": int(self.snippet_size),
        }


@dataclass
class HarvestResult:
    """What a run did; ``failures``, ``no_audio`` and ``no_video`` are ``(clip, file, reason)``
    rows."""

    total: int = 0
    harvested: int = 0
    """Clips run through the teachers."""
    motion: int = 0
    """Clips whose R(2+1)D-18 features were computed."""
    relabelled: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    no_audio: list[Failure] = field(default_factory=list)
    no_video: list[Failure] = field(default_factory=list)
    """Audio-only files: harvested as heard, their visual labels 0."""
    segments: int = 0
    """One-second segments harvested (whole-video harvests)."""
    seconds: float = 0.0
    """Wall time of the whole run (model loading included)."""
    model_seconds: float = 0.0
    """Wall time of the decode + model loop, which ``clips_per_second`` uses."""
    rank: int = 0
    world: int = 1
    labelled: bool = True
    """False when the vocabulary had no thresholds: only features and logits were written."""

    def fail(self, job: ClipJob, reason: str) -> None:
        """List a clip that could not be harvested (its file could not be decoded)."""
        self.failures.append((job.clip, str(job.video or job.filename), reason))

    def mark_inputs(
        self, out: ClipOutputs, job: ClipJob, *, silent: bool, audio_note: str, blind: bool
    ) -> None:
        """Write the clip's input markers (before its CLAP/CLIP files: files without them would
        pass for heard / seen input) and list it here if it had no sound or no picture."""
        video = str(job.video)
        out.mark_inputs(video, silent=silent, audio_note=audio_note, blind=blind)
        if silent:
            self.no_audio.append((job.clip, video, audio_note))
        if blind:
            self.no_video.append((job.clip, video, "no video stream"))

    @property
    def clips_per_second(self) -> float:
        return self.harvested / self.model_seconds if self.model_seconds > 0 else 0.0


class _Commit:
    """Removes the files the new settings replace and writes the manifest, once, when needed."""

    def __init__(self, root: Path, change: manifest.Change, jobs: list[ClipJob]) -> None:
        self.root = root
        self.change = change
        self.jobs = jobs
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        # Forget what the new settings replace *before* writing the new manifest, so an
        # interrupted run resumes correctly instead of mixing old and new files.
        self._forget()
        write_json(self.root / MANIFEST, self.change.record)
        self.done = True

    def settle(self) -> None:
        """A rank that wrote nothing still forgets its replaced files once another rank has
        recorded the new settings (its clips must not pass for harvests of the new ones)."""
        if self.done or (self.change.teachers == "same" and not self.change.redo_motion):
            return
        path = self.root / MANIFEST
        if path.is_file() and read_json_object(path, "harvest manifest") == self.change.record:
            self.done = True  # written by another rank
            self._forget()

    def _forget(self) -> None:
        for job in self.jobs:
            out = ClipOutputs(self.root, job.clip)
            if self.change.teachers == "models":
                out.remove_all()
            elif self.change.teachers == "labels":
                out.remove_labels()
            if self.change.redo_motion:
                out.motion.unlink(missing_ok=True)


def run_harvest(config: HarvestConfig) -> HarvestResult:
    """Harvest every clip of ``config.labels`` found in ``config.videos`` into ``config.out``."""
    config.validate()
    start = time.perf_counter()
    vocab = get_vocabulary(config.task)
    if config.thresholds is not None:
        vocab = load_thresholds(config.thresholds, vocab)
    thresholds = thresholds_of(vocab)
    HarvestModels.check(config.sources())
    root = Path(config.out)
    prepare_output_folder(root)
    record = manifest.settings(
        task=config.task,
        vocabulary=vocab.name,
        classes=vocab.names,
        clip_model=config.clip_model,
        clap_model=config.clap_model,
        teacher_inputs=config.teacher_inputs,
        precision=config.precision,
        teacher=config.teacher,
        thresholds=None
        if thresholds is None
        else {m: [float(v) for v in t] for m, t in thresholds.items()},
        motion=config.motion_settings(),
        span=config.read_span,
    )
    change = manifest.compare(root, record, config.overwrite)
    filenames, ids, weak, lengths = read_clips(Path(config.labels), config.task, vocab)
    jobs, repeated = plan(filenames, ids, weak, index_videos(Path(config.videos)), lengths)
    group = distributed.setup("cpu")  # gloo: the ranks only wait for each other
    mine = shard(jobs, group.rank, group.world)
    result = HarvestResult(
        total=len(mine), rank=group.rank, world=group.world, labelled=thresholds is not None
    )
    result.failures += shard(repeated, group.rank, group.world)
    # every rank has compared with the old manifest before any rank writes
    distributed.barrier(group)

    commit = _Commit(root, change, mine)
    # --overwrite with the same settings redoes everything; with new R(2+1)D settings only those.
    redo_models = config.overwrite and change.teachers == "same" and not change.redo_motion
    work = assign(
        mine,
        root,
        redo_models=redo_models,
        motion=config.r2plus1d is not None,
        labelled=thresholds is not None,
        replaced=change.teachers,
        redo_motion=change.redo_motion,
        span=config.read_span,
    )
    result.failures += work.failures
    result.skipped = work.skipped
    if work.relabel:
        commit()  # relabelling needs no model: the recorded models are the root's
        assert thresholds is not None
        for job in work.relabel:
            out = ClipOutputs(root, job.clip)
            scores = out.load_scores()
            label_clip(out, job.weak, scores, thresholds, config.teacher, out.silent, out.blind)
            result.relabelled += 1
    if work.todo and config.read_span == "full":
        from avparse.harvest.whole import run_whole

        run_whole(work.todo, config, vocab, root, thresholds, result, commit)
    elif work.todo:
        _run_models(work.todo, config, vocab, root, thresholds, result, commit)
    result.seconds = time.perf_counter() - start
    write_reports(
        root, result.failures, group.rank, group.world, lambda: distributed.barrier(group)
    )
    commit.settle()  # after the reports' barrier: every rank that writes has committed
    distributed.teardown(group)
    return result


def _run_models(
    todo: list[ClipJob],
    config: HarvestConfig,
    vocab: Vocabulary,
    root: Path,
    thresholds: Thresholds | None,
    result: HarvestResult,
    commit: _Commit,
) -> None:
    """Decode ahead in threads and run the models on batches of clips."""
    from avparse.harvest.prefetch import DecodeSettings, ahead, prepare

    models = HarvestModels(config.sources(), vocab)
    settings = DecodeSettings(
        # "0.1" frames are decoded at 224x224 whatever the model's size, as avparse 0.1 did
        frames=frame_decoding(config.teacher_inputs, TEACHER_SIZE[0]),
        snippet_fps=config.snippet_fps,
        snippet_size=config.snippet_size,
    )
    began = time.perf_counter()
    batch: list[Prepared] = []
    depth = max(2 * config.batch_size, config.workers)

    def flush() -> None:
        models.load(
            teachers=any(p.job.teachers for p in batch), motion=any(p.job.motion for p in batch)
        )
        commit()
        _run_batch(batch, models, root, thresholds, config, result)
        batch.clear()

    with ThreadPoolExecutor(max_workers=config.workers) as pool:
        decoded = ahead(pool, todo, lambda job: prepare(job, models.inputs, settings), depth)
        for prepared in progress(
            decoded, desc="harvest", total=len(todo), unit="clip", enabled=config.progress
        ):
            if prepared.error:
                job = prepared.job
                result.fail(job, prepared.error)
                continue
            batch.append(prepared)
            if len(batch) == config.batch_size:
                flush()
        if batch:
            flush()
    result.model_seconds = time.perf_counter() - began - models.load_seconds


def _run_batch(
    batch: list[Prepared],
    models: HarvestModels,
    root: Path,
    thresholds: Thresholds | None,
    config: HarvestConfig,
    result: HarvestResult,
) -> None:
    """Run the models on a batch of decoded clips and write each clip's files."""
    moving = [p for p in batch if p.job.motion]
    if moving:
        from avparse.features.extract import motion_features

        frames = [p.rate_frames for p in moving if p.rate_frames is not None]
        assert len(frames) == len(moving)  # prepare() fails a motion clip without frames
        feats = motion_features(
            models.motion, frames, size=config.snippet_size, precision=config.precision
        )
        for p, f in zip(moving, feats, strict=True):
            ClipOutputs(root, p.job.clip).write_motion(f)
            result.motion += 1
    taught = [p for p in batch if p.job.teachers]
    if not taught:
        return
    from avparse.teachers.clap import AudioInputs

    emb = models.visual.embed_frames([p.frames for p in taught if p.frames is not None])
    vis_scores = models.visual.scores(emb)
    chunk_emb = models.audio.embed(AudioInputs.concat([p.chunks for p in taught if p.chunks]))
    aud_scores = models.audio.scores(chunk_emb)
    maps = models.audio.token_maps(AudioInputs.concat([p.whole for p in taught if p.whole]))
    for i, p in enumerate(taught):
        out = ClipOutputs(root, p.job.clip)
        seg = slice(i * SEGMENTS, (i + 1) * SEGMENTS)
        result.mark_inputs(out, p.job, silent=p.silent, audio_note=p.audio_note, blind=p.blind)
        scores = {"visual": vis_scores[seg], "audio": aud_scores[seg]}
        out.write_segments("visual", emb[seg])
        out.write_segments("audio", chunk_emb[seg])
        out.write_model("visual", emb[seg], scores["visual"])
        out.write_model("audio", maps[i], scores["audio"])
        if thresholds is not None:
            label_clip(out, p.job.weak, scores, thresholds, config.teacher, p.silent, p.blind)
        result.harvested += 1


def result_summary(result: HarvestResult) -> dict:
    data = asdict(result)
    data["clips_per_second"] = result.clips_per_second
    return data
