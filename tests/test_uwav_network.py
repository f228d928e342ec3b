"""UWAV's student network (``arch="uwav"``): its module tree, its state dicts, its outputs.

The reference below is written from UWAV's published ``HybridAttentionNet`` (``model/HAN.py``
of the public UWAV code, trained by ``scripts/train_han.sh``) with plain torch ops on
state-dict tensors: audio MLP (in -> 2h -> h, ReLU), the 2-D frames averaged to segments,
concatenated with the 3-D features and projected by one MLP (none without 3-D features), the
HAN encoder (audio first, then visual attending to the updated audio), and the MIL pooling with
MLP attentions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avparse.errors import AvparseError
from avparse.model.checkpoint import load_student
from avparse.model.config import PRESETS, model_config
from avparse.model.han import HAN

D, HEADS = 32, 4
SMALL = {"d_model": D, "nhead": HEADS, "dim_feedforward": 48, "num_layers": 2, "dropout": 0.0}
WIDTHS = {"audio": 12, "visual": 20, "motion": 8}


def uwav_reference(sd, *, pre_norm: bool, audio, visual, motion=None):
    """UWAV's forward, written plainly; returns (video, audio, visual probs, frame logits)."""

    def lin(x, name):
        return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]

    def mlp(x, name):
        n = len({k for k in sd if k.startswith(f"{name}.layers.") and k.endswith(".weight")})
        for j in range(n):
            x = lin(x, f"{name}.layers.{j}")
            x = F.relu(x) if j < n - 1 else x
        return x

    def ln(x, name):
        return F.layer_norm(x, (D,), sd[f"{name}.weight"], sd[f"{name}.bias"])

    def mha(prefix, q, kv):  # sequence-first, as nn.MultiheadAttention by default
        out, _ = F.multi_head_attention_forward(
            q, kv, kv, D, HEADS, sd[f"{prefix}.in_proj_weight"], sd[f"{prefix}.in_proj_bias"],
            None, None, False, 0.0, sd[f"{prefix}.out_proj.weight"], sd[f"{prefix}.out_proj.bias"],
            training=False, need_weights=False,
        )  # fmt: skip
        return out

    def han_layer(i, src_q, src_v):
        p = f"hat_encoder.layers.{i}"
        q, v = src_q.transpose(0, 1), src_v.transpose(0, 1)
        if pre_norm:
            qn = ln(q, f"{p}.norm1")
            q = q + mha(f"{p}.cm_attn", qn, v) + mha(f"{p}.self_attn", qn, qn)
            q = q + lin(F.relu(lin(ln(q, f"{p}.norm2"), f"{p}.linear1")), f"{p}.linear2")
        else:
            q = ln(q + mha(f"{p}.cm_attn", q, v) + mha(f"{p}.self_attn", q, q), f"{p}.norm1")
            q = ln(q + lin(F.relu(lin(q, f"{p}.linear1")), f"{p}.linear2"), f"{p}.norm2")
        return q.transpose(0, 1)

    b, t = audio.shape[:2]
    a = mlp(audio, "fc_a")
    if visual.shape[1] != t:  # frame-level 2-D features: mean over each segment's frames
        visual = visual.reshape(b, t, visual.shape[1] // t, -1).mean(dim=2)
    v = visual if motion is None else mlp(torch.cat([visual, motion], dim=-1), "fc_fusion")
    n_layers = len({k.split(".")[2] for k in sd if k.startswith("hat_encoder.layers.")})
    for i in range(n_layers):
        a = han_layer(i, a, v)
        v = han_layer(i, v, a)
    if pre_norm:
        a, v = ln(a, "hat_encoder.final_norm_a"), ln(v, "hat_encoder.final_norm_v")
    feat = torch.cat([a.unsqueeze(-2), v.unsqueeze(-2)], dim=-2)
    logits = lin(feat, "fc_prob")
    probs = torch.sigmoid(logits)
    frame_att = torch.softmax(mlp(feat, "fc_frame_att"), dim=1)
    av_att = torch.softmax(mlp(feat, "fc_av_att"), dim=2)
    temporal = frame_att * probs
    video = (temporal * av_att).sum(dim=2).sum(dim=1)
    return video, temporal[:, :, 0].sum(dim=1), temporal[:, :, 1].sum(dim=1), logits


CASES = {
    # name: (overrides, 3-D input?)
    "standard-post": ({"proj_layers": 1, "mmil_layers": 1}, True),
    "standard-pre-deep": ({"norm": "pre", "proj_layers": 2, "mmil_layers": 2}, True),
    "clip-clap-post": (
        {"visual_feature": "clip", "motion_feature": "none", "mmil_layers": 2}, False
    ),
}  # fmt: skip
MAX_DIFF: dict[str, float] = {}


def _source(over: dict) -> tuple[HAN, dict]:
    dims = dict(WIDTHS)
    if over.get("motion_feature") == "none":
        dims = {"audio": WIDTHS["audio"], "visual": D}  # unprojected: visual width = d_model
    full = {**SMALL, **over, "feature_dims": dims}
    torch.manual_seed(7)
    model = HAN(model_config("uwav", full))
    with torch.no_grad():  # LayerNorms away from their identity init, so they are exercised
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    return model, full


@pytest.mark.parametrize("case", list(CASES))
def test_uwav_state_dict_gives_uwavs_outputs(tmp_path: Path, case: str) -> None:
    over, with_motion = CASES[case]
    source, full = _source(over)
    path = tmp_path / "checkpoint_best.pt"
    torch.save(source.state_dict(), path)  # UWAV saves model.state_dict() as it is
    model, config = load_student(path, preset="uwav", overrides=full)  # weights_only=True
    assert config.arch == "uwav" and not model.training
    sd = torch.load(path, weights_only=True)
    g = torch.Generator().manual_seed(11)
    audio = torch.randn(3, 10, WIDTHS["audio"], generator=g)
    frames = 80 if with_motion else 10  # ResNet frames (8 per segment) or CLIP segments
    visual = torch.randn(3, frames, config.visual_dim, generator=g)
    motion = torch.randn(3, 10, WIDTHS["motion"], generator=g) if with_motion else None
    with torch.no_grad():
        want = uwav_reference(sd, pre_norm=config.norm == "pre", audio=audio, visual=visual,
                              motion=motion)  # fmt: skip
        got = model(audio, visual, motion)
    pairs = zip((got.video_prob, got.audio_prob, got.visual_prob, got.frame_logits), want,
                strict=True)  # fmt: skip
    diff = max(float((g_ - w_).abs().max()) for g_, w_ in pairs)
    MAX_DIFF[case] = diff
    assert diff < 1e-5, f"{case}: max abs difference {diff:.2e}"
    assert torch.equal(got.frame_prob, torch.sigmoid(got.frame_logits))


def test_uwav_module_tree_and_parameter_names() -> None:
    """The uwav preset at train_han.sh's sizes has UWAV's keys and shapes (built on meta)."""
    with torch.device("meta"):
        sd = HAN(model_config("uwav")).state_dict()
    layer = ["self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
             "self_attn.out_proj.bias", "cm_attn.in_proj_weight", "cm_attn.in_proj_bias",
             "cm_attn.out_proj.weight", "cm_attn.out_proj.bias", "linear1.weight",
             "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias",
             "norm2.weight", "norm2.bias"]  # fmt: skip
    expected = {f"hat_encoder.layers.{i}.{k}" for i in range(5) for k in layer}
    for name in ("fc_prob", "fc_frame_att.layers.0", "fc_av_att.layers.0", "fc_a.layers.0",
                 "fc_a.layers.1", "fc_fusion.layers.0", "hat_encoder.final_norm_a",
                 "hat_encoder.final_norm_v"):  # fmt: skip
        expected |= {f"{name}.weight", f"{name}.bias"}
    assert set(sd) == expected
    shapes = {
        "fc_a.layers.0.weight": (1024, 128), "fc_a.layers.1.weight": (512, 1024),
        "fc_fusion.layers.0.weight": (512, 2048 + 512), "fc_frame_att.layers.0.weight": (25, 512),
        "hat_encoder.layers.0.linear1.weight": (2048, 512),
        "hat_encoder.layers.4.self_attn.in_proj_weight": (1536, 512),
    }  # fmt: skip
    assert {k: tuple(sd[k].shape) for k in shapes} == shapes
    cfg = model_config("uwav")
    assert (cfg.nhead, cfg.proj_layers, cfg.mmil_layers, cfg.dropout, cfg.norm) == (
        16, 1, 1, 0.1, "post")  # fmt: skip
    deeper = HAN(model_config("uwav", {**SMALL, "proj_layers": 2, "mmil_layers": 3}))
    keys = deeper.state_dict()
    assert tuple(keys["fc_fusion.layers.0.weight"].shape) == (2 * D, 2048 + 512)
    assert "fc_av_att.layers.2.weight" in keys and "fc_av_att.layers.3.weight" not in keys


def test_valor_layout_stays_available_and_arch_fields_are_checked() -> None:
    with torch.device("meta"):
        valor = HAN(model_config("uwav", {"arch": "valor"})).state_dict()
    assert "fc_v.weight" in valor and "fc_a.layers.0.weight" not in valor
    with pytest.raises(AvparseError, match="arch=uwav"):
        model_config("valor", {"proj_layers": 2})
    with pytest.raises(AvparseError, match="needs UWAV's network"):
        model_config("valor", {"motion_feature": "none"})
    with pytest.raises(AvparseError, match="d_model must be 768"):
        model_config("uwav", {"visual_feature": "clip", "motion_feature": "none"})
    with pytest.raises(AvparseError, match="arch must be"):
        model_config("uwav", {"arch": "han"})


def test_other_layouts_state_dict_is_one_line_naming_keys_and_preset(tmp_path: Path) -> None:
    torch.manual_seed(0)
    valor = HAN(model_config("valor", SMALL | {"feature_dims": WIDTHS}))
    path = tmp_path / "valor.pt"
    torch.save(valor.state_dict(), path)
    with pytest.raises(AvparseError) as err:
        load_student(path, preset="uwav", overrides=SMALL | {"feature_dims": WIDTHS})
    msg = str(err.value)
    assert "\n" not in msg and "missing keys 'fc_prob.weight'" not in msg
    assert "missing keys 'fc_frame_att.layers.0.weight'" in msg
    assert "unexpected keys 'fc_a.weight'" in msg and "'uwav' (uwav layout)" in msg
    assert "fits preset" in msg and "valor" in msg.split("fits preset")[1]
    uwav, full = _source({})
    torch.save(uwav.state_dict(), path)
    with pytest.raises(AvparseError) as err:
        load_student(path, preset="valor", overrides=full | {"arch": "valor"})
    msg = str(err.value)
    assert "\n" not in msg and "unexpected keys 'fc_" in msg and "uwav" in msg.split(";")[-1]
    model, _ = load_student(path, preset="uwav", overrides=full)  # the fitting preset loads
    assert model.config.arch == "uwav"


def test_uwav_without_3d_features_has_idle_fusion_and_no_motion_input() -> None:
    model, _ = _source(CASES["clip-clap-post"][0])
    assert model.config.feature_kinds == {"audio": "vggish", "visual": "clip"}
    assert not any(p.requires_grad for p in model.fc_fusion.parameters())
    audio, visual = torch.randn(2, 7, WIDTHS["audio"]), torch.randn(2, 7, D)
    out = model(audio, visual)
    out.video_prob.sum().backward()
    assert all(p.grad is None for p in model.fc_fusion.parameters())
    assert model.fc_a.layers[0].weight.grad is not None
    with pytest.raises(AvparseError, match="takes no 3-D"):
        model(audio, visual, torch.randn(2, 7, 512))
    with pytest.raises(AvparseError, match="takes 3-D"):
        HAN(model_config("uwav", SMALL))(audio, torch.randn(2, 7, 2048))


def test_evaluate_and_convert_accept_a_uwav_state_dict(tmp_path: Path, cli) -> None:
    """``evaluate --checkpoint X.pt --preset P`` and ``convert`` take UWAV's format as VALOR's;
    the other layout's preset is one line naming the keys and the preset that fits."""
    import json

    from avparse.model.config import register_preset
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path / "root", n_train=4, n_val=6, n_test=4)
    store = tmp_path / "store"
    try:  # the uwav preset at test size, reached by name as a user would
        register_preset("test-uwav", model={**PRESETS["uwav"].model, **SMALL}, recipe={})
        torch.manual_seed(0)
        model = HAN(model_config("test-uwav"))
        with torch.no_grad():
            model.fc_prob.bias.add_(2.0)  # some events
        pt = tmp_path / "checkpoint_best.pt"
        torch.save(model.state_dict(), pt)
        res = cli("evaluate", "--data", root, "--checkpoint", pt, "--preset", "test-uwav",
                  "--split", "val", "--out", tmp_path / "a", "--store", store)  # fmt: skip
        assert res.code == 0, res.err
        res = cli("convert", pt, "--preset", "test-uwav", "--out", tmp_path / "m")
        assert res.code == 0, res.err
        assert "UWAV's HybridAttentionNet" in (tmp_path / "m" / "README.md").read_text()
        res = cli("evaluate", "--data", root, "--checkpoint", tmp_path / "m", "--split", "val",
                  "--out", tmp_path / "b", "--store", store)  # fmt: skip
        assert res.code == 0, res.err
        a = json.loads((tmp_path / "a" / "metrics.json").read_text())
        assert a == json.loads((tmp_path / "b" / "metrics.json").read_text())
        res = cli("evaluate", "--data", root, "--checkpoint", pt, "--preset", "tiny",
                  "--split", "val", "--out", tmp_path / "c", "--store", store)  # fmt: skip
        assert res.code == 2 and res.err.count("\n") == 1, res.err
        assert "missing keys" in res.err and "unexpected keys" in res.err
        assert "fits preset test-uwav" in res.err
    finally:
        PRESETS.pop("test-uwav", None)


def test_uwav_clip_clap_student_trains_on_segment_embeddings(tmp_path: Path, cli) -> None:
    """The ``uwav-clipclap`` preset: CLAP / CLIP segment embeddings (UWAV's folders) of a root
    of 10-s clips, no 3-D input, through train and evaluate."""
    import json

    import numpy as np

    from avparse.data.layout import FEATURE_KINDS
    from avparse.data.llp import LLPAnnotations
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path / "root", n_train=8, n_val=4, n_test=4)
    ann = LLPAnnotations(root)
    rng = np.random.default_rng(0)
    for kind in ("clip_segments", "clap_segments"):
        fk = FEATURE_KINDS[kind]
        (root / fk.folder).mkdir(parents=True)
        for split in ("train", "val", "test"):
            for clip in ann.weak(split).ids:
                feats = rng.standard_normal((10, fk.dim)).astype(np.float32)
                np.save(root / fk.folder / fk.file_name(clip), feats)
    out = tmp_path / "run"
    res = cli("train", "--data", root, "--preset", "uwav-clipclap", "--loss", "valor",
              "--harvest", "frame", "--epochs", "1", "--out", out, "--store", tmp_path / "store", "--no-progress",
              "--set", "num_layers=1", "--set", "nhead=2", "--set", "dim_feedforward=32",
              "--set", "batch_size=8")  # fmt: skip
    assert res.code == 0, res.err
    saved = json.loads((out / "model" / "config.json").read_text())
    assert (saved["arch"], saved["motion_feature"], saved["d_model"]) == ("uwav", "none", 768)
    res = cli("evaluate", "--data", root, "--checkpoint", out / "model", "--split", "val",
              "--out", tmp_path / "eval", "--store", tmp_path / "store")  # fmt: skip
    assert res.code == 0, res.err


def test_uwav_initial_weights_are_uwavs_for_a_seed() -> None:
    """UWAV builds fc_prob, the MIL attention MLPs, fc_a, fc_fusion, then ONE HAN layer that it
    deep-copies (``_get_clones``): built the same way here, a seed gives the same weights."""
    import copy
    import itertools

    from torch import nn

    d, c, heads, ff, n_layers = D, 25, HEADS, 48, 3

    def mlp(d_in: int, d_out: int, n: int) -> nn.ModuleList:
        widths = [d_in] + [2 * d] * (n - 1) + [d_out]
        return nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    torch.manual_seed(5)
    want = {f"fc_prob.{k}": v for k, v in nn.Linear(d, c).state_dict().items()}
    for name, module in (("fc_frame_att", mlp(d, c, 1)), ("fc_av_att", mlp(d, c, 1)),
                         ("fc_a", mlp(128, d, 2)), ("fc_fusion", mlp(2048 + 512, d, 1))):  # fmt: skip
        want |= {f"{name}.layers.{k}": v for k, v in module.state_dict().items()}
    layer = nn.ModuleDict({
        "self_attn": nn.MultiheadAttention(d, heads, dropout=0.1),
        "cm_attn": nn.MultiheadAttention(d, heads, dropout=0.1),
        "linear1": nn.Linear(d, ff), "linear2": nn.Linear(ff, d),
        "norm1": nn.LayerNorm(d), "norm2": nn.LayerNorm(d),
    })  # fmt: skip
    for i in range(n_layers):
        clone = copy.deepcopy(layer).state_dict()
        want |= {f"hat_encoder.layers.{i}.{k}": v for k, v in clone.items()}
    torch.manual_seed(5)
    over = {"d_model": d, "nhead": heads, "dim_feedforward": ff, "num_layers": n_layers}
    got = HAN(model_config("uwav", over)).state_dict()
    assert [k for k in want if not torch.equal(want[k], got[k])] == []
    valor = HAN(model_config("valor", {**SMALL, "num_layers": 2}))  # VALOR's init: unchanged
    a, b = (layer.state_dict() for layer in valor.hat_encoder.layers)
    assert not torch.equal(a["linear1.weight"], b["linear1.weight"])
