"""The published data-root layouts (VALOR / LLP, UnAV-100): file and folder names, shapes.

One place names every file of a data root, so readers, the checker, the packer and the harvest
all agree. See ``docs/reference.md`` sections 2, 3, 12 and 14, and ``docs/unav.md``.

A feature kind has a fixed shape (LLP and AVE: 10 segments) or is of *any length*: its first
dimension is ``None`` in :attr:`FeatureKind.shape`, and a clip's file has one row per 1-s segment
(``clip_segments``, ``clap_segments``: ``T = ceil(duration)`` rows) or rows at a published
frame rate (:attr:`FeatureKind.rate`, UnAV-100's VGGish and I3D files), average-pooled to ``T``
rows as UWAV does (:func:`avparse.data.files.pool_segments`).
"""

from __future__ import annotations

from dataclasses import dataclass

from avparse.errors import AvparseError

SEGMENTS = 10
"""One-second segments per clip."""

CLIP_ID_LENGTH = 11
"""A feature file is named by the first 11 characters of the clip's filename (the YouTube id)."""

UNAV_FEATURE_RATE = 25 / 8
"""Rows per second of UnAV-100's published VGGish and I3D files (25 fps, a stride of 8 frames)."""

UNAV_FEATURE_TOLERANCE = 2.0
"""Seconds by which the time a published UnAV-100 file covers (rows / rate) may differ from the
video's duration, or 10 % of the duration where that is more (see ``docs/unav.md``)."""

UNAV_ANNOTATIONS = "unav100_annotations.json"
"""UnAV-100's annotation file, at the root of a UnAV-100 data root."""


@dataclass(frozen=True)
class FeatureKind:
    """A per-clip ``.npy`` feature folder of a published layout."""

    name: str
    folder: str
    shape: tuple[int | None, int]
    """Shape of one clip's file; the first dimension is ``None`` for a kind of any length."""
    role: str
    """``audio``, ``visual`` (2D, per frame) or ``motion`` (3D, per snippet)."""
    pooled: bool = False
    """Averaged over groups of frames to one row per segment when packed into the store.

    Exact for the student: its first layer is linear, and a linear layer commutes with the mean
    (``mean(W x + b) = W mean(x) + b``), so the model reads the pooled rows unchanged.
    """
    suffix: str = ""
    """What follows the clip id in a file name: ``<id><suffix>.npy`` (UnAV-100: ``_rgb``)."""
    rate: float | None = None
    """Rows per second of a published any-length file, pooled to one row per 1-s segment;
    None where a file already has one row per segment (or a fixed shape)."""
    task: str = "llp"
    """The dataset whose roots hold the kind: ``llp`` (LLP and AVE roots), ``unav``, or
    ``ave_h5`` (the official AVE features, one HDF5 file of every clip: see ``h5_shape``)."""
    h5_shape: tuple[int, ...] | None = None
    """Set for a kind stored as ONE HDF5 file of every clip (``folder`` is then that file, its
    dataset :data:`AVE_H5_DATASET`, row ``i`` = line ``i`` of AVE's ``Annotations.txt``): the
    shape of one clip's row there. ``shape`` is what the model reads (see
    :mod:`avparse.data.ave_h5`)."""

    @property
    def dim(self) -> int:
        """Width of one row."""
        return self.shape[1]

    @property
    def any_length(self) -> bool:
        """One row per segment (after pooling) for a clip of any length T."""
        return self.shape[0] is None

    @property
    def frames(self) -> int:
        """Rows of a fixed-length kind's file (an error for a kind of any length)."""
        rows = self.shape[0]
        if rows is None:
            raise AvparseError(f"feature kind {self.name!r} has one row per segment of any length")
        return rows

    def file_name(self, clip: str) -> str:
        """The ``.npy`` file name of ``clip`` in :attr:`folder`."""
        return f"{clip}{self.suffix}.npy"

    @property
    def packed_shape(self) -> tuple[int | None, int]:
        """Shape of one clip's row in the packed store (``(None, dim)``: T rows of any length)."""
        if self.any_length:
            return (None, self.dim)
        return (SEGMENTS, self.dim) if self.pooled else self.shape


FEATURE_KINDS: dict[str, FeatureKind] = {
    k.name: k
    for k in (
        FeatureKind("vggish", "feats/vggish", (10, 128), "audio"),
        FeatureKind("res152", "feats/res152", (80, 2048), "visual", pooled=True),
        FeatureKind("r2plus1d_18", "feats/r2plus1d_18", (10, 512), "motion"),
        FeatureKind("clip", "CLIP/features", (10, 768), "visual"),
        FeatureKind("clap", "CLAP/features", (64, 768), "audio"),
        # UnAV-100, in UWAV's folder names (scripts/train_transformer.sh of its code).
        # Segment embeddings: one row per 1-s segment (what `avparse harvest` writes).
        FeatureKind("clip_segments", "feats_CLIP/segment_feats", (None, 768), "visual",
                    task="unav"),
        FeatureKind("clap_segments", "feats_CLAP/segment_feats", (None, 512), "audio",
                    task="unav"),
        # UnAV-100's published features: frames of 24 at a stride of 8 at 25 fps (its code's
        # defaults), so 25 / 8 rows per second, pooled to one row per segment.
        FeatureKind("unav_vggish", "feats/audio_features_vggish", (None, 128), "audio",
                    pooled=True, suffix="_vggish", rate=UNAV_FEATURE_RATE, task="unav"),
        FeatureKind("unav_i3d_rgb", "feats/visual_features_i3d_rgb", (None, 1024), "visual",
                    pooled=True, suffix="_rgb", rate=UNAV_FEATURE_RATE, task="unav"),
        FeatureKind("unav_i3d_flow", "feats/visual_features_i3d_flow", (None, 1024), "motion",
                    pooled=True, suffix="_flow", rate=UNAV_FEATURE_RATE, task="unav"),
        # The official AVE features (AVE-ECCV18, reference section 13): one HDF5 file each;
        # the VGG-19 maps are averaged over their 7x7 grid (avparse.data.ave_h5).
        FeatureKind("ave_vggish", "audio_feature.h5", (10, 128), "audio", task="ave_h5",
                    h5_shape=(10, 128)),
        FeatureKind("ave_vgg19", "visual_feature.h5", (10, 512), "visual", task="ave_h5",
                    h5_shape=(10, 7, 7, 512)),
    )
}  # fmt: skip
"""Input features of the student, by short name (every dataset's; ``task`` says whose)."""

SEGMENT_KINDS = ("clip_segments", "clap_segments")
"""Segment embeddings of any length, (T, 768) CLIP and (T, 512) CLAP: the temporal teacher's
inputs, written by ``avparse harvest`` for a video of any duration."""

UNAV_PUBLISHED_KINDS = ("unav_vggish", "unav_i3d_rgb", "unav_i3d_flow")
"""UnAV-100's published per-video features (VGGish audio, I3D RGB and I3D flow)."""


def task_kinds(task: str) -> dict[str, FeatureKind]:
    """The feature kinds a root of ``task`` holds (``llp`` and ``ave``: the 10-segment kinds)."""
    wanted = "unav" if task == "unav" else "llp"
    return {k: fk for k, fk in FEATURE_KINDS.items() if fk.task == wanted}


AVE_H5_DATASET = "avadataset"
"""The HDF5 dataset of each official AVE feature and label file."""

AVE_H5_LABELS = ("labels.h5", (10, 29))
"""The official AVE segment labels: file and one clip's shape (one-hot, background last)."""

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

TEMPORAL_HARVEST = "temporal"
"""Folder of the temporal teacher's harvest (``avparse teacher label``) inside a data root,
laid out like a root's harvest folders (``CLIP/segment_pseudo_labels``, ... of any length T):
hard labels, soft labels ``sigmoid(logit - threshold)`` (0 outside the weak labels), logits."""

TEMPORAL_KIND_PREFIX = "temporal_"
"""Array kinds of the temporal harvest are the frame-wise ones with this prefix
(``temporal_harvest_audio`` -> ``temporal/CLAP/segment_pseudo_labels``)."""


def _with_temporal(kinds: dict[str, str]) -> dict[str, str]:
    return {
        **kinds,
        **{TEMPORAL_KIND_PREFIX + k: f"{TEMPORAL_HARVEST}/{f}" for k, f in kinds.items()},
    }


HARVEST_KINDS: dict[str, str] = _with_temporal(
    {f"harvest_{m}": f for m, f in HARVEST_FOLDERS.items()}
)
"""Hard harvests as array kinds (``harvest_audio``, ``harvest_visual``, and the temporal
teacher's ``temporal_harvest_audio``, ...) -> folder."""

SOFT_KINDS: dict[str, str] = _with_temporal(
    {f"soft_{m}": f for m, f in SOFT_HARVEST_FOLDERS.items()}
)
"""Teacher soft labels as array kinds (``soft_audio``, ``soft_visual``) -> folder."""

SCORE_KINDS: dict[str, str] = _with_temporal({f"scores_{m}": f for m, f in SCORE_FOLDERS.items()})
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


def expected_shape(
    kind: str, num_classes: int, length: int | None = None
) -> tuple[int | None, int]:
    """Shape of one clip's ``.npy`` file of ``kind``; ``length``: of a clip of that many segments.

    Without ``length`` a clip has :data:`SEGMENTS` segments (LLP, AVE) and a kind of any length
    has ``None`` rows. With it, a kind with ``k`` rows per segment (``shape[0] // SEGMENTS``, or
    1 for a segment kind of any length) has ``k * length`` rows; a kind whose rows are not per
    segment (the CLAP token map) has no shape for other lengths; a published kind at a frame rate
    (``FeatureKind.rate``) keeps ``None`` rows (see :func:`avparse.data.files.read_feature_file`).
    """
    if kind in PER_CLASS_KINDS:
        return (SEGMENTS if length is None else length, num_classes)
    kind_folder(kind)  # raises for an unknown kind
    fk = FEATURE_KINDS[kind]
    if length is None or fk.rate is not None:
        return fk.shape
    if fk.any_length:
        return (length, fk.dim)
    rows = fk.frames
    if rows % SEGMENTS:
        raise AvparseError(
            f"feature kind {kind!r} is not per segment; clips of any length need one"
        )
    return (rows // SEGMENTS * length, fk.dim)


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


# --- UWAV's temporal teacher (issue 16) ---------------------------------------------------------

SEGMENT_FOLDERS: dict[str, str] = {
    "visual": FEATURE_KINDS["clip_segments"].folder,
    "audio": FEATURE_KINDS["clap_segments"].folder,
}
"""The temporal teacher's inputs by modality: the segment kinds of :data:`SEGMENT_KINDS`."""

EVENT_FEATURE_FOLDERS: dict[str, str] = {
    "visual": "feats_CLIP/event_feats",
    "audio": "feats_CLAP/event_feats",
}
"""Class text embeddings ("event features", UWAV's folder names): ``<vocabulary>-<key>.npy``
(C, D) float32, L2-normalised, plus a ``.json`` naming the text model and prompts."""

UWAV_EVENT_FEATURES = "all_event_feats.npy"
"""UWAV's class text embeddings in each of :data:`EVENT_FEATURE_FOLDERS` (C, D), one row per
class in the vocabulary's order (UWAV's ``categories.py`` lists LLP's and UnAV-100's classes in
avparse's order); the temporal teacher uses them where a root has them (no text model needed)."""

UWAV_LABEL_DIR = "LLP_Dataset"
"""Folder of UWAV's generated LLP labels inside its temporal teacher's run folder."""

UWAV_LABEL_FILES: dict[str, dict[str, str]] = {
    m: {
        "labels": f"{m[0]}_segmentwise_pseudo_labels",
        "logits": f"{m[0]}_segmentwise_logits",
        "thresholds": f"{m[0]}_classwise_threhsolds.npy",
    }
    for m in ("audio", "visual")
}
"""UWAV's label files in :data:`UWAV_LABEL_DIR` by modality: per-clip hard labels and logits
(T, C) (folders), per-class thresholds (C,) with ``-inf`` for a class absent from val (file;
``threhsolds`` is UWAV's spelling). Reference section 14; ``avparse data import-uwav``."""

TEMPORAL_THRESHOLDS = f"{TEMPORAL_HARVEST}/thresholds.json"
"""Per-class thresholds of the temporal harvest and where they came from."""

TEMPORAL_MANIFEST = f"{TEMPORAL_HARVEST}/teacher_harvest.json"
"""What made the temporal harvest (teacher, vocabulary, thresholds source, scores)."""

HARVEST_SOURCES: dict[str, str] = {"frame": "", "temporal": TEMPORAL_KIND_PREFIX}
"""Whose harvest a student learns from (``TrainConfig.harvest``): the frame-wise teachers'
(``avparse harvest``) or the temporal teacher's (``avparse teacher label``); the value prefixes
the array kinds of :data:`PER_CLASS_KINDS`."""


def harvest_kind(target: str, source: str) -> str:
    """The array kind of a training target (``harvest_audio``, ``soft_visual``, ...) in the
    harvest of ``source`` (a key of :data:`HARVEST_SOURCES`)."""
    if source not in HARVEST_SOURCES:
        known = ", ".join(HARVEST_SOURCES)
        raise AvparseError(f"unknown harvest {source!r} (known: {known})")
    return HARVEST_SOURCES[source] + target
