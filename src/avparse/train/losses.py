"""Losses of the student (reference section 6), on the outputs of :class:`avparse.model.han.HAN`.

Each returns ``(total, parts)``; parts are detached scalars for logging. A batch of clips of any
length carries its (B, T) validity mask as ``batch["mask"]``; segment terms then average over
real segments only (without it, today's means over all 10 segments). :data:`LOSSES` is the
registry ``--loss`` chooses from; adding a loss is one :func:`register_loss` call (a task offers
it as soon as it provides the loss's targets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from avparse.errors import AvparseError
from avparse.model.han import HANOutput
from avparse.train import uwav

EPS = 1e-7
"""Probabilities are clamped to [EPS, 1 - EPS] before BCE, as in the published code."""


def _bce(prob: Tensor, target: Tensor) -> Tensor:
    return F.binary_cross_entropy(prob.clamp(EPS, 1 - EPS), target)


def han_loss(
    out: HANOutput, weak: Tensor, *, guided: bool = True
) -> tuple[Tensor, dict[str, Tensor]]:
    """BCE of P against the weak labels; ``guided`` adds the original HAN's modality terms
    (audio target = weak labels, visual target smoothed to ``0.9 y + 0.05``)."""
    video = _bce(out.video_prob, weak)
    parts = {"video": video.detach()}
    total = video
    if guided:
        audio = _bce(out.audio_prob, weak)
        visual = _bce(out.visual_prob, 0.9 * weak + 0.05)
        total = total + audio + visual
        parts.update(audio=audio.detach(), visual=visual.detach())
    return total, parts


def masked_mean(loss: Tensor, mask: Tensor, real: Tensor | None = None) -> Tensor:
    """Mean of a (B, T, C) elementwise loss over the real segments of ``mask`` (B, T).

    ``real``: the segments to divide by instead of this batch's own (under ``torchrun``, the
    global batch's real segments per rank, so the averaged gradient is that of the global mean).
    """
    if real is None:
        return loss[mask].mean()
    return loss[mask].sum() / (real.to(loss.dtype) * loss.shape[-1])


def segment_bce_with_logits(
    logits: Tensor, target: Tensor, mask: Tensor | None = None, real: Tensor | None = None
) -> Tensor:
    """Mean BCE-with-logits over (B, T, C); with ``mask`` (B, T) over real segments only
    (:func:`masked_mean`).

    ``mask=None`` is torch's mean over every entry (10-segment clips: the published loss).
    """
    if mask is None:
        return F.binary_cross_entropy_with_logits(logits, target)
    if real is None:
        return F.binary_cross_entropy_with_logits(logits[mask], target[mask])
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return masked_mean(loss, mask, real)


def valor_loss(
    out: HANOutput,
    weak: Tensor,
    harvest_audio: Tensor,
    harvest_visual: Tensor,
    mask: Tensor | None = None,
    real: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Video BCE plus BCE-with-logits of segment logits against the (B, T, C) harvests
    (averaged over the real segments of ``mask`` (B, T) when clips are padded; ``real``: see
    :func:`masked_mean`)."""
    video = _bce(out.video_prob, weak)
    audio = segment_bce_with_logits(out.frame_logits[:, :, 0], harvest_audio, mask, real)
    visual = segment_bce_with_logits(out.frame_logits[:, :, 1], harvest_visual, mask, real)
    parts = {"video": video.detach(), "audio": audio.detach(), "visual": visual.detach()}
    return video + audio + visual, parts


def valor_video_loss(
    out: HANOutput, weak: Tensor, harvest_audio: Tensor, harvest_visual: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Ablation: harvests reduced to video level (any positive segment) on the modality probs.

    Padded segments hold 0 in the harvests, so the maximum over time needs no mask."""
    video = _bce(out.video_prob, weak)
    audio = _bce(out.audio_prob, harvest_audio.amax(dim=1))
    visual = _bce(out.visual_prob, harvest_visual.amax(dim=1))
    parts = {"video": video.detach(), "audio": audio.detach(), "visual": visual.detach()}
    return video + audio + visual, parts


@dataclass(frozen=True)
class Loss:
    """A training objective and the batch targets it reads.

    ``targets`` names keys a task must provide in training batches (``weak`` clip labels,
    ``harvest_audio`` / ``harvest_visual`` segment harvests, ...); a task offers every loss whose
    targets it can provide. ``fn(out, batch, cfg)`` returns ``(total, parts)``.
    """

    name: str
    targets: tuple[str, ...]
    fn: Callable[[HANOutput, dict[str, Tensor], Any], tuple[Tensor, dict[str, Tensor]]]
    about: str = ""
    derive: Callable[[dict[str, np.ndarray], Any], dict[str, np.ndarray]] | None = None
    """Targets computed once from the whole training split's ``targets`` (UWAV's class weights
    from the split's harvests): row-aligned arrays named in ``derived``, batched like the rest."""
    derived: tuple[str, ...] = ()

    @property
    def batch_keys(self) -> tuple[str, ...]:
        """Keys of a training batch: the task's targets and the derived ones."""
        return self.targets + self.derived


LOSSES: dict[str, Loss] = {}
"""Every training objective, by the name ``--loss`` takes."""


def register_loss(loss: Loss) -> Loss:
    LOSSES[loss.name] = loss
    return loss


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise AvparseError(f"unknown loss {name!r} (known: {', '.join(LOSSES)})")
    return LOSSES[name]


_HARVESTS = ("weak", "harvest_audio", "harvest_visual")

register_loss(Loss(
    "han", ("weak",),
    lambda out, b, cfg: han_loss(out, b["weak"], guided=cfg.han_guided),
    "weak labels only (the HAN baseline)",
))  # fmt: skip
register_loss(Loss(
    "valor", _HARVESTS,
    lambda out, b, cfg: valor_loss(
        out, b["weak"], b["harvest_audio"], b["harvest_visual"], b.get("mask"),
        b.get("real_segments"),
    ),
    "weak labels plus the teachers' segment harvests (VALOR)",
))  # fmt: skip
register_loss(Loss(
    "valor-video", _HARVESTS,
    lambda out, b, cfg: valor_video_loss(out, b["weak"], b["harvest_audio"], b["harvest_visual"]),
    "harvests reduced to video level (ablation)",
))  # fmt: skip
register_loss(Loss(
    "supervised", ("weak", "segments_av"),
    lambda out, b, cfg: valor_loss(
        out, b["weak"], b["segments_av"], b["segments_av"], b.get("mask"),
        b.get("real_segments"),
    ),
    "true segment labels as both modalities' targets (fully supervised AVE, for comparison)",
))  # fmt: skip


def uwav_loss(
    out: HANOutput, batch: dict[str, Tensor], cfg: Any
) -> tuple[Tensor, dict[str, Tensor]]:
    """Video BCE plus UWAV's segment and mixup terms (:mod:`avparse.train.uwav`)."""
    video = _bce(out.video_prob, batch["weak"])
    terms, parts = uwav.batch_terms(out, batch, cfg)
    return video + terms, {"video": video.detach(), **parts}


register_loss(Loss(
    "uwav", uwav.TARGETS, uwav_loss,
    "soft, class-balanced segment targets plus feature mixup (UWAV; the uwav_* settings)",
    derive=uwav.derive_targets, derived=(uwav.WEIGHTS_TARGET,),
))  # fmt: skip
