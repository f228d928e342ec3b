"""Synthetic LLP-like and AVE-like data roots in the published layout, for tests and benchmarks.

The generator is a small, documented world model, not a method-friendly toy:

1. **Events.** Label sets, the modality carrying each tagged class (audio only, visual only,
   both, or, rarely, neither), the number of runs and their lengths follow statistics derived
   from the real LLP annotations (``llp_stats.json``, written by ``scripts/derive_llp_stats.py``).
   Audio and visual runs are placed independently, so the modalities are often unaligned.
2. **Features.** Each feature space has one random unit prototype direction per class. A
   segment's feature is a weighted sum of prototypes: the active classes with a per-event gain,
   plus *distractors* (every class at a small random weight per segment: unlabelled content),
   plus a clip-level *nuisance* (class-like context constant over the clip), plus isotropic noise.
   Audio features see only audio events, visual features only visual events.
3. **Teachers.** Honest stand-ins for CLIP and CLAP: each embeds ONE modality's segment into a
   shared semantic space (with its own distractors and noise) and scores it against class "text"
   embeddings that carry a zero-shot error (confusion with other classes plus noise), as a
   scaled cosine. Per-class thresholds are calibrated on the val split's dense labels (best
   segment F1, as ``avparse calibrate`` does for real teachers), and the VALOR rule (score above
   threshold, restricted to the clip's weak labels) gives the harvests. A *fused* teacher scores
   the normalised sum of both modalities' embeddings; its harvests go to ``fused/`` for the
   ablation of reference section 4.

Everything is vectorised numpy and a pure function of the seed: clip ``i`` of a split is drawn
from a random stream keyed by (seed, split, chunk), so output does not depend on the machine.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from avparse.data.layout import (
    FEATURE_KINDS,
    FUSED_HARVEST_FOLDERS,
    HARVEST_FOLDERS,
    LLP_FILES,
    SEGMENTS,
)
from avparse.errors import AvparseError
from avparse.vocab import AVE, LLP

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "valor": ("vggish", "res152", "r2plus1d_18"),
    "valor++": ("clap", "clip", "r2plus1d_18"),
}
"""Feature kinds written for each preset family (names from ``layout.FEATURE_KINDS``)."""

COMPLETE_MARKER = ".synthetic_complete.json"
"""Written last, holding the generation settings: a root with it is finished and reusable."""

CHUNK = 128
"""Clips rendered at once (bounds memory; part of the random stream key, so never change it)."""

TEACHER_DIM = 768
"""Dimension of the teachers' shared semantic space (the size of CLIP/CLAP embeddings)."""

_ID_ALPHABET = string.ascii_letters + string.digits + "-_"
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class SyntheticConfig:
    """Every knob of the world model (defaults are the documented benchmark settings).

    Amplitudes are in units of a class prototype (unit norm); noise values are the expected norm
    of the noise vector, so settings mean the same in every feature dimension.
    """

    gain_min: float = 0.5
    """Smallest per-event gain of an active class's prototype."""
    gain_max: float = 1.5
    """Largest per-event gain (drawn uniformly per clip, class and modality)."""
    distractor: float = 0.35
    """Std of every class's random weight per segment in the student features (unlabelled or
    confusable content: the main source of segment-level false positives)."""
    nuisance: float = 0.2
    """Std of every class's weight in a clip-level context constant over the clip's segments.
    With the defaults, a linear probe on clip-mean features of 1,200 training clips tags test
    clips with precision 0.91 and recall 0.75: clip tagging is learnable but not trivial."""
    noise: float = 1.0
    """Norm of isotropic Gaussian noise per segment (per frame for ResNet-152 features)."""
    teacher_distractor: float = 0.3
    """Std of per-segment class weights in the teachers' embedding (their own confusions)."""
    teacher_nuisance: float = 0.3
    """Std of clip-level class weights in the teachers' embedding (scene context)."""
    teacher_noise: float = 0.8
    """Norm of isotropic noise in the teachers' embedding per segment."""
    zero_shot_confusion: float = 0.35
    """Weight of other classes mixed into each class text embedding (zero-shot error)."""
    zero_shot_noise: float = 0.3
    """Norm of random noise added to each class text embedding."""
    clip_scale: float = 100.0
    """Logit scale of the visual teacher (CLIP's is about 100)."""
    clap_scale: float = 33.0
    """Logit scale of the audio teacher."""
    token_noise: float = 0.5
    """Norm of extra noise per token of the CLAP-like (64, 768) token map."""
    unit_variance: bool = True
    """Scale student features (not the L2-normalised CLIP embeddings) by sqrt(dim), so values
    are O(1) per dimension like real network activations rather than O(1) per vector."""
    ave_unaligned: float = 0.4
    """AVE mode: probability that one modality continues past the audio-visual event into
    adjacent background segments (heard but not seen, or seen but not heard)."""
    modality_prior: float = 20.0
    """Pseudo-count pulling each class's modality shares toward the overall shares."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SyntheticConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AvparseError(f"unknown synthetic setting {unknown[0]!r}")
        return cls(**data)


@cache
def load_stats() -> dict:
    """The packaged event statistics (``llp_stats.json``)."""
    text = resources.files("avparse.data").joinpath("llp_stats.json").read_text("utf-8")
    return json.loads(text)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *key])


def _probs(counts, smooth: float = 0.0) -> np.ndarray:
    p = np.asarray(counts, dtype=np.float64) + smooth
    return p / p.sum()


# --- events ----------------------------------------------------------------------------------


def _runs_matrix(rng: np.random.Generator, n_runs: np.ndarray, lengths: dict) -> np.ndarray:
    """(E, 10) bool activity of E events with ``n_runs`` runs each, lengths drawn per run."""
    out = np.zeros((len(n_runs), SEGMENTS), dtype=bool)
    t = np.arange(SEGMENTS)
    for k in range(1, int(n_runs.max(initial=0)) + 1):
        has = n_runs >= k
        single = n_runs == 1
        length = np.where(
            single,
            rng.choice(11, size=len(n_runs), p=lengths["single"]),
            rng.choice(11, size=len(n_runs), p=lengths["multi"]),
        )
        start = np.floor(rng.random(len(n_runs)) * (SEGMENTS - length + 1)).astype(int)
        run = (t >= start[:, None]) & (t < (start + length)[:, None])
        out |= run & has[:, None]
    return out


def sample_llp_events(
    n: int, rng: np.random.Generator, config: SyntheticConfig, stats: dict | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` LLP-like clips: weak (n, C), audio (n, 10, C) and visual (n, 10, C) bools."""
    s = (stats or load_stats())["llp"]
    c = len(LLP)
    k_counts = np.asarray(s["classes_per_clip"]["counts"], dtype=np.float64)
    k_counts = k_counts[: c + 1]
    sizes = rng.choice(len(k_counts), size=n, p=k_counts / k_counts.sum())
    count = np.asarray(s["class_clip_counts"], dtype=np.float64)
    cooc = np.asarray(s["cooccurrence"], dtype=np.float64)
    cond = cooc / np.maximum(count[:, None], 1)  # P(c | j tagged)
    np.fill_diagonal(cond, 0)
    marginal = count / count.sum()
    # Single-class clips: a class's clips minus its co-occurrences (exact when no clip has more
    # than two classes, 97.5% of LLP); pairs in proportion to their co-occurrence counts; further
    # classes by their mean co-occurrence with the ones chosen. This keeps the class marginals.
    pair = np.triu(cooc, 1).ravel()
    alone = np.maximum(count - (cooc.sum(1) - np.diag(cooc)), 0.5)
    weak = np.zeros((n, c), dtype=bool)
    singles = sizes == 1
    single_class = rng.choice(c, size=int(singles.sum()), p=alone / alone.sum())
    weak[np.flatnonzero(singles), single_class] = True
    multi = np.flatnonzero(sizes >= 2)
    first = rng.choice(c * c, size=len(multi), p=pair / pair.sum())
    weak[multi, first // c] = True
    weak[multi, first % c] = True
    for i in np.flatnonzero(sizes > 2):
        for _ in range(int(sizes[i]) - 2):
            p = cond[weak[i]].mean(0) + 0.05 * marginal
            p[weak[i]] = 0
            weak[i, rng.choice(c, p=p / p.sum())] = True
    # Which modality carries each tagged class: per-class shares shrunk toward the overall ones.
    kinds = np.asarray(s["modality"]["per_class_counts"], dtype=np.float64)
    overall = _probs(s["modality"]["overall"])
    shares = kinds + config.modality_prior * overall
    shares /= shares.sum(1, keepdims=True)
    clip_i, class_i = np.nonzero(weak)
    u = rng.random(len(clip_i))
    kind = (u[:, None] > np.cumsum(shares[class_i], 1)).sum(1)  # 0 a, 1 v, 2 av, 3 neither
    audio = np.zeros((n, SEGMENTS, c), dtype=bool)
    visual = np.zeros((n, SEGMENTS, c), dtype=bool)
    for name, target, wanted in (("audio", audio, (0, 2)), ("visual", visual, (1, 2))):
        sel = np.isin(kind, wanted)
        n_runs = rng.choice(11, size=int(sel.sum()), p=_probs(s["runs_per_event"][name]["counts"]))
        n_runs = np.maximum(n_runs, 1)
        lengths = {g: _probs(v) for g, v in s["run_length"][name].items()}
        act = _runs_matrix(rng, n_runs, lengths)
        target[clip_i[sel], :, class_i[sel]] = act
    return weak, audio, visual


def sample_ave_events(
    n: int, rng: np.random.Generator, stats: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` AVE-like clips: category (n,) and (onset, offset) (n, 2) of the AV event."""
    s = (stats or load_stats())["ave"]
    category = rng.choice(len(AVE), size=n, p=_probs(s["class_clip_counts"]))
    lengths = np.asarray(s["event_length_counts"], dtype=np.float64)
    lengths[0] = 0  # every synthetic clip has an event
    length = rng.choice(len(lengths), size=n, p=lengths / lengths.sum())
    onset = np.floor(rng.random(n) * (SEGMENTS - length + 1)).astype(np.int64)
    return category, np.stack([onset, onset + length], 1)


def ave_activity(
    category: np.ndarray, spans: np.ndarray, rng: np.random.Generator, config: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Audio and visual activity (n, 10, 28) of AVE clips: the AV span, and with probability
    ``ave_unaligned`` one modality continuing into adjacent background on one side."""
    n = len(category)
    t = np.arange(SEGMENTS)
    on, off = spans[:, 0], spans[:, 1]
    span = (t >= on[:, None]) & (t < off[:, None])
    extend = rng.random(n) < config.ave_unaligned
    left = rng.random(n) < 0.5
    room = np.where(left, on, SEGMENTS - off)
    extra = np.floor(rng.random(n) * room).astype(np.int64) + 1
    extend &= (room > 0) & (off > on)
    ext = (
        np.where(
            left[:, None],
            (t >= (on - extra)[:, None]) & (t < on[:, None]),
            (t >= off[:, None]) & (t < (off + extra)[:, None]),
        )
        & extend[:, None]
    )
    to_audio = rng.random(n) < 0.5
    a_act = span | (ext & to_audio[:, None])
    v_act = span | (ext & ~to_audio[:, None])
    audio = np.zeros((n, SEGMENTS, len(AVE)), dtype=bool)
    visual = np.zeros_like(audio)
    rows = np.arange(n)
    audio[rows, :, category] = a_act
    visual[rows, :, category] = v_act
    return audio, visual


# --- the world: prototypes and teachers --------------------------------------------------------


def _unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


@dataclass(frozen=True)
class World:
    """Random but fixed (per seed) class prototypes of every space and the teachers' texts."""

    prototypes: dict[str, np.ndarray]
    """(C, dim) unit rows per student feature kind."""
    semantic: np.ndarray
    """(C, 768) unit rows: the teachers' shared class directions."""
    text: np.ndarray
    """(C, 768) unit rows: class text embeddings, with zero-shot error."""

    @classmethod
    def build(cls, num_classes: int, seed: int, config: SyntheticConfig) -> World:
        rng = _rng(seed, 99)
        protos = {}
        for name in sorted(FEATURE_KINDS):
            dim = FEATURE_KINDS[name].shape[1]
            protos[name] = _unit(rng.standard_normal((num_classes, dim)))
        semantic = _unit(rng.standard_normal((num_classes, TEACHER_DIM)))
        mix = rng.standard_normal((num_classes, num_classes)) / np.sqrt(num_classes)
        np.fill_diagonal(mix, 0)
        noise = _unit(rng.standard_normal((num_classes, TEACHER_DIM))) * config.zero_shot_noise
        text = _unit(semantic + config.zero_shot_confusion * mix @ semantic + noise)
        return cls(protos, semantic, text)


def _space(
    rng: np.random.Generator,
    amp: np.ndarray,
    proto: np.ndarray,
    distractor: float,
    nuisance: float,
    noise: float,
    repeat: int = 1,
) -> np.ndarray:
    """Segment (or frame) features (n, 10 * repeat, dim) of one feature space."""
    n, _, c = amp.shape
    coef = amp + nuisance * rng.standard_normal((n, 1, c))
    if repeat > 1:
        coef = np.repeat(coef, repeat, axis=1)
    coef = coef + distractor * rng.standard_normal(coef.shape)
    dim = proto.shape[1]
    x = coef.astype(np.float32) @ proto.astype(np.float32)
    x += (noise / np.sqrt(dim)) * rng.standard_normal(x.shape, dtype=np.float32)
    return x


@dataclass
class Rendered:
    """One chunk's features and teacher scores."""

    features: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    """``audio``, ``visual``, ``fused``: (n, 10, C) teacher logits."""


def render(
    world: World,
    audio: np.ndarray,
    visual: np.ndarray,
    kinds: tuple[str, ...],
    rng: np.random.Generator,
    config: SyntheticConfig,
) -> Rendered:
    """Features of ``kinds`` and teacher scores for clips with the given activity."""
    n, _, c = audio.shape
    gain = config.gain_min + (config.gain_max - config.gain_min) * rng.random((2, n, 1, c))
    amp_a = audio * gain[0]
    amp_v = visual * gain[1]
    cfg = config
    # Teachers: one modality each, in the shared semantic space.
    emb_a = _space(
        rng, amp_a, world.semantic, cfg.teacher_distractor, cfg.teacher_nuisance, cfg.teacher_noise
    )
    emb_v = _space(
        rng, amp_v, world.semantic, cfg.teacher_distractor, cfg.teacher_nuisance, cfg.teacher_noise
    )
    ua, uv = _unit(emb_a), _unit(emb_v)
    text = world.text.astype(np.float32)
    scores = {
        "audio": cfg.clap_scale * ua @ text.T,
        "visual": cfg.clip_scale * uv @ text.T,
        "fused": cfg.clip_scale * _unit(ua + uv) @ text.T,
    }
    feats: dict[str, np.ndarray] = {}
    for kind in kinds:
        role = FEATURE_KINDS[kind].role
        amp = amp_a if role == "audio" else amp_v
        if kind == "clip":
            feats[kind] = uv
        elif kind == "clap":
            # (64, 768) token map = (2 rows, 32 time steps) flattened row-major; step s covers
            # segment floor(s * 10 / 32).
            steps = (np.arange(32) * SEGMENTS) // 32
            base = np.tile(emb_a[:, steps], (1, 2, 1))
            base += (cfg.token_noise / np.sqrt(TEACHER_DIM)) * rng.standard_normal(
                base.shape, dtype=np.float32
            )
            feats[kind] = base
        else:
            repeat = FEATURE_KINDS[kind].shape[0] // SEGMENTS
            feats[kind] = _space(
                rng, amp, world.prototypes[kind], cfg.distractor, cfg.nuisance, cfg.noise, repeat
            )
        if cfg.unit_variance and kind != "clip":
            feats[kind] *= np.float32(np.sqrt(FEATURE_KINDS[kind].shape[1]))
    return Rendered(
        {k: v.astype(np.float32, copy=False) for k, v in feats.items()},
        {k: v.astype(np.float32) for k, v in scores.items()},
    )


def calibrate_thresholds(
    scores: np.ndarray, truth: np.ndarray, weak: np.ndarray, min_positives: int = 5
) -> np.ndarray:
    """Per-class thresholds with the best segment F1 over the tagged clips' segments.

    Classes with fewer than ``min_positives`` positive segments use the best pooled threshold.
    """
    c = scores.shape[2]
    mask = np.broadcast_to(weak[:, None, :], scores.shape)

    def best(s: np.ndarray, y: np.ndarray) -> float | None:
        if y.sum() == 0 or len(s) == 0:
            return None
        order = np.argsort(-s, kind="stable")
        s, y = s[order], y[order]
        tp = np.cumsum(y)
        k = np.arange(1, len(s) + 1)
        f1 = 2 * tp / (k + y.sum())
        i = int(np.argmax(f1))
        return float((s[i] + s[i + 1]) / 2) if i + 1 < len(s) else float(s[i] - 1e-3)

    pooled = best(scores[mask], truth[mask])
    out = np.full(c, pooled if pooled is not None else 0.0, dtype=np.float64)
    for j in range(c):
        m = mask[:, :, j]
        if truth[:, :, j][m].sum() >= min_positives:
            out[j] = best(scores[:, :, j][m], truth[:, :, j][m])
    return out


def harvest(scores: np.ndarray, thresholds: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """The VALOR rule: score above the class threshold, restricted to the weak labels."""
    return (scores > thresholds[None, None, :]) & weak[:, None, :]


# --- generation --------------------------------------------------------------------------------


@dataclass
class SplitArrays:
    """One split held in memory (``generate_arrays``)."""

    filenames: list[str]
    weak: np.ndarray
    audio: np.ndarray
    visual: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)
    harvest_audio: np.ndarray | None = None
    harvest_visual: np.ndarray | None = None
    fused_audio: np.ndarray | None = None
    fused_visual: np.ndarray | None = None
    segments: np.ndarray | None = None
    """AVE only: (n, 10, 29) one-hot segment labels (index 28 background)."""

    @property
    def ids(self) -> list[str]:
        return [f[:11] for f in self.filenames]


def _ids(n: int, rng: np.random.Generator, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        letters = rng.integers(0, len(_ID_ALPHABET), size=(n, 11))
        for row in letters:
            name = "".join(_ID_ALPHABET[i] for i in row)
            if name not in taken:
                taken.add(name)
                out.append(name)
                if len(out) == n:
                    break
    return out


def _check_features(features: str) -> tuple[str, ...]:
    if features not in FEATURE_SETS:
        known = ", ".join(FEATURE_SETS)
        raise AvparseError(f"unknown synthetic feature set {features!r} (known: {known})")
    return FEATURE_SETS[features]


def _chunks(n: int) -> Iterator[tuple[int, slice]]:
    for k, start in enumerate(range(0, n, CHUNK)):
        yield k, slice(start, min(n, start + CHUNK))


def _render_splits(
    splits: dict[str, SplitArrays],
    kinds: tuple[str, ...],
    seed: int,
    config: SyntheticConfig,
    num_classes: int,
    sink,
) -> dict[str, np.ndarray]:
    """Render every split chunk by chunk (features go to ``sink``), then harvest all splits.

    Returns the calibrated thresholds (``audio``, ``visual``, ``fused_audio``, ``fused_visual``).
    """
    world = World.build(num_classes, seed, config)
    scores: dict[str, dict[str, np.ndarray]] = {}
    for name, split in splits.items():
        n = len(split.filenames)
        parts: dict[str, list[np.ndarray]] = {"audio": [], "visual": [], "fused": []}
        for k, sl in _chunks(n):
            rng = _rng(seed, 7, _SPLIT_CODE[name], k)
            out = render(world, split.audio[sl], split.visual[sl], kinds, rng, config)
            sink(name, sl, out.features)
            for key in parts:
                parts[key].append(out.scores[key])
        scores[name] = {
            k: np.concatenate(v) if v else np.zeros((0, SEGMENTS, num_classes), np.float32)
            for k, v in parts.items()
        }
    cal = splits.get("val") or next(iter(splits.values()))
    sc = scores["val" if "val" in splits else next(iter(splits))]
    thresholds = {
        "audio": calibrate_thresholds(sc["audio"], cal.audio, cal.weak),
        "visual": calibrate_thresholds(sc["visual"], cal.visual, cal.weak),
        "fused_audio": calibrate_thresholds(sc["fused"], cal.audio, cal.weak),
        "fused_visual": calibrate_thresholds(sc["fused"], cal.visual, cal.weak),
    }
    for name, split in splits.items():
        s = scores[name]
        split.harvest_audio = harvest(s["audio"], thresholds["audio"], split.weak)
        split.harvest_visual = harvest(s["visual"], thresholds["visual"], split.weak)
        split.fused_audio = harvest(s["fused"], thresholds["fused_audio"], split.weak)
        split.fused_visual = harvest(s["fused"], thresholds["fused_visual"], split.weak)
    return thresholds


def _llp_splits(
    n_train: int, n_val: int, n_test: int, seed: int, config: SyntheticConfig
) -> dict[str, SplitArrays]:
    taken: set[str] = set()
    splits = {}
    for name, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n < 0:
            raise AvparseError(f"clip count of {name} must be >= 0, got {n}")
        rng = _rng(seed, 1, _SPLIT_CODE[name])
        weak, audio, visual = sample_llp_events(n, rng, config)
        ids = _ids(n, _rng(seed, 2, _SPLIT_CODE[name]), taken)
        starts = rng.integers(0, 30, size=n) * 10
        names = [f"{i}_{s}_{s + 10}" for i, s in zip(ids, starts.tolist(), strict=True)]
        splits[name] = SplitArrays(names, weak, audio, visual)
    return splits


def generate_arrays(
    *,
    n_train: int,
    n_val: int,
    n_test: int,
    features: str = "valor",
    seed: int = 0,
    config: SyntheticConfig | None = None,
) -> dict[str, SplitArrays]:
    """The same data as :func:`generate_llp`, held in memory (no files), for benchmarks.

    Mind the size: ResNet-152 features take 655 kB per clip.
    """
    config = config or SyntheticConfig()
    kinds = _check_features(features)
    splits = _llp_splits(n_train, n_val, n_test, seed, config)
    store: dict[str, dict[str, list[np.ndarray]]] = {s: {k: [] for k in kinds} for s in splits}

    def sink(name: str, sl: slice, feats: dict[str, np.ndarray]) -> None:
        for k, v in feats.items():
            store[name][k].append(v)

    _render_splits(splits, kinds, seed, config, len(LLP), sink)
    for name, split in splits.items():
        split.features = {
            k: np.concatenate(v) if v else np.zeros((0, *FEATURE_KINDS[k].shape), np.float32)
            for k, v in store[name].items()
        }
    return splits


# --- writing data roots --------------------------------------------------------------------------


def _settings(kind: str, counts: dict, features: str, seed: int, config: SyntheticConfig) -> dict:
    return {
        "kind": kind,
        "counts": counts,
        "features": features,
        "seed": seed,
        "config": config.to_dict(),
    }


def _begin(root: Path, settings: dict, overwrite: bool) -> bool:
    """True when ``root`` already holds exactly this data (nothing to do)."""
    marker = root / COMPLETE_MARKER
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
                "choose another folder or pass overwrite"
            )
        marker.unlink()
    root.mkdir(parents=True, exist_ok=True)
    return False


def _feature_sink(root: Path, ids_of: dict[str, list[str]]):
    folders = {k: root / FEATURE_KINDS[k].folder for k in FEATURE_KINDS}

    def sink(name: str, sl: slice, feats: dict[str, np.ndarray]) -> None:
        ids = ids_of[name][sl]
        for kind, arr in feats.items():
            folders[kind].mkdir(parents=True, exist_ok=True)
            for clip, x in zip(ids, arr, strict=True):
                np.save(folders[kind] / f"{clip}.npy", x)

    return sink


def _write_harvests(root: Path, ids: list[str], split: SplitArrays) -> None:
    pairs = (
        (HARVEST_FOLDERS["audio"], split.harvest_audio),
        (HARVEST_FOLDERS["visual"], split.harvest_visual),
        (FUSED_HARVEST_FOLDERS["audio"], split.fused_audio),
        (FUSED_HARVEST_FOLDERS["visual"], split.fused_visual),
    )
    for folder, arr in pairs:
        if arr is None:  # arrays generated without harvests
            continue
        path = root / folder
        path.mkdir(parents=True, exist_ok=True)
        for clip, x in zip(ids, arr.astype(np.float32), strict=True):
            np.save(path / f"{clip}.npy", x)


def _finish(root: Path, settings: dict, thresholds: dict[str, np.ndarray]) -> None:
    from avparse.utils.atomic import write_json

    write_json(
        root / "synthetic_thresholds.json",
        {k: [round(float(x), 4) for x in v] for k, v in thresholds.items()},
    )
    write_json(root / COMPLETE_MARKER, settings)


def _weak_tsv(filenames: list[str], weak: np.ndarray, names: list[str]) -> str:
    lines = ["filename\tevent_labels"]
    for f, row in zip(filenames, weak, strict=True):
        lines.append(f"{f}\t{','.join(names[c] for c in np.flatnonzero(row))}")
    return "\n".join(lines) + "\n"


def _dense_tsv(splits: list[SplitArrays], attr: str, names: list[str]) -> str:
    from avparse.data.llp import runs

    lines = ["filename\tonset\toffset\tevent_labels"]
    for split in splits:
        for clip, cls, on, off in runs(getattr(split, attr)).tolist():
            lines.append(f"{split.filenames[clip]}\t{on}\t{off}\t{names[cls]}")
    return "\n".join(lines) + "\n"


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
) -> Path:
    """Write a complete LLP-like data root in the published layout; returns ``root``.

    Annotation files (weak labels of every split, dense labels of val and test), features of
    ``features`` (``valor``: VGGish / ResNet-152 / R(2+1)D; ``valor++``: CLAP maps / CLIP /
    R(2+1)D), the CLIP/CLAP harvests and the fused teacher's harvests under ``fused/``. A root
    finished with the same settings is reused as is (completion marker); other settings are
    refused unless ``overwrite``.
    """
    from avparse.utils.atomic import write_text

    root = Path(root)
    config = config or SyntheticConfig()
    kinds = _check_features(features)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    settings = _settings("llp", counts, features, seed, config)
    if _begin(root, settings, overwrite):
        return root
    splits = _llp_splits(n_train, n_val, n_test, seed, config)
    ids_of = {name: s.ids for name, s in splits.items()}
    thresholds = _render_splits(splits, kinds, seed, config, len(LLP), _feature_sink(root, ids_of))
    names = LLP.names
    for name, split in splits.items():
        _write_harvests(root, ids_of[name], split)
        write_text(root / LLP_FILES[name], _weak_tsv(split.filenames, split.weak, names))
    everything = [splits[s] for s in ("train", "val", "test")]
    write_text(
        root / LLP_FILES["full"],
        _weak_tsv(
            [f for s in everything for f in s.filenames],
            np.concatenate([s.weak for s in everything]),
            names,
        ),
    )
    scored = [splits["val"], splits["test"]]
    write_text(root / LLP_FILES["dense_audio"], _dense_tsv(scored, "audio", names))
    write_text(root / LLP_FILES["dense_visual"], _dense_tsv(scored, "visual", names))
    _finish(root, settings, thresholds)
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
    background segments.
    """
    from avparse.data.ave import AVE_FILES, AVEAnnotations, read_ave_split, write_ave_split
    from avparse.utils.atomic import write_text

    root = Path(root)
    config = config or SyntheticConfig()
    kinds = _check_features(features)
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
        n = n_train + n_val + n_test
        rng = _rng(seed, 11)
        category, spans = sample_ave_events(n, rng)
        ids = _ids(n, _rng(seed, 12), set())
        bounds = np.cumsum([0, n_train, n_val, n_test])
        orders = {
            s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(("train", "val", "test"))
        }
        counts = {"train": n_train, "val": n_val, "test": n_test}
    settings = _settings("ave", counts, features, seed, config)
    if _begin(root, settings, overwrite):
        return root
    audio, visual = ave_activity(category, spans, _rng(seed, 13), config)
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
    ids_of = {name: s.ids for name, s in splits.items()}
    thresholds = _render_splits(splits, kinds, seed, config, len(AVE), _feature_sink(root, ids_of))
    for name, split in splits.items():
        _write_harvests(root, ids_of[name], split)
    names = AVE.names
    lines = [
        f"{names[c]}&{clip}&good&{int(on)}&{int(off)}"
        for clip, c, (on, off) in zip(ids, category.tolist(), spans.tolist(), strict=True)
    ]
    write_text(root / AVE_FILES["annotations"], "\n".join(lines) + "\n")
    for s in ("train", "val", "test"):
        write_ave_split(root / AVE_FILES[s], orders[s])
    _finish(root, settings, thresholds)
    return root


def is_complete(root: str | Path) -> bool:
    """Whether ``root`` is a finished synthetic data root."""
    return (Path(root) / COMPLETE_MARKER).is_file()


def fused_root(root: str | Path, out: str | Path) -> Path:
    """A data root at ``out`` that is ``root`` with the fused teacher's harvests in place of the
    one-modality harvests (symbolic links, nothing copied), for the ablation of reference
    section 4: train on ``out`` exactly as on ``root``."""
    root, out = Path(root).resolve(), Path(out)
    if not is_complete(root):
        raise AvparseError(f"{root}: not a finished synthetic data root")
    harvests = set(HARVEST_FOLDERS.values())
    out.mkdir(parents=True, exist_ok=True)
    links: dict[Path, Path] = {}
    for item in root.iterdir():
        if item.name in ("fused", "packed", "packed_ave", COMPLETE_MARKER):
            continue
        if item.is_dir() and any(h.startswith(item.name + "/") for h in harvests):
            for sub in item.iterdir():
                rel = f"{item.name}/{sub.name}"
                links[out / rel] = root / "fused" / rel if rel in harvests else sub
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
