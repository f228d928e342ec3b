"""The published data-root layout (VALOR / LLP): file and folder names, feature shapes.

One place names every file of a data root, so readers, the checker, the packer and the harvest
all agree. See ``docs/reference.md`` sections 2, 3 and 14.
"""

from __future__ import annotations

from dataclasses import dataclass

from avparse.errors import AvparseError

SEGMENTS = 10
"""One-second segments per clip."""

CLIP_ID_LENGTH = 11
"""A feature file is named by the first 11 characters of the clip's filename (the YouTube id)."""


@dataclass(frozen=True)
class FeatureKind:
    """A per-clip ``.npy`` feature folder of the published layout."""

    name: str
    folder: str
    shape: tuple[int, int]
    role: str
    """``audio``, ``visual`` (2D, per frame) or ``motion`` (3D, per snippet)."""
    pooled: bool = False
    """Averaged over groups of frames to one row per segment when packed into the store.

    Exact for the student: its first layer is linear, and a linear layer commutes with the mean
    (``mean(W x + b) = W mean(x) + b``), so the model reads the pooled rows unchanged.
    """

    @property
    def packed_shape(self) -> tuple[int, int]:
        """Shape of one clip's row in the packed store."""
        return (SEGMENTS, self.shape[1]) if self.pooled else self.shape


FEATURE_KINDS: dict[str, FeatureKind] = {
    k.name: k
    for k in (
        FeatureKind("vggish", "feats/vggish", (10, 128), "audio"),
        FeatureKind("res152", "feats/res152", (80, 2048), "visual", pooled=True),
        FeatureKind("r2plus1d_18", "feats/r2plus1d_18", (10, 512), "motion"),
        FeatureKind("clip", "CLIP/features", (10, 768), "visual"),
        FeatureKind("clap", "CLAP/features", (64, 768), "audio"),
    )
}
"""Input features of the student, by short name."""

CLAP_MAP_GRID = (2, 32)
"""A CLAP token map of 64 tokens is a (frequency 2, time 32) grid of HTS-AT's last stage:
token ``j`` is ``map[:, j // 32, j % 32]`` (reference section 10)."""

HARVEST_FOLDERS: dict[str, str] = {
    "visual": "CLIP/segment_pseudo_labels",
    "audio": "CLAP/segment_pseudo_labels",
}
"""Hard segment labels harvested by the teachers, (10, classes) of 0/1, per clip."""

SOFT_HARVEST_FOLDERS: dict[str, str] = {
    "visual": "CLIP/segment_soft_labels",
    "audio": "CLAP/segment_soft_labels",
}
"""Teacher probabilities saved beside the hard harvest, (10, classes) float32, per clip."""

SCORE_FOLDERS: dict[str, str] = {
    "visual": "CLIP/segment_scores",
    "audio": "CLAP/segment_scores",
}
"""Raw teacher logits, (10, classes) float32, per clip: calibration and relabelling read them."""

HARVEST_KINDS: dict[str, str] = {f"harvest_{m}": f for m, f in HARVEST_FOLDERS.items()}
"""Hard harvests as array kinds (``harvest_audio``, ``harvest_visual``) -> folder."""

SOFT_KINDS: dict[str, str] = {f"soft_{m}": f for m, f in SOFT_HARVEST_FOLDERS.items()}
"""Teacher soft labels as array kinds (``soft_audio``, ``soft_visual``) -> folder."""

SCORE_KINDS: dict[str, str] = {f"scores_{m}": f for m, f in SCORE_FOLDERS.items()}
"""Teacher logits as array kinds (``scores_audio``, ``scores_visual``) -> folder."""

TEACHER_KINDS: dict[str, str] = {**SOFT_KINDS, **SCORE_KINDS}
"""What ``avparse harvest`` writes beside the hard labels, (10, classes) float32 per clip."""

PER_CLASS_KINDS: dict[str, str] = {**HARVEST_KINDS, **TEACHER_KINDS}
"""Array kinds of shape (10, classes): harvests and teacher outputs, needed for training."""


def kind_folder(kind: str) -> str:
    """The folder (relative to a data root) of a feature kind or per-class kind."""
    if kind in FEATURE_KINDS:
        return FEATURE_KINDS[kind].folder
    if kind in PER_CLASS_KINDS:
        return PER_CLASS_KINDS[kind]
    known = ", ".join([*FEATURE_KINDS, *PER_CLASS_KINDS])
    raise AvparseError(f"unknown feature kind {kind!r} (known: {known})")


def expected_shape(kind: str, num_classes: int, length: int | None = None) -> tuple[int, int]:
    """Shape of one clip's ``.npy`` file of ``kind``; ``length``: of a clip of that many segments.

    Without ``length`` a clip has :data:`SEGMENTS` segments (LLP, AVE). With it, a kind with
    ``k`` rows per segment (``shape[0] // SEGMENTS``) has ``k * length`` rows; a kind whose rows
    are not per segment (the CLAP token map) has no shape for other lengths.
    """
    if kind in PER_CLASS_KINDS:
        return (SEGMENTS if length is None else length, num_classes)
    kind_folder(kind)  # raises for an unknown kind
    shape = FEATURE_KINDS[kind].shape
    if length is None:
        return shape
    if shape[0] % SEGMENTS:
        raise AvparseError(
            f"feature kind {kind!r} is not per segment; clips of any length need one"
        )
    return (shape[0] // SEGMENTS * length, shape[1])


FUSED_HARVEST_FOLDERS: dict[str, str] = {m: f"fused/{f}" for m, f in HARVEST_FOLDERS.items()}
"""Harvests of the fused (audio + visual) teacher, for the modality-independence ablation.

``ROOT/fused`` is laid out like a root's harvest folders, so it can be given as a harvest root.
"""

LLP_FILES: dict[str, str] = {
    "full": "AVVP_dataset_full.csv",
    "train": "AVVP_train.csv",
    "val": "AVVP_val_pd.csv",
    "test": "AVVP_test_pd.csv",
    "dense_audio": "AVVP_eval_audio.csv",
    "dense_visual": "AVVP_eval_visual.csv",
}
"""LLP annotation files, at the root of a data root."""

SPLITS = ("train", "val", "test")
