"""Tiny, randomly initialised CLIP and CLAP teachers that build offline in about a second.

Tests, benchmarks and smoke runs need models with the exact interfaces of
``openai/clip-vit-large-patch14`` and ``laion/clap-htsat-fused`` but no download. The tokenizers
are small byte-level BPEs trained on the vocabularies' prompts with ``tokenizers`` and handed to
``CLIPTokenizer`` / ``RobertaTokenizer`` as positional (vocab, merges) arguments (the keyword
forms are ignored by transformers 5.x). Both folders load with ``from_pretrained(folder)`` and
with :class:`avparse.teachers.VisualTeacher` / :class:`avparse.teachers.AudioTeacher`.

The sizes are the ones measured to work (``docs/env-notes``): CLIP hidden 32, 2 layers, 32 px
images in 8 px patches, projection 16; HTS-AT with 16 mel bins, spectrogram 64, depths (1, 1) and
a feature extractor of 1 s maximum length.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

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

    extra = {"end_of_word_suffix": suffix} if suffix else {}
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
    return vocab, merges


def save_tiny_clip(folder: str | Path) -> Path:
    """Build and save a tiny random ``CLIPModel`` with its tokenizer; returns the folder."""
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
        text_config=text, vision_config=vision, projection_dim=16, logit_scale_init_value=2.6592
    )
    model = transformers.CLIPModel(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_clap(folder: str | Path) -> Path:
    """Build and save a tiny random fused ``ClapModel`` with tokenizer and feature extractor."""
    torch = require("torch", "teachers")
    transformers = require("transformers", "teachers")
    folder = Path(folder)
    torch.manual_seed(0)
    vocab, merges = _train_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "")
    tokenizer = transformers.RobertaTokenizer(vocab, merges)
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    text |= {"num_attention_heads": 2, "vocab_size": len(tokenizer), "projection_dim": 16}
    text |= {"max_position_embeddings": 80, "pad_token_id": tokenizer.pad_token_id}
    audio = {"spec_size": 128, "num_mel_bins": 16, "depths": [1, 1]}
    audio |= {"num_attention_heads": [1, 2], "patch_embeds_hidden_size": 16, "hidden_size": 32}
    audio |= {"enable_fusion": True, "fusion_type": "aff_2d", "projection_dim": 16}
    audio |= {"window_size": 4}
    config = transformers.ClapConfig(text_config=text, audio_config=audio, projection_dim=16)
    model = transformers.ClapModel(config).eval()
    extractor = transformers.ClapFeatureExtractor(feature_size=16, max_length_s=10)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


def save_tiny_teachers(folder: str | Path) -> tuple[Path, Path]:
    """Save tiny CLIP and CLAP teachers under ``folder``; returns ``(clip_dir, clap_dir)``.

    Reuses folders that already hold a saved model, so a cache directory can be shared.
    """
    folder = Path(folder)
    require("transformers", "teachers").utils.logging.disable_progress_bar()
    clip_dir, clap_dir = folder / CLIP_FOLDER, folder / CLAP_FOLDER
    if not (clip_dir / "config.json").is_file():
        save_tiny_clip(clip_dir)
    if not (clap_dir / "config.json").is_file():
        save_tiny_clap(clap_dir)
    return clip_dir, clap_dir
