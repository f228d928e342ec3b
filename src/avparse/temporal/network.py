"""The temporal teacher network and its pretraining loss (reference section 12).

Module tree and parameter names follow UWAV's ``model/TemporalTransformer.py``, so a
``checkpoint_best.pt`` of its ``main_pretrain.py`` loads as is: ``proj_a`` / ``proj_v``
(``layers.0``, ``layers.1``), ``a_transformer.encoder`` / ``v_transformer.encoder`` (torch's
``TransformerEncoder``), ``final_proj_a`` / ``final_proj_v`` and the two scale buffers
``a_logit_scale`` / ``v_logit_scale``. The class text embeddings are not weights: they are
given to :meth:`TemporalTeacher.forward`, so one teacher labels any vocabulary.

Padding: ``mask`` (B, T) is True on real segments; padded segments are excluded from attention
as keys (torch's key-padding mask), so a clip padded in a batch gives the logits it gives alone
on its real segments. UWAV's code masks with an additive -1e10 instead of a boolean mask; on
real segments the two are the same function.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avparse.temporal.config import TeacherConfig


class MLP(nn.Module):
    """Linear layers with ReLU between them (none after the last); UWAV's ``MLP``."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return x


class Encoder(nn.Module):
    """A post-norm transformer encoder (batch first); UWAV's ``TranformerEncoder`` wrapper."""

    def __init__(self, cfg: TeacherConfig) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            cfg.hidden_dim,
            cfg.nhead,
            dim_feedforward=cfg.ff_dim,
            dropout=cfg.dropout,
            batch_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)

    def forward(self, x: Tensor, padding: Tensor | None) -> Tensor:
        return self.encoder(x, src_key_padding_mask=padding)


class TemporalTeacher(nn.Module):
    """Audio and visual towers over segment embeddings, scored against class text embeddings."""

    def __init__(self, cfg: TeacherConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden_dim
        self.proj_a = MLP([cfg.audio_dim, 2 * h, h])
        self.proj_v = MLP([cfg.visual_dim, 2 * h, h])
        self.a_transformer = Encoder(cfg)
        self.v_transformer = Encoder(cfg)
        self.register_buffer("a_logit_scale", torch.tensor(cfg.audio_scale, dtype=torch.float32))
        self.register_buffer("v_logit_scale", torch.tensor(cfg.visual_scale, dtype=torch.float32))
        self.final_proj_a = MLP([h, cfg.audio_text_dim, cfg.audio_text_dim])
        self.final_proj_v = MLP([h, cfg.visual_text_dim, cfg.visual_text_dim])

    def forward(
        self,
        audio: Tensor,
        visual: Tensor,
        audio_text: Tensor,
        visual_text: Tensor,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Audio and visual logits (B, T, C).

        Args:
            audio: (B, T, audio_dim) CLAP segment embeddings.
            visual: (B, T, visual_dim) CLIP segment embeddings.
            audio_text: (C, audio_text_dim) L2-normalised CLAP text embeddings of the classes.
            visual_text: (C, visual_text_dim) L2-normalised CLIP text embeddings.
            mask: (B, T) bool, True on real segments (None: all real).
        """
        padding = None if mask is None else ~mask.bool()
        a = self.a_transformer(self.proj_a(audio), padding)
        v = self.v_transformer(self.proj_v(visual), padding)
        a_logit = self.final_proj_a(a) @ audio_text.T * self.a_logit_scale
        v_logit = self.final_proj_v(v) @ visual_text.T * self.v_logit_scale
        return a_logit, v_logit


def pretrain_loss(
    a_logit: Tensor,
    v_logit: Tensor,
    labels: Tensor,
    mask: Tensor,
    *,
    pos_weight: float = 5.0,
    neg_weight: float = 1.0,
) -> Tensor:
    """UWAV's pretraining loss: BCE of ``sigmoid(z_a) * sigmoid(z_v)`` against the dense
    audio-visual labels (B, T, C), weighted ``pos_weight`` for classes present in the clip and
    ``neg_weight`` otherwise, averaged over real segments and classes (``mask`` (B, T))."""
    prob = torch.sigmoid(a_logit) * torch.sigmoid(v_logit)
    loss = F.binary_cross_entropy(prob, labels.to(prob.dtype), reduction="none")
    present = labels.to(prob.dtype).sum(dim=1, keepdim=True) > 0
    weight = torch.where(present, pos_weight, neg_weight).to(prob.dtype)
    m = mask.to(prob.dtype)
    return (loss * weight * m[..., None]).sum() / (m.sum() * labels.shape[-1])
