"""The models of a harvest, loaded on first use.

CLAP's mel front end (:class:`AudioInputBuilder`) loads at once and cheaply, because the decoding
threads need it; the teachers and R(2+1)D-18 load only when the first clip has decoded, so a rerun
with only broken files left costs no model load. Every source and the device are checked before
anything loads (:meth:`HarvestModels.check`), so a typo fails in one line at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avparse.data.layout import SEGMENTS
from avparse.errors import AvparseError
from avparse.teachers.loading import check_source, pick_device
from avparse.utils.distributed import local_device
from avparse.vocab import Vocabulary

if TYPE_CHECKING:
    from avparse.features.r2plus1d import R2Plus1D18
    from avparse.teachers.clap import AudioInputBuilder, AudioTeacher
    from avparse.teachers.clip import VisualTeacher

DOWNLOAD = "download"
"""``--r2plus1d download``: torchvision's published R(2+1)D-18 weights through torch.hub."""


@dataclass(frozen=True)
class ModelSources:
    """Where the models come from and how their inputs are made."""

    clip_model: str
    clap_model: str
    teacher_inputs: str
    precision: str
    r2plus1d: str | None
    """A ``.pth`` file, :data:`DOWNLOAD`, or None (no R(2+1)D-18 features)."""
    device: str | None
    clips_per_call: int
    """Clips whose frames / chunks share one teacher call."""


def run_device(device: str | None) -> str:
    """The device of this process: checked, and under torchrun ``cuda`` is ``cuda:LOCAL_RANK``."""
    return str(local_device(pick_device(device)))


class HarvestModels:
    """CLIP, CLAP and R(2+1)D-18 for one run, each loaded when first used."""

    def __init__(self, sources: ModelSources, vocab: Vocabulary) -> None:
        self.sources = sources
        self.vocab = vocab
        self.device = run_device(sources.device)
        self._inputs: AudioInputBuilder | None = None
        self._visual: VisualTeacher | None = None
        self._audio: AudioTeacher | None = None
        self._motion: R2Plus1D18 | None = None
        self.load_seconds = 0.0

    @staticmethod
    def check(sources: ModelSources) -> None:
        """Refuse a missing local model folder, weights file or unusable device (no loading)."""
        check_source(sources.clip_model, "visual teacher (CLIP)")
        check_source(sources.clap_model, "audio teacher (CLAP)")
        weights = sources.r2plus1d
        if weights not in (None, DOWNLOAD) and not Path(str(weights)).is_file():
            raise AvparseError(f"{weights}: R(2+1)D-18 weights file not found")
        run_device(sources.device)

    @property
    def inputs(self) -> AudioInputBuilder:
        """CLAP's feature extractor alone (thread-safe; used by the decoding threads)."""
        if self._inputs is None:
            from avparse.teachers.clap import AudioInputBuilder

            self._inputs = AudioInputBuilder(
                self.sources.clap_model, inputs=self.sources.teacher_inputs
            )
        return self._inputs

    @property
    def visual(self) -> VisualTeacher:
        if self._visual is None:
            began = time.perf_counter()
            from avparse.teachers.clip import VisualTeacher

            self._visual = VisualTeacher(
                self.sources.clip_model,
                vocab=self.vocab,
                device=self.device,
                batch_frames=SEGMENTS * self.sources.clips_per_call,
                inputs=self.sources.teacher_inputs,
                precision=self.sources.precision,
            )
            self.load_seconds += time.perf_counter() - began
        return self._visual

    @property
    def audio(self) -> AudioTeacher:
        if self._audio is None:
            began = time.perf_counter()
            from avparse.teachers.clap import AudioTeacher

            self._audio = AudioTeacher(
                self.sources.clap_model,
                vocab=self.vocab,
                device=self.device,
                batch_waves=SEGMENTS * self.sources.clips_per_call,
                inputs=self.inputs,
                precision=self.sources.precision,
            )
            self.load_seconds += time.perf_counter() - began
        return self._audio

    @property
    def motion(self) -> R2Plus1D18:
        if self._motion is None:
            began = time.perf_counter()
            from avparse.features.r2plus1d import load_r2plus1d18

            weights = self.sources.r2plus1d
            self._motion = load_r2plus1d18(
                None if weights == DOWNLOAD else weights, device=self.device
            )
            self.load_seconds += time.perf_counter() - began
        return self._motion

    def load(self, *, teachers: bool, motion: bool) -> None:
        """Load the models a batch needs (before the run's first write to the root)."""
        if teachers:
            _ = self.visual, self.audio
        if motion:
            _ = self.motion
