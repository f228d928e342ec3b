"""The temporal teacher: a pretraining epoch against a replica of UWAV's loop, and labelling.

``epoch``: the full-size ``uwav`` teacher trained for one pass over synthetic UnAV-like clips
(lengths ``ceil(U(10, 60))`` segments, UnAV-100's range; 6,489 train clips as UnAV-100's train
split, or ``--clips`` of them), timed two ways on the same clips, threads and batch size:

- avparse: :func:`avparse.temporal.pretrain.train_one_epoch` (length-bucketed batches padded to
  their own longest clip, key-padding masks, batch-first encoders);
- a replica of UWAV's loop written from its ``main_pretrain.py`` / ``dataloader.py`` (read for
  the settings, not copied): every clip padded to the split's longest (``UnAV_dataset`` pads to
  ``max_quantized_duration``), a (B, T, T) boolean attention mask turned into an additive -1e10
  float mask repeated per head, sequence-first encoders, ``DataLoader(shuffle=True, batch 64)``,
  the same loss, gradient clipping at 2.0, and the per-parameter ``calculate_grad_norm`` it logs.

``label``: ``avparse teacher label`` (the whole command: reading segment files, the teacher on
every split, thresholds on val, writing the harvest) of an LLP-like root of ``--clips`` clips
(10,000 by default: 80 % train, 10 % val, 10 % test), full-size teacher, text embeddings cached.

Run (timings are meaningful only on a quiet machine; the output says the load average)::

    python benchmarks/teacher.py epoch --clips 256
    python benchmarks/teacher.py label --clips 10000

Data goes under ``--cache`` (default $TMPDIR/avparse-bench-teacher), never into the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def _unav_like(n: int, seed: int = 0):
    from avparse.data.ragged import Ragged
    from avparse.temporal.data import TeacherSplit

    rng = np.random.default_rng(seed)
    lengths = np.ceil(rng.uniform(10, 60, size=n)).astype(np.int64)
    total = int(lengths.sum())
    audio = Ragged.from_lengths(rng.normal(size=(total, 512)).astype(np.float32), lengths)
    visual = Ragged.from_lengths(rng.normal(size=(total, 768)).astype(np.float32), lengths)
    dense = Ragged.from_lengths(rng.random((total, 100)) < 0.02, lengths)
    weak = np.zeros((n, 100), bool)
    return TeacherSplit("train", [f"v{i}" for i in range(n)], audio, visual, weak, dense, dense)


def _text(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for m, d in (("audio", 512), ("visual", 768)):
        e = rng.normal(size=(100, d)).astype(np.float32)
        out[m] = e / np.linalg.norm(e, axis=1, keepdims=True)
    return out


def _replica_epoch(data, text, batch_size: int, seed: int) -> float:
    """UWAV's loop, as its scripts run it (see the module docstring)."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from avparse.temporal.config import teacher_config

    cfg = teacher_config("uwav")
    longest = int(data.lengths.max())

    class Clips(Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            t = int(data.lengths[i])
            pad = np.zeros((longest - t, 1), np.float32)
            attn = torch.zeros(longest, longest, dtype=torch.bool)
            attn[:t, :t] = True
            valid = torch.zeros(longest)
            valid[:t] = 1
            label = np.zeros((longest, 100), np.float32)
            label[:t] = data.dense_av[i]
            return {
                "clap": torch.from_numpy(np.concatenate([data.audio[i], np.repeat(pad, 512, 1)])),
                "clip": torch.from_numpy(np.concatenate([data.visual[i], np.repeat(pad, 768, 1)])),
                "attn": attn, "valid": valid, "label": torch.from_numpy(label),
            }  # fmt: skip

    class MLP(nn.Module):
        def __init__(self, i, h, o):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(i, h), nn.Linear(h, o)])

        def forward(self, x):
            return self.layers[1](torch.relu(self.layers[0](x)))

    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(cfg.hidden_dim, cfg.nhead, cfg.ff_dim, cfg.dropout)
            self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)

    class Teacher(nn.Module):
        def __init__(self):
            super().__init__()
            h = cfg.hidden_dim
            self.proj_a, self.proj_v = MLP(512, 2 * h, h), MLP(768, 2 * h, h)
            self.a_transformer, self.v_transformer = Enc(), Enc()
            self.final_proj_a, self.final_proj_v = MLP(h, 512, 512), MLP(h, 768, 768)

        def forward(self, a, v, attn):
            mask = (~attn).float() * -1e10
            mask = mask.repeat_interleave(cfg.nhead, dim=0)
            a = self.a_transformer.encoder(self.proj_a(a).transpose(0, 1), mask=mask)
            v = self.v_transformer.encoder(self.proj_v(v).transpose(0, 1), mask=mask)
            za = self.final_proj_a(a.transpose(0, 1)) @ at.T * 3.2912
            zv = self.final_proj_v(v.transpose(0, 1)) @ vt.T * 4.6052
            return za, zv

    torch.manual_seed(seed)
    at, vt = torch.from_numpy(text["audio"]), torch.from_numpy(text["visual"])
    model = Teacher()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    loader = DataLoader(Clips(), batch_size=batch_size, shuffle=True, num_workers=0)
    model.train()
    t0 = time.perf_counter()
    for b in loader:
        opt.zero_grad()
        za, zv = model(b["clap"], b["clip"], b["attn"])
        y, valid = b["label"], b["valid"]
        prob = za.sigmoid() * zv.sigmoid()
        loss = nn.functional.binary_cross_entropy(prob, y, reduction="none")
        loss = loss * torch.where(y.sum(dim=1, keepdim=True) > 0, 5.0, 1.0)
        loss = (loss * valid[..., None]).sum() / (valid.sum() * y.shape[-1])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        _ = sum(p.grad.norm(2).item() ** 2 for p in model.parameters() if p.grad is not None)
        opt.step()
    return time.perf_counter() - t0


def _avparse_epoch(data, text, batch_size: int, seed: int) -> float:
    import torch

    from avparse.temporal.config import teacher_config
    from avparse.temporal.infer import text_tensors
    from avparse.temporal.network import TemporalTeacher
    from avparse.temporal.pretrain import TeacherRun, train_one_epoch
    from avparse.train.recipe import TrainConfig, build_optimizer
    from avparse.utils.distributed import Dist

    torch.manual_seed(seed)
    cfg = teacher_config("uwav")
    train = TrainConfig(batch_size=batch_size, clip_grad=2.0, seed=seed, epochs=1)
    model = TemporalTeacher(cfg)
    opt, _ = build_optimizer(model.parameters(), train)
    run = TeacherRun(Path("."), Path("."), cfg, train, 5.0, 1.0, torch.device("cpu"), Dist(), False)
    at, vt = text_tensors(text, "cpu")
    t0 = time.perf_counter()
    train_one_epoch(run, model, opt, data, at, vt, 1)
    return time.perf_counter() - t0


def bench_epoch(args: argparse.Namespace) -> None:
    data = _unav_like(args.clips)
    text = _text(np.random.default_rng(1))
    print(f"{args.clips} clips, mean length {data.lengths.mean():.1f}, longest "
          f"{data.lengths.max()}; {_load()}", flush=True)  # fmt: skip
    runs = [("avparse", _avparse_epoch), ("UWAV replica", _replica_epoch)]
    took = {}
    for name, fn in runs[::-1] if args.replica_first else runs:
        took[name] = fn(data, text, args.batch_size, 0)
        print(f"{name} epoch: {took[name]:.1f} s ({took[name] / args.clips * 1000:.1f} ms/clip)",
              flush=True)  # fmt: skip
    ours, theirs = took["avparse"], took["UWAV replica"]
    print(f"ratio replica / avparse: {theirs / ours:.2f}x; scaled to 6,489 clips: avparse "
          f"{ours * 6489 / args.clips / 60:.1f} min; {_load()}")  # fmt: skip


def bench_label(args: argparse.Namespace) -> None:
    import torch

    from avparse.data.layout import LLP_FILES, SEGMENT_FOLDERS
    from avparse.data.llp import write_dense_tsv, write_weak_tsv
    from avparse.temporal.checkpoint import save_teacher
    from avparse.temporal.config import teacher_config
    from avparse.temporal.label import label_root
    from avparse.temporal.network import TemporalTeacher
    from avparse.temporal.text import cache_path
    from avparse.vocab import LLP

    root = Path(args.cache) / f"llp-{args.clips}"
    rng = np.random.default_rng(0)
    n_val = n_test = args.clips // 10
    n_train = args.clips - n_val - n_test
    if not (root / "done").is_file():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        start, dense_names, dense = 0, [], []
        for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
            names = [f"c{start + i:010d}_0_10" for i in range(n)]
            start += n
            weak = rng.random((n, len(LLP))) < 0.08
            weak[np.arange(n), rng.integers(0, len(LLP), n)] = True
            write_weak_tsv(root / LLP_FILES[split], names, weak)
            if split != "train":
                dense_names += names
                dense.append((rng.random((n, 10, len(LLP))) < 0.5) & weak[:, None, :])
            for m, d in (("audio", 512), ("visual", 768)):
                folder = root / SEGMENT_FOLDERS[m]
                folder.mkdir(parents=True, exist_ok=True)
                for name in names:
                    x = rng.normal(size=(10, d)).astype(np.float32)
                    np.save(folder / f"{name[:11]}.npy", x)
        for k in ("dense_audio", "dense_visual"):
            write_dense_tsv(root / LLP_FILES[k], dense_names, np.concatenate(dense))
        (root / "done").write_text("")
    cfg = teacher_config("uwav")
    torch.manual_seed(0)
    teacher = save_teacher(TemporalTeacher(cfg), cfg, Path(args.cache) / "uwav-teacher")
    for m, source, d in (("audio", cfg.clap_text, 512), ("visual", cfg.clip_text, 768)):
        path = cache_path(root, m, source, LLP)
        path.parent.mkdir(parents=True, exist_ok=True)
        e = rng.normal(size=(len(LLP), d)).astype(np.float32)
        np.save(path, e / np.linalg.norm(e, axis=1, keepdims=True))
    print(f"{args.clips} LLP-sized clips; {_load()}", flush=True)
    t0 = time.perf_counter()
    label_root(teacher, root, overwrite=True, batch_size=args.batch_size, precision=args.precision)
    took = time.perf_counter() - t0
    print(f"avparse teacher label ({args.precision}): {took:.1f} s for {args.clips} clips "
          f"({took / args.clips * 1000:.2f} ms/clip; goal 60 s per 10,000); {_load()}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("epoch", "label"))
    parser.add_argument("--clips", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--precision", default="float32", help="label: float32 or bfloat16")
    parser.add_argument(
        "--replica-first", action="store_true", help="epoch: time the replica first"
    )
    parser.add_argument(
        "--cache", default=os.path.join(tempfile.gettempdir(), "avparse-bench-teacher")
    )
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clips is None:
        args.clips = 6489 if args.what == "epoch" else 10000
    (bench_epoch if args.what == "epoch" else bench_label)(args)


if __name__ == "__main__":
    main()
