"""Student configuration and the preset registry.

:class:`ModelConfig` is one dataclass, serialised as ``config.json`` beside the weights. It
carries the class vocabulary and the feature kinds, so a model folder alone rebuilds the network
(reference section 5); input widths, the class count and the vocabulary follow from them as
properties. :data:`PRESETS` is the one registry of named presets (reference section 6), each
holding its architecture AND its training recipe; ``han`` is the VALOR architecture trained
with weak labels only, ``tiny`` is for tests. Adding a preset is one :func:`register_preset`
call. Torch-free so that listing presets or reading a config stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from avparse.data.layout import CLAP_MAP_GRID, FEATURE_KINDS, SEGMENTS
from avparse.errors import AvparseError
from avparse.utils.jsonio import from_mapping, read_json_object
from avparse.vocab import LLP, VOCABULARIES, Vocabulary, get_vocabulary

CLAP_MAP_WIDTH = 1024
"""Time width the CLAP map is bicubically resized to before pooling to 10 steps."""

NORMS = ("post", "pre")
VISUAL_ATTENDS = ("updated", "previous")
ARCHS = ("valor", "uwav")
"""Student layouts: VALOR's HAN (linear projections) or UWAV's ``HybridAttentionNet`` (MLPs)."""
NO_MOTION = "none"
"""``motion_feature`` of a UWAV student without 3-D features: the 2-D visual input goes to the
encoder unprojected, as in UWAV's CLIP / CLAP student."""
UWAV_MOTION_WIDTH = 512
"""Width of the 3-D input UWAV's ``fc_fusion`` is built for when no 3-D features are used (its
``--input_v_3d_dim`` default): the layer is then idle but in every UWAV state dict."""
ROLES = ("audio", "visual", "motion")
"""Input roles, in the order the network takes them."""

_DERIVED = ("audio_dim", "visual_dim", "motion_dim", "num_classes")
"""Keys that 0.1 stored in ``config.json``; now properties, still accepted as input."""


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
    arch: str = "valor"
    """Network layout: ``valor`` (VALOR's HAN: linear ``fc_a``, ``fc_v``, ``fc_st`` and
    ``fc_fusion``, linear MIL attentions) or ``uwav`` (UWAV's ``HybridAttentionNet``: audio MLP
    in -> 2d -> d, one MLP ``fc_fusion`` over the concatenated 2-D and 3-D features, MLP MIL
    attentions); the encoder is the same. Each loads its own published state dicts."""
    proj_layers: int = 1
    """``uwav``: layers of the visual MLP ``fc_fusion`` (UWAV's ``num_proj_layers``)."""
    mmil_layers: int = 1
    """``uwav``: layers of the MIL attention MLPs (UWAV's ``num_MMIL_layers``)."""
    vocabulary: str = "llp"
    """Name of the class vocabulary (``llp``, ``ave``, or any name for custom classes)."""
    class_names: list[str] = field(default_factory=lambda: list(LLP.names))
    feature_dims: dict[str, int] = field(default_factory=dict)
    """Input widths by role where they differ from the feature kind's (features computed with
    other teacher models, e.g. the tiny test teachers); empty for the published features."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for role in ROLES:
            kind = getattr(self, f"{role}_feature")
            if role == "motion" and kind == NO_MOTION:
                continue
            if kind not in FEATURE_KINDS:
                known = ", ".join(FEATURE_KINDS)
                raise AvparseError(f"unknown {role}_feature {kind!r} (known: {known})")
        if self.arch not in ARCHS:
            raise AvparseError(f"arch must be 'valor' or 'uwav', got {self.arch!r}")
        for key in ("proj_layers", "mmil_layers"):
            if getattr(self, key) < 1:
                raise AvparseError(f"{key} must be positive, got {getattr(self, key)}")
            if self.arch == "valor" and getattr(self, key) != 1:
                raise AvparseError(
                    f"{key} describes UWAV's network (arch=uwav); VALOR's has one linear layer"
                )
        if self.motion_feature == NO_MOTION:
            if self.arch != "uwav":
                raise AvparseError(
                    "motion_feature 'none' (no 3-D features) needs UWAV's network (arch=uwav)"
                )
            if self.visual_dim != self.d_model:
                raise AvparseError(
                    f"without 3-D features the visual input ({self.visual_dim} wide) goes to the "
                    f"encoder unprojected, so d_model must be {self.visual_dim}, not {self.d_model}"
                )
        if self.norm not in NORMS:
            raise AvparseError(f"norm must be 'post' or 'pre', got {self.norm!r}")
        if self.visual_attends not in VISUAL_ATTENDS:
            raise AvparseError(
                f"visual_attends must be 'updated' or 'previous', got {self.visual_attends!r}"
            )
        if self.d_model % self.nhead:
            raise AvparseError(f"d_model {self.d_model} is not divisible by nhead {self.nhead}")
        if not self.class_names or len(set(self.class_names)) != len(self.class_names):
            raise AvparseError("class_names must be a non-empty list of distinct names")
        for role, dim in self.feature_dims.items():
            if role not in ROLES or not isinstance(dim, int) or dim < 1:
                raise AvparseError(
                    f"feature_dims must map audio/visual/motion to a positive width, got "
                    f"{role!r}: {dim!r}"
                )
        if self.audio_frames not in (SEGMENTS, CLAP_MAP_GRID[0] * CLAP_MAP_GRID[1]):
            raise AvparseError(
                f"audio feature {self.audio_feature!r} has {self.audio_frames} steps; "
                f"expected {SEGMENTS} or a {CLAP_MAP_GRID[0]}x{CLAP_MAP_GRID[1]} token map"
            )
        motion_rows = (
            SEGMENTS if self.motion_feature == NO_MOTION else _rows_of_10s(self.motion_feature)
        )
        if self.visual_frames % SEGMENTS or motion_rows != SEGMENTS:
            raise AvparseError("visual features need a multiple of 10 frames, motion exactly 10")
        for key in ("d_model", "num_layers", "nhead", "dim_feedforward"):
            if getattr(self, key) < 1:
                raise AvparseError(f"{key} must be positive, got {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise AvparseError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def audio_frames(self) -> int:
        """Rows of a 10-s clip's audio input (a kind of any length: one per segment)."""
        return _rows_of_10s(self.audio_feature)

    @property
    def visual_frames(self) -> int:
        return _rows_of_10s(self.visual_feature)

    @property
    def feature_kinds(self) -> dict[str, str]:
        """Input role -> feature kind, in the order the network takes them (roles it does not
        take, the 3-D input of a student without one, left out)."""
        kinds = {role: getattr(self, f"{role}_feature") for role in ROLES}
        return {role: kind for role, kind in kinds.items() if kind != NO_MOTION}

    def input_dim(self, role: str) -> int:
        """Width of input ``role``: the feature kind's, unless ``feature_dims`` says otherwise."""
        if getattr(self, f"{role}_feature") == NO_MOTION:
            return int(self.feature_dims.get(role, UWAV_MOTION_WIDTH))
        kind = FEATURE_KINDS[getattr(self, f"{role}_feature")]
        return int(self.feature_dims.get(role, kind.shape[1]))

    def check_data_widths(self, where: str = "the model") -> None:
        """Refuse, in one line, an input width (``--set audio_dim=64``) that differs from the
        width of its feature kind's files (``avparse.data.layout``; packing accepts no other):
        before any data is read, rather than a shape error inside the first batch."""
        for role, kind in self.feature_kinds.items():
            data = FEATURE_KINDS[kind].shape[1]
            if self.input_dim(role) != data:
                raise AvparseError(
                    f"{where}: {role} input is {self.input_dim(role)}-d but {kind} features "
                    f"are {data}-d (drop --set {role}_dim, or set it to {data})"
                )

    @property
    def audio_dim(self) -> int:
        return self.input_dim("audio")

    @property
    def visual_dim(self) -> int:
        return self.input_dim("visual")

    @property
    def motion_dim(self) -> int:
        return self.input_dim("motion")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def vocab(self) -> Vocabulary:
        """The class vocabulary: the built-in one when the names match, else a custom one."""
        known = VOCABULARIES.get(self.vocabulary)
        if known is not None and known.names == list(self.class_names):
            return known
        return Vocabulary.from_names(list(self.class_names), name=self.vocabulary or "custom")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: 0.1's keys and order (derived values included, for readers of the
        file), ``feature_dims`` only when it says something."""
        data = asdict(self)
        dims = data.pop("feature_dims")
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key == "d_model":
                out.update({f"{role}_dim": self.input_dim(role) for role in ROLES})
            if key == "vocabulary":
                out["num_classes"] = self.num_classes
            out[key] = value
        if dims:
            out["feature_dims"] = dims
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> ModelConfig:
        """A config from JSON; 0.1's stored dims and class count are checked and folded in."""
        return from_mapping(cls, _fold_derived(data, where), where, "model config")

    def save(self, path: str | Path) -> None:
        from avparse.utils.atomic import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        return cls.from_dict(read_json_object(path, "model config"), str(path))


def _rows_of_10s(kind: str) -> int:
    """Input rows of a 10-s clip for feature ``kind``: its file's rows, or one per segment for a
    kind of any length (packed one row per segment, clips of any length)."""
    fk = FEATURE_KINDS[kind]
    return SEGMENTS if fk.any_length else fk.frames


def _fold_derived(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Turn 0.1's ``*_dim`` / ``num_classes`` keys into fields: a width that differs from the
    feature kind's goes to ``feature_dims``; a class count must match the class names."""
    if not any(k in data for k in _DERIVED):
        return data
    data = dict(data)
    count = data.pop("num_classes", None)
    dims = dict(data.get("feature_dims") or {})
    for role in ROLES:
        dim = data.pop(f"{role}_dim", None)
        default = getattr(ModelConfig, f"{role}_feature")
        name = str(data.get(f"{role}_feature", default))
        kind = FEATURE_KINDS.get(name)
        width = UWAV_MOTION_WIDTH if name == NO_MOTION else kind.shape[1] if kind else None
        if dim is not None and int(dim) != width:
            dims[role] = int(dim)
    if dims:
        data["feature_dims"] = dims
    if count is not None:
        names = data.get("class_names")
        if names is None:
            names = get_vocabulary(str(data.get("vocabulary", "llp"))).names
            data["class_names"] = list(names)
        if not isinstance(names, list) or int(count) != len(names):
            size = len(names) if isinstance(names, list) else "no"
            raise AvparseError(f"{where}: num_classes is {count} but {size} class names given")
    return data


@dataclass(frozen=True)
class Preset:
    """A named preset: architecture (``ModelConfig`` fields) and recipe (``TrainConfig`` fields).

    The recipe is plain data here (the training package turns it into a ``TrainConfig``), so the
    model package can rebuild a preset's network without importing training code.
    """

    name: str
    model: dict[str, Any]
    recipe: dict[str, Any]
    about: str = ""


PRESETS: dict[str, Preset] = {}
"""Every named preset, by name (reference section 6)."""


def register_preset(
    name: str, *, model: dict[str, Any], recipe: dict[str, Any], about: str = ""
) -> Preset:
    """Add a preset; unknown architecture keys fail here, at import, not at first use."""
    unknown = sorted(set(model) - {f.name for f in fields(ModelConfig)})
    if unknown:
        raise AvparseError(f"preset {name!r}: unknown model config key {unknown[0]!r}")
    PRESETS[name] = Preset(name, dict(model), dict(recipe), about)
    return PRESETS[name]


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise AvparseError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]


def _features(audio: str, visual: str, motion: str = "r2plus1d_18") -> dict[str, Any]:
    return {"audio_feature": audio, "visual_feature": visual, "motion_feature": motion}


_VALOR = {"d_model": 512, "num_layers": 1, "nhead": 8, "dim_feedforward": 1024}
_VALOR_PLUS = {"d_model": 256, "num_layers": 4, "nhead": 8, "dim_feedforward": 1024}
_STANDARD = _features("vggish", "res152")
_CLIP_CLAP = _features("clap", "clip")

register_preset(
    "han",
    model={**_STANDARD, **_VALOR},
    recipe={"loss": "han", "lr": 1e-4, "lr_min": 1e-6, "seed": 1000},
    about="VALOR's network trained on weak labels only (the HAN baseline)",
)
register_preset(
    "valor",
    model={**_STANDARD, **_VALOR},
    recipe={"loss": "valor", "lr": 1e-4, "lr_min": 1e-6, "seed": 1000},
    about="VALOR: segment harvests of CLIP and CLAP, standard features",
)
register_preset(
    "valor+",
    model={**_STANDARD, **_VALOR_PLUS},
    recipe={"loss": "valor", "lr": 3e-4, "lr_min": 3e-6, "seed": 64},
    about="VALOR+: four layers of width 256, standard features",
)
register_preset(
    "valor++",
    model={**_CLIP_CLAP, **_VALOR_PLUS},
    recipe={"loss": "valor", "lr": 3e-4, "lr_min": 3e-6, "seed": 87},
    about="VALOR++: VALOR+ on CLAP and CLIP features",
)
_UWAV = {
    "arch": "uwav", "d_model": 512, "num_layers": 5, "nhead": 16, "dim_feedforward": 2048,
    "proj_layers": 1, "mmil_layers": 1,
}  # fmt: skip
"""The student of UWAV's published script (``scripts/train_han.sh``): its network
(``HybridAttentionNet``) and sizes; ``--set arch=valor`` gives VALOR's layout at these sizes."""
_UWAV_RECIPE = {
    "loss": "uwav", "epochs": 80, "lr": 1e-4, "lr_min": 5e-6, "warmup": 10,
    "betas": (0.9, 0.999), "weight_decay": 1e-4, "seed": 20000, "uwav_weights": "code",
    "harvest": "temporal",
}  # fmt: skip
"""UWAV's published recipe: 80 epochs, cosine to 5e-6, AdamW betas (0.9, 0.999), weight decay
1e-4, seed 20000, the code's inverse-frequency class weights (docs/training.md, UWAV), on the
temporal teacher's labels (``harvest: temporal``, ``avparse teacher label``; docs/teacher.md)."""

register_preset(
    "uwav",
    model={**_STANDARD, **_UWAV},
    recipe=_UWAV_RECIPE,
    about="UWAV: its student network and objective (soft, class-balanced harvests, feature "
    "mixup), standard features",
)
register_preset(
    "uwav++",
    model={**_CLIP_CLAP, **_UWAV},
    recipe=_UWAV_RECIPE,
    about="UWAV's network and objective on VALOR++'s inputs (CLAP map, CLIP frames, R(2+1)D)",
)
_UNAV_PUBLISHED = _features("unav_vggish", "unav_i3d_rgb", "unav_i3d_flow")
"""UnAV-100's published features: VGGish audio, I3D RGB (2-D role) and I3D flow (3-D role),
pooled to one row per 1-s segment by the store."""
_UNAV_RECIPE = {"task": "unav", "loss": "han", "lr": 1e-4, "lr_min": 1e-6, "seed": 1000}
"""The student on UnAV-100 (task ``unav``): video-level labels only by default (a downloaded
root has no harvests; ``--loss valor`` or ``uwav`` where a harvest is there); VALOR's recipe."""

register_preset(
    "unav",
    model={**_UNAV_PUBLISHED, **_VALOR},
    recipe=_UNAV_RECIPE,
    about="UnAV-100 (task unav): VALOR's network on the published VGGish + I3D features",
)
register_preset(
    "ave-official",
    model={**_features("ave_vggish", "ave_vgg19", NO_MOTION), **_UWAV},
    recipe={"task": "ave", "loss": "han", "lr": 1e-4, "lr_min": 1e-6, "seed": 1000},
    about="AVE (task ave) on the official AVE-ECCV18 features: VGGish, VGG-19 maps averaged "
    "over the grid; UWAV's network without a 3-D input; video-level labels (--loss valor / uwav "
    "where a harvest is there)",
)
register_preset(
    "uwav-clipclap",
    model={
        "audio_feature": "clap_segments", "visual_feature": "clip_segments",
        "motion_feature": NO_MOTION, **_UWAV, "d_model": 768,
    },
    recipe=_UWAV_RECIPE,
    about="UWAV's CLIP+CLAP student: CLAP (T, 512) and CLIP (T, 768) segment embeddings, no 3-D "
    "input, the CLIP input unprojected (so d 768)",
)  # fmt: skip
register_preset(
    "unav-clip",
    model={
        **_features("clap_segments", "clip_segments", NO_MOTION), **_UWAV, "d_model": 768,
    },
    recipe=_UNAV_RECIPE,
    about="UnAV-100 (task unav): UWAV's network on CLAP (T, 512) and CLIP (T, 768) segment "
    "embeddings, no 3-D input",
)  # fmt: skip
register_preset(
    "tiny",
    model={**_STANDARD, "d_model": 16, "num_layers": 1, "nhead": 2, "dim_feedforward": 32},
    recipe={"loss": "valor", "lr": 1e-3, "lr_min": 1e-5, "seed": 0, "epochs": 3,
            "batch_size": 8, "warmup": 1},
    about="a few thousand weights, for tests",
)  # fmt: skip


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
    if isinstance(current, dict):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(text) from None
        if not isinstance(value, dict):
            raise ValueError(text)
        return value
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
    """A config from a preset and overrides; a vocabulary name sets the class names too.

    Overrides may also give 0.1's derived keys (``audio_dim``, ``num_classes``, ...).
    """
    data: dict[str, Any] = {}
    if preset is not None:
        data.update(get_preset(preset).model)
        data["name"] = preset
    over = {**(overrides or {}), **kwargs}
    known = {f.name for f in fields(ModelConfig)} | set(_DERIVED)
    for key in over:
        if key not in known:
            raise AvparseError(f"unknown model config key {key!r}")
    if "vocabulary" in over and "class_names" not in over:
        over["class_names"] = list(get_vocabulary(str(over["vocabulary"])).names)
    data.update(over)
    return ModelConfig.from_dict(data)


def replace(config: ModelConfig, **changes: Any) -> ModelConfig:
    """A validated copy with ``changes``."""
    return dataclasses.replace(config, **changes)
