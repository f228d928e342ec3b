"""Class prototypes as a function of the class NAME, shared by every synthetic world.

A synthetic class's direction in a feature space is not drawn per vocabulary index but from its
*concept*: the class name, normalised (lower case; ``_ , ( ) /`` as spaces), is looked up in
:data:`CONCEPT_PARTS` and becomes a weighted sum of concept vectors, each a seeded Gaussian of
(space, concept key, ``prototype_seed``). So

* the same name (or the same normalised name: LLP's ``Violin_fiddle`` and AVE's ``Violin,
  fiddle``) has the same prototype in every vocabulary and every world;
* LLP and UnAV-100 classes that are the same concept share their main part: LLP's ``Dog`` is
  ``dog``, UnAV's ``dog barking`` is ``dog`` plus a little ``dog barking`` of its own (cosine
  about 0.93), ``dog howling`` likewise; ``Speech`` and ``man speaking`` / ``woman speaking`` /
  ``kid speaking``, ``Singing`` and the four UnAV singing classes, ``Car`` and ``car passing
  by`` are related the same way, and the 19 one-to-one pairs (``Cello`` / ``playing cello``,
  ...) map to one concept (cosine 1);
* the prototypes do not depend on the data seed (only on ``prototype_seed``), so a teacher
  trained on one world (any seed) labels another world through the class text embeddings
  (:func:`text_embeddings`), as UWAV's teacher pretrained on UnAV-100 labels LLP.

Spaces are named (``clip``: 768-d CLIP image/text space, ``clap``: 512-d CLAP audio/text space,
or a student feature kind's name); a name unknown to the table is its own concept. Numpy only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

PROTOTYPE_SEED = 0
"""Default seed of the concept vectors: fixed, so worlds of any data seed share prototypes."""

SPACES: dict[str, tuple[str, int]] = {"visual": ("clip", 768), "audio": ("clap", 512)}
"""Modality -> (space, width) of the teachers' embeddings (CLIP image, CLAP audio)."""

RELATED = 0.4
"""Weight of a class's own part beside a shared concept (cosine to it 1 / sqrt(1 + 0.16))."""

_SAME: dict[str, str] = {
    # UnAV-100 name -> LLP concept (the LLP name normalised): one concept, cosine 1
    "people cheering": "cheering",
    "basketball bounce": "basketball bounce",
    "cat meowing": "cat",
    "chainsawing trees": "chainsaw",
    "playing cello": "cello",
    "playing banjo": "banjo",
    "playing violin": "violin fiddle",
    "vacuum cleaner cleaning floors": "vacuum cleaner",
    "baby laughter": "baby laughter",
    "playing accordion": "accordion",
    "lawn mowing": "lawn mower",
    "driving motorcycle": "motorcycle",
    "helicopter": "helicopter",
    "playing acoustic guitar": "acoustic guitar",
    "telephone bell ringing": "telephone bell ringing",
    "baby crying": "baby cry infant cry",
    "people clapping": "clapping",
    "car passing by": "car",
    # AVE names that are LLP concepts under other words
    "male speech man speaking": "speech",
    "female speech woman speaking": "speech",
    "bark": "dog",
    "race car auto racing": "car",
}
_NEAR: dict[str, str] = {
    # name -> shared concept, plus a part of its own (weight RELATED): related, not the same
    "man speaking": "speech",
    "woman speaking": "speech",
    "kid speaking": "speech",
    "male singing": "singing",
    "female singing": "singing",
    "child singing": "singing",
    "singing choir": "singing",
    "dog barking": "dog",
    "dog howling": "dog",
    "auto racing": "car",
    "vehicle honking": "car",
    "skidding": "car",
}

CONCEPT_PARTS: dict[str, tuple[tuple[str, float], ...]] = {
    **{name: ((concept, 1.0),) for name, concept in _SAME.items()},
    **{name: ((concept, 1.0), (name, RELATED)) for name, concept in _NEAR.items()},
}
"""Normalised class name -> (concept key, weight) parts; absent names are their own concept."""


def normalise(name: str) -> str:
    """``Frying_(food)`` -> ``frying food``; ``Violin, fiddle`` -> ``violin fiddle``."""
    return " ".join(re.sub(r"[_,()/]", " ", name.lower()).split())


def concept_parts(name: str) -> tuple[tuple[str, float], ...]:
    """The (concept key, weight) parts of a class name (see the module docstring)."""
    key = normalise(name)
    return CONCEPT_PARTS.get(key, ((key, 1.0),))


def _gaussian(space: str, key: str, dim: int, seed: int) -> np.ndarray:
    digest = hashlib.blake2b(f"{space}|{key}".encode(), digest_size=8).digest()
    rng = np.random.default_rng([int(seed), int.from_bytes(digest, "little")])
    return rng.standard_normal(dim)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def prototypes(
    names: Sequence[str], space: str, dim: int, *, seed: int = PROTOTYPE_SEED
) -> np.ndarray:
    """(C, dim) float64 unit rows: each class's direction in ``space``, from its name."""
    rows = []
    for name in names:
        v = sum(w * _unit(_gaussian(space, k, dim, seed)) for k, w in concept_parts(name))
        rows.append(np.asarray(v, dtype=np.float64))
    return _unit(np.stack(rows)) if rows else np.zeros((0, dim))


def text_embeddings(
    names: Sequence[str], modality: str, *, noise: float = 0.46, seed: int = PROTOTYPE_SEED
) -> np.ndarray:
    """(C, D) float32 unit rows: the synthetic CLIP (visual) / CLAP (audio) text tower.

    A class's text embedding is its prototype in the modality's space plus a fixed error of
    norm ``noise`` of its own (the zero-shot error of a real text tower; also a function of the
    name only), so any vocabulary can be embedded and the same name embeds the same everywhere.
    """
    space, dim = SPACES[modality]
    proto = prototypes(names, space, dim, seed=seed)
    err = np.stack([_unit(_gaussian(f"text-{space}", normalise(n), dim, seed)) for n in names])
    return _unit(proto + noise * err).astype(np.float32)
