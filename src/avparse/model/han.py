"""HAN student with attentive multimodal MIL pooling (reference section 5), in two layouts.

``arch="valor"``: module and parameter names match VALOR's published checkpoints (``fc_prob``,
``fc_frame_att``, ``fc_av_att``, ``fc_a``, ``fc_v``, ``fc_st``, ``fc_fusion``,
``hat_encoder.layers.<i>.*``, ``hat_encoder.final_norm_a|v``). ``arch="uwav"``: those of UWAV's
student (``HybridAttentionNet``): ``fc_a``, ``fc_fusion``, ``fc_frame_att`` and ``fc_av_att``
are MLPs (``<name>.layers.<j>``), there is no ``fc_v`` / ``fc_st``, the encoder is the same.
Either way a published ``state_dict`` loads without renaming.
Temporal pooling is written as fixed averaging (reshape-mean, a pooling matrix) rather than
``avg_pool``/``adaptive_avg_pool`` so that the backward pass is deterministic on CUDA too.
"""

from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avparse.data.layout import CLAP_MAP_GRID, SEGMENTS
from avparse.errors import AvparseError
from avparse.model.config import CLAP_MAP_WIDTH, NO_MOTION, ModelConfig
from avparse.utils.text import count


class HANOutput(NamedTuple):
    video_prob: Tensor
    """(B, C) clip-level probability P."""
    audio_prob: Tensor
    """(B, C) audio video-level probability."""
    visual_prob: Tensor
    """(B, C) visual video-level probability."""
    frame_prob: Tensor
    """(B, T, 2, C) segment probabilities, modality 0 audio, 1 visual."""
    frame_logits: Tensor
    """(B, T, 2, C) segment logits."""


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask costs half as much: four 16-bit draws per 64-bit random
    word instead of torch's one draw per element (the masks were 15 % of a bfloat16 training
    step on a 2-core CPU). ``p`` acts rounded to a multiple of 1/65,536 and the kept values are
    scaled by the inverse of the kept share, so the expected output is the input. Elsewhere
    (CUDA has a fused dropout kernel) and outside training it is ``nn.Dropout``."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
        lanes = words.view(torch.int16)[:n].view(x.shape)
        cut = round(self.p * 65_536)  # lanes below -32768 + cut are dropped
        # the mask in x's dtype (0 or 1: exact), then the scale as a Python float, which torch
        # applies in float32 even to bfloat16 inputs (a bfloat16 1/0.9 would be 0.16 % low)
        return x * (lanes >= cut - 32_768).to(x.dtype) * (65_536 / (65_536 - cut))


class HANLayer(nn.Module):
    """Self-attention plus cross-modal attention, then a feed-forward block."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, norm: str):
        super().__init__()
        self.norm_where = norm
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.cm_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)
        self.dropout_cm = Dropout(dropout)
        self.dropout_self = Dropout(dropout)
        self.dropout_ff = Dropout(dropout)

    def _ff(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))

    def forward(self, query: Tensor, other: Tensor, padding: Tensor | None = None) -> Tensor:
        """Update ``query`` (B, T, d) attending to itself and to ``other`` (B, T, d).

        ``padding`` (B, T) bool, True = padded segment: no key at such a segment is attended
        to (both modalities share the clip's segments, so one mask serves both attentions).
        """
        q = query.transpose(0, 1)  # nn.MultiheadAttention is sequence-first here
        o = other.transpose(0, 1)
        if self.norm_where == "post":
            cross = self.cm_attn(q, o, o, key_padding_mask=padding, need_weights=False)[0]
            own = self.self_attn(q, q, q, key_padding_mask=padding, need_weights=False)[0]
            q = self.norm1(q + self.dropout_cm(cross) + self.dropout_self(own))
            q = self.norm2(q + self.dropout_ff(self._ff(q)))
        else:
            qn = self.norm1(q)
            cross = self.cm_attn(qn, o, o, key_padding_mask=padding, need_weights=False)[0]
            own = self.self_attn(qn, qn, qn, key_padding_mask=padding, need_weights=False)[0]
            q = q + self.dropout_cm(cross) + self.dropout_self(own)
            q = q + self.dropout_ff(self._ff(self.norm2(q)))
        return q.transpose(0, 1)


class HybridAttentionEncoder(nn.Module):
    """L layers; each updates audio (attending to visual), then visual (attending to audio).

    The visual update sees the audio updated in the same layer unless the config asks for the
    original HAN code's order (``visual_attends="previous"``).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm_where = config.norm
        self.attend_updated = config.visual_attends == "updated"
        self.layers = nn.ModuleList(
            HANLayer(
                config.d_model, config.nhead, config.dim_feedforward, config.dropout, config.norm
            )
            for _ in range(config.num_layers)
        )
        # Present in every published checkpoint; used only by the pre-norm variant.
        self.final_norm_a = nn.LayerNorm(config.d_model)
        self.final_norm_v = nn.LayerNorm(config.d_model)

    def forward(
        self, audio: Tensor, visual: Tensor, padding: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``padding`` (B, T) bool, True = padded segment (the inverse of a validity mask)."""
        for layer in self.layers:
            new_audio = layer(audio, visual, padding)
            visual = layer(visual, new_audio if self.attend_updated else audio, padding)
            audio = new_audio
        if self.norm_where == "pre":
            audio = self.final_norm_a(audio)
            visual = self.final_norm_v(visual)
        return audio, visual


def adaptive_pool_matrix(n_in: int, n_out: int) -> Tensor:
    """(n_out, n_in) averaging weights equal to ``adaptive_avg_pool1d`` windows."""
    weights = torch.zeros(n_out, n_in)
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = -((-(i + 1) * n_in) // n_out)
        weights[i, start:end] = 1.0 / (end - start)
    return weights


class MLP(nn.Module):
    """Linear layers with ReLU between them (UWAV's ``MLP``): in -> hidden ... -> out.

    One layer is a single linear layer; parameters are ``layers.<j>.weight|bias``.
    """

    def __init__(self, d_in: int, hidden: int, d_out: int, num_layers: int):
        super().__init__()
        widths = [d_in] + [hidden] * (num_layers - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))

    def forward(self, x: Tensor) -> Tensor:
        for j, layer in enumerate(self.layers):
            x = layer(x)
            if j < len(self.layers) - 1:
                x = F.relu(x)
        return x


class HAN(nn.Module):
    """The student: features of a clip in, segment and video probabilities out.

    Per-segment features may have any number of segments T (clips of any length); a batch of
    clips of different lengths is padded to a common T and ``mask`` marks the real segments.
    The frame-level ResNet input (8 frames per segment) and the CLAP token map describe a 10-s
    clip and are accepted only for T = 10.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        d, c = config.d_model, config.num_classes
        self.uwav = config.arch == "uwav"
        self.has_motion = config.motion_feature != NO_MOTION
        self.fc_a: nn.Module
        self.fc_fusion: nn.Module
        self.fc_frame_att: nn.Module
        self.fc_av_att: nn.Module
        if self.uwav:
            self.fc_prob = nn.Linear(d, c)
            self.fc_frame_att = MLP(d, 2 * d, c, config.mmil_layers)
            self.fc_av_att = MLP(d, 2 * d, c, config.mmil_layers)
            self.fc_a = MLP(config.audio_dim, 2 * d, d, 2)
            width = config.visual_dim + config.motion_dim
            self.fc_fusion = MLP(width, 2 * d, d, config.proj_layers)
            self.hat_encoder = HybridAttentionEncoder(config)
            # UWAV's encoder deep-copies one freshly built layer: every layer starts equal, and
            # (modules built in UWAV's order) a seed gives UWAV's initial weights
            first = self.hat_encoder.layers[0].state_dict()
            for layer in list(self.hat_encoder.layers)[1:]:
                layer.load_state_dict(first)
            if not self.has_motion:  # idle, as in UWAV, but part of its state dict
                self.fc_fusion.requires_grad_(False)
        else:
            self.fc_a = nn.Linear(config.audio_dim, d)
            self.fc_v = nn.Linear(config.visual_dim, d)
            self.fc_st = nn.Linear(config.motion_dim, d)
            self.fc_fusion = nn.Linear(2 * d, d)
            self.hat_encoder = HybridAttentionEncoder(config)
            self.fc_prob = nn.Linear(d, c)
            self.fc_frame_att = nn.Linear(d, c)
            self.fc_av_att = nn.Linear(d, c)
        self.audio_map = config.audio_frames == CLAP_MAP_GRID[0] * CLAP_MAP_GRID[1]
        if self.audio_map:
            pool = adaptive_pool_matrix(CLAP_MAP_WIDTH, SEGMENTS)
            self.register_buffer("_audio_pool", pool, persistent=False)

    def segments(self, audio: Tensor, visual: Tensor, motion: Tensor | None) -> int:
        """The number of segments T of a batch; one line on inputs that do not agree."""
        a, v = audio.shape[1], visual.shape[1]
        tokens = CLAP_MAP_GRID[0] * CLAP_MAP_GRID[1]
        if self.audio_map and a != tokens:
            raise AvparseError(
                f"audio input has {count(a, 'step')} but a CLAP token map has {tokens} "
                f"(one 10-s clip): "
                f"use per-segment audio features for clips of other lengths"
            )
        t = SEGMENTS if self.audio_map else a  # a token map covers one 10-s clip
        if motion is not None and motion.shape[1] != t:
            raise AvparseError(
                f"motion input has {count(motion.shape[1], 'segment')} but the audio input "
                f"covers {t}"
            )
        if v != t and (t != SEGMENTS or v % SEGMENTS):
            raise AvparseError(
                f"visual input has {count(v, 'step')} for {count(t, 'segment')}: frame-level "
                f"visual features "
                f"(ResNet, 8 per segment) are read for 10-s clips only; use per-segment "
                f"features for clips of other lengths"
            )
        return t

    def embed_audio(self, audio: Tensor) -> Tensor:
        """(B, T, in_a) per-second features, or a (B, 64, in_a) CLAP token map -> (B, 10, d)."""
        if not self.audio_map:
            return self.fc_a(audio)
        b, _, ch = audio.shape
        grid = audio.transpose(1, 2).reshape(b, ch, *CLAP_MAP_GRID)
        grid = F.interpolate(grid, size=(CLAP_MAP_GRID[0], CLAP_MAP_WIDTH), mode="bicubic")
        x = self.fc_a(grid.permute(0, 2, 3, 1)).mean(dim=1)  # (B, 1024, d)
        return torch.einsum("ow,bwd->bod", self._audio_pool.to(x.dtype), x)

    def embed_visual(self, visual: Tensor, motion: Tensor | None) -> Tensor:
        """2D input (per segment, or 10-s frames averaged in groups) fused with 3D snippets.

        The group mean is taken before the first layer (UWAV's order; for VALOR's linear
        ``fc_v`` it is the published function, ``mean(W x + b) = W mean(x) + b``, while
        ResNet-152 input (80 frames) costs 8x less). VALOR projects each input, then fuses;
        UWAV concatenates them and projects once; without 3-D features UWAV's encoder takes
        the 2-D input as it is.
        """
        b, n, ch = visual.shape
        t = motion.shape[1] if motion is not None else SEGMENTS if self.audio_map else n
        if n != t:
            visual = visual.reshape(b, t, n // t, ch).mean(dim=2)
        if motion is None:
            return visual
        if self.uwav:
            return self.fc_fusion(torch.cat((visual, motion), dim=-1))
        v = self.fc_v(visual)
        return self.fc_fusion(torch.cat((v, self.fc_st(motion)), dim=-1))

    def forward(
        self,
        audio: Tensor,
        visual: Tensor,
        motion: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> HANOutput:
        """Inputs (B, T, width) per segment (see the class note); ``mask`` (B, T) bool, True =
        real segment, for clips padded to a common T (each clip needs one real segment).
        ``motion`` is None exactly when the config has no 3-D input (``motion_feature='none'``).

        With a mask, padded segments are keys of no attention and get no weight in the
        attentive MIL pooling, so a padded clip's outputs on its real segments (and its video
        probabilities) are those it gets alone; outputs on padded segments are finite and
        meaningless. Without one, every segment is real.
        """
        if (motion is not None) != self.has_motion:
            raise AvparseError(
                "this student takes 3-D (motion) features; none were given"
                if self.has_motion
                else "this student takes no 3-D (motion) features (motion_feature 'none')"
            )
        t = self.segments(audio, visual, motion)
        padding = None
        if mask is not None:
            if tuple(mask.shape) != (audio.shape[0], t):
                raise AvparseError(
                    f"mask has shape {tuple(mask.shape)}, expected ({audio.shape[0]}, {t})"
                )
            padding = ~mask.bool()
        a, v = self.hat_encoder(self.embed_audio(audio), self.embed_visual(visual, motion), padding)
        x = torch.stack((a, v), dim=2)  # (B, T, 2, d)
        frame_logits = self.fc_prob(x)
        frame_prob = torch.sigmoid(frame_logits)
        att_logits = self.fc_frame_att(x)
        if padding is not None:  # the temporal softmax runs over real segments only
            att_logits = att_logits.masked_fill(padding[:, :, None, None], float("-inf"))
        frame_att = torch.softmax(att_logits, dim=1)
        av_att = torch.softmax(self.fc_av_att(x), dim=2)
        temporal = frame_att * frame_prob
        video_prob = (temporal * av_att).sum(dim=(1, 2))
        return HANOutput(
            video_prob,
            temporal[:, :, 0].sum(dim=1),
            temporal[:, :, 1].sum(dim=1),
            frame_prob,
            frame_logits,
        )
