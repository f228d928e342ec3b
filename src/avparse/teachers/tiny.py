"""Tiny, randomly initialised CLIP and CLAP teachers that build offline in about a second.

Tests, benchmarks and smoke runs need models with the exact interfaces of
``openai/clip-vit-large-patch14`` and ``laion/clap-htsat-fused`` but no download. The tokenizers
are small byte-level BPEs trained on the vocabularies' prompts with ``tokenizers`` and handed to
``CLIPTokenizer`` / ``RobertaTokenizer`` as positional (vocab, merges) arguments (the keyword
forms are ignored by transformers 5.x). Both folders load with ``from_pretrained(folder)`` and
with :class:`avparse.teachers.VisualTeacher` / :class:`avparse.teachers.AudioTeacher`.

The sizes are the ones measured to work with transformers 5.x: CLIP hidden 32, 2 layers, 32 px
images in 8 px patches, projection 16; HTS-AT with 16 mel bins, spectrogram 128, depths (1, 1) and
a feature extractor of 10 s maximum length.

``student_shapes=True`` (or ``clip_dim`` / ``clap_tokens`` / ``clap_width``) makes the teachers
emit exactly the published student inputs, ``CLIP/features`` (10, 768) and ``CLAP/features``
(64, 768): CLIP with a 768-d projection, and an HTS-AT with the real one's input and output
layout (spectrogram 256, 64 mel bins, a final (2, 32) grid of 64 tokens) but a single stage of
one block on 32 px patches. Harvests made with them pass ``avparse data check`` and train
the ``valor++`` preset.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from avparse.errors import require
from avparse.vocab import AVE, LLP

CLIP_FOLDER = "tiny-clip"
CLAP_FOLDER = "tiny-clap"


def _corpus() -> list[str]:
    texts = []
    for vocab in (LLP, AVE):
        texts += vocab.clip_prompts() + vocab.clap_prompts() + vocab.display_names
    return texts


def _train_bpe(specials: list[str], suffix: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE (vocab, merges) trained on the prompt corpus, deterministic."""
    tokenizers = require("tokenizers", "teachers")
    from tokenizers import models, pre_tokenizers, trainers

    extra: dict[str, Any] = {"end_of_word_suffix": suffix} if suffix else {}
    tok = tokenizers.Tokenizer(models.BPE(**extra))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        **extra,
    )
    corpus = [t.lower() for t in _corpus()] if suffix else _corpus()
    tok.train_from_iterator(corpus, trainer=trainer)
    with tempfile.TemporaryDirectory() as tmp:
        tok.model.save(tmp)
        vocab = json.loads((Path(tmp) / "vocab.json").read_text())
        merges = [
            tuple(line.split(" ", 1))
            for line in (Path(tmp) / "merges.txt").read_text().splitlines()
            if line and not line.startswith("#")
        ]
    return vocab, [(a, b) for a, b in merges]


STUDENT_DIMS = {"clip_dim": 768, "clap_tokens": 64, "clap_width": 768, "clap_dim": 512}
"""Settings whose outputs have the published student-input shapes (``FEATURE_KINDS``), CLAP's
512-d audio embedding (``clap_segments``) included."""


def save_tiny_clip(folder: str | Path, *, dim: int = 16) -> Path:
    """Build and save a tiny random ``CLIPModel`` with its tokenizer; returns the folder.

    ``dim`` is the projection (embedding) size: 16 by default, 768 like ViT-L/14.
    """
    torch = require("torch", "teachers")
    transformers = require("transformers", "teachers")
    folder = Path(folder)
    torch.manual_seed(0)
    vocab, merges = _train_bpe(["<|startoftext|>", "<|endoftext|>"], "</w>")
    tokenizer = transformers.CLIPTokenizer(vocab, merges)
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    text |= {"num_attention_heads": 2, "max_position_embeddings": 77, "vocab_size": len(tokenizer)}
    text |= {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    text |= {"pad_token_id": tokenizer.pad_token_id}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    vision |= {"num_attention_heads": 2, "image_size": 32, "patch_size": 8}
    config = transformers.CLIPConfig(
        text_config=text, vision_config=vision, projection_dim=dim, logit_scale_init_value=2.6592
    )
    model = transformers.CLIPModel(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_clap(
    folder: str | Path, *, tokens: int = 256, width: int = 32, dim: int = 16
) -> Path:
    """Build and save a tiny random fused ``ClapModel`` with tokenizer and feature extractor.

    Args:
        tokens: tokens of the final-layer map. 256 (default): spectrogram 128, 16 mel bins, two
            stages, a (2, 128) grid. 64: the real model's layout (spectrogram 256, 64 mel bins,
            four stages, a (2, 32) grid).
        width: channels of the final layer (the map's width), 32 by default for 256 tokens;
            with 64 tokens a multiple of 64 (768 like the real model).
        dim: the audio and text projection (embedding) size: 16 by default, 512 like the real
            model.
    """
    torch = require("torch", "teachers")
    transformers = require("transformers", "teachers")
    folder = Path(folder)
    torch.manual_seed(0)
    vocab, merges = _train_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "")
    tokenizer = transformers.RobertaTokenizer(vocab, merges)
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    text |= {"num_attention_heads": 2, "vocab_size": len(tokenizer), "projection_dim": 16}
    text |= {"max_position_embeddings": 80, "pad_token_id": tokenizer.pad_token_id}
    if tokens == 256:
        if width != 32:
            raise ValueError("the 256-token tiny CLAP has width 32")
        audio = {"spec_size": 128, "num_mel_bins": 16, "depths": [1, 1], "window_size": 4}
        audio |= {"num_attention_heads": [1, 2], "patch_embeds_hidden_size": 16}
    elif tokens == 64:
        if width < 64 or width % 64:
            raise ValueError(
                f"the 64-token tiny CLAP needs a width that is a multiple of 64, not {width}"
            )
        # The real model's 256 x 256 spectrogram image and 8 x 8 final grid, reached in one
        # stage of one block with 32 px patches (the real one: 4 px patches, four stages).
        audio = {"spec_size": 256, "num_mel_bins": 64, "depths": [1], "window_size": 8}
        audio |= {"num_attention_heads": [2], "patch_embeds_hidden_size": width}
        audio |= {"patch_size": 32, "patch_stride": [32, 32]}
    else:
        raise ValueError(f"tiny CLAP maps have 256 or 64 tokens, not {tokens}")
    audio |= {"hidden_size": width, "enable_fusion": True, "fusion_type": "aff_2d"}
    audio |= {"projection_dim": dim}
    text["projection_dim"] = dim
    config = transformers.ClapConfig(text_config=text, audio_config=audio, projection_dim=dim)
    model = transformers.ClapModel(config).eval()
    extractor = transformers.ClapFeatureExtractor(
        feature_size=audio["num_mel_bins"], max_length_s=10
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


def save_tiny_teachers(
    folder: str | Path,
    *,
    student_shapes: bool = False,
    clip_dim: int | None = None,
    clap_tokens: int | None = None,
    clap_width: int | None = None,
    clap_dim: int | None = None,
) -> tuple[Path, Path]:
    """Save tiny CLIP and CLAP teachers under ``folder``; returns ``(clip_dir, clap_dir)``.

    Defaults: CLIP embeddings of 16 and CLAP maps of (256, 32). ``student_shapes=True`` gives the
    published student inputs, (10, 768) and (64, 768) per clip, and 512-d CLAP segment
    embeddings (:data:`STUDENT_DIMS`); the other
    arguments set one size each (``clap_tokens=64`` alone gives (64, 64) maps). Each variant has
    its own sub-folder named by its sizes, and folders that already hold a saved model are reused,
    so a cache directory can be shared.
    """
    base = STUDENT_DIMS if student_shapes else {"clip_dim": 16, "clap_tokens": 256}
    dim = clip_dim or base["clip_dim"]
    tokens = clap_tokens or base["clap_tokens"]
    width = clap_width or base.get("clap_width") or (32 if tokens == 256 else 64)
    audio_dim = clap_dim or base.get("clap_dim") or 16
    folder = Path(folder)
    require("transformers", "teachers").utils.logging.disable_progress_bar()
    clip_dir = folder / (CLIP_FOLDER if dim == 16 else f"{CLIP_FOLDER}-{dim}")
    plain = (tokens, width, audio_dim) == (256, 32, 16)
    suffix = f"-{tokens}x{width}" + ("" if audio_dim == 16 else f"-{audio_dim}")
    clap_dir = folder / (CLAP_FOLDER if plain else f"{CLAP_FOLDER}{suffix}")
    if not (clip_dir / "config.json").is_file():
        save_tiny_clip(clip_dir, dim=dim)
    if not (clap_dir / "config.json").is_file():
        save_tiny_clap(clap_dir, tokens=tokens, width=width, dim=audio_dim)
    return clip_dir, clap_dir


def save_full_size_teachers(folder: str | Path) -> tuple[Path, Path]:
    """Random CLIP ViT-L/14 and CLAP HTS-AT (fused) image/audio towers at their real sizes.

    For benchmarks and input-path comparisons without a download: the vision tower of
    ``openai/clip-vit-large-patch14`` (24 layers of 1024, 14 px patches, 224 px, projection 768,
    logit scale 100) and the audio tower of ``laion/clap-htsat-fused`` (HTS-AT depths 2-2-6-2,
    64 mels, fusion ``aff_2d``, its feature extractor), so frames and sound cost what they cost
    with the published checkpoints. The text towers are small (prompts are embedded once per
    run, so they do not change the per-clip cost). Folders are reused when already saved.
    """
    torch = require("torch", "teachers")
    transformers = require("transformers", "teachers")
    folder = Path(folder)
    clip_dir, clap_dir = folder / "full-clip-vit-l14", folder / "full-clap-htsat-fused"
    transformers.utils.logging.disable_progress_bar()
    if not (clip_dir / "config.json").is_file():
        torch.manual_seed(0)
        vocab, merges = _train_bpe(["<|startoftext|>", "<|endoftext|>"], "</w>")
        tokenizer = transformers.CLIPTokenizer(vocab, merges)
        text = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
        text |= {"num_attention_heads": 2, "max_position_embeddings": 77}
        text |= {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id}
        text |= {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
        vision = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24}
        vision |= {"num_attention_heads": 16, "image_size": 224, "patch_size": 14}
        config = transformers.CLIPConfig(
            text_config=text,
            vision_config=vision,
            projection_dim=768,
            logit_scale_init_value=4.6052,
        )
        transformers.CLIPModel(config).eval().save_pretrained(clip_dir)
        tokenizer.save_pretrained(clip_dir)
    if not (clap_dir / "config.json").is_file():
        torch.manual_seed(0)
        vocab, merges = _train_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "")
        tokenizer = transformers.RobertaTokenizer(vocab, merges)
        text = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
        text |= {"num_attention_heads": 2, "vocab_size": len(tokenizer)}
        text |= {"max_position_embeddings": 80, "pad_token_id": tokenizer.pad_token_id}
        audio = {"enable_fusion": True, "fusion_type": "aff_2d"}  # HTS-AT defaults otherwise
        config = transformers.ClapConfig(text_config=text, audio_config=audio, projection_dim=512)
        transformers.ClapModel(config).eval().save_pretrained(clap_dir)
        tokenizer.save_pretrained(clap_dir)
        transformers.ClapFeatureExtractor().save_pretrained(clap_dir)
    return clip_dir, clap_dir
