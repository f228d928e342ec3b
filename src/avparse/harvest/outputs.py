"""What a harvest writes for one clip, where, and how to tell that a clip is finished.

Per clip id and modality (``visual`` = CLIP, ``audio`` = CLAP), in the published layout:

* features: ``CLIP/features`` (10, D) and ``CLAP/features`` (tokens, width)
* raw logits: ``CLIP/segment_scores`` / ``CLAP/segment_scores`` (10, C)
* soft labels: ``CLIP/segment_soft_labels`` / ``CLAP/segment_soft_labels`` (10, C)
* hard labels: ``CLIP/segment_pseudo_labels`` / ``CLAP/segment_pseudo_labels`` (10, C), 0/1
* with ``--r2plus1d``: the student's 3D input ``feats/r2plus1d_18`` (10, 512)
* segment embeddings, UWAV's temporal teacher's inputs, one row per one-second segment:
  ``feats_CLIP/segment_feats`` (T, 768) CLIP image embeddings and ``feats_CLAP/segment_feats``
  (T, 512) CLAP audio embeddings (after the projection), the feature kinds ``clip_segments`` and
  ``clap_segments``

A first-10-s harvest (``--span window``, LLP and AVE) writes all of these with T = 10 (the CLIP
segment embeddings are then ``CLIP/features`` again). A whole-video harvest (``--span full``,
UnAV-100 and videos of any length) writes the segment embeddings, logits and labels with
T = the video's one-second segments, and no 10-segment student inputs (``CLIP/features``,
``CLAP/features`` token maps, ``feats/r2plus1d_18``).

A clip without an audio stream is silent: its CLAP features and logits are the teacher's on
zeros, its audio labels are all 0, and a marker ``CLAP/no_audio/<id>.txt`` (the reason) records
it. Conversely an audio-only file (wav, flac, mp3, m4a, ogg) is blind: its CLIP features and
logits are the teacher's on black frames, its visual labels are all 0, and a marker
``CLIP/no_video/<id>.txt`` records it. Every file is written atomically; the marker before the CLAP files, the hard labels last.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS, SCORE_FOLDERS, SOFT_HARVEST_FOLDERS
from avparse.utils.atomic import save_npy, write_text

MODALITIES = ("visual", "audio")
FEATURE_FOLDERS = {"visual": FEATURE_KINDS["clip"].folder, "audio": FEATURE_KINDS["clap"].folder}
MOTION_FOLDER = FEATURE_KINDS["r2plus1d_18"].folder
SEGMENT_FOLDERS = {
    "visual": FEATURE_KINDS["clip_segments"].folder,
    "audio": FEATURE_KINDS["clap_segments"].folder,
}
"""One embedding per one-second segment, any length (UWAV's folder names)."""
SPANS = ("window", "full")
"""What a harvest reads of each video: its first 10 s as 10 segments (LLP, AVE), or all of it
in one-second segments (UnAV-100, any length)."""
NO_AUDIO_FOLDER = "CLAP/no_audio"
NO_VIDEO_FOLDER = "CLIP/no_video"
MANIFEST = "harvest.json"
FAILURES = "harvest_failures.tsv"
NO_AUDIO_REPORT = "harvest_no_audio.tsv"


class ClipOutputs:
    """Paths of one clip's harvest files under ``root``."""

    def __init__(self, root: Path, clip: str) -> None:
        self.root = Path(root)
        self.clip = clip

    def _path(self, folder: str, suffix: str = ".npy") -> Path:
        return self.root / folder / f"{self.clip}{suffix}"

    def features(self, m: str) -> Path:
        return self._path(FEATURE_FOLDERS[m])

    def scores(self, m: str) -> Path:
        return self._path(SCORE_FOLDERS[m])

    def soft(self, m: str) -> Path:
        return self._path(SOFT_HARVEST_FOLDERS[m])

    def hard(self, m: str) -> Path:
        return self._path(HARVEST_FOLDERS[m])

    @property
    def motion(self) -> Path:
        """R(2+1)D-18 snippet features (written only when asked for)."""
        return self._path(MOTION_FOLDER)

    def segments(self, m: str) -> Path:
        """Segment embeddings (``clip_segments`` / ``clap_segments``)."""
        return self._path(SEGMENT_FOLDERS[m])

    @property
    def no_audio(self) -> Path:
        return self._path(NO_AUDIO_FOLDER, ".txt")

    @property
    def no_video(self) -> Path:
        return self._path(NO_VIDEO_FOLDER, ".txt")

    @property
    def blind(self) -> bool:
        """The file has no picture (audio only): its visual labels are all 0."""
        return self.no_video.is_file()

    @property
    def silent(self) -> bool:
        """The clip was recorded without audio (its audio labels are all 0)."""
        return self.no_audio.is_file()

    def model_done(self, span: str = "window") -> bool:
        """Teacher features and logits exist, so labels can be (re)made without a model pass.

        Silent clips have CLAP files too (of silence); a clip harvested before that was written
        (visual files and marker only) is therefore redone by a rerun. A whole-video harvest
        (``span="full"``) has segment embeddings in place of the 10-segment features.
        """
        first = self.segments if span == "full" else self.features
        return all(first(m).is_file() and self.scores(m).is_file() for m in MODALITIES)

    def labels_done(self) -> bool:
        return all(self.soft(m).is_file() and self.hard(m).is_file() for m in MODALITIES)

    def write_model(self, m: str, features: np.ndarray, scores: np.ndarray) -> None:
        save_npy(self.features(m), np.asarray(features, np.float32))
        save_npy(self.scores(m), np.asarray(scores, np.float32))

    def write_scores(self, m: str, scores: np.ndarray) -> None:
        save_npy(self.scores(m), np.asarray(scores, np.float32))

    def write_segments(self, m: str, embeddings: np.ndarray) -> None:
        save_npy(self.segments(m), np.asarray(embeddings, np.float32))

    def write_motion(self, features: np.ndarray) -> None:
        save_npy(self.motion, np.asarray(features, np.float32))

    def write_labels(self, m: str, hard: np.ndarray, soft: np.ndarray) -> None:
        save_npy(self.soft(m), np.asarray(soft, np.float32))
        save_npy(self.hard(m), np.asarray(hard, np.float32))

    def mark_no_audio(self, video: str, reason: str) -> None:
        write_text(self.no_audio, f"{video}\t{reason}\n")

    def mark_no_video(self, video: str, reason: str) -> None:
        write_text(self.no_video, f"{video}\t{reason}\n")

    def mark_inputs(self, video: str, *, silent: bool, audio_note: str, blind: bool) -> None:
        """The markers first: CLAP/CLIP files without them would pass for heard / seen input."""
        if silent:
            self.mark_no_audio(video, audio_note)
        else:
            self.no_audio.unlink(missing_ok=True)
        if blind:
            self.mark_no_video(video, "no video stream")
        else:
            self.no_video.unlink(missing_ok=True)

    def remove_labels(self) -> None:
        for m in MODALITIES:
            self.hard(m).unlink(missing_ok=True)
            self.soft(m).unlink(missing_ok=True)

    def remove_all(self) -> None:
        """Forget the teachers' files (before redoing them with other models, so a crash cannot
        mix them); R(2+1)D features do not depend on the teachers and are kept."""
        self.remove_labels()
        for m in MODALITIES:
            self.features(m).unlink(missing_ok=True)
            self.segments(m).unlink(missing_ok=True)
            self.scores(m).unlink(missing_ok=True)
        self.no_audio.unlink(missing_ok=True)
        self.no_video.unlink(missing_ok=True)

    def load_scores(self) -> dict[str, np.ndarray]:
        return {m: np.load(self.scores(m)) for m in MODALITIES}
