"""The visual teacher: CLIP image-text logits per frame, and CLIP image embeddings as features.

Usage (helper code for parsing reuses it as is)::

    teacher = VisualTeacher("openai/clip-vit-large-patch14", vocab=LLP, device="cpu")
    emb = teacher.embed_frames(frames)     # (B, D) float32, projected and L2-normalised
    logits = teacher.scores(emb)           # (B, C) = logit_scale * cosine(image, prompt)

Teacher inputs (``inputs``, reference section 10):

* ``"published"`` (default): as VALOR's harvest made the published thresholds and features.
  The 10 frames are picked among the window's frames at 8 fps (``round(linspace(0, n-1, 10))``
  of those, like ffmpeg's ``-r 8`` JPEGs), decoded at the video's size, converted to float in
  [0, 1] and resized to the model's image size (224 for ViT-L/14) by bilinear interpolation
  without antialiasing (torchvision 0.13's tensor ``Resize``), no centre crop, then CLIP's mean
  and std. :func:`frame_decoding` gives the decoder settings.
* ``"0.1"``: avparse 0.1's: indices over all of the window's frames, resized by swscale (bicubic)
  while decoding; frames of another size are resized bicubically with antialiasing.

Done in torch because the transformers 5 image processor needs torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avparse.errors import AvparseError, require
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

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
TEACHER_INPUTS = ("published", "0.1")
"""How teacher inputs are made (see the module docstring); the first is the default."""
PUBLISHED_FRAME_FPS = 8
"""Rate of the frames the published harvest picks its 10 teacher frames from."""
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def check_inputs(inputs: str) -> str:
    """``inputs`` if it names a way of making teacher inputs, else a one-line error."""
    if inputs not in TEACHER_INPUTS:
        raise AvparseError(
            f"unknown teacher inputs {inputs!r} (expected {' or '.join(TEACHER_INPUTS)})"
        )
    return inputs


def frame_decoding(inputs: str, image_size: int) -> dict:
    """Keyword arguments of :func:`avparse.media.decode_clip` for the teacher frames."""
    if check_inputs(inputs) == "published":
        return {"frame_size": None, "teacher_fps": PUBLISHED_FRAME_FPS}
    return {"frame_size": (image_size, image_size), "teacher_fps": None}


class VisualTeacher(PromptedTeacher):
    """CLIP as a frame-level zero-shot classifier over a vocabulary's prompts."""

    def __init__(
        self,
        source: str | Path = DEFAULT_CLIP,
        *,
        vocab: Vocabulary = LLP,
        device: str | None = "cpu",
        batch_frames: int = 64,
        inputs: str = TEACHER_INPUTS[0],
        precision: str = PRECISIONS[0],
    ) -> None:
        torch = require("torch", "teachers")
        self.inputs = check_inputs(inputs)
        self.precision = check_precision(precision)
        self.source = str(source)
        self.device = pick_device(device)
        self.model = load("CLIPModel", source, "visual teacher (CLIP)").eval().to(self.device)
        self.dtype = cast_modules(
            (self.model.vision_model, self.model.visual_projection), self.precision
        )  # bfloat16: the image tower's weights; the text tower stays float32
        self.tokenizer = load("AutoTokenizer", source, "visual teacher (CLIP) tokenizer")
        self.image_size = int(self.model.config.vision_config.image_size)
        self.batch_frames = batch_frames
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        self.logit_scale = float(self.model.logit_scale.exp().item())
        self.set_vocabulary(vocab)

    def prompts(self, vocab: Vocabulary) -> list[str]:
        return vocab.clip_prompts()

    def decoding(self) -> dict:
        """Keyword arguments of :func:`avparse.media.decode_clip` for this teacher's frames."""
        return frame_decoding(self.inputs, self.image_size)

    def preprocess(self, frames: np.ndarray):
        """uint8 (B, H, W, 3) RGB -> normalised float (B, 3, S, S) on the device."""
        torch = require("torch", "teachers")
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise AvparseError(f"frames must be (B, H, W, 3) RGB, got {frames.shape}")
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        size = (self.image_size, self.image_size)
        if self.inputs == "published":  # torchvision 0.13's tensor Resize: no antialiasing
            x = torch.nn.functional.interpolate(
                x, size=size, mode="bilinear", antialias=False, align_corners=False
            )
        elif x.shape[-2:] != size:
            x = torch.nn.functional.interpolate(
                x, size=size, mode="bicubic", antialias=True
            ).clamp_(0.0, 1.0)
        return (x - self.mean) / self.std

    def embed_frames(self, frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """(B, D) float32 image embeddings after projection, L2-normalised.

        ``frames`` is one (B, H, W, 3) array or a list of them (clips of different sizes, whose
        frames share model calls after each is resized).
        """
        torch = require("torch", "teachers")
        parts = [frames] if isinstance(frames, np.ndarray) else list(frames)
        if not parts or sum(len(p) for p in parts) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        with torch.inference_mode():
            pixels = torch.cat([self.preprocess(p) for p in parts]).to(self.dtype)
            for s in range(0, len(pixels), self.batch_frames):
                batch = pixels[s : s + self.batch_frames]
                emb = embedding(self.model.get_image_features(pixel_values=batch)).float()
                out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)
