"""Events of synthetic clips: which classes a clip has, in which modality, and when.

Label sets, the modality carrying each tagged class (audio only, visual only, both, or, rarely,
neither), the number of runs and their lengths follow statistics derived from the real LLP
annotations (``llp_stats.json``, written by ``scripts/derive_llp_stats.py``). Audio and visual
runs are placed independently, so the modalities are often unaligned. AVE clips have one
audio-visual event, with one modality sometimes continuing into the background.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import numpy as np

from avparse.data.layout import SEGMENTS
from avparse.synthetic.config import SyntheticConfig
from avparse.vocab import AVE, LLP


@cache
def load_stats() -> dict:
    """The packaged event statistics (``llp_stats.json``)."""
    text = resources.files("avparse.synthetic").joinpath("llp_stats.json").read_text("utf-8")
    return json.loads(text)


def _probs(counts, smooth: float = 0.0) -> np.ndarray:
    p = np.asarray(counts, dtype=np.float64) + smooth
    return p / p.sum()


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
