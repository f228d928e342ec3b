"""The temporal teacher's network against a plain re-implementation of reference section 12,
padding invariance, model folders, and loading a UWAV-format ``checkpoint_best.pt``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from avparse.errors import AvparseError
from avparse.temporal.checkpoint import load_teacher, save_teacher
from avparse.temporal.config import TeacherConfig, teacher_config
from avparse.temporal.network import TemporalTeacher, pretrain_loss

SMALL = {"audio_dim": 12, "visual_dim": 10, "hidden_dim": 16, "nhead": 2, "ff_dim": 24,
         "num_layers": 2, "dropout": 0.0, "audio_text_dim": 6, "visual_text_dim": 8}  # fmt: skip


def _cfg(**kw: object) -> TeacherConfig:
    return TeacherConfig(**{**SMALL, **kw})  # type: ignore[arg-type]


def _inputs(cfg: TeacherConfig, lengths: list[int], c: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    a = torch.randn(len(lengths), t, cfg.audio_dim, generator=g)
    v = torch.randn(len(lengths), t, cfg.visual_dim, generator=g)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    at = nn.functional.normalize(torch.randn(c, cfg.audio_text_dim, generator=g), dim=-1)
    vt = nn.functional.normalize(torch.randn(c, cfg.visual_text_dim, generator=g), dim=-1)
    return a, v, at, vt, mask


# ---- a plain re-implementation of section 12, written from the text ------------------------


def _ln(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * w + b


def _plain_tower(sd, p, x, valid, cfg, final):
    """MLP in -> 2h -> h (ReLU), post-norm encoder layers, MLP into the text space."""
    x = torch.relu(x @ sd[f"proj_{p}.layers.0.weight"].T + sd[f"proj_{p}.layers.0.bias"])
    x = x @ sd[f"proj_{p}.layers.1.weight"].T + sd[f"proj_{p}.layers.1.bias"]
    h, nh = cfg.hidden_dim, cfg.nhead
    dh = h // nh
    for layer in range(cfg.num_layers):
        k = f"{p}_transformer.encoder.layers.{layer}."
        qkv = x @ sd[k + "self_attn.in_proj_weight"].T + sd[k + "self_attn.in_proj_bias"]
        q, kk, v = qkv.split(h, dim=-1)
        heads = []
        for i in range(nh):
            s = slice(i * dh, (i + 1) * dh)
            score = q[:, s] @ kk[:, s].T / math.sqrt(dh)
            score = score.masked_fill(~valid[None, :], float("-inf"))
            heads.append(torch.softmax(score, dim=-1) @ v[:, s])
        att = torch.cat(heads, -1) @ sd[k + "self_attn.out_proj.weight"].T
        att = att + sd[k + "self_attn.out_proj.bias"]
        x = _ln(x + att, sd[k + "norm1.weight"], sd[k + "norm1.bias"])
        ff = torch.relu(x @ sd[k + "linear1.weight"].T + sd[k + "linear1.bias"])
        ff = ff @ sd[k + "linear2.weight"].T + sd[k + "linear2.bias"]
        x = _ln(x + ff, sd[k + "norm2.weight"], sd[k + "norm2.bias"])
    y = torch.relu(
        x @ sd[f"final_proj_{p}.layers.0.weight"].T + sd[f"final_proj_{p}.layers.0.bias"]
    )
    return y @ sd[f"final_proj_{p}.layers.1.weight"].T + sd[f"final_proj_{p}.layers.1.bias"]


def _plain_loss(za, zv, y, mask, wp=5.0, wn=1.0):
    total, count = 0.0, 0
    b, t, c = za.shape
    for i in range(b):
        for j in range(t):
            if not mask[i, j]:
                continue
            count += 1
            for k in range(c):
                p = float(torch.sigmoid(za[i, j, k]) * torch.sigmoid(zv[i, j, k]))
                target = float(y[i, j, k])
                bce = -(target * math.log(p) + (1 - target) * math.log(1 - p))
                total += bce * (wp if y[i, :, k].any() else wn)
    return total / (count * c)


def test_network_and_loss_match_plain_reimplementation() -> None:
    torch.manual_seed(0)
    cfg = _cfg()
    model = TemporalTeacher(cfg).eval()
    a, v, at, vt, mask = _inputs(cfg, [7, 4, 2])
    with torch.no_grad():
        za, zv = model(a, v, at, vt, mask)
    sd = model.state_dict()
    for i, n in enumerate(mask.sum(1).tolist()):
        valid = mask[i]
        pa = _plain_tower(sd, "a", a[i], valid, cfg, None) @ at.T * 3.2912
        pv = _plain_tower(sd, "v", v[i], valid, cfg, None) @ vt.T * 4.6052
        torch.testing.assert_close(za[i, :n], pa[:n], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(zv[i, :n], pv[:n], atol=1e-5, rtol=1e-5)
    y = (torch.rand(za.shape, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    loss = pretrain_loss(za, zv, y, mask)
    assert float(loss) == pytest.approx(_plain_loss(za, zv, y, mask), rel=1e-5)


def test_padding_invariance_and_padded_labels_ignored() -> None:
    torch.manual_seed(1)
    cfg = _cfg()
    model = TemporalTeacher(cfg).eval()
    a, v, at, vt, mask = _inputs(cfg, [9, 3, 5], seed=2)
    with torch.no_grad():
        za, zv = model(a, v, at, vt, mask)
        for i, n in enumerate(mask.sum(1).tolist()):
            ya, yv = model(a[i : i + 1, :n], v[i : i + 1, :n], at, vt)
            torch.testing.assert_close(za[i, :n], ya[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(zv[i, :n], yv[0], atol=1e-5, rtol=1e-5)
    # logits on padded segments do not change the loss
    y = torch.zeros_like(za)
    y[0, 1, 2] = 1
    z2 = za.clone()
    z2[1, 3:] = 50.0  # clip 1 has 3 real segments
    assert float(pretrain_loss(za, zv, y, mask)) == pytest.approx(
        float(pretrain_loss(z2, zv, y, mask))
    )


def test_model_folder_round_trip(tmp_path: Path) -> None:
    cfg = _cfg(clip_text="x/clip", clap_text="x/clap")
    model = TemporalTeacher(cfg)
    save_teacher(model, cfg, tmp_path / "m")
    loaded, cfg2 = load_teacher(tmp_path / "m")
    assert cfg2 == cfg
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    # a run folder resolves to its model/
    save_teacher(model, cfg, tmp_path / "run" / "model")
    assert load_teacher(tmp_path / "run")[1] == cfg


# ---- UWAV's module tree (model/TemporalTransformer.py), rebuilt from its structure ---------


class _UMLP(nn.Module):
    def __init__(self, i: int, h: int, o: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(i, h), nn.Linear(h, o)])

    def forward(self, x):
        return self.layers[1](torch.relu(self.layers[0](x)))


class _UEnc(nn.Module):
    def __init__(self, h, nh, ff, dropout, n) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(h, nh, dim_feedforward=ff, dropout=dropout)
        self.encoder = nn.TransformerEncoder(layer, n, enable_nested_tensor=False)


class _UWAVTeacher(nn.Module):
    """Sequence-first encoders and an additive -1e10 mask, as the published module."""

    def __init__(self, cfg: TeacherConfig) -> None:
        super().__init__()
        h = cfg.hidden_dim
        self.nhead = cfg.nhead
        self.proj_a = _UMLP(cfg.audio_dim, 2 * h, h)
        self.proj_v = _UMLP(cfg.visual_dim, 2 * h, h)
        args = (h, cfg.nhead, cfg.ff_dim, cfg.dropout, cfg.num_layers)
        self.a_transformer = _UEnc(*args)
        self.v_transformer = _UEnc(*args)
        self.register_buffer("a_logit_scale", torch.tensor(3.2912))
        self.register_buffer("v_logit_scale", torch.tensor(4.6052))
        self.final_proj_a = _UMLP(h, cfg.audio_text_dim, cfg.audio_text_dim)
        self.final_proj_v = _UMLP(h, cfg.visual_text_dim, cfg.visual_text_dim)

    def forward(self, a, v, at, vt, valid):
        attn = ~(valid[:, None, :] & valid[:, :, None])
        attn = attn.float() * -1e10
        attn = attn.repeat_interleave(self.nhead, dim=0)
        a = self.a_transformer.encoder(self.proj_a(a).transpose(0, 1), mask=attn).transpose(0, 1)
        v = self.v_transformer.encoder(self.proj_v(v).transpose(0, 1), mask=attn).transpose(0, 1)
        za = self.final_proj_a(a) @ at.T * self.a_logit_scale
        zv = self.final_proj_v(v) @ vt.T * self.v_logit_scale
        return za, zv


def test_uwav_state_dict_loads_with_preset_and_gives_its_outputs(tmp_path: Path) -> None:
    torch.manual_seed(3)
    overrides = {k: v for k, v in SMALL.items()}
    cfg = teacher_config("tiny", overrides)
    ref = _UWAVTeacher(cfg).eval()
    path = tmp_path / "checkpoint_best.pt"
    torch.save(ref.state_dict(), path)
    model, loaded_cfg = load_teacher(path, "tiny", overrides)
    assert loaded_cfg.hidden_dim == 16
    model.eval()
    a, v, at, vt, mask = _inputs(cfg, [6, 3], seed=4)
    with torch.no_grad():
        ra, rv = ref(a, v, at, vt, mask)
        za, zv = model(a, v, at, vt, mask)
    m = mask[..., None].expand_as(za)
    torch.testing.assert_close(za[m], ra[m], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(zv[m], rv[m], atol=1e-5, rtol=1e-5)
    # the published file with a DDP prefix loads too
    torch.save({f"module.{k}": t for k, t in ref.state_dict().items()}, tmp_path / "ddp.pt")
    load_teacher(tmp_path / "ddp.pt", "tiny", overrides)


def test_teacher_checkpoint_bad_input(tmp_path: Path) -> None:
    cfg = teacher_config("tiny", SMALL)
    torch.save(TemporalTeacher(cfg).state_dict(), tmp_path / "t.pt")
    with pytest.raises(AvparseError, match="pass --preset"):
        load_teacher(tmp_path / "t.pt")
    with pytest.raises(AvparseError, match="has shape"):
        load_teacher(tmp_path / "t.pt", "tiny", {**SMALL, "visual_dim": 11})
    with pytest.raises(AvparseError, match="missing key"):
        load_teacher(tmp_path / "t.pt", "tiny", {**SMALL, "num_layers": 3})
    with pytest.raises(AvparseError, match="teacher not found"):
        load_teacher(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AvparseError, match="no teacher here"):
        load_teacher(tmp_path / "empty")
    with pytest.raises(AvparseError, match="unknown teacher preset"):
        teacher_config("nope")
    with pytest.raises(AvparseError, match="multiple of nhead"):
        _cfg(nhead=3)
    np.testing.assert_equal(cfg.audio_scale, 3.2912)
