"""The temporal teacher's configuration and preset registry (torch-free).

A :class:`TeacherConfig` is the architecture, serialised as ``config.json`` beside the weights;
a :class:`TeacherPreset` adds the pretraining recipe (``TrainConfig`` fields) and the loss's
class weights. ``uwav`` is the published teacher (reference section 12,
``scripts/train_transformer.sh`` of UWAV's code); ``tiny`` is for tests.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avparse.errors import AvparseError
from avparse.utils.atomic import write_json
from avparse.utils.jsonio import from_mapping, read_json_object

AUDIO_SCALE = 3.2912
"""Fixed multiplier of the audio logits (UWAV's ``a_logit_scale``; used as is, not exp'd)."""
VISUAL_SCALE = 4.6052
"""Fixed multiplier of the visual logits (UWAV's ``v_logit_scale``)."""

DEFAULT_CLIP_TEXT = "openai/clip-vit-large-patch14"
DEFAULT_CLAP_TEXT = "laion/clap-htsat-fused"


@dataclass
class TeacherConfig:
    """Architecture of the temporal teacher, one tower per modality (no cross-modal attention).

    Per modality: MLP ``in -> 2 hidden -> hidden`` (ReLU), a post-norm transformer encoder of
    ``num_layers`` layers, MLP ``hidden -> text_dim -> text_dim`` into the text space, then
    logits = (output . L2-normalised class text embeddings) x the fixed scale.
    """

    name: str = "custom"
    audio_dim: int = 512
    """Width of a CLAP segment embedding (input)."""
    visual_dim: int = 768
    """Width of a CLIP segment embedding (input)."""
    hidden_dim: int = 1024
    nhead: int = 16
    ff_dim: int = 2048
    num_layers: int = 5
    dropout: float = 0.3
    audio_text_dim: int = 512
    """Width of the CLAP text space (the audio tower's output)."""
    visual_text_dim: int = 768
    """Width of the CLIP text space (the visual tower's output)."""
    audio_scale: float = AUDIO_SCALE
    visual_scale: float = VISUAL_SCALE
    clip_text: str = DEFAULT_CLIP_TEXT
    """CLIP model (hub id or folder) whose text tower embeds class names for the visual tower."""
    clap_text: str = DEFAULT_CLAP_TEXT
    """CLAP model whose text tower embeds class names for the audio tower."""
    vocabulary: str = "unav"
    """Vocabulary the teacher was pretrained on (labelling may use any other)."""

    def __post_init__(self) -> None:
        sizes = [self.audio_dim, self.visual_dim, self.hidden_dim, self.nhead, self.ff_dim]
        sizes += [self.num_layers, self.audio_text_dim, self.visual_text_dim]
        if any(int(s) < 1 for s in sizes):
            raise AvparseError("teacher sizes (dims, heads, layers) must be positive")
        if self.hidden_dim % self.nhead:
            raise AvparseError(
                f"hidden_dim {self.hidden_dim} must be a multiple of nhead {self.nhead}"
            )
        if not 0 <= self.dropout < 1:
            raise AvparseError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> TeacherConfig:
        return from_mapping(cls, dict(data), where, "teacher config")

    def save(self, path: str | Path) -> None:
        write_json(Path(path), {"avparse": "temporal-teacher", **self.to_dict()})

    @classmethod
    def load(cls, path: str | Path) -> TeacherConfig:
        data = read_json_object(path, "teacher config")
        if data.pop("avparse", "temporal-teacher") != "temporal-teacher":
            raise AvparseError(f"{path}: not a temporal teacher's config (a student's?)")
        return cls.from_dict(data, str(path))

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class TeacherPreset:
    name: str
    model: dict[str, Any]
    recipe: dict[str, Any]
    """``TrainConfig`` fields of the pretraining recipe."""
    pos_weight: float = 5.0
    """Loss weight of the classes present in a clip (UWAV's ``--pos_weight``)."""
    neg_weight: float = 1.0
    about: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


TEACHER_PRESETS: dict[str, TeacherPreset] = {}
"""Every named teacher preset."""


def register_teacher_preset(preset: TeacherPreset) -> TeacherPreset:
    TEACHER_PRESETS[preset.name] = preset
    return preset


def get_teacher_preset(name: str) -> TeacherPreset:
    if name not in TEACHER_PRESETS:
        known = ", ".join(TEACHER_PRESETS)
        raise AvparseError(f"unknown teacher preset {name!r} (known: {known})")
    return TEACHER_PRESETS[name]


def teacher_config(preset: str, overrides: dict[str, Any] | None = None) -> TeacherConfig:
    """The preset's architecture with ``overrides`` (``--set`` values)."""
    data = {"name": preset, **get_teacher_preset(preset).model, **(overrides or {})}
    return TeacherConfig.from_dict(data, f"teacher preset {preset!r}")


UWAV_RECIPE: dict[str, Any] = {
    "task": "unav",
    "epochs": 80,
    "batch_size": 64,
    "lr": 1e-4,
    "lr_min": 1e-5,
    "warmup": 10,
    "weight_decay": 1e-3,
    "betas": (0.5, 0.999),
    "eps": 1e-8,
    "clip_grad": 2.0,
    "seed": 1000,
}
"""``scripts/train_transformer.sh`` of UWAV's code (reference section 12)."""

register_teacher_preset(TeacherPreset(
    "uwav", {}, UWAV_RECIPE, 5.0, 1.0,
    "UWAV's temporal teacher: h 1024, 16 heads, ff 2048, 5 layers, dropout 0.3; 80 epochs",
))  # fmt: skip
register_teacher_preset(TeacherPreset(
    "tiny",
    {"hidden_dim": 32, "nhead": 4, "ff_dim": 64, "num_layers": 2, "dropout": 0.1},
    {**UWAV_RECIPE, "epochs": 2, "batch_size": 8, "warmup": 1, "eval_batch_size": 16},
    5.0, 1.0, "for tests: h 32, 4 heads, 2 layers",
))  # fmt: skip
