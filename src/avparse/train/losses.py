"""Losses of the student (reference section 6), on the outputs of :class:`avparse.model.han.HAN`.

Each returns ``(total, parts)``; parts are detached scalars for logging.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from avparse.model.han import HANOutput

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


def valor_loss(
    out: HANOutput, weak: Tensor, harvest_audio: Tensor, harvest_visual: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Video BCE plus BCE-with-logits of segment logits against the (B, T, C) harvests."""
    video = _bce(out.video_prob, weak)
    audio = F.binary_cross_entropy_with_logits(out.frame_logits[:, :, 0], harvest_audio)
    visual = F.binary_cross_entropy_with_logits(out.frame_logits[:, :, 1], harvest_visual)
    parts = {"video": video.detach(), "audio": audio.detach(), "visual": visual.detach()}
    return video + audio + visual, parts


def valor_video_loss(
    out: HANOutput, weak: Tensor, harvest_audio: Tensor, harvest_visual: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Ablation: harvests reduced to video level (any positive segment) on the modality probs."""
    video = _bce(out.video_prob, weak)
    audio = _bce(out.audio_prob, harvest_audio.amax(dim=1))
    visual = _bce(out.visual_prob, harvest_visual.amax(dim=1))
    parts = {"video": video.detach(), "audio": audio.detach(), "visual": visual.detach()}
    return video + audio + visual, parts
