"""R(2+1)D-18: torchvision-compatible parameter names and shapes, loading, snippet sampling."""

from __future__ import annotations

import pytest
import torch

from avparse.errors import AvparseError
from avparse.features.r2plus1d import (
    R2Plus1D18,
    load_r2plus1d18,
    snippet_features,
    snippets,
)


def _torchvision_r2plus1d18_shapes() -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes of torchvision's ``r2plus1d_18``, written from its architecture.

    Stem: Conv3d(3, 45, (1,7,7)) + BN + ReLU + Conv3d(45, 64, (3,1,1)) + BN + ReLU. Each
    BasicBlock: conv1 = Sequential(Conv2Plus1D, BN, ReLU), conv2 = Sequential(Conv2Plus1D, BN),
    Conv2Plus1D = Sequential(Conv3d (1,3,3), BN, ReLU, Conv3d (3,1,1)) with mid width
    (in * out * 27) // (in * 9 + 3 * out); a 1x1x1 Conv3d + BN downsample where shape changes;
    fc 512 -> 400.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["stem.0.weight"] = (45, 3, 1, 7, 7)
    bn("stem.1", 45)
    shapes["stem.3.weight"] = (64, 45, 3, 1, 1)
    bn("stem.4", 64)
    inplanes = 64
    for layer, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{layer}.{block}"
            mid = (inplanes * planes * 27) // (inplanes * 9 + 3 * planes)
            shapes[f"{p}.conv1.0.0.weight"] = (mid, inplanes, 1, 3, 3)
            bn(f"{p}.conv1.0.1", mid)
            shapes[f"{p}.conv1.0.3.weight"] = (planes, mid, 3, 1, 1)
            bn(f"{p}.conv1.1", planes)
            shapes[f"{p}.conv2.0.0.weight"] = (mid, planes, 1, 3, 3)
            bn(f"{p}.conv2.0.1", mid)
            shapes[f"{p}.conv2.0.3.weight"] = (planes, mid, 3, 1, 1)
            bn(f"{p}.conv2.1", planes)
            if block == 0 and inplanes != planes:
                shapes[f"{p}.downsample.0.weight"] = (planes, inplanes, 1, 1, 1)
                bn(f"{p}.downsample.1", planes)
            inplanes = planes
    shapes["fc.weight"] = (400, 512)
    shapes["fc.bias"] = (400,)
    return shapes


@pytest.fixture(scope="module")
def model() -> R2Plus1D18:
    torch.manual_seed(0)
    return R2Plus1D18().eval()


def test_state_dict_matches_torchvision(model: R2Plus1D18) -> None:
    expected = _torchvision_r2plus1d18_shapes()
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(got) == list(expected)  # same names in the same order
    assert got == expected
    # torchvision documents 31,505,325 parameters for r2plus1d_18
    assert sum(p.numel() for p in model.parameters()) == 31_505_325


def test_weights_file_loads_with_weights_only(model: R2Plus1D18, tmp_path) -> None:
    path = tmp_path / "r2plus1d_18.pth"
    torch.save(model.state_dict(), path)
    loaded = load_r2plus1d18(path)
    assert not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_bad_weights_file_is_one_line(tmp_path) -> None:
    bad = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(AvparseError, match="not an R\\(2\\+1\\)D-18 state dict") as info:
        load_r2plus1d18(bad)
    assert "\n" not in str(info.value) and str(bad) in str(info.value)
    with pytest.raises(AvparseError, match="not found"):
        load_r2plus1d18(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(AvparseError, match="not a readable"):
        load_r2plus1d18(garbage)


def test_offline_without_cached_weights_says_so(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(AvparseError, match="offline"):
        load_r2plus1d18(None)


def test_snippet_sampling_cuts_80_frames_into_10_groups_of_8() -> None:
    frames = torch.zeros(80, 20, 30, 3, dtype=torch.uint8)
    for i in range(80):
        frames[i] = i  # the frame index as brightness tells which frames went where
    x = snippets(frames, size=16)
    assert x.shape == (10, 3, 8, 16, 16)
    std = torch.tensor([0.22803, 0.22145, 0.216989])
    mean = torch.tensor([0.43216, 0.394666, 0.37645])
    brightness = (x[:, :, :, 0, 0].permute(0, 2, 1) * std + mean)[..., 0] * 255
    assert torch.allclose(brightness, torch.arange(80).view(10, 8).float(), atol=1e-3)
    # a short clip (fewer frames than segments) still yields one frame per snippet
    assert snippets(frames[:4], size=8).shape == (10, 3, 1, 8, 8)
    with pytest.raises(ValueError):
        snippets(torch.zeros(0, 8, 8, 3, dtype=torch.uint8))


def test_snippet_features_shape(model: R2Plus1D18) -> None:
    frames = torch.randint(0, 256, (20, 24, 24, 3), dtype=torch.uint8)
    feats = snippet_features(model, frames, size=16)
    assert feats.shape == (10, 512)
    assert torch.isfinite(feats).all() and (feats >= 0).all()  # pooled after a ReLU
    # the logits path is intact too (published weights are a complete classifier)
    with torch.no_grad():
        logits = model(snippets(frames[:4], segments=1, size=16))
    assert logits.shape == (1, 400)


def test_default_weights_come_through_torch_hub(model: R2Plus1D18, monkeypatch) -> None:
    calls = []

    def fake(url, **kwargs):
        calls.append((url, kwargs))
        return model.state_dict()

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("AVPARSE_OFFLINE", raising=False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake)
    loaded = load_r2plus1d18(None)
    url, kwargs = calls[0]
    assert url.endswith("/r2plus1d_18-91a641e6.pth")
    assert kwargs["weights_only"] and kwargs["check_hash"]
    assert torch.equal(loaded.fc.weight, model.fc.weight)
