"""Calibrate teacher thresholds from a harvest's saved logits (``avparse calibrate``).

Reads ``CLIP/segment_scores`` and ``CLAP/segment_scores`` of the split's clips (no model pass),
the weak labels and the dense labels, and chooses per-class thresholds with
:func:`avparse.teachers.calibrate.calibrate` (a class seen in fewer than ``min_clips`` clips
keeps its current threshold, or takes the pooled one). LLP: dense audio and visual labels of val. AVE:
the annotated event is audio-visual, so its segments are the truth of both modalities.
Clips harvested without audio (silent, audio labels forced to 0) are left out of the audio
thresholds, as the harvest never applies them to those clips; audio-only files (blind, visual
labels forced to 0) likewise out of the visual ones.
The result is a JSON file that :func:`avparse.vocab.load_thresholds` reads (``--thresholds``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avparse.data.layout import SCORE_FOLDERS
from avparse.errors import AvparseError
from avparse.harvest.outputs import ClipOutputs
from avparse.teachers.calibrate import MIN_CLIPS, ClassCalibration, calibrate
from avparse.utils.atomic import write_json
from avparse.vocab import Vocabulary, get_vocabulary, load_thresholds


@dataclass
class Calibration:
    vocab: Vocabulary
    split: str
    clips: int
    missing: int
    classes: dict[str, list[ClassCalibration]]

    @property
    def thresholds(self) -> dict[str, np.ndarray]:
        """``{modality: (C,) float32}``, as the harvest applies them."""
        return {
            m: np.asarray([r.threshold for r in rows], np.float32)
            for m, rows in self.classes.items()
        }

    def to_json(self) -> dict:
        """The thresholds file: ``{"vocabulary", "visual": {class: t}, "audio": {...}}`` + stats."""
        data: dict = {"vocabulary": self.vocab.name}
        for m, rows in self.classes.items():
            data[m] = {c.name: r.threshold for c, r in zip(self.vocab, rows, strict=True)}
        data["calibration"] = {
            "split": self.split,
            "clips": self.clips,
            "missing": self.missing,
            "segment_f": {
                m: {
                    c.name: {
                        "before": r.f_before,
                        "after": r.f_after,
                        "positives": r.positives,
                        "clips": r.clips,
                        "source": r.source,
                    }
                    for c, r in zip(self.vocab, rows, strict=True)
                }
                for m, rows in self.classes.items()
            },
        }
        return data


def _truth(task: str, annotations: Path, split: str, vocab: Vocabulary):
    """(ids, weak (N, C), {modality: dense (N, 10, C)})."""
    if task == "ave":
        from avparse.data.ave import AVEAnnotations

        clips = AVEAnnotations(annotations, vocab).split(split)
        dense = np.asarray(clips.segments[..., : len(vocab)], bool)
        return list(clips.ids), np.asarray(clips.labels, bool), {"visual": dense, "audio": dense}
    from avparse.data.llp import LLPAnnotations

    if split not in ("val", "test"):
        raise AvparseError(f"--split {split}: LLP dense labels exist for val and test only")
    ann = LLPAnnotations(annotations, vocab)
    audio, visual = ann.dense(split)
    return (
        ann.weak(split).ids,
        np.asarray(ann.weak(split).labels, bool),
        {
            "visual": visual,
            "audio": audio,
        },
    )


def calibrate_harvest(
    root: str | Path,
    annotations: str | Path,
    *,
    split: str = "val",
    task: str = "llp",
    thresholds: str | Path | None = None,
    min_clips: int = MIN_CLIPS,
) -> Calibration:
    """Choose thresholds from the logits saved in harvest ``root`` (see the module docstring).

    ``min_clips``: fewest clips with a true segment of a class for a threshold of its own (see
    :mod:`avparse.teachers.calibrate`).
    """
    if min_clips < 1:
        raise AvparseError(f"--min-clips must be >= 1, got {min_clips}")
    root = Path(root)
    if not root.exists():
        raise AvparseError(f"{root}: harvest root not found")
    if not root.is_dir():
        raise AvparseError(f"{root}: not a folder (expected a harvest root)")
    vocab = get_vocabulary(task)
    if thresholds is not None:
        vocab = load_thresholds(thresholds, vocab)
    ids, weak, dense = _truth(task, Path(annotations), split, vocab)
    classes: dict[str, list[ClassCalibration]] = {}
    clips = missing = 0
    for m in ("visual", "audio"):
        rows, scores = [], []
        for i, clip in enumerate(ids):
            out = ClipOutputs(root, clip)
            path = out.scores(m)
            # A silent clip's audio labels are 0 whatever its logits of silence: not a CLAP call
            # (and an audio-only file's visual labels whatever CLIP makes of black frames).
            off = out.silent if m == "audio" else out.blind
            if path.is_file() and not off:
                rows.append(i)
                scores.append(np.load(path))
        if not rows:
            raise AvparseError(
                f"{root}: no {SCORE_FOLDERS[m]}/<id>.npy for any of the {len(ids)} {split} "
                "clips; harvest that split into this root first"
            )
        idx = np.asarray(rows)
        current = [c.threshold(m) for c in vocab]
        classes[m] = calibrate(
            np.stack(scores), weak[idx], dense[m][idx], current, min_clips=min_clips
        )
        if m == "visual":
            clips, missing = len(rows), len(ids) - len(rows)
    return Calibration(vocab, split, clips, missing, classes)


def write_thresholds(calibration: Calibration, path: str | Path) -> None:
    write_json(path, calibration.to_json())
