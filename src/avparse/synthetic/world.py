"""The synthetic world: class prototypes of every feature space and two honest teachers.

**Features.** Each feature space has one random unit prototype direction per class. A segment's
feature is a weighted sum of prototypes: the active classes with a per-event gain, plus
*distractors* (every class at a small random weight per segment: unlabelled content), plus a
clip-level *nuisance* (class-like context constant over the clip), plus isotropic noise. Audio
features see only audio events, visual features only visual events.

**Teachers.** Stand-ins for CLIP and CLAP: each embeds ONE modality's segment into a shared
semantic space (with its own distractors and noise) and scores it against class "text"
embeddings that carry a zero-shot error (confusion with other classes plus noise), as a scaled
cosine. :func:`render` returns those scores (logits); thresholds and labels come from the real
teacher code (:mod:`avparse.synthetic.harvest`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avparse.data.layout import FEATURE_KINDS, SEGMENTS, task_kinds
from avparse.synthetic.config import SyntheticConfig
from avparse.synthetic.config import rng as rng_of

TEACHER_DIM = 768
"""Dimension of the teachers' shared semantic space (the size of CLIP/CLAP embeddings)."""


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
        rng = rng_of(seed, 99)
        protos = {}
        for name in sorted(task_kinds("llp")):
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
    """``audio`` (the CLAP stand-in) and ``visual`` (CLIP): (n, 10, C) teacher logits."""


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
            repeat = FEATURE_KINDS[kind].frames // SEGMENTS
            feats[kind] = _space(
                rng, amp, world.prototypes[kind], cfg.distractor, cfg.nuisance, cfg.noise, repeat
            )
        if cfg.unit_variance and kind != "clip":
            feats[kind] *= np.float32(np.sqrt(FEATURE_KINDS[kind].shape[1]))
    return Rendered(
        {k: v.astype(np.float32, copy=False) for k, v in feats.items()},
        {k: v.astype(np.float32) for k, v in scores.items()},
    )
