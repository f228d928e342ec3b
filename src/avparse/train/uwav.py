"""UWAV's training objective (CVPR 2025; reference section 11), on the outputs of the HAN student.

Three parts, each switchable for the ablation (the ``uwav_*`` fields of ``TrainConfig``):

- **Soft targets.** Inside a clip's weak labels the segment target is ``sigmoid(margin / T)``,
  ``margin = logit - threshold`` of the teacher; 0 outside. The harvest stores
  ``sigmoid(margin)`` (``*/segment_soft_labels``), so the margin is recovered from it and any
  temperature can be tried without harvesting again (``T = 2`` is UWAV's).
- **Class-balanced re-weighting** of the segment BCE: terms of weak-positive classes times
  ``w_pos``, the others times ``w_neg``, from the fraction ``f`` of positive entries in the
  training split's hard harvest of that modality. ``paper``: ``w_pos = W (1 - f)``,
  ``w_neg = f`` (UWAV eq. 18-19); ``code``: the published code's, ``C`` times those (it sums
  per-class fractions); ``fixed``: 7 and 1.
- **Feature mixup.** Two random segments of the batch (same modality) are mixed,
  ``lam ~ Beta(alpha, alpha)``, and the mix goes through the segment classifier; the loss is
  ``lam BCE(mix, y_i) + (1 - lam) BCE(mix, y_j)``. The classifier ``fc_prob`` is affine, so
  ``fc_prob(lam f_i + (1 - lam) f_j) = lam z_i + (1 - lam) z_j``: the mix is taken on the
  segment logits, which is the same function and gradient without exposing the features.

Randomness (``lam`` and the pairing) comes from torch's global CPU generator, which the training
loop seeds and saves in its checkpoints, so a resumed run draws the same mixes on any device.

Under ``torchrun`` each rank mixes within its own share of the global batch (B / N clips) and
draws its own ``lam`` from its own stream (seed + rank): pairs never cross ranks, so N processes
do not draw one process's mixes (the expected loss is the same: ``lam`` has the same law and the
pairing is uniform within each share). Every other term is reproduced exactly
(tests/test_uwav_ddp.py).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avparse.data.ragged import Ragged
from avparse.errors import AvparseError
from avparse.model.han import HANOutput
from avparse.train.recipe import TrainConfig

FIXED_WEIGHTS = (7.0, 1.0)
"""``(w_pos, w_neg)`` of the published code's ``reweight_type=fixed`` defaults."""

_SOFT_MAX = float(np.nextafter(np.float32(1), np.float32(0)))
"""Largest float32 below 1: a stored soft label of exactly 1 is read as this (margin ~16.6)."""
_SOFT_MIN = float(np.finfo(np.float32).tiny)
"""Smallest normal float32: a soft label of exactly 0 inside the weak labels (margin ~ -87)."""


def soft_targets(soft: Tensor, weak: Tensor, temperature: float = 2.0) -> Tensor:
    """Segment targets ``sigmoid(margin / T)`` inside the weak labels, 0 outside.

    Args:
        soft: (B, T, C) stored soft labels ``sigmoid(margin)`` (0 outside the weak labels).
        weak: (B, C) weak labels (0/1).
        temperature: ``T``; 1 gives the stored soft labels back.

    Saturated labels stay finite: a stored 1 (margin beyond float32's ~16.6) is read as the
    largest float32 below 1, a stored 0 inside the weak labels as the smallest normal float32.
    """
    p = soft.double().clamp(_SOFT_MIN, _SOFT_MAX)
    margin = torch.log(p) - torch.log1p(-p)
    target = torch.sigmoid(margin / temperature).to(soft.dtype)
    return torch.where(weak[:, None, :] > 0, target, torch.zeros_like(target))


def positive_fraction(hard: np.ndarray, chunk: int = 4096) -> float:
    """Fraction of positive entries of a (N, T, C) hard harvest, or of the (segments, C) values
    of clips of any length (memory maps read in chunks)."""
    if hard.size == 0:
        raise AvparseError("cannot weigh classes from an empty harvest")
    total = 0
    for start in range(0, len(hard), chunk):
        total += int(np.count_nonzero(np.asarray(hard[start : start + chunk])))
    return total / hard.size


def class_weights(fraction: float, num_classes: int, cfg: TrainConfig) -> tuple[float, float]:
    """``(w_pos, w_neg)`` for a modality whose hard harvest has ``fraction`` positive entries."""
    if cfg.uwav_weights == "fixed":
        return FIXED_WEIGHTS
    scale = float(num_classes) if cfg.uwav_weights == "code" else 1.0
    return scale * cfg.uwav_w * (1.0 - fraction), scale * fraction


def segment_loss(
    logits: Tensor,
    target: Tensor,
    weak: Tensor,
    weights: tuple[float, float] | None,
    mask: Tensor | None = None,
    real: Tensor | None = None,
) -> Tensor:
    """Mean BCE-with-logits over (B, T, C); ``weights`` ``(w_pos, w_neg)`` by weak membership;
    ``mask`` (B, T): the mean over real segments only (clips of any length, padded; ``real``:
    the divisor under ``torchrun``, :func:`avparse.train.losses.masked_mean`)."""
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if weights is not None:
        w_pos, w_neg = weights
        inside = (weak > 0)[:, None, :]
        loss = loss * torch.where(inside, w_pos, w_neg).to(loss.dtype)
    if mask is None:
        return loss.mean()
    if real is None:
        return loss[mask].mean()
    return loss[mask].sum() / (real.to(loss.dtype) * loss.shape[-1])


def draw_mixup(n: int, alpha: float) -> tuple[float, Tensor]:
    """``lam ~ Beta(alpha, alpha)`` (1 when ``alpha`` is 0) and a random pairing of ``n`` rows.

    Drawn from torch's global CPU generator (seeded and checkpointed by the loop).
    """
    if alpha > 0:
        a = torch.tensor(float(alpha), dtype=torch.float64)
        lam = float(torch.distributions.Beta(a, a).sample())
    else:
        lam = 1.0
    return lam, torch.randperm(n)


def mixup_loss(
    logits: Tensor, labels: Tensor, lam: float, perm: Tensor, mask: Tensor | None = None
) -> Tensor:
    """``lam BCE(mix, y) + (1 - lam) BCE(mix, y[perm])`` over the (B*T) segments of one modality.

    ``mix = lam z + (1 - lam) z[perm]`` on the segment logits ``z`` (B, T, C), which equals the
    classifier applied to the mixed encoder features (the classifier is affine). With ``mask``
    (B, T) only real segments are mixed (``perm`` then permutes the real segments).
    """
    c = logits.shape[-1]
    z = logits.reshape(-1, c) if mask is None else logits[mask]
    y = labels.reshape(-1, c) if mask is None else labels[mask]
    perm = perm.to(z.device)
    mixed = lam * z + (1.0 - lam) * z[perm]
    first = F.binary_cross_entropy_with_logits(mixed, y)
    second = F.binary_cross_entropy_with_logits(mixed, y[perm])
    return lam * first + (1.0 - lam) * second


def segment_terms(
    frame_logits: Tensor,
    weak: Tensor,
    hard: dict[str, Tensor],
    soft: dict[str, Tensor] | None,
    weights: dict[str, tuple[float, float]] | None,
    cfg: TrainConfig,
    mask: Tensor | None = None,
    real: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """UWAV's segment terms: the (re-weighted) segment loss and the mixup loss of each modality.

    ``avparse.train.losses.uwav_loss`` adds the video BCE.

    Args:
        frame_logits: (B, T, 2, C) segment logits (modality 0 audio, 1 visual).
        weak: (B, C) weak labels.
        hard: ``{"audio", "visual"}`` (B, T, C) hard harvests (the targets when ``uwav_soft``
            is off).
        soft: the same for the stored soft labels (needed when ``cfg.uwav_soft``).
        weights: ``(w_pos, w_neg)`` per modality (needed when ``cfg.uwav_reweight``).
        cfg: the training config; its ``uwav_*`` fields are the switches.
        mask: (B, T) bool, True on real segments of padded clips (None: all are real).
        real: under ``torchrun``, the divisor of the masked segment loss (see
            :func:`segment_loss`); mixup pairs stay within each rank's real segments.
    """
    total = frame_logits.new_zeros(())
    parts: dict[str, Tensor] = {}
    for i, m in enumerate(("audio", "visual")):
        logits = frame_logits[:, :, i]
        if cfg.uwav_soft:
            if soft is None:
                raise ValueError("soft targets asked for but no soft labels given")
            target = soft_targets(soft[m], weak, cfg.uwav_temperature)
        else:
            target = hard[m]
        w = None
        if cfg.uwav_reweight:
            if weights is None:
                raise ValueError("re-weighting asked for but no class weights given")
            w = weights[m]
        seg = segment_loss(logits, target, weak, w, mask, real)
        total = total + seg
        parts[m] = seg.detach()
        if cfg.uwav_mixup:
            n = logits.shape[0] * logits.shape[1] if mask is None else int(mask.sum())
            lam, perm = draw_mixup(n, cfg.uwav_alpha)
            labels = torch.ceil(target) if cfg.uwav_ceil else target
            mix = mixup_loss(logits, labels, lam, perm, mask)
            total = total + mix
            parts[f"{m}_mixup"] = mix.detach()
    return total, parts


# ---------------------------------------------------------------- the registered loss


TARGETS = ("weak", "harvest_audio", "harvest_visual", "soft_audio", "soft_visual")
"""Training targets a task provides for the ``uwav`` loss: weak labels, hard and soft harvests
(the soft ones, ``*/segment_soft_labels``, are needed even with ``uwav_soft=false``)."""

WEIGHTS_TARGET = "uwav_weights"
"""Derived target: (rows, 2, 2) ``[[w_pos, w_neg] audio, [...] visual]``, the same for every row
(a broadcast view), so batches carry the split's class weights like any other target."""


def derive_targets(targets: dict[str, np.ndarray], cfg: TrainConfig) -> dict[str, np.ndarray]:
    """:data:`WEIGHTS_TARGET` of a training split, from its (N, T, C) hard harvests."""
    hard = targets["harvest_audio"]
    rows = len(hard)

    def segments(array: np.ndarray | Ragged) -> np.ndarray:  # real segments only
        return array.values if isinstance(array, Ragged) else array

    num_classes = segments(hard).shape[-1]
    table = np.array(
        [
            class_weights(positive_fraction(segments(targets[f"harvest_{m}"])), num_classes, cfg)
            for m in ("audio", "visual")
        ],
        dtype=np.float32,
    )
    return {WEIGHTS_TARGET: np.broadcast_to(table, (rows, 2, 2))}


def batch_terms(
    out: HANOutput, batch: dict[str, Tensor], cfg: TrainConfig
) -> tuple[Tensor, dict[str, Tensor]]:
    """:func:`segment_terms` of a training batch (keys :data:`TARGETS` and the weights)."""
    modalities = ("audio", "visual")
    hard = {m: batch[f"harvest_{m}"] for m in modalities}
    soft = {m: batch[f"soft_{m}"] for m in modalities}  # soft_targets keeps the weak labels only
    table = batch[WEIGHTS_TARGET][0].tolist()
    weights = {m: (float(table[i][0]), float(table[i][1])) for i, m in enumerate(modalities)}
    return segment_terms(
        out.frame_logits,
        batch["weak"],
        hard,
        soft,
        weights,
        cfg,
        batch.get("mask"),
        batch.get("real_segments"),
    )
