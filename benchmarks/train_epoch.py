"""``avparse train`` against a replica of the published VALOR training script, on one data root.

The replica is written from section 10 of ``docs/reference.md`` (the published
``main_avvp.py`` / ``dataloader_avvp.py``, read for their settings):

- a per-clip ``Dataset`` whose ``__getitem__`` takes the clip's row with ``df.loc[idx, :]`` and
  ``np.load``s five files (VGGish, ResNet-152, R(2+1)D, both harvests);
- ``DataLoader(batch 64, shuffle, 4 workers, pin_memory)``;
- the HAN with ``fc_v`` applied to all 80 ResNet frames before the 8-frame average;
- per step: BCE on the clamped video probability plus the two segment BCE-with-logits terms,
  gradient clipping at 1.0 and the per-parameter gradient-norm sum the script logs;
- after every epoch a validation pass at batch 1 (1 worker) computing the losses and, per clip,
  filtering the dense audio and visual DataFrames and scoring the clip (segment and event level);
- a checkpoint every epoch (and ``checkpoint_best.pt`` when Type@AV improves);
- then, as a second process (``--mode test`` in the published script), the same batch-1 pass
  over the test split with ``checkpoint_best.pt``.

``avparse train --preset valor`` runs on the same root (packing the store from scratch, the final
test pass and the model export included). Epochs are timed the same way (train + validation,
from each run's own clock), and each whole process by wall clock. Both use the same torch thread
count. Printed: seconds and ratios per epoch and for the whole process.

Run::

    python benchmarks/train_epoch.py                       # 2,000 train clips, 3 epochs
    python benchmarks/train_epoch.py --clips 500 --epochs 2
    python benchmarks/train_epoch.py --variants float32,float32-compiled,bfloat16,bfloat16-compiled
    python benchmarks/train_epoch.py --arithmetic           # GFLOP per step, matmul rates

The data root (published layout; val and test sized like LLP's relative to train) and run
folders go under ``--cache`` (default: $TMPDIR/avparse-bench-train), never into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LLP_VAL_SHARE, LLP_TEST_SHARE = 649 / 10_000, 1_200 / 10_000
"""LLP's val and test splits relative to its 10,000 training clips."""


# ---------------------------------------------------------------- the published-script replica


def _published_model(config):
    """HAN with the published order of operations (``fc_v`` on all 80 frames, then the mean)
    and torch's ``nn.Dropout``."""
    import torch

    from avparse.model.han import HAN, Dropout

    class PublishedHAN(HAN):
        def embed_visual(self, visual: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
            b, n, _ = visual.shape
            v = self.fc_v(visual)  # (B, 80, d)
            v = v.reshape(b, 10, n // 10, -1).mean(dim=2)
            return self.fc_fusion(torch.cat((v, self.fc_st(motion)), dim=-1))

    model = PublishedHAN(config)
    for module in list(model.modules()):  # the published code's dropout is torch's own
        for name, child in module.named_children():
            if isinstance(child, Dropout):
                setattr(module, name, torch.nn.Dropout(child.p))
    return model


def _dataset(root: Path, label_file: str):
    import pandas as pd
    import torch
    from torch.utils.data import Dataset

    from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS
    from avparse.vocab import LLP

    index = {name: i for i, name in enumerate(LLP.names)}

    class LLPDataset(Dataset):
        def __init__(self) -> None:
            self.df = pd.read_csv(root / label_file, header=0, sep="\t")

        def __len__(self) -> int:
            return len(self.df)

        def __getitem__(self, idx: int) -> dict:
            row = self.df.loc[idx, :]
            name = row.iloc[0][:11]
            audio = np.load(root / FEATURE_KINDS["vggish"].folder / f"{name}.npy")
            video_s = np.load(root / FEATURE_KINDS["res152"].folder / f"{name}.npy")
            video_st = np.load(root / FEATURE_KINDS["r2plus1d_18"].folder / f"{name}.npy")
            label = np.zeros(len(index))
            for event in row.iloc[-1].split(","):
                label[index[event]] = 1
            return {
                "audio": torch.from_numpy(audio),
                "video_s": torch.from_numpy(video_s),
                "video_st": torch.from_numpy(video_st),
                "label": label,
                "video_name": row.iloc[0],
                "audio_pseudo_labels": np.load(root / HARVEST_FOLDERS["audio"] / f"{name}.npy"),
                "visual_pseudo_labels": np.load(root / HARVEST_FOLDERS["visual"] / f"{name}.npy"),
            }

    return LLPDataset()


def _published_losses(output, frame_logits, batch):
    import torch.nn.functional as F

    output.clamp_(min=1e-7, max=1 - 1e-7)
    video = F.binary_cross_entropy(output, batch["label"].float())
    audio = F.binary_cross_entropy_with_logits(
        frame_logits[:, :, 0], batch["audio_pseudo_labels"].float()
    )
    visual = F.binary_cross_entropy_with_logits(
        frame_logits[:, :, 1], batch["visual_pseudo_labels"].float()
    )
    return video, audio, visual


def _published_train_epoch(model, loader, optimizer) -> float:
    import torch

    model.train()
    total, seen = 0.0, 0
    for batch in loader:
        optimizer.zero_grad()
        out = model(batch["audio"], batch["video_s"], batch["video_st"])
        video, audio, visual = _published_losses(out.video_prob, out.frame_logits, batch)
        loss = audio + visual + video
        n = batch["video_s"].size(0)
        for part in (video, visual, audio):  # the script sums every term with .item()
            part.item()
        total += loss.item() * n
        seen += n
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        norm = 0.0  # the script computes and logs this every step
        for p in model.parameters():
            if p.grad is not None:
                norm += p.grad.detach().norm(2).item() ** 2
        optimizer.step()
    return total / seen


def _published_eval(model, loader, root: Path, with_loss: bool) -> float:
    """Batch-1 pass: losses, the clip's decision, its dense truth by DataFrame filter, scores."""
    import pandas as pd
    import torch
    from score import _clip_scores  # benchmarks/score.py: the published-style per-clip metric

    from avparse.data.layout import LLP_FILES
    from avparse.vocab import LLP

    index = {name: i for i, name in enumerate(LLP.names)}
    model.eval()
    df_a = pd.read_csv(root / LLP_FILES["dense_audio"], header=0, sep="\t")
    df_v = pd.read_csv(root / LLP_FILES["dense_visual"], header=0, sep="\t")
    per_clip: dict[str, list[float]] = {}
    with torch.no_grad():
        for batch in loader:
            out = model(batch["audio"], batch["video_s"], batch["video_st"])
            if with_loss:
                for part in _published_losses(out.video_prob, out.frame_logits, batch):
                    part.item()
            o = (out.video_prob.numpy() >= 0.5).astype(np.int_)
            pa = (out.frame_prob[0, :, 0, :].numpy() >= 0.5).astype(np.int_) * np.repeat(o, 10, 0)
            pv = (out.frame_prob[0, :, 1, :].numpy() >= 0.5).astype(np.int_) * np.repeat(o, 10, 0)
            truth = {}
            for m, df in (("a", df_a), ("v", df_v)):
                gt = np.zeros((len(index), 10))
                rows = df.loc[df["filename"] == batch["video_name"][0]]
                for i in rows.index:
                    gt[
                        index[rows["event_labels"][i]],
                        int(rows["onset"][i]) : int(rows["offset"][i]),
                    ] = 1
                truth[m] = gt
            truth["av"] = truth["a"] * truth["v"]
            so = {"a": pa.T, "v": pv.T}
            so["av"] = so["a"] * so["v"]
            for k, v in _clip_scores(so, truth).items():
                per_clip.setdefault(k, []).append(v)
    a, v, av = (100 * np.mean(per_clip[f"seg_{m}"]) for m in ("a", "v", "av"))
    return float((a + v + av) / 3)


def published(args: argparse.Namespace) -> None:
    """The replica, in this process: ``train`` (epochs) or ``test`` (best checkpoint)."""
    import torch
    from torch.utils.data import DataLoader

    from avparse.data.layout import LLP_FILES
    from avparse.model.config import model_config

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    torch.set_num_threads(args.threads)
    root, out = Path(args.root), Path(args.out)
    np.random.seed(1)
    torch.manual_seed(1)
    model = _published_model(model_config("valor"))
    if args.published == "test":
        model.load_state_dict(torch.load(out / "checkpoint_best.pt", weights_only=True))
        loader = DataLoader(_dataset(root, LLP_FILES["test"]), batch_size=1, num_workers=1)
        print(json.dumps({"test_seg_type": _published_eval(model, loader, root, False)}))
        return
    out.mkdir(parents=True)
    train_loader = DataLoader(
        _dataset(root, LLP_FILES["train"]), batch_size=64, shuffle=True, num_workers=4,
        pin_memory=torch.cuda.is_available(),
    )  # fmt: skip
    val_loader = DataLoader(_dataset(root, LLP_FILES["val"]), batch_size=1, num_workers=1)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-4, weight_decay=1e-3, betas=(0.5, 0.999), eps=1e-8
    )
    best = 0.0
    for epoch in range(1, args.epochs + 1):
        start, cpu = time.time(), _cpu_seconds()
        loss = _published_train_epoch(model, train_loader, optimizer)
        score = _published_eval(model, val_loader, root, True)
        seconds, cpu = time.time() - start, _cpu_seconds() - cpu
        torch.save(model.state_dict(), out / f"checkpoint_epoch_{epoch}.pt")
        if score > best:
            best = score
            torch.save(model.state_dict(), out / "checkpoint_best.pt")
        print(json.dumps({"epoch": epoch, "seconds": seconds, "cpu_seconds": cpu, "loss": loss,
                          "val": score}))  # fmt: skip


# ---------------------------------------------------------------- the comparison


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children (the DataLoader
    workers, joined at the end of each epoch; the subprocesses run below)."""
    import resource

    return sum(
        r.ru_utime + r.ru_stime
        for r in (resource.getrusage(resource.RUSAGE_SELF),
                  resource.getrusage(resource.RUSAGE_CHILDREN))
    )  # fmt: skip


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of a subprocess, and its stdout."""
    t0, c0 = time.perf_counter(), _cpu_seconds()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return seconds, cpu, proc.stdout


def arithmetic(threads: int, batch: int = 64) -> None:
    """What bounds an epoch on this CPU: floating-point work per step and the matmul rate."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from avparse.model.config import model_config
    from avparse.model.han import HAN

    torch.set_num_threads(threads)
    config = model_config("valor")
    inputs = (
        torch.randn(batch, 10, 128),
        torch.randn(batch, 80, 2048),
        torch.randn(batch, 10, 512),
    )
    flops = {}
    for name, model in (("avparse", HAN(config)), ("replica", _published_model(config))):
        with FlopCounterMode(display=False) as counter:
            out = model.train()(*inputs)
            (out.video_prob.sum() + out.frame_logits.sum()).backward()
        flops[name] = counter.get_total_flops() / 1e9
    print(f"GFLOP per training step (batch {batch}, forward + backward): avparse "
          f"{flops['avparse']:.1f}, replica {flops['replica']:.1f} "
          f"({flops['replica'] / flops['avparse']:.2f}x)")  # fmt: skip
    d = config.d_model
    shapes = [(batch * 10, 2048, d), (batch * 10, d, d), (batch * 10, d, config.dim_feedforward)]
    for dtype in (torch.float32, torch.bfloat16):
        rates = []
        for m, k, n in shapes:
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            for _ in range(3):
                a @ b
            best = min(_seconds(lambda a=a, b=b: a @ b) for _ in range(30))
            rates.append(2 * m * k * n / best / 1e9)
        print(f"{str(dtype)[6:]:>9} matrix products: {min(rates):.0f}-{max(rates):.0f} GFLOP/s; "
              f"a step's arithmetic at the best rate: avparse {1e3 * flops['avparse'] / max(rates):.0f} ms, "
              f"replica {1e3 * flops['replica'] / max(rates):.0f} ms")  # fmt: skip


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2_000, help="training clips")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "avparse-bench-train"))
    parser.add_argument(
        "--variants",
        default="float32",
        help="comma-separated avparse runs, each against the same replica run: float32, "
        "float32-compiled, bfloat16, bfloat16-compiled (default: float32)",
    )
    parser.add_argument(
        "--arithmetic",
        action="store_true",
        help="only the arithmetic: GFLOP of a training step (avparse and the replica, batch 64) "
        "and this CPU's matrix-product rate in float32 and bfloat16 on the HAN's shapes",
    )
    parser.add_argument("--published", choices=("train", "test"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.published:
        published(args)
        return
    if args.arithmetic:
        arithmetic(args.threads)
        return

    from avparse.synthetic import generate_llp

    cache = Path(args.cache)
    n_val = max(1, round(args.clips * LLP_VAL_SHARE))
    n_test = max(1, round(args.clips * LLP_TEST_SHARE))
    root = generate_llp(cache / f"llp-{args.clips}", n_train=args.clips, n_val=n_val,
                        n_test=n_test, seed=0)  # fmt: skip
    print(f"data root {root}: {args.clips} train, {n_val} val, {n_test} test clips", flush=True)
    for name in ("published", "store"):
        shutil.rmtree(cache / name, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    env["OMP_NUM_THREADS"] = str(args.threads)
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--root", str(root), "--out", str(cache / "published"),
              "--epochs", str(args.epochs), "--threads", str(args.threads)]  # fmt: skip
    pub_train_s, pub_train_cpu, text = _timed([*me, "--published", "train", *common], env)
    pub_epochs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    pub_test_s, pub_test_cpu, _ = _timed([*me, "--published", "test", *common], env)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for variant in variants:
        precision, _, compiled = variant.partition("-")
        if precision not in ("float32", "bfloat16") or compiled not in ("", "compiled"):
            raise SystemExit(f"unknown variant {variant!r}")
    results = []
    for variant in variants:
        precision, _, compiled = variant.partition("-")
        out = cache / f"avparse-{variant}"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache / "store", ignore_errors=True)  # every variant packs from scratch
        extra = ["--precision", precision] + (["--compile"] if compiled else [])
        ours_s, ours_cpu, _ = _timed(
            [sys.executable, "-m", "avparse", "train", "--data", str(root), "--preset", "valor",
             "--epochs", str(args.epochs), "--out", str(out), "--store", str(cache / "store"),
             "--quiet", *extra],
            env,
        )  # fmt: skip
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        test = json.loads((out / "test_metrics.json").read_text())
        results.append((variant, ours_s, ours_cpu, log, test))

    print(
        f"\nVALOR preset, {args.clips} train clips, batch 64, {args.threads} torch threads;"
        " wall seconds (CPU seconds: user + system of every process, workers included);"
        f" load average at the end {os.getloadavg()[0]:.2f}"
    )
    pw, pc = pub_train_s + pub_test_s, pub_train_cpu + pub_test_cpu
    for variant, ours_s, ours_cpu, log, test in results:
        print(f"\n[{variant}]  test Type@AV {test.get('seg_type', float('nan')):.2f}")
        print(f"{'':>22}{'published':>20}{'avparse':>20}{'ratio (CPU)':>16}")
        for pub, ours in zip(pub_epochs, log, strict=True):
            p, o, pcu, ocu = (
                pub["seconds"],
                ours["seconds"],
                pub["cpu_seconds"],
                ours["cpu_seconds"],
            )
            print(f"{'epoch ' + str(ours['epoch']) + ' (train+val)':>22}{p:>9.2f}s ({pcu:>7.1f}s)"
                  f"{o:>9.2f}s ({ocu:>7.1f}s){p / o:>8.2f}x ({pcu / ocu:.2f}x)")  # fmt: skip
        print(f"{'whole process':>22}{pw:>9.2f}s ({pc:>7.1f}s){ours_s:>9.2f}s ({ours_cpu:>7.1f}s)"
              f"{pw / ours_s:>8.2f}x ({pc / ours_cpu:.2f}x)")  # fmt: skip
    print(f"\n  published: train script {pub_train_s:.2f} s + test script {pub_test_s:.2f} s;"
          f" avparse: packing the store, {args.epochs} epochs, test pass and model export")  # fmt: skip


if __name__ == "__main__":
    main()
