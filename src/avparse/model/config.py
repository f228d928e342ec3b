"""Student configuration: one dataclass, serialised as ``config.json`` beside the weights.

The config carries the class vocabulary and the feature kinds, so a model folder alone rebuilds
the network (reference section 5). Presets follow the table of reference section 6; ``han`` is
the VALOR architecture trained with weak labels only, ``tiny`` is for tests.
Torch-free so that listing presets or reading a config stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from avparse.data.layout import FEATURE_KINDS, SEGMENTS
from avparse.errors import AvparseError
from avparse.utils.jsonio import from_mapping, read_json_object
from avparse.vocab import LLP, get_vocabulary

CLAP_MAP_GRID = (2, 32)
"""A CLAP token map of 64 tokens is a (frequency 2, time 32) grid of HTS-AT's last stage."""

CLAP_MAP_WIDTH = 1024
"""Time width the CLAP map is bicubically resized to before pooling to 10 steps."""

NORMS = ("post", "pre")
VISUAL_ATTENDS = ("updated", "previous")


@dataclass
class ModelConfig:
    """Architecture of the HAN student; every field can be overridden (``--set key=value``)."""

    name: str = "custom"
    audio_feature: str = "vggish"
    """Feature kind of the audio input (key of ``avparse.data.layout.FEATURE_KINDS``)."""
    visual_feature: str = "res152"
    """Feature kind of the 2D visual input."""
    motion_feature: str = "r2plus1d_18"
    """Feature kind of the 3D visual input."""
    audio_dim: int = 128
    visual_dim: int = 2048
    motion_dim: int = 512
    d_model: int = 512
    num_layers: int = 1
    nhead: int = 8
    dim_feedforward: int = 1024
    dropout: float = 0.1
    norm: str = "post"
    """``post`` (the published HAN layer) or ``pre`` (normalise before each block, final norms)."""
    visual_attends: str = "updated"
    """Which audio stream the visual update of a layer cross-attends to: ``updated`` (the audio
    just updated in the same layer, as reference section 5 states) or ``previous`` (the audio
    that entered the layer, as in the original HAN code). Pick the convention a checkpoint was
    trained with; both load the same state dict."""
    num_classes: int = 25
    vocabulary: str = "llp"
    class_names: list[str] = field(default_factory=lambda: list(LLP.names))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for role in ("audio", "visual", "motion"):
            kind = getattr(self, f"{role}_feature")
            if kind not in FEATURE_KINDS:
                known = ", ".join(FEATURE_KINDS)
                raise AvparseError(f"unknown {role}_feature {kind!r} (known: {known})")
        if self.norm not in NORMS:
            raise AvparseError(f"norm must be 'post' or 'pre', got {self.norm!r}")
        if self.visual_attends not in VISUAL_ATTENDS:
            raise AvparseError(
                f"visual_attends must be 'updated' or 'previous', got {self.visual_attends!r}"
            )
        if self.d_model % self.nhead:
            raise AvparseError(f"d_model {self.d_model} is not divisible by nhead {self.nhead}")
        if len(self.class_names) != self.num_classes:
            raise AvparseError(
                f"num_classes is {self.num_classes} but {len(self.class_names)} class names given"
            )
        if self.audio_frames not in (SEGMENTS, CLAP_MAP_GRID[0] * CLAP_MAP_GRID[1]):
            raise AvparseError(
                f"audio feature {self.audio_feature!r} has {self.audio_frames} steps; "
                f"expected {SEGMENTS} or a {CLAP_MAP_GRID[0]}x{CLAP_MAP_GRID[1]} token map"
            )
        if self.visual_frames % SEGMENTS or FEATURE_KINDS[self.motion_feature].shape[0] != SEGMENTS:
            raise AvparseError("visual features need a multiple of 10 frames, motion exactly 10")
        for key in ("d_model", "num_layers", "nhead", "dim_feedforward", "num_classes"):
            if getattr(self, key) < 1:
                raise AvparseError(f"{key} must be positive, got {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise AvparseError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def audio_frames(self) -> int:
        return FEATURE_KINDS[self.audio_feature].shape[0]

    @property
    def visual_frames(self) -> int:
        return FEATURE_KINDS[self.visual_feature].shape[0]

    @property
    def feature_kinds(self) -> dict[str, str]:
        """Input role -> feature kind, in the order the network takes them."""
        return {
            "audio": self.audio_feature,
            "visual": self.visual_feature,
            "motion": self.motion_feature,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> ModelConfig:
        return from_mapping(cls, data, where, "model config")

    def save(self, path: str | Path) -> None:
        from avparse.utils.atomic import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        return cls.from_dict(read_json_object(path, "model config"), str(path))


def _features(audio: str, visual: str, motion: str = "r2plus1d_18") -> dict[str, Any]:
    return {
        "audio_feature": audio,
        "visual_feature": visual,
        "motion_feature": motion,
        "audio_dim": FEATURE_KINDS[audio].shape[1],
        "visual_dim": FEATURE_KINDS[visual].shape[1],
        "motion_dim": FEATURE_KINDS[motion].shape[1],
    }


_VALOR = {"d_model": 512, "num_layers": 1, "nhead": 8, "dim_feedforward": 1024}
_VALOR_PLUS = {"d_model": 256, "num_layers": 4, "nhead": 8, "dim_feedforward": 1024}

PRESETS: dict[str, dict[str, Any]] = {
    "han": {**_features("vggish", "res152"), **_VALOR},
    "valor": {**_features("vggish", "res152"), **_VALOR},
    "valor+": {**_features("vggish", "res152"), **_VALOR_PLUS},
    "valor++": {**_features("clap", "clip"), **_VALOR_PLUS},
    "tiny": {
        **_features("vggish", "res152"),
        "d_model": 16,
        "num_layers": 1,
        "nhead": 2,
        "dim_feedforward": 32,
    },
}
"""Architecture presets (reference section 6); the training recipe per preset is in
``avparse.train.recipe.RECIPES``."""


def parse_value(text: str, current: Any) -> Any:
    """Parse ``--set`` text into the type of the field's current value."""
    if isinstance(current, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise AvparseError(f"expected true or false, got {text!r}")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if isinstance(current, list | tuple):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = [v.strip() for v in text.split(",") if v.strip()]
        return type(current)(value)
    return text


def model_config(
    preset: str | None = None, overrides: dict[str, Any] | None = None, **kwargs: Any
) -> ModelConfig:
    """Build a config from a preset and overrides; a vocabulary name sets class names too.

    Input dims follow the chosen feature kinds unless given explicitly.
    """
    data: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise AvparseError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        data.update(PRESETS[preset])
        data["name"] = preset
    over = {**(overrides or {}), **kwargs}
    known = {f.name for f in fields(ModelConfig)}
    for key in over:
        if key not in known:
            raise AvparseError(f"unknown model config key {key!r}")
    data.update(over)
    for role in ("audio", "visual", "motion"):
        kind = data.get(f"{role}_feature")
        if f"{role}_feature" in over and f"{role}_dim" not in over and kind in FEATURE_KINDS:
            data[f"{role}_dim"] = FEATURE_KINDS[kind].shape[1]
    if "vocabulary" in over and "class_names" not in over:
        vocab = get_vocabulary(str(over["vocabulary"]))
        data["class_names"] = list(vocab.names)
        data.setdefault("num_classes", len(vocab))
        if "num_classes" not in over:
            data["num_classes"] = len(vocab)
    if "class_names" in over and "num_classes" not in over:
        data["num_classes"] = len(over["class_names"])
    return ModelConfig(**data)


def replace(config: ModelConfig, **changes: Any) -> ModelConfig:
    """A validated copy with ``changes``."""
    return dataclasses.replace(config, **changes)
