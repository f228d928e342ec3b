"""A synthetic UnAV-like world: untrimmed videos of any length, drawn from UnAV-100's statistics.

**Events** (:func:`sample_unav_events`). Per video: its segments ``T`` and duration, how many
classes, which (class frequencies and co-occurrence), how many events of each, and each event's
length as a share of the duration all follow ``unav_stats.json`` (written from the real
annotation file by ``scripts/derive_unav_stats.py``). Events of one class in one video do not
overlap (they are laid out in order with random gaps); events of different classes may. Every
event is audio-visual, as in UnAV-100. Durations, starts and ends are rounded as a JSON file
holds them, and the dense labels are made from the rounded events by the reader's own rule
(:meth:`avparse.data.unav.SplitEvents.dense`), so the written file reads back to the same arrays.

**Features** (:func:`render_unav`). Class directions come from the class *names*
(:mod:`avparse.synthetic.concepts`), shared with every other world, so a teacher trained here
labels an LLP-like world through text embeddings. Per modality, a segment's teacher embedding is
the sum of its active classes' prototypes (a gain per video, class and modality), a clip-level
nuisance, per-segment distractors (every class at a small random weight) and per-segment noise,
L2-normalised: the CLIP (T, 768) and CLAP (T, 512) segment features. The frame-wise teachers'
logits are those embeddings against the class text embeddings (:func:`concepts.text_embeddings`)
times CLIP's / CLAP's scale: their noise is per segment, while events last several seconds, which
is what a temporal teacher can exploit. The published VGGish / I3D RGB / I3D flow files are
rendered at their own rate (25/8 rows per second, windows of 0.96 s), each row from the segment
its window centre falls in, with the world's student-feature noise (``SyntheticConfig``).

**Labels** go the way of a real harvest: thresholds by :func:`avparse.teachers.calibrate.calibrate`
on the val split's dense labels (padded segments are neutral), hard and soft labels by
:func:`avparse.teachers.rule.label` (``modality`` teachers), written as ``avparse harvest`` writes
them ((T, 100) per video). See ``docs/unav.md`` and ``docs/synthetic.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from avparse.data.layout import (
    EVENT_FEATURE_FOLDERS,
    FEATURE_KINDS,
    SEGMENT_KINDS,
    UNAV_ANNOTATIONS,
    UNAV_PUBLISHED_KINDS,
    UWAV_EVENT_FEATURES,
)
from avparse.data.ragged import Ragged
from avparse.data.unav import SUBSETS, SplitEvents
from avparse.errors import AvparseError
from avparse.harvest.calibration import Calibration
from avparse.harvest.outputs import MODALITIES, ClipOutputs
from avparse.synthetic.concepts import PROTOTYPE_SEED, SPACES, prototypes, text_embeddings
from avparse.synthetic.config import SPLIT_CODE, SyntheticConfig, chunks, video_ids
from avparse.synthetic.config import rng as rng_of
from avparse.synthetic.labels import calibrate_teachers
from avparse.teachers.calibrate import MIN_CLIPS
from avparse.teachers.rule import elaborate
from avparse.utils.atomic import save_npy, write_json
from avparse.vocab import UNAV, Vocabulary

UNAV_FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "all": (*SEGMENT_KINDS, *UNAV_PUBLISHED_KINDS),
    "segments": SEGMENT_KINDS,
    "published": UNAV_PUBLISHED_KINDS,
}
"""Feature kinds a UnAV-like root holds: the CLIP / CLAP segment features, UnAV-100's published
VGGish and I3D files, or both."""

DEFAULT_COUNTS = {"train": 200, "val": 100, "test": 100}
"""Videos per split of ``avparse data synth --task unav`` when not given (all features: about
1.3 MB a video)."""

CHUNK = 64
"""Videos rendered at once (part of the random stream key: never change it)."""

FRAME_RATE = 25
"""Frames per second of the published features' videos; windows of 24 frames every 8."""

PAD_LOGIT = -1.0e4
"""Logit of padded segments in calibration (below every real one: never predicted)."""


@cache
def load_unav_stats() -> dict:
    """The packaged UnAV-100 statistics (``unav_stats.json``)."""
    text = resources.files("avparse.synthetic").joinpath("unav_stats.json").read_text("utf-8")
    data: dict = json.loads(text)
    return data


def _probs(counts) -> np.ndarray:
    p = np.asarray(counts, dtype=np.float64)
    return p / p.sum()


def published_rows(duration: float) -> int:
    """Rows of a published VGGish / I3D file of a video: windows of 24 frames every 8 at 25 fps."""
    frames = round(duration * FRAME_RATE)
    return max(1, (frames - 24) // 8 + 1)


def sample_unav_events(
    n: int, rng: np.random.Generator, stats: dict | None = None, vocab: Vocabulary = UNAV
) -> SplitEvents:
    """Draw ``n`` UnAV-like videos (ids left empty): durations and events, rounded as a file
    holds them (durations to 0.01 s, event times down to 0.001 s)."""
    s = stats or load_unav_stats()
    c = len(vocab)
    seg_counts = _probs(s["segments_per_video"]["counts"])
    lengths = rng.choice(len(seg_counts), size=n, p=seg_counts)
    fractional = rng.random(n) < s["fractional_duration_share"]
    cut = np.round(0.01 + 0.98 * rng.random(n), 2)
    durations = np.where(fractional, np.round(lengths - cut, 2), lengths).astype(np.float64)

    k_p = _probs(s["classes_per_video"]["counts"])
    sizes = np.minimum(rng.choice(len(k_p), size=n, p=k_p), c)
    count = np.asarray(s["class_video_counts"], dtype=np.float64)
    cooc = np.asarray(s["cooccurrence"], dtype=np.float64)
    cond = cooc / np.maximum(count[:, None], 1)  # P(j | i in the video)
    np.fill_diagonal(cond, 0)
    marginal = count / count.sum()
    weak = np.zeros((n, c), dtype=bool)
    weak[np.arange(n), rng.choice(c, size=n, p=marginal)] = True
    for i in np.flatnonzero(sizes > 1):  # further classes by co-occurrence with the chosen ones
        for _ in range(int(sizes[i]) - 1):
            p = cond[weak[i]].mean(0) + 0.05 * marginal
            p[weak[i]] = 0
            weak[i, rng.choice(c, p=p / p.sum())] = True

    m_p = _probs(s["events_per_class_in_video"]["counts"])
    shares = {g: _probs(s["event_length_share"][g]) for g in ("single", "multi")}
    bins = int(s["event_length_share"]["bins"])
    video_i, class_i = np.nonzero(weak)
    per_pair = np.maximum(rng.choice(len(m_p), size=len(video_i), p=m_p), 1)
    rows: list[tuple[int, int, float, float]] = []
    for v, cls, m in zip(video_i.tolist(), class_i.tolist(), per_pair.tolist(), strict=True):
        d = float(durations[v])
        group = "single" if m == 1 else "multi"
        b = rng.choice(bins, size=m, p=shares[group])
        length = (b + rng.random(m)) / bins * d
        length = np.maximum(length, min(0.2, d / (2 * m)))
        if length.sum() > d:
            length *= d / length.sum()
        gaps = rng.dirichlet(np.ones(m + 1)) * max(d - length.sum(), 0.0)
        starts = np.cumsum(gaps[:m]) + np.concatenate([[0.0], np.cumsum(length)[:-1]])
        for a, e in zip(starts.tolist(), (starts + length).tolist(), strict=True):
            start = min(max(math.floor(a * 1000) / 1000, 0.0), d)
            end = min(max(math.floor(e * 1000) / 1000, start), d)
            rows.append((v, cls, start, end))
    ev = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return SplitEvents(
        videos=tuple("" for _ in range(n)),
        durations=durations,
        video=ev[:, 0].astype(np.int64),
        label=ev[:, 1].astype(np.int64),
        start=ev[:, 2].copy(),
        end=ev[:, 3].copy(),
    )


@dataclass(frozen=True)
class ConceptWorld:
    """Class directions of every space, from the class names (:mod:`~.concepts`), and the
    synthetic text towers' class embeddings."""

    prototypes: dict[str, np.ndarray]
    """Space (``clip``, ``clap``, or a student feature kind) -> (C, dim) float32 unit rows."""
    text: dict[str, np.ndarray]
    """Modality -> (C, dim) float32 unit rows: the class text embeddings."""

    @classmethod
    def build(
        cls,
        vocab: Vocabulary,
        kinds: tuple[str, ...],
        config: SyntheticConfig,
        prototype_seed: int = PROTOTYPE_SEED,
    ) -> ConceptWorld:
        names = vocab.names
        protos = {
            space: prototypes(names, space, dim, seed=prototype_seed).astype(np.float32)
            for space, dim in SPACES.values()
        }
        for kind in kinds:
            if kind not in SEGMENT_KINDS:
                dim = FEATURE_KINDS[kind].dim
                protos[kind] = prototypes(names, kind, dim, seed=prototype_seed).astype(np.float32)
        noise = math.hypot(config.zero_shot_noise, config.zero_shot_confusion)
        text = {m: text_embeddings(names, m, noise=noise, seed=prototype_seed) for m in SPACES}
        return cls(protos, text)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _embed(
    rng: np.random.Generator,
    amp: np.ndarray,
    rows_video: np.ndarray,
    n: int,
    proto: np.ndarray,
    distractor: float,
    nuisance: float,
    noise: float,
) -> np.ndarray:
    """(rows, dim) float32: ``amp`` (rows, C) of active classes plus a per-video nuisance,
    per-row distractors and per-row noise, in the space of ``proto``."""
    c = amp.shape[1]
    coef = amp + nuisance * rng.standard_normal((n, c))[rows_video]
    coef += distractor * rng.standard_normal(coef.shape)
    dim = proto.shape[1]
    x = coef.astype(np.float32) @ proto
    x += np.float32(noise / np.sqrt(dim)) * rng.standard_normal(x.shape, dtype=np.float32)
    return x


SEGMENT_KIND_OF = {"audio": "clap_segments", "visual": "clip_segments"}
"""Modality -> the segment feature kind its teacher embeds into."""


def teacher_segments(
    world: ConceptWorld,
    audio: np.ndarray,
    visual: np.ndarray,
    seg_video: np.ndarray,
    n: int,
    rng: np.random.Generator,
    config: SyntheticConfig,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The frame-wise teachers of segments of ``n`` clips, any world (UnAV-like or LLP-like).

    Args:
        audio, visual: (segments, C) bool activity of each modality, clips back to back.
        seg_video: (segments,) the clip of each segment.

    Returns:
        ``(embeddings, logits, amplitudes)`` per modality: the L2-normalised CLAP (512) / CLIP
        (768) segment embeddings (float32), the logits against the class text embeddings times
        CLAP's / CLIP's scale (float32, (segments, C)), and the class amplitudes (gain per clip,
        class and modality times the activity) the student features are rendered from.
    """
    c = audio.shape[1]
    cfg = config
    gain = cfg.gain_min + (cfg.gain_max - cfg.gain_min) * rng.random((2, n, c))
    amp = {
        "audio": audio.astype(np.float32) * gain[0][seg_video],
        "visual": visual.astype(np.float32) * gain[1][seg_video],
    }
    emb: dict[str, np.ndarray] = {}
    logits: dict[str, np.ndarray] = {}
    for modality, (space, _) in SPACES.items():
        e = _unit(
            _embed(
                rng, amp[modality], seg_video, n, world.prototypes[space],
                cfg.teacher_distractor, cfg.teacher_nuisance, cfg.teacher_noise,
            )
        ).astype(np.float32)  # fmt: skip
        scale = cfg.clap_scale if modality == "audio" else cfg.clip_scale
        emb[modality] = e
        logits[modality] = (np.float32(scale) * e @ world.text[modality].T).astype(np.float32)
    return emb, logits, amp


def write_event_features(
    root: Path, vocab: Vocabulary, config: SyntheticConfig, prototype_seed: int = PROTOTYPE_SEED
) -> None:
    """The world's class text embeddings in UWAV's files, ``feats_CLIP|feats_CLAP/event_feats/
    all_event_feats.npy`` ((C, 768) / (C, 512), rows in ``vocab``'s order): what the frame-wise
    teachers score against, and what the temporal teacher reads with ``clip_text=uwav`` /
    ``clap_text=uwav`` (no text model needed on a synthetic root)."""
    world = ConceptWorld.build(vocab, (), config, prototype_seed)
    for modality, folder in EVENT_FEATURE_FOLDERS.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        save_npy(root / folder / UWAV_EVENT_FEATURES, world.text[modality])


@dataclass
class RenderedVideos:
    """One chunk of videos: per kind a list of per-video arrays, and the teachers' logits."""

    features: dict[str, list[np.ndarray]]
    scores: dict[str, Ragged]
    """``audio`` (CLAP stand-in) and ``visual`` (CLIP): per video (T, C) float32 logits."""


def render_unav(
    world: ConceptWorld,
    active: Ragged,
    durations: np.ndarray,
    kinds: tuple[str, ...],
    rng: np.random.Generator,
    config: SyntheticConfig,
) -> RenderedVideos:
    """Features of ``kinds`` and teacher logits of videos whose segments ``active`` (T_i, C)
    bool are the audio-visual events (see the module docstring)."""
    n = len(active)
    lengths = active.lengths
    seg_video = np.repeat(np.arange(n), lengths)
    act = active.values
    emb, logits, amp = teacher_segments(world, act, act, seg_video, n, rng, config)
    cfg = config
    split_at = active.offsets[1:-1]
    features: dict[str, list[np.ndarray]] = {}
    scores = {m: Ragged(logits[m], active.offsets.copy()) for m in SPACES}
    for modality, kind in SEGMENT_KIND_OF.items():
        if kind in kinds:
            features[kind] = np.split(emb[modality], split_at)
    published = [k for k in kinds if k not in SEGMENT_KINDS]
    if published:
        rows = np.asarray([published_rows(float(d)) for d in durations], dtype=np.int64)
        row_video = np.repeat(np.arange(n), rows)
        local = np.arange(int(rows.sum())) - np.repeat(np.cumsum(rows) - rows, rows)
        centre = (8 * local + 12) / FRAME_RATE
        segment = np.minimum(np.floor(centre).astype(np.int64), lengths[row_video] - 1)
        source = active.offsets[row_video] + segment
        bounds = np.cumsum(rows)[:-1]
        for kind in published:
            fk = FEATURE_KINDS[kind]
            role = "audio" if fk.role == "audio" else "visual"
            x = _embed(
                rng, amp[role][source], row_video, n, world.prototypes[kind],
                cfg.distractor, cfg.nuisance, cfg.noise,
            )  # fmt: skip
            if cfg.unit_variance:
                x *= np.float32(np.sqrt(fk.dim))
            features[kind] = np.split(x, bounds)
    return RenderedVideos(features, scores)


@dataclass
class UnAVSplit:
    """One split: events, dense labels, teacher logits and labels (features go to the sink)."""

    events: SplitEvents
    dense: Ragged
    weak: np.ndarray
    scores: dict[str, Ragged] = field(default_factory=dict)
    labels: dict[str, tuple[Ragged, Ragged]] = field(default_factory=dict)
    """``{modality: (hard, soft)}`` by the ``modality`` teachers."""


def unav_splits(
    counts: dict[str, int], seed: int, vocab: Vocabulary = UNAV
) -> dict[str, UnAVSplit]:
    """Events and labels of every split (no features): ``counts`` videos per split."""
    taken: set[str] = set()
    splits = {}
    for name in SUBSETS:
        n = int(counts.get(name, 0))
        if n < 0:
            raise AvparseError(f"video count of {name} must be >= 0, got {n}")
        ev = sample_unav_events(n, rng_of(seed, 21, SPLIT_CODE[name]), vocab=vocab)
        ids = video_ids(n, rng_of(seed, 22, SPLIT_CODE[name]), taken)
        ev = SplitEvents(tuple(ids), ev.durations, ev.video, ev.label, ev.start, ev.end)
        splits[name] = UnAVSplit(ev, ev.dense(len(vocab)), ev.weak(len(vocab)))
    return splits


def _padded(r: Ragged, fill: float) -> np.ndarray:
    return r.pad(fill=fill)[0]


def render_splits(
    splits: dict[str, UnAVSplit],
    kinds: tuple[str, ...],
    seed: int,
    config: SyntheticConfig,
    sink,
    *,
    vocab: Vocabulary = UNAV,
    min_clips: int = MIN_CLIPS,
    prototype_seed: int = PROTOTYPE_SEED,
) -> Calibration:
    """Render every split chunk by chunk (``sink(split, ids, {kind: [arrays]})``), calibrate the
    teachers on val (else the first non-empty split) and label every split."""
    world = ConceptWorld.build(vocab, kinds, config, prototype_seed)
    for name, split in splits.items():
        parts: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
        ev = split.events
        for k, sl in chunks(len(ev.videos), CHUNK):
            rows = np.arange(sl.start, sl.stop)
            out = render_unav(
                world, split.dense.take(rows), ev.durations[sl], kinds,
                rng_of(seed, 27, SPLIT_CODE[name], k), config,
            )  # fmt: skip
            sink(name, list(ev.videos[sl]), out.features)
            for m in MODALITIES:
                parts[m].append(out.scores[m].values)
        split.scores = {
            m: Ragged.from_lengths(
                np.concatenate(v) if v else np.zeros((0, len(vocab)), np.float32),
                split.dense.lengths,
            )
            for m, v in parts.items()
        }
    usable = [s for s in ("val", "train", "test") if s in splits and len(splits[s].weak)]
    if not usable:
        raise AvparseError("no videos to calibrate the synthetic teachers on")
    cal_name = usable[0]
    cal = splits[cal_name]
    truth = _padded(cal.dense, False).astype(bool)
    calibration = calibrate_teachers(
        vocab, cal_name, {m: _padded(cal.scores[m], PAD_LOGIT) for m in MODALITIES}, cal.weak,
        {m: truth for m in MODALITIES}, min_clips=min_clips,
    )  # fmt: skip
    thresholds = calibration.thresholds
    for split in splits.values():
        seg_video = np.repeat(np.arange(len(split.weak)), split.dense.lengths)
        inside = split.weak[seg_video]
        for m in MODALITIES:
            hard, soft = elaborate(split.scores[m].values[:, None, :], thresholds[m], inside)
            offsets = split.dense.offsets
            split.labels[m] = (Ragged(hard[:, 0], offsets), Ragged(soft[:, 0], offsets))
    return calibration


def annotation_json(splits: dict[str, UnAVSplit], vocab: Vocabulary = UNAV) -> dict:
    """The annotation file of the splits, in UnAV-100's format."""
    database: dict[str, dict] = {}
    for name, split in splits.items():
        ev = split.events
        per_video: list[list[dict]] = [[] for _ in ev.videos]
        for v, c, a, e in zip(
            ev.video.tolist(), ev.label.tolist(), ev.start.tolist(), ev.end.tolist(), strict=True
        ):
            per_video[v].append({"segment": [a, e], "label": vocab.names[c], "label_id": c})
        for vid, d, events in zip(ev.videos, ev.durations.tolist(), per_video, strict=True):
            duration: float | int = int(d) if float(d).is_integer() else d
            database[vid] = {"duration": duration, "subset": SUBSETS[name], "annotations": events}
    return {"version": "unav100-synthetic", "database": database}


def write_unav_root(
    root: Path,
    counts: dict[str, int],
    kinds: tuple[str, ...],
    seed: int,
    config: SyntheticConfig,
) -> Calibration:
    """Write the annotation file, the features of ``kinds`` and the harvest files into ``root``
    (an empty or our own folder: :func:`avparse.synthetic.roots.generate_unav` decides)."""
    splits = unav_splits(counts, seed)
    folders = {k: root / FEATURE_KINDS[k].folder for k in kinds}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    def sink(_: str, ids: list[str], feats: dict[str, list[np.ndarray]]) -> None:
        for kind, arrays in feats.items():
            fk = FEATURE_KINDS[kind]
            for vid, x in zip(ids, arrays, strict=True):
                np.save(folders[kind] / fk.file_name(vid), x)

    calibration = render_splits(splits, kinds, seed, config, sink)
    for split in splits.values():
        ids = split.events.videos
        for m in MODALITIES:
            hard, soft = split.labels[m]
            for i, vid in enumerate(ids):
                out = ClipOutputs(root, vid)
                for path, x in ((out.hard(m), hard[i]), (out.soft(m), soft[i]),
                                (out.scores(m), split.scores[m][i])):  # fmt: skip
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.save(path, np.asarray(x, dtype=np.float32))
    if any(k in SEGMENT_KINDS for k in kinds):
        write_event_features(root, UNAV, config)
    write_json(root / UNAV_ANNOTATIONS, annotation_json(splits))
    return calibration


def generate_unav(
    root: str | Path,
    *,
    n_train: int = DEFAULT_COUNTS["train"],
    n_val: int = DEFAULT_COUNTS["val"],
    n_test: int = DEFAULT_COUNTS["test"],
    features: str = "all",
    seed: int = 0,
    config: SyntheticConfig | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete UnAV-like data root (``docs/unav.md``); returns ``root``.

    ``unav100_annotations.json`` (train / validation / test), the features of ``features``
    (:data:`UNAV_FEATURE_SETS`), per video the frame-wise teachers' logits, soft and hard
    labels ((T, 100), calibrated on val) as ``avparse harvest`` writes them, and the thresholds
    (``synthetic_thresholds.json``); with segment features, the world's class text embeddings
    in UWAV's ``event_feats`` files (:func:`write_event_features`). The same overwrite rules as the LLP-like roots
    (:func:`avparse.synthetic.roots.generate_llp`): a root finished with the same settings is
    reused, a synthetic root of other settings replaced only with ``overwrite``, any other
    non-empty folder refused.
    """
    from avparse.synthetic.roots import _begin, _finish, _settings

    if features not in UNAV_FEATURE_SETS:
        known = ", ".join(UNAV_FEATURE_SETS)
        raise AvparseError(f"unknown UnAV-like feature set {features!r} (known: {known})")
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for name, n in counts.items():
        if n < 0:
            raise AvparseError(f"video count of {name} must be >= 0, got {n}")
    if not n_val and not n_train:
        raise AvparseError("a UnAV-like root needs val (or train) videos to calibrate its teachers")
    root = Path(root)
    config = config or SyntheticConfig()
    settings = _settings("unav", counts, features, seed, config)
    if _begin(root, settings, overwrite):
        return root
    calibration = write_unav_root(root, counts, UNAV_FEATURE_SETS[features], seed, config)
    _finish(root, settings, calibration)
    return root
