"""The HAN student: golden outputs, an independent reference forward, checkpoint formats."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avparse.errors import AvparseError
from avparse.model.checkpoint import load_student, save_student
from avparse.model.config import PRESETS, ModelConfig, model_config
from avparse.model.han import HAN

GOLDEN = Path(__file__).parent / "data" / "han_tiny_golden.safetensors"
GOLDEN_CASES = {
    # name: (preset, overrides)
    "post": ("tiny", {}),
    "pre_clap": ("tiny", {"audio_feature": "clap", "visual_feature": "clip", "norm": "pre"}),
}
RTOL, ATOL = 1e-5, 1e-6
"""Golden tolerance: float32 on CPU; differences come only from kernel summation order."""


def _inputs(config: ModelConfig, batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, config.audio_frames, config.audio_dim, generator=g),
        torch.randn(batch, config.visual_frames, config.visual_dim, generator=g),
        torch.randn(batch, 10, config.motion_dim, generator=g),
    )


def _golden_tensors() -> dict[str, torch.Tensor]:
    """Weights and outputs of each golden case (run to (re)create the file)."""
    out = {}
    for name, (preset, over) in GOLDEN_CASES.items():
        torch.manual_seed(0)
        model = HAN(model_config(preset, over)).eval()
        inputs = _inputs(model.config, 3, 1)
        with torch.no_grad():
            result = model(*inputs)
        for k, v in model.state_dict().items():
            out[f"{name}/weights/{k}"] = v
        for k, v in result._asdict().items():
            out[f"{name}/outputs/{k}"] = v
    return out


@pytest.mark.parametrize("name", list(GOLDEN_CASES))
def test_golden_outputs(name: str) -> None:
    from safetensors.torch import load_file

    stored = load_file(str(GOLDEN))
    preset, over = GOLDEN_CASES[name]
    model = HAN(model_config(preset, over)).eval()
    prefix = f"{name}/weights/"
    model.load_state_dict({k[len(prefix) :]: v for k, v in stored.items() if k.startswith(prefix)})
    inputs = _inputs(model.config, 3, 1)  # a seeded CPU generator: stable across versions
    with torch.no_grad():
        result = model(*inputs)._asdict()
    for key, value in result.items():
        torch.testing.assert_close(value, stored[f"{name}/outputs/{key}"], rtol=RTOL, atol=ATOL)


# --- an independent forward pass written from reference section 5 -----------------------------


def reference_forward(
    sd: dict[str, torch.Tensor], d: int, nhead: int, norm: str, audio, visual, motion
):
    """Plain torch ops on state-dict tensors; returns (video prob, frame prob)."""

    def lin(x, name):
        return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]

    def ln(x, name):
        return F.layer_norm(x, (d,), sd[f"{name}.weight"], sd[f"{name}.bias"])

    def mha(prefix, q, kv):
        out, _ = F.multi_head_attention_forward(
            q.transpose(0, 1), kv.transpose(0, 1), kv.transpose(0, 1), d, nhead,
            sd[f"{prefix}.in_proj_weight"], sd[f"{prefix}.in_proj_bias"], None, None, False,
            0.0, sd[f"{prefix}.out_proj.weight"], sd[f"{prefix}.out_proj.bias"],
            training=False, need_weights=False,
        )  # fmt: skip
        return out.transpose(0, 1)

    b = audio.shape[0]
    if audio.shape[1] == 64:  # CLAP map: (768, 2, 32) -> bicubic (2, 1024) -> linear -> rows mean
        grid = audio.permute(0, 2, 1).reshape(b, audio.shape[2], 2, 32)
        grid = F.interpolate(grid, size=(2, 1024), mode="bicubic", align_corners=False)
        x = lin(grid.permute(0, 2, 3, 1), "fc_a").mean(dim=1)
        a = F.adaptive_avg_pool1d(x.transpose(1, 2), 10).transpose(1, 2)
    else:
        a = lin(audio, "fc_a")
    v = lin(visual, "fc_v")
    if v.shape[1] == 80:
        v = F.avg_pool1d(v.transpose(1, 2), 8).transpose(1, 2)
    v = lin(torch.cat([v, lin(motion, "fc_st")], dim=-1), "fc_fusion")

    def layer(i, q, other):
        p = f"hat_encoder.layers.{i}"
        if norm == "post":
            q = ln(q + mha(f"{p}.cm_attn", q, other) + mha(f"{p}.self_attn", q, q), f"{p}.norm1")
            return ln(q + lin(F.relu(lin(q, f"{p}.linear1")), f"{p}.linear2"), f"{p}.norm2")
        qn = ln(q, f"{p}.norm1")
        q = q + mha(f"{p}.cm_attn", qn, other) + mha(f"{p}.self_attn", qn, qn)
        return q + lin(F.relu(lin(ln(q, f"{p}.norm2"), f"{p}.linear1")), f"{p}.linear2")

    n_layers = len({k.split(".")[2] for k in sd if k.startswith("hat_encoder.layers.")})
    for i in range(n_layers):
        a = layer(i, a, v)
        v = layer(i, v, a)
    if norm == "pre":
        a, v = ln(a, "hat_encoder.final_norm_a"), ln(v, "hat_encoder.final_norm_v")
    x = torch.stack([a, v], dim=2)
    prob = torch.sigmoid(lin(x, "fc_prob"))
    frame_att = torch.softmax(lin(x, "fc_frame_att"), dim=1)
    av_att = torch.softmax(lin(x, "fc_av_att"), dim=2)
    return (frame_att * prob * av_att).sum(dim=(1, 2)), prob


@pytest.mark.parametrize(
    ("preset", "norm"), [("valor", "post"), ("valor++", "post"), ("valor++", "pre")]
)
def test_reference_forward_on_published_checkpoint(tmp_path: Path, preset: str, norm: str) -> None:
    """A published-format .pt (DataParallel ``module.`` prefix, random weights) loads into the
    preset's network (smaller d for speed, real key layout), matching the reference forward."""
    over = {"d_model": 32, "nhead": 4, "dim_feedforward": 48, "norm": norm, "dropout": 0.0}
    if preset == "valor++":
        over["num_layers"] = 2
    torch.manual_seed(3)
    source = HAN(model_config(preset, over))
    with torch.no_grad():  # LayerNorms away from their identity init, so they are exercised
        for k, p in source.named_parameters():
            if "norm" in k:
                p.add_(0.3 * torch.randn_like(p))
    sd = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = tmp_path / "checkpoint_best.pt"
    torch.save(sd, path)
    model, config = load_student(path, preset=preset, overrides=over)
    assert not model.training and config.norm == norm
    inputs = _inputs(config, 2, 5)
    plain = {k.removeprefix("module."): v for k, v in torch.load(path, weights_only=True).items()}
    with torch.no_grad():
        want_video, want_frame = reference_forward(plain, 32, 4, norm, *inputs)
        got = model(*inputs)
    torch.testing.assert_close(got.video_prob, want_video, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.frame_prob, want_frame, rtol=1e-4, atol=1e-5)
    assert got.frame_prob.shape == (2, 10, 2, 25)
    assert torch.all((got.audio_prob >= 0) & (got.audio_prob <= 1 + 1e-6))


def test_published_keys_and_shapes() -> None:
    keys = HAN(model_config("valor")).state_dict()
    for name in ("fc_prob", "fc_frame_att", "fc_av_att", "fc_a", "fc_v", "fc_st", "fc_fusion"):
        assert f"{name}.weight" in keys
    for part in ("self_attn.in_proj_weight", "cm_attn.out_proj.weight", "linear1.weight",
                 "linear2.bias", "norm1.weight", "norm2.bias"):  # fmt: skip
        assert f"hat_encoder.layers.0.{part}" in keys
    assert "hat_encoder.final_norm_a.weight" in keys and "hat_encoder.final_norm_v.bias" in keys
    assert tuple(keys["fc_v.weight"].shape) == (512, 2048)
    plus = HAN(model_config("valor++")).state_dict()
    assert tuple(plus["fc_a.weight"].shape) == (256, 768)
    assert "hat_encoder.layers.3.cm_attn.in_proj_weight" in plus
    assert set(PRESETS) >= {"han", "valor", "valor+", "valor++", "tiny"}


def test_checkpoint_errors_are_one_line(tmp_path: Path) -> None:
    torch.manual_seed(0)
    sd = HAN(model_config("tiny")).state_dict()
    path = tmp_path / "wrapped.pt"
    torch.save({"model": sd}, path)
    model, _ = load_student(path, preset="tiny")  # {"model": sd} wrapper accepted
    assert torch.equal(model.state_dict()["fc_prob.weight"], sd["fc_prob.weight"])
    with pytest.raises(AvparseError, match=r"fc_a\.weight.*\(16, 128\).*\(8, 128\)") as err:
        load_student(path, preset="tiny", overrides={"d_model": 8})
    assert "\n" not in str(err.value)
    torch.save({k: v for k, v in sd.items() if k != "fc_st.bias"}, tmp_path / "missing.pt")
    with pytest.raises(AvparseError, match=r"missing key 'fc_st\.bias'"):
        load_student(tmp_path / "missing.pt", preset="tiny")
    torch.save({**sd, "extra.weight": torch.zeros(1)}, tmp_path / "extra.pt")
    with pytest.raises(AvparseError, match=r"unexpected key 'extra\.weight'"):
        load_student(tmp_path / "extra.pt", preset="tiny")
    with pytest.raises(AvparseError, match="pass --preset"):
        load_student(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(AvparseError, match=r"junk\.pt: not a state dict"):
        load_student(tmp_path / "junk.pt", preset="tiny")


def test_model_folder_round_trip(tmp_path: Path) -> None:
    config = model_config("tiny", {"vocabulary": "ave"})
    assert config.num_classes == 28 and config.class_names[0] != "Speech"
    torch.manual_seed(1)
    model = HAN(config).eval()
    save_student(model, config, tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["vocabulary"] == "ave" and saved["audio_feature"] == "vggish"
    assert len(saved["class_names"]) == 28
    loaded, cfg = load_student(tmp_path / "m")
    assert cfg == config
    inputs = _inputs(config, 2, 0)
    with torch.no_grad():
        torch.testing.assert_close(loaded(*inputs).video_prob, model(*inputs).video_prob)
    assert not list((tmp_path / "m").glob(".*tmp*")), "temporary files left behind"


def test_hub_id_offline_is_one_line(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AvparseError, match="offline") as err:
        load_student("avparse-test/no-such-model")
    assert "\n" not in str(err.value)
    with pytest.raises(AvparseError, match="no such file"):
        load_student("./does/not/exist")


def test_config_validation() -> None:
    with pytest.raises(AvparseError, match="divisible"):
        model_config("tiny", {"nhead": 3})
    with pytest.raises(AvparseError, match="unknown model config key"):
        model_config("tiny", {"depth": 3})
    with pytest.raises(AvparseError, match="unknown preset"):
        model_config("valor+++")
    cfg = model_config("valor", {"visual_feature": "clip"})
    assert cfg.visual_dim == 768


if __name__ == "__main__" and "--regenerate" in sys.argv:
    from safetensors.torch import save_file

    GOLDEN.parent.mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in _golden_tensors().items()}, str(GOLDEN))
    print(f"wrote {GOLDEN}")


def test_visual_attends_convention() -> None:
    """``updated`` (reference) vs ``previous`` (original HAN code): same weights, other order."""
    torch.manual_seed(0)
    cfg = model_config("tiny", {"dropout": 0.0, "num_layers": 2})
    updated = HAN(cfg).eval()
    previous = HAN(model_config("tiny", {"dropout": 0.0, "num_layers": 2,
                                         "visual_attends": "previous"})).eval()  # fmt: skip
    previous.load_state_dict(updated.state_dict())
    a, v = torch.randn(3, 10, cfg.d_model), torch.randn(3, 10, cfg.d_model)
    with torch.no_grad():
        _, uv = updated.hat_encoder(a, v)
        pa, pv = previous.hat_encoder(a, v)
        ea, ev = a, v
        for layer in updated.hat_encoder.layers:  # the original HAN order, by hand
            ea, ev = layer(ea, ev), layer(ev, ea)
    torch.testing.assert_close((pa, pv), (ea, ev))
    assert not torch.allclose(uv, pv)
    with pytest.raises(AvparseError, match="visual_attends"):
        model_config("tiny", {"visual_attends": "sideways"})


def test_config_derived_values_and_0_1_files(tmp_path: Path) -> None:
    """Dims, class count and vocabulary follow from feature kinds and names; 0.1 files load."""
    from avparse.vocab import LLP

    cfg = model_config("valor++")
    assert (cfg.audio_dim, cfg.visual_dim, cfg.motion_dim, cfg.num_classes) == (768, 768, 512, 25)
    assert cfg.vocab is LLP and model_config("tiny", {"vocabulary": "ave"}).vocab.name == "ave"
    custom = model_config("tiny", {"class_names": ["dog", "car"], "vocabulary": "mine"})
    assert custom.num_classes == 2 and custom.vocab.names == ["dog", "car"]
    # a config.json written by 0.1 (derived keys stored) loads to the same config
    old = {**model_config("valor").to_dict()}
    assert old["audio_dim"] == 128 and old["num_classes"] == 25 and "feature_dims" not in old
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert ModelConfig.load(tmp_path / "config.json") == model_config("valor")
    # features of other teachers: a width that differs from the kind's is kept
    small = model_config("valor++", audio_dim=64, visual_dim=16)
    assert small.feature_dims == {"audio": 64, "visual": 16} and small.audio_dim == 64
    assert ModelConfig.from_dict(small.to_dict()) == small
    with pytest.raises(AvparseError, match="num_classes is 7 but 25 class names"):
        ModelConfig.from_dict({**old, "num_classes": 7})


def test_one_preset_registry_holds_architecture_and_recipe() -> None:
    from avparse.model.config import register_preset
    from avparse.train.recipe import recipe

    assert PRESETS["valor++"].model["audio_feature"] == "clap"
    assert PRESETS["valor++"].recipe["seed"] == 87
    try:  # adding a preset is one call; both halves are then usable by name
        register_preset("test-only", model={"d_model": 32, "nhead": 4}, recipe={"lr": 2e-4})
        assert model_config("test-only").d_model == 32 and recipe("test-only").lr == 2e-4
    finally:
        PRESETS.pop("test-only", None)
    with pytest.raises(AvparseError, match="unknown model config key 'depth'"):
        register_preset("bad", model={"depth": 3}, recipe={})


def test_the_students_dropout_keeps_its_share_and_expectation() -> None:
    """The CPU mask of han.Dropout (four 16-bit draws per random word): about 1 - p of the
    values kept, scaled so the mean is kept, the gradient masked alike, seeded, identity in eval."""
    from avparse.model.han import Dropout

    drop = Dropout(0.3)
    x = torch.ones(400, 500, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.7) < 0.005 and abs(y.mean().item() - 1) < 0.01
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * mask * s)/dx = mask * s = y for x = 1
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)  # the global seed decides the mask
    xb = torch.rand(300, 500).add(0.5).bfloat16()
    half = drop(xb)  # bfloat16 in and out, the scale applied in float32 and rounded once
    kept = half != 0
    assert half.dtype == torch.bfloat16
    assert torch.equal(half[kept], (xb.float() * (1 / 0.7)).bfloat16()[kept])
    drop.eval()
    assert torch.equal(drop(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
