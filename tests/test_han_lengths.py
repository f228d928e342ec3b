"""The student on clips of any length: per-segment inputs of any T, padding masks (issue 15)."""

from __future__ import annotations

import pytest
import torch

from avparse.errors import AvparseError
from avparse.model.config import model_config
from avparse.model.han import HAN

DIMS = {"audio": 12, "visual": 20, "motion": 8}
LENGTHS = [3, 12, 1, 7]
ARCHS = {
    "valor": {},
    "uwav": {"arch": "uwav", "proj_layers": 2, "mmil_layers": 2},
    # UWAV's CLIP / CLAP student: no 3-D input, the visual input unprojected (width d_model 16)
    "uwav-no-3d": {"arch": "uwav", "motion_feature": "none", "visual_feature": "clip",
                   "feature_dims": {"audio": 12, "visual": 16}},
}  # fmt: skip


def _model(norm: str, **over) -> HAN:
    torch.manual_seed(0)
    cfg = model_config(
        "tiny", {"norm": norm, "num_layers": 2, "dropout": 0.0, "feature_dims": DIMS, **over}
    )
    model = HAN(cfg).eval()
    with torch.no_grad():  # LayerNorms away from their identity init
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    return model


def _clip(t: int, seed: int, model: HAN | None = None) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    roles = model.config.feature_kinds if model is not None else DIMS
    dims = {r: model.config.input_dim(r) for r in roles} if model is not None else DIMS
    return [torch.randn(1, t, dims[r], generator=g) for r in roles]


def _padded(clips: list[list[torch.Tensor]], t: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Clips padded to ``t`` with large noise (so a leak would show), and the validity mask."""
    g = torch.Generator().manual_seed(99)
    batch = []
    for role in range(len(clips[0])):
        rows = []
        for clip in clips:
            x = clip[role][0]
            pad = 50 * torch.randn(t - x.shape[0], x.shape[1], generator=g)
            rows.append(torch.cat([x, pad]))
        batch.append(torch.stack(rows))
    mask = torch.tensor([[i < c[0].shape[1] for i in range(t)] for c in clips])
    return batch, mask


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_padded_clip_gives_its_outputs_alone(norm: str, arch: str) -> None:
    model = _model(norm, **ARCHS[arch])
    clips = [_clip(t, seed, model) for seed, t in enumerate(LENGTHS)]
    batch, mask = _padded(clips, max(LENGTHS) + 2)
    with torch.no_grad():
        together = model(*batch, mask=mask)
        for i, (t, clip) in enumerate(zip(LENGTHS, clips, strict=True)):
            alone = model(*clip)
            for key in ("video_prob", "audio_prob", "visual_prob"):
                got, want = getattr(together, key)[i], getattr(alone, key)[0]
                torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
            for key in ("frame_prob", "frame_logits"):
                got, want = getattr(together, key)[i, :t], getattr(alone, key)[0]
                torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        assert torch.isfinite(together.frame_logits).all()
        # without the mask the padding leaks into the real segments (the test can fail)
        leaky = model(*batch)
    assert not torch.allclose(leaky.video_prob[0], together.video_prob[0], atol=1e-3)


def test_full_mask_equals_no_mask_and_any_length_runs() -> None:
    model = _model("post")
    clip = _clip(37, 5)
    with torch.no_grad():
        plain = model(*clip)
        masked = model(*clip, mask=torch.ones(1, 37, dtype=torch.bool))
    assert plain.frame_prob.shape == (1, 37, 2, model.config.num_classes)
    torch.testing.assert_close(masked.video_prob, plain.video_prob, rtol=0, atol=1e-6)
    torch.testing.assert_close(masked.frame_prob, plain.frame_prob, rtol=0, atol=1e-6)


def test_ten_second_only_inputs_say_so_in_one_line() -> None:
    clap = HAN(model_config("tiny", {"audio_feature": "clap", "visual_feature": "clip"}))
    with pytest.raises(AvparseError, match="CLAP token map") as err:
        clap(torch.zeros(1, 20, 768), torch.zeros(1, 20, 768), torch.zeros(1, 20, 512))
    assert "\n" not in str(err.value)
    res = HAN(model_config("tiny"))  # ResNet frames: 8 per segment, 10-s clips only
    out = res(torch.zeros(2, 10, 128), torch.zeros(2, 80, 2048), torch.zeros(2, 10, 512))
    assert out.frame_prob.shape[1] == 10
    with pytest.raises(AvparseError, match="frame-level visual features") as err:
        res(torch.zeros(1, 20, 128), torch.zeros(1, 160, 2048), torch.zeros(1, 20, 512))
    assert "\n" not in str(err.value)
    with pytest.raises(AvparseError, match="motion input has 9 segments"):
        res(torch.zeros(1, 20, 128), torch.zeros(1, 20, 2048), torch.zeros(1, 9, 512))
    with pytest.raises(AvparseError, match=r"mask has shape \(1, 10\), expected \(1, 20\)"):
        res(torch.zeros(1, 20, 128), torch.zeros(1, 20, 2048), torch.zeros(1, 20, 512),
            mask=torch.ones(1, 10, dtype=torch.bool))  # fmt: skip
