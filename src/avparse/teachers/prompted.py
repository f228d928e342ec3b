"""What the CLIP and CLAP teachers share: prompt embeddings and logit-scaled cosine scores.

Both teachers are zero-shot classifiers of the same shape: embed a vocabulary's prompts once,
embed the medium (frames or sound chunks), score = logit scale x cosine. Subclasses set
``model``, ``tokenizer``, ``device`` and ``logit_scale`` and say which prompts they read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avparse.errors import require
from avparse.teachers.loading import embedding
from avparse.vocab import Vocabulary


class PromptedTeacher:
    """Base of :class:`VisualTeacher` and :class:`AudioTeacher`."""

    model: Any
    tokenizer: Any
    device: str
    logit_scale: float
    vocab: Vocabulary
    text: Any

    def prompts(self, vocab: Vocabulary) -> list[str]:
        """The prompts of ``vocab`` for this teacher's modality."""
        raise NotImplementedError

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    def set_vocabulary(self, vocab: Vocabulary) -> None:
        """Embed ``vocab``'s prompts (once per vocabulary, not per clip)."""
        self.vocab = vocab
        self.text = self.embed_texts(self.prompts(vocab))

    def embed_texts(self, prompts: Sequence[str]):
        """(len(prompts), D) L2-normalised text embeddings (a torch tensor on the device)."""
        torch = require("torch", "teachers")
        tokens = self.tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
        return torch.nn.functional.normalize(embedding(out).float(), dim=-1)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """(B, C) float32 logits: logit scale times the cosine of medium and prompt embeddings."""
        text = self.text.cpu().numpy().astype(np.float32)
        return (self.logit_scale * np.asarray(embeddings, np.float32) @ text.T).astype(np.float32)
