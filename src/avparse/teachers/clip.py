"""The visual teacher: CLIP image-text logits per frame, and CLIP image embeddings as features.

Usage (helper code for parsing reuses it as is)::

    teacher = VisualTeacher("openai/clip-vit-large-patch14", vocab=LLP, device="cpu")
    emb = teacher.embed_frames(frames)     # (B, D) float32, projected and L2-normalised
    logits = teacher.scores(emb)           # (B, C) = logit_scale * cosine(image, prompt)

Preprocessing is VALOR's: a plain resize to the model's image size (224 for ViT-L/14, no centre
crop; bicubic with antialiasing, skipped when frames already have that size, as
:func:`avparse.media.decode_clip` delivers them) and CLIP's mean / std, done in torch because the
transformers 5 image processor needs torchvision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avparse.errors import AvparseError, require
from avparse.teachers.loading import embedding, load, pick_device
from avparse.teachers.prompted import PromptedTeacher
from avparse.vocab import LLP, Vocabulary

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class VisualTeacher(PromptedTeacher):
    """CLIP as a frame-level zero-shot classifier over a vocabulary's prompts."""

    def __init__(
        self,
        source: str | Path = DEFAULT_CLIP,
        *,
        vocab: Vocabulary = LLP,
        device: str | None = "cpu",
        batch_frames: int = 64,
    ) -> None:
        torch = require("torch", "teachers")
        self.source = str(source)
        self.device = pick_device(device)
        self.model = load("CLIPModel", source, "visual teacher (CLIP)").eval().to(self.device)
        self.tokenizer = load("AutoTokenizer", source, "visual teacher (CLIP) tokenizer")
        self.image_size = int(self.model.config.vision_config.image_size)
        self.batch_frames = batch_frames
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        self.logit_scale = float(self.model.logit_scale.exp().item())
        self.set_vocabulary(vocab)

    def prompts(self, vocab: Vocabulary) -> list[str]:
        return vocab.clip_prompts()

    def preprocess(self, frames: np.ndarray):
        """uint8 (B, H, W, 3) RGB -> normalised float (B, 3, S, S) on the device."""
        torch = require("torch", "teachers")
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise AvparseError(f"frames must be (B, H, W, 3) RGB, got {frames.shape}")
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = torch.nn.functional.interpolate(
                x, size=(self.image_size, self.image_size), mode="bicubic", antialias=True
            ).clamp_(0.0, 1.0)
        return (x - self.mean) / self.std

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """(B, D) float32 image embeddings after projection, L2-normalised."""
        torch = require("torch", "teachers")
        out = []
        with torch.inference_mode():
            for s in range(0, len(frames), self.batch_frames):
                pixels = self.preprocess(frames[s : s + self.batch_frames])
                emb = embedding(self.model.get_image_features(pixel_values=pixels)).float()
                out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)
