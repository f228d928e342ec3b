"""The audio teacher: CLAP audio-text logits per one-second chunk, and HTS-AT token maps.

Usage::

    teacher = AudioTeacher("laion/clap-htsat-fused", vocab=LLP, device="cpu")
    inputs = teacher.prepare(list_of_48k_waves)   # numpy work; safe in decoding threads
    emb = teacher.embed(inputs)                   # (B, D) float32, L2-normalised
    logits = teacher.scores(emb)                  # (B, C) = logit_scale_a * cosine(audio, prompt)
    maps = teacher.token_maps(teacher.prepare([whole_clip]))  # (B, 64, 768) for HTS-AT fused

Reproducibility: transformers' ``ClapFeatureExtractor`` marks one random input as "longer" with
``np.random`` when none is (a trick of LAION's training loader) and crops inputs longer than its
10 s at random. We call it one wave at a time, set ``is_longer`` ourselves (a wave is longer only
when it exceeds the extractor's maximum length, as LAION's inference does), and run it under a
fixed seed with the caller's random state restored, so the result never depends on the batch,
the order or the global random state, and the global state is left untouched. Chunks that the
extractor would repeat-pad are computed from three periods instead of ten, bit for bit equal
(see :meth:`AudioTeacher._tiled_input`).

Teacher inputs (``inputs``): ``"published"`` (default) rounds every wave to 16-bit integers and
back (``trunc(clip(x, -1, 1) * 32767) / 32767``) before the mel front end, as LAION's
``laion_clap`` does for numpy input and VALOR's token-map extraction does explicitly (reference
section 10); ``"0.1"`` passes the float wave as avparse 0.1 did.

Token maps: the audio encoder's final layer after its norm, before pooling, which transformers
returns as (B, 768, 2, 32) (frequency groups x time for a 10 s input). We flatten it to
(B, 64, 768) with token ``j`` = ``map[:, j // 32, j % 32]``; ``features.T.reshape(768, 2, 32)``
recovers the map.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avparse.errors import require
from avparse.teachers.clip import TEACHER_INPUTS, check_inputs
from avparse.teachers.loading import (
    PRECISIONS,
    cast_modules,
    check_precision,
    embedding,
    load,
    pick_device,
)
from avparse.teachers.prompted import PromptedTeacher
from avparse.vocab import LLP, Vocabulary

DEFAULT_CLAP = "laion/clap-htsat-fused"
SEED = 0
"""Seed of the extractor's random crops for waves longer than its maximum length."""
_RNG_LOCK = threading.Lock()


@dataclass
class AudioInputs:
    """Extractor output for a batch of waves (numpy, so it can be built in worker threads)."""

    features: np.ndarray
    """(B, 4, frames, mels) float32 mel inputs (fusion layout)."""
    is_longer: np.ndarray
    """(B, 1) bool."""

    @staticmethod
    def concat(parts: Sequence[AudioInputs]) -> AudioInputs:
        return AudioInputs(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.is_longer for p in parts]),
        )


def int16_round_trip(wave: np.ndarray) -> np.ndarray:
    """The wave as 16-bit audio would hold it: clipped, scaled by 32767, truncated, scaled back."""
    wave = np.clip(np.asarray(wave, np.float64), -1.0, 1.0)
    return ((wave * 32767.0).astype(np.int16) / 32767.0).astype(np.float32)


class AudioInputBuilder:
    """CLAP's feature extractor alone: builds model inputs without loading the model.

    The harvest's decoding threads use it ahead of the model (numpy only, thread-safe), and it
    loads in milliseconds, so clips that fail to decode never cost a model load.
    """

    def __init__(
        self, source: str | Path = DEFAULT_CLAP, *, inputs: str = TEACHER_INPUTS[0]
    ) -> None:
        self.inputs = check_inputs(inputs)
        self.source = str(source)
        self.extractor = load("ClapFeatureExtractor", source, "audio teacher (CLAP) extractor")
        self.sampling_rate = int(self.extractor.sampling_rate)
        self.max_samples = int(self.extractor.nb_max_samples)

    def prepare(self, waves: Sequence[np.ndarray]) -> AudioInputs:
        """Mel inputs of 48 kHz mono waves, deterministic (see the module docstring)."""
        feats, longer = [], []
        for wave in waves:
            if self.inputs == "published":
                wave = int16_round_trip(wave)
            wave = np.asarray(wave, dtype=np.float64)
            is_longer = len(wave) > self.max_samples
            fast = None if is_longer else self._tiled_input(wave)
            if fast is not None:
                out = {"input_features": fast[None]}
            else:
                # The extractor draws from np.random (random crops of long waves, and the random
                # "longer" pick we override): run it under a fixed seed and restore the caller's
                # random state, so results and the global state never depend on other calls.
                with _RNG_LOCK:
                    state = np.random.get_state()
                    np.random.seed(SEED)
                    try:
                        out = self.extractor(
                            wave, sampling_rate=self.sampling_rate, return_tensors="np"
                        )
                    finally:
                        np.random.set_state(state)
            feats.append(np.asarray(out["input_features"], np.float32))
            longer.append(is_longer)
        return AudioInputs(np.concatenate(feats), np.asarray(longer, bool).reshape(-1, 1))

    def _tiled_input(self, wave: np.ndarray) -> np.ndarray | None:
        """The extractor's fusion input of a short wave, computed from three periods (exact).

        The extractor repeats a short wave up to 10 s ("repeatpad") and takes the spectrogram
        of the whole, frame by frame. When the wave's length is a multiple of the hop and divides
        10 s, every frame away from the two ends repeats with the wave's period, so the frames of
        ``tile(wave, 3)`` hold all distinct frames: a 1 s chunk costs 3 s of spectrogram instead
        of 10. A wave of exactly 10 s is the extractor's spectrogram of the wave. Returns None
        (use the extractor) when these conditions do not hold.
        """
        fe = self.extractor
        period, total = len(wave), self.max_samples
        hop, n_fft = int(fe.hop_length), int(fe.fft_window_size)
        if (
            getattr(fe, "truncation", None) != "fusion"
            or not hasattr(fe, "_np_extract_fbank_features")
            or not hasattr(fe, "mel_filters")
        ):
            return None
        if period == total:  # exactly 10 s: no padding, the spectrogram of the wave itself
            mel = fe._np_extract_fbank_features(wave, fe.mel_filters)
            return np.stack([mel, mel, mel, mel])
        if (
            getattr(fe, "padding", None) != "repeatpad"
            or period >= total
            or total % period
            or period % hop
            or total % hop
            or period < n_fft
        ):
            return None
        mel3 = fe._np_extract_fbank_features(np.tile(wave, 3), fe.mel_filters)
        frame = np.arange(total // hop + 1)
        centre = frame * hop
        index = period // hop + frame % (period // hop)  # a frame of the middle period
        head = centre < n_fft // 2
        index[head] = frame[head]  # reflect-padded start: same as the short signal's start
        tail = centre > total - n_fft // 2
        index[tail] = frame[tail] - (total - 3 * period) // hop  # same as the short signal's end
        mel = mel3[index]
        return np.stack([mel, mel, mel, mel])


class AudioTeacher(PromptedTeacher):
    """CLAP (HTS-AT) as a chunk-level zero-shot classifier over a vocabulary's prompts."""

    def __init__(
        self,
        source: str | Path = DEFAULT_CLAP,
        *,
        vocab: Vocabulary = LLP,
        device: str | None = "cpu",
        batch_waves: int = 32,
        inputs: AudioInputBuilder | str = TEACHER_INPUTS[0],
        precision: str = PRECISIONS[0],
    ) -> None:
        self.precision = check_precision(precision)
        self.source = str(source)
        self.device = pick_device(device)
        self.inputs = (
            inputs
            if isinstance(inputs, AudioInputBuilder)
            else AudioInputBuilder(source, inputs=inputs)
        )
        self.extractor = self.inputs.extractor
        self.sampling_rate = self.inputs.sampling_rate
        self.max_samples = self.inputs.max_samples
        self.model = load("ClapModel", source, "audio teacher (CLAP)").eval().to(self.device)
        self.dtype = cast_modules(
            (self.model.audio_model, self.model.audio_projection), self.precision
        )  # bfloat16: the audio tower's weights; the text tower stays float32
        self.tokenizer = load("AutoTokenizer", source, "audio teacher (CLAP) tokenizer")
        self.batch_waves = batch_waves
        self.logit_scale = float(self.model.logit_scale_a.exp().item())
        self.set_vocabulary(vocab)

    def prompts(self, vocab: Vocabulary) -> list[str]:
        return vocab.clap_prompts()

    def prepare(self, waves: Sequence[np.ndarray]) -> AudioInputs:
        """Mel inputs of 48 kHz mono waves (see :meth:`AudioInputBuilder.prepare`)."""
        return self.inputs.prepare(waves)

    def _tiled_input(self, wave: np.ndarray) -> np.ndarray | None:
        return self.inputs._tiled_input(wave)

    def _batches(self, inputs: AudioInputs):
        torch = require("torch", "teachers")
        for s in range(0, len(inputs.features), self.batch_waves):
            yield (
                torch.from_numpy(inputs.features[s : s + self.batch_waves]).to(
                    self.device, self.dtype
                ),
                torch.from_numpy(inputs.is_longer[s : s + self.batch_waves]).to(self.device),
            )

    def embed(self, inputs: AudioInputs) -> np.ndarray:
        """(B, D) float32 audio embeddings after projection, L2-normalised."""
        torch = require("torch", "teachers")
        out = []
        with torch.inference_mode():
            for feats, longer in self._batches(inputs):
                emb = embedding(
                    self.model.get_audio_features(input_features=feats, is_longer=longer)
                )
                out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def token_maps(self, inputs: AudioInputs) -> np.ndarray:
        """(B, tokens, width) final-layer token maps, (B, 64, 768) for the HTS-AT fused model."""
        torch = require("torch", "teachers")
        out = []
        with torch.inference_mode():
            for feats, longer in self._batches(inputs):
                hidden = self.model.audio_model(input_features=feats, is_longer=longer)
                grid = hidden.last_hidden_state.float()  # (B, width, freq groups, time)
                out.append(grid.flatten(2).transpose(1, 2).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)
