"""Teachers: the VALOR rule, the fused teacher, tiny offline CLIP/CLAP, loading errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from avparse.errors import AvparseError
from avparse.teachers.rule import elaborate, fused_scores
from avparse.vocab import LLP


def test_rule_is_threshold_inside_weak_labels():
    scores = np.array([[[5.0, 1.0, 9.0], [0.0, 3.0, 9.0]]])  # (1 clip, 2 segments, 3 classes)
    thresholds = np.array([4.0, 2.0, 0.0])
    weak = np.array([[True, True, False]])
    hard, soft = elaborate(scores, thresholds, weak)
    assert hard.tolist() == [[[1, 0, 0], [0, 1, 0]]]
    assert soft[0, :, 2].tolist() == [0.0, 0.0]  # outside the weak labels: always 0
    assert soft[0, 0, 0] == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert ((soft > 0.5) == (hard > 0)).all()
    # equal to the threshold is not above it
    assert elaborate(np.array([[4.0]]), np.array([4.0]), np.array([True]))[0].item() == 0


def test_fused_teacher_averages_margins():
    v = np.array([[20.0, 10.0]])
    a = np.array([[0.0, 8.0]])
    fused = fused_scores(v, a, np.array([15.0, 15.0]), np.array([2.0, 2.0]))
    assert fused.tolist() == [[1.5, 0.5]]
    hard, _ = elaborate(fused, np.zeros(2), np.array([True, False]))
    assert hard.tolist() == [[1, 0]]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    pytest.importorskip("transformers")
    from avparse.teachers.tiny import save_tiny_teachers

    return save_tiny_teachers(tmp_path_factory.getbasetemp() / "avparse-tiny-teachers")


def test_tiny_models_load_offline_with_real_tokenizers(tiny):
    import transformers

    clip_dir, clap_dir = tiny
    for folder in tiny:
        tok = transformers.AutoTokenizer.from_pretrained(folder)
        ids = tok(["A photo of a dog."])["input_ids"][0]
        assert len(tok) > 300 and len(ids) > 3
        assert tok.unk_token_id not in ids[1:-1]
    assert transformers.CLIPModel.from_pretrained(clip_dir).config.projection_dim == 16
    assert transformers.ClapFeatureExtractor.from_pretrained(clap_dir).sampling_rate == 48_000


def test_visual_teacher_matches_clip_logits(tiny):
    import torch

    from avparse.teachers.clip import VisualTeacher

    teacher = VisualTeacher(tiny[0], vocab=LLP, device="cpu")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 40, 50, 3), dtype=np.uint8)
    emb = teacher.embed_frames(frames)
    assert emb.shape == (4, 16) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    scores = teacher.scores(emb)
    assert scores.shape == (4, len(LLP))
    tokens = teacher.tokenizer(LLP.clip_prompts(), padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = teacher.model(pixel_values=teacher.preprocess(frames), **tokens)
    assert np.allclose(scores, out.logits_per_image.numpy(), atol=1e-4)
    # a plain resize: a frame already at the model size is not changed by preprocessing
    small = rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    x = teacher.preprocess(small)[0].numpy()
    mean = np.array([0.48145466, 0.4578275, 0.40821073])[:, None, None]
    std = np.array([0.26862954, 0.26130258, 0.27577711])[:, None, None]
    assert np.allclose(x, (small[0].transpose(2, 0, 1) / 255 - mean) / std, atol=1e-5)


def test_audio_teacher_is_deterministic_and_matches_clap_logits(tiny):
    import torch

    from avparse.teachers.clap import AudioTeacher

    teacher = AudioTeacher(tiny[1], vocab=LLP, device="cpu")
    rng = np.random.default_rng(0)
    chunks = [rng.normal(0, 0.1, 48_000).astype(np.float32) for _ in range(3)]
    np.random.seed(1)
    a = teacher.prepare(chunks)
    np.random.seed(2)
    b = teacher.prepare(chunks[::-1])
    assert not a.is_longer.any()
    assert np.array_equal(a.features, b.features[::-1])
    emb = teacher.embed(a)
    assert emb.shape == (3, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    scores = teacher.scores(emb)
    tokens = teacher.tokenizer(LLP.clap_prompts(), padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = teacher.model(
            input_features=torch.from_numpy(a.features),
            is_longer=torch.from_numpy(a.is_longer),
            **tokens,
        )
    assert np.allclose(scores, out.logits_per_audio.numpy(), atol=1e-4)
    # batch composition does not change a clip's embedding
    alone = teacher.embed(teacher.prepare(chunks[:1]))
    assert np.allclose(alone, emb[:1], atol=1e-5)
    # (waves over 10 s take the extractor's random-crop path under a fixed seed; the tiny
    # 16-mel extractor cannot run that path, which is built for 64 mels, so it is not tested)
    maps = teacher.token_maps(teacher.prepare([rng.normal(0, 0.1, 480_000)]))
    assert maps.ndim == 3 and maps.shape[0] == 1 and maps.shape[2] == 32


def test_missing_local_model_folder(tmp_path):
    pytest.importorskip("transformers")
    from avparse.teachers.loading import load

    with pytest.raises(AvparseError, match="model folder not found"):
        load("CLIPModel", tmp_path / "nope", "visual teacher")


def test_offline_hub_id_fails_fast_in_one_line(monkeypatch):
    pytest.importorskip("transformers")
    from avparse.teachers.loading import load

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(AvparseError) as info:
        load("CLIPModel", "avparse-tests/no-such-model", "visual teacher")
    assert time.perf_counter() - start < 10
    assert "offline" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("length", [48_000, 19_200, 4_800, 48_037, 480_000])
def test_tiled_spectrogram_equals_the_extractor(tiny, length):
    from avparse.teachers.clap import AudioTeacher

    teacher = AudioTeacher(tiny[1], vocab=LLP, device="cpu", inputs="0.1")
    wave = np.random.default_rng(length).normal(0, 0.1, length)
    reference = teacher.extractor(wave, sampling_rate=48_000, return_tensors="np")
    fast = teacher._tiled_input(wave)
    if length % 480:
        assert fast is None  # not periodic in hops: the extractor is used
    else:
        assert np.array_equal(fast, reference["input_features"][0])
    np.random.seed(5)
    state = np.random.get_state()[1].copy()
    assert np.array_equal(teacher.prepare([wave]).features, reference["input_features"])
    assert np.array_equal(np.random.get_state()[1], state)  # the caller's random state is kept


def test_published_audio_inputs_round_trip_int16(tiny):
    from avparse.teachers.clap import AudioInputBuilder, int16_round_trip

    wave = np.random.default_rng(3).normal(0, 0.4, 48_000)  # some samples beyond [-1, 1]
    quantised = int16_round_trip(wave)
    expected = (np.clip(wave, -1, 1) * 32767).astype(np.int16) / 32767
    assert np.array_equal(quantised, expected.astype(np.float32))
    published = AudioInputBuilder(tiny[1])  # the default
    old = AudioInputBuilder(tiny[1], inputs="0.1")
    assert published.inputs == "published"
    assert np.array_equal(published.prepare([wave]).features, old.prepare([quantised]).features)
    assert not np.array_equal(published.prepare([wave]).features, old.prepare([wave]).features)


def test_published_frames_resize_bilinear_without_antialiasing(tiny):
    import torch

    from avparse.teachers.clip import VisualTeacher, frame_decoding

    frames = np.random.default_rng(1).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    teacher = VisualTeacher(tiny[0], vocab=LLP, device="cpu")
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    resized = torch.nn.functional.interpolate(
        x, size=(32, 32), mode="bilinear", antialias=False, align_corners=False
    )
    expected = (resized - teacher.mean) / teacher.std
    assert torch.allclose(teacher.preprocess(frames), expected, atol=1e-6)
    old = VisualTeacher(tiny[0], vocab=LLP, device="cpu", inputs="0.1")
    assert not torch.allclose(old.preprocess(frames), expected, atol=1e-3)
    assert frame_decoding("published", 224) == {"frame_size": None, "teacher_fps": 8}
    assert frame_decoding("0.1", 224) == {"frame_size": (224, 224), "teacher_fps": None}
    with pytest.raises(AvparseError, match="unknown teacher inputs"):
        VisualTeacher(tiny[0], vocab=LLP, device="cpu", inputs="new")


def test_bfloat16_precision_is_close_to_float32(tiny):
    from avparse.teachers.clip import VisualTeacher

    frames = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    full = VisualTeacher(tiny[0], vocab=LLP, device="cpu")
    half = VisualTeacher(tiny[0], vocab=LLP, device="cpu", precision="bfloat16")
    assert full.precision == "float32"
    a, b = full.scores(full.embed_frames(frames)), half.scores(half.embed_frames(frames))
    assert b.dtype == np.float32 and np.abs(a - b).max() < 0.1
    with pytest.raises(AvparseError, match="unknown precision"):
        VisualTeacher(tiny[0], vocab=LLP, device="cpu", precision="fp8")
