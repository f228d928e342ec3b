"""R(2+1)D-18 (Kinetics-400): the 3D network behind the published ``feats/r2plus1d_18`` features.

The module tree and parameter names follow torchvision's ``r2plus1d_18`` exactly, so the
published state dict ``r2plus1d_18-91a641e6.pth`` loads unchanged with
``torch.load(weights_only=True)`` (torchvision itself cannot be installed beside torch 2.13).
:meth:`R2Plus1D18.features` returns the 512-d pooled feature of each snippet (the input of
``fc``), which is what the student's 3D branch reads.

Snippet sampling that reproduces ``feats/r2plus1d_18`` (10, 512), as documented in
``docs/parsing.md``: decode the 10 s clip at 8 fps (80 frames), resize every frame to 112x112
(plain resize, no crop), scale to [0, 1], normalise with the Kinetics mean and std below, and cut
the 80 frames into 10 snippets of 8 consecutive frames (one snippet per one-second segment).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from avparse.data.layout import SEGMENTS
from avparse.errors import AvparseError, first_line, torch_load_reason
from avparse.features.sampling import SNIPPET_SIZE

WEIGHTS_URL = "https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth"
"""torchvision's Kinetics-400 weights of R(2+1)D-18 (the file name carries its hash prefix)."""

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
FEATURE_DIM = 512


class Conv2Plus1D(nn.Sequential):
    """A 3x3x3 convolution factored into a spatial (1x3x3) and a temporal (3x1x1) one."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(
                in_planes,
                mid_planes,
                kernel_size=(1, 3, 3),
                stride=(1, stride, stride),
                padding=(0, 1, 1),
                bias=False,
            ),
            nn.BatchNorm3d(mid_planes),
            nn.ReLU(inplace=True),
            nn.Conv3d(
                mid_planes,
                out_planes,
                kernel_size=(3, 1, 1),
                stride=(stride, 1, 1),
                padding=(1, 0, 0),
                bias=False,
            ),
        )


class BasicBlock(nn.Module):
    """Residual block of two (2+1)D convolutions (torchvision's ``BasicBlock``)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        # Middle width chosen so the factored block has as many parameters as a full 3x3x3 one.
        mid = (in_planes * planes * 3 * 3 * 3) // (in_planes * 3 * 3 + 3 * planes)
        self.conv1 = nn.Sequential(
            Conv2Plus1D(in_planes, planes, mid, stride),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(Conv2Plus1D(planes, planes, mid), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class R2Plus1D18(nn.Module):
    """torchvision's ``r2plus1d_18``: stem, four layers of two blocks, average pool, ``fc``."""

    def __init__(self, num_classes: int = 400, *, init_weights: bool = True) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(
                3, 45, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False
            ),
            nn.BatchNorm3d(45),
            nn.ReLU(inplace=True),
            nn.Conv3d(45, 64, kernel_size=(3, 1, 1), stride=1, padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        )
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(FEATURE_DIM, num_classes)
        if init_weights:  # skipped when a state dict will overwrite every parameter anyway
            self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation, so a randomly built net behaves like the reference one.
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 512-d feature per snippet: ``x`` is (B, 3, T, H, W), normalised."""
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Kinetics-400 logits (kept so the published weights are a complete, checkable model)."""
        return self.fc(self.features(x))


def _offline() -> bool:
    return any(
        os.environ.get(k, "").strip().lower() in {"1", "true", "yes", "on"}
        for k in ("AVPARSE_OFFLINE", "HF_HUB_OFFLINE")
    )


def load_r2plus1d18(weights: str | Path | None = None, *, device: str = "cpu") -> R2Plus1D18:
    """R(2+1)D-18 with Kinetics-400 weights, in eval mode.

    Args:
        weights: a local ``.pth`` state dict (torchvision's file or a copy), or None to use
            torchvision's published file through ``torch.hub`` (downloaded once into the torch hub
            cache; in offline mode only an already cached file is used).
        device: torch device for the model.
    """
    model = R2Plus1D18(init_weights=False)
    if weights is None:
        name = WEIGHTS_URL.rsplit("/", 1)[1]
        cached = Path(torch.hub.get_dir()) / "checkpoints" / name
        if not cached.is_file() and _offline():
            raise AvparseError(
                f"R(2+1)D-18 weights {name} are not in {cached.parent} and offline mode is on; "
                "pass --r2plus1d FILE"
            )
        try:
            state = torch.hub.load_state_dict_from_url(
                WEIGHTS_URL, map_location="cpu", progress=False, check_hash=True, weights_only=True
            )
        except (OSError, RuntimeError) as exc:
            raise AvparseError(
                f"cannot download R(2+1)D-18 weights from {WEIGHTS_URL} ({exc}); "
                "pass --r2plus1d FILE"
            ) from None
    else:
        path = Path(weights)
        if not path.is_file():
            raise AvparseError(f"{path}: R(2+1)D-18 weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a bad file
            raise AvparseError(
                f"{path}: not a readable torch state dict ({torch_load_reason(exc)})"
            ) from None
    if not isinstance(state, dict):
        raise AvparseError(f"{weights}: expected a state dict of R(2+1)D-18")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise AvparseError(f"{weights}: not an R(2+1)D-18 state dict ({first_line(exc)})") from None
    return model.eval().to(device)


def snippets(
    frames: torch.Tensor, *, segments: int = SEGMENTS, size: int = SNIPPET_SIZE
) -> torch.Tensor:
    """Turn decoded frames into normalised network input, one snippet per segment.

    Args:
        frames: (N, H, W, 3) uint8 frames at :data:`SNIPPET_FPS`; N is cut into ``segments``
            equal groups (N = 80 for a 10 s clip gives 8 frames per snippet). Groups are formed by
            ``round(linspace)`` boundaries, so a clip with a frame more or less still works.
        segments: number of snippets to produce.
        size: frame side after resizing (112 reproduces the published features; tests use less).

    Returns:
        (segments, 3, L, size, size) float tensor, L = frames per snippet (at least 1).
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (N, H, W, 3) with N > 0, got {tuple(frames.shape)}")
    n = frames.shape[0]
    length = max(1, round(n / segments))
    x = frames.permute(0, 3, 1, 2).float().div_(255.0)
    x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    mean = torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(KINETICS_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    starts = torch.linspace(0, max(n - length, 0), segments).round().long()
    index = starts[:, None] + torch.arange(length)[None, :]
    index = index.clamp_(max=n - 1)
    return x[index].permute(0, 2, 1, 3, 4).contiguous()  # (S, 3, L, H, W)


@torch.no_grad()
def snippet_features(
    model: R2Plus1D18, frames: torch.Tensor, *, segments: int = SEGMENTS, size: int = SNIPPET_SIZE
) -> torch.Tensor:
    """(segments, 512) features of ``frames`` (N, H, W, 3) uint8 at 8 fps; see :func:`snippets`."""
    device = next(model.parameters()).device
    return model.features(snippets(frames, segments=segments, size=size).to(device)).float().cpu()
