"""Class text embeddings ("event features") of a vocabulary, cached in a data root.

The teacher scores segments against the L2-normalised CLIP (visual) and CLAP (audio) text
embeddings of a vocabulary's prompts (``Vocabulary.clip_prompts`` / ``clap_prompts``), computed
with the text towers named in the teacher's config (``clip_text`` / ``clap_text``). They are
computed once per text model and vocabulary and kept in the root beside UWAV's own folder
(``feats_CLIP/event_feats``, ``feats_CLAP/event_feats``, :data:`EVENT_FEATURE_FOLDERS`), named
``<vocabulary>-<key>.npy`` where the key hashes the model and the prompts, with a ``.json``
saying what they are. Labelling another vocabulary needs no new harvest, only these.
``clip_text`` / ``clap_text`` set to ``uwav`` read UWAV's own ``all_event_feats.npy`` there instead
(a root in UWAV's layout; rows in the vocabulary's order, as UWAV's ``categories.py`` has them).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from avparse.data.layout import EVENT_FEATURE_FOLDERS, UWAV_EVENT_FEATURES
from avparse.errors import AvparseError
from avparse.teachers.loading import resolve_source
from avparse.utils.atomic import save_npy, write_json
from avparse.vocab import Vocabulary

MODALITY_MODEL = {"audio": "clap_text", "visual": "clip_text"}
"""Config field naming the text model of each modality's tower."""


UWAV_TEXT = "uwav"
"""``clip_text`` / ``clap_text`` value that takes UWAV's own class embeddings from the root,
``feats_CLIP|CLAP/event_feats/all_event_feats.npy`` (no text model is loaded)."""


def uwav_event_features(root: str | Path | None, modality: str, vocab: Vocabulary) -> np.ndarray:
    """UWAV's (C, D) class embeddings of ``modality`` in ``root``, rows in ``vocab``'s order."""
    if root is None:
        raise AvparseError(f"{MODALITY_MODEL[modality]}={UWAV_TEXT} needs a data root")
    path = Path(root) / EVENT_FEATURE_FOLDERS[modality] / UWAV_EVENT_FEATURES
    if not path.is_file():
        raise AvparseError(
            f"{path}: missing ({MODALITY_MODEL[modality]}={UWAV_TEXT} reads UWAV's class "
            "embeddings; name a text model instead)"
        )
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise AvparseError(f"{path}: not a readable .npy file ({exc})") from None
    if arr.ndim != 2 or len(arr) != len(vocab) or not np.isfinite(arr).all():
        raise AvparseError(
            f"{path}: expected ({len(vocab)}, D) finite class embeddings of {vocab.name!r}, "
            f"got {arr.shape}"
        )
    return arr.astype(np.float32, copy=False)


def prompts(vocab: Vocabulary, modality: str) -> list[str]:
    return vocab.clap_prompts() if modality == "audio" else vocab.clip_prompts()


def cache_path(root: str | Path, modality: str, source: str, vocab: Vocabulary) -> Path:
    """Where the embeddings of ``vocab`` by the text model ``source`` are kept in ``root``."""
    text = json.dumps([resolve_source(source), prompts(vocab, modality)])
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Path(root) / EVENT_FEATURE_FOLDERS[modality] / f"{vocab.name}-{key}.npy"


def compute(
    source: str, vocab: Vocabulary, modality: str, device: str | None = "cpu"
) -> np.ndarray:
    """(C, D) float32 L2-normalised text embeddings of ``vocab``'s prompts by ``source``."""
    from avparse.teachers.clap import AudioTeacher
    from avparse.teachers.clip import VisualTeacher

    teacher: AudioTeacher | VisualTeacher
    if modality == "audio":
        teacher = AudioTeacher(source, vocab=vocab, device=device)
    else:
        teacher = VisualTeacher(source, vocab=vocab, device=device)
    return teacher.text.float().cpu().numpy().astype(np.float32)


def event_features(
    root: str | Path | None,
    sources: dict[str, str],
    vocab: Vocabulary,
    *,
    device: str | None = "cpu",
) -> dict[str, np.ndarray]:
    """``{"audio": (C, Da), "visual": (C, Dv)}`` for ``vocab``, read from ``root``'s cache or
    computed with the text models ``sources`` (``{"audio": clap, "visual": clip}``) and kept
    there (a read-only root is simply not written)."""
    out: dict[str, np.ndarray] = {}
    for modality in ("audio", "visual"):
        source = sources[modality]
        if source == UWAV_TEXT:
            out[modality] = uwav_event_features(root, modality, vocab)
            continue
        path = cache_path(root, modality, source, vocab) if root is not None else None
        if path is not None and path.is_file():
            arr = np.load(path)
            if arr.ndim != 2 or len(arr) != len(vocab):
                raise AvparseError(
                    f"{path}: expected ({len(vocab)}, D) text embeddings, got {arr.shape}; "
                    "delete it to recompute"
                )
            out[modality] = arr.astype(np.float32, copy=False)
            continue
        arr = compute(source, vocab, modality, device)
        if path is not None:
            try:
                save_npy(path, arr)
                about = {"model": resolve_source(source), "vocabulary": vocab.name,
                         "prompts": prompts(vocab, modality)}  # fmt: skip
                write_json(path.with_suffix(".json"), about)
            except OSError:
                pass  # a read-only root: computed again next time
        out[modality] = arr
    return out


def check_dims(text: dict[str, np.ndarray], audio_dim: int, visual_dim: int, where: str) -> None:
    """Refuse text embeddings whose widths differ from the teacher's text spaces (one line)."""
    for modality, want in (("audio", audio_dim), ("visual", visual_dim)):
        got = text[modality].shape[1]
        if got != want:
            model = MODALITY_MODEL[modality]
            raise AvparseError(
                f"{where}: {modality} text embeddings are {got}-d but the teacher's "
                f"{modality} text space is {want}-d (another {model} model?)"
            )
