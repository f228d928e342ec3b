"""One training epoch: packed memory-mapped store vs a per-clip ``.npy`` DataLoader.

The reference data path is the published one: a torch ``Dataset`` whose ``__getitem__`` opens
three feature files (plus two harvest files) per clip, batched by a ``DataLoader``. The packed
path gathers a batch with one fancy index per memory-mapped array. Same model (VALOR preset
shapes), same loss (``valor``), same batches size, same process settings. Each path runs in its
own subprocess so peak memory (max RSS, workers included) is measured separately.

Run::

    python benchmarks/train_epoch.py                # 10,000 clips (~6.5 GB of ResNet features)
    python benchmarks/train_epoch.py --clips 2000   # quick
    python benchmarks/train_epoch.py --data-only    # data path alone, no model

Data go to ``--cache`` (default: $TMPDIR/avparse-bench), never into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _root(args: argparse.Namespace) -> Path:
    from avparse.data.synthetic import generate_llp
    from avparse.errors import AvparseError

    root = Path(args.cache) / f"llp-{args.clips}"
    t0 = time.perf_counter()
    settings = {"n_train": args.clips, "n_val": 16, "n_test": 16, "features": "valor", "seed": 0}
    try:
        generate_llp(root, **settings)
    except AvparseError:  # made by another version of the generator: make it again
        generate_llp(root, **settings, overwrite=True)
    print(f"data root {root} ready in {time.perf_counter() - t0:.1f} s", flush=True)
    return root


def _reference_batches(root: Path, batch: int, workers: int, seed: int):
    import torch
    from torch.utils.data import DataLoader, Dataset

    from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS
    from avparse.data.llp import LLPAnnotations

    weak = LLPAnnotations(root).weak("train")

    class PerClip(Dataset):
        def __len__(self) -> int:
            return len(weak)

        def __getitem__(self, i: int):
            cid = weak.ids[i]
            feats = [
                np.load(root / FEATURE_KINDS[k].folder / f"{cid}.npy")
                for k in ("vggish", "res152", "r2plus1d_18")
            ]
            harvest = [
                np.load(root / HARVEST_FOLDERS[m] / f"{cid}.npy") for m in ("audio", "visual")
            ]
            return (
                *(torch.from_numpy(f.astype(np.float32)) for f in feats),
                torch.from_numpy(weak.labels[i].astype(np.float32)),
                *(torch.from_numpy(h.astype(np.float32)) for h in harvest),
            )

    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(PerClip(), batch_size=batch, shuffle=True, num_workers=workers, generator=g)
    yield from loader


def _store_batches(root: Path, store: Path, batch: int, seed: int):
    import torch

    from avparse.data.llp import LLPAnnotations
    from avparse.data.store import ensure_packed

    kinds = ["vggish", "res152", "r2plus1d_18", "harvest_audio", "harvest_visual"]
    packed = ensure_packed(root, store, splits=("train",), kinds={"train": kinds})["train"]
    weak = LLPAnnotations(root).weak("train").labels.astype(np.float32)
    order = torch.randperm(len(packed), generator=torch.Generator().manual_seed(seed)).numpy()
    for i in range(0, len(order), batch):
        rows = np.sort(order[i : i + batch])
        feats = [
            torch.from_numpy(np.ascontiguousarray(packed[k][rows], dtype=np.float32))
            for k in ("vggish", "res152", "r2plus1d_18")
        ]
        harvest = [torch.from_numpy(packed[k][rows].astype(np.float32)) for k in kinds[3:]]
        yield (*feats, torch.from_numpy(weak[rows]), *harvest)


def _rss_anon_mib() -> float:
    """Anonymous resident memory (heap, tensors) of this process; file-backed pages of the
    memory maps are page cache the kernel can drop, so they are reported apart."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _worker(args: argparse.Namespace) -> None:
    """Run one path for one epoch; print a JSON line with seconds and peak memory."""
    import torch

    from avparse.model.config import model_config
    from avparse.model.han import HAN
    from avparse.train.losses import valor_loss
    from avparse.train.recipe import build_optimizer, recipe

    torch.set_num_threads(args.threads)
    root = Path(args.root)
    store = Path(args.cache) / f"store-{args.clips}"
    torch.manual_seed(0)
    model = HAN(model_config("valor"))
    opt, _ = build_optimizer(model.parameters(), recipe("valor"))
    batches = (
        _store_batches(root, store, args.batch, 1)
        if args.path == "store"
        else _reference_batches(root, args.batch, args.workers, 1)
    )
    t0 = time.perf_counter()
    n = 0
    anon = _rss_anon_mib()
    for audio, visual, motion, weak, ha, hv in batches:
        n += len(audio)
        anon = max(anon, _rss_anon_mib())
        if args.data_only:
            continue
        loss, _ = valor_loss(model(audio, visual, motion), weak, ha, hv)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    seconds = time.perf_counter() - t0
    rss = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    result = {
        "path": args.path,
        "clips": n,
        "seconds": seconds,
        "peak_rss_mib": rss / 1024,
        "peak_anon_mib": anon,
    }
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000, help="training clips")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="reference DataLoader workers")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "avparse-bench"))
    parser.add_argument("--data-only", action="store_true", help="time the data path alone")
    parser.add_argument("--path", choices=("store", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.path:
        _worker(args)
        return
    root = _root(args)
    from avparse.data.store import pack

    t0 = time.perf_counter()
    report = pack(root, Path(args.cache) / f"store-{args.clips}", splits=("train",))
    pack_s = time.perf_counter() - t0
    print(f"pack: {pack_s:.1f} s ({report.files_read} files read)", flush=True)
    results = {}
    # store first: packing reads every source file once, so both paths then run on a warm page
    # cache (a cold cache would flatter the store further).
    for path in ("store", "reference"):
        cmd = [sys.executable, __file__, "--path", path, "--root", str(root),
               "--clips", str(args.clips), "--batch", str(args.batch), "--workers",
               str(args.workers), "--threads", str(args.threads), "--cache", args.cache]  # fmt: skip
        if args.data_only:
            cmd.append("--data-only")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[path] = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(results[path]), flush=True)
    s, r = results["store"], results["reference"]
    what = "data path only" if args.data_only else "one training epoch (VALOR preset)"
    print(f"\n{what}, {s['clips']} clips, batch {args.batch}, {args.threads} threads, "
          f"reference with {args.workers} DataLoader workers")  # fmt: skip
    print(f"  packed store : {s['seconds']:8.2f} s   peak RSS {s['peak_rss_mib']:8.0f} MiB"
          f" (anonymous {s['peak_anon_mib']:.0f} MiB; the rest is mapped page cache)"
          f"   (packing beforehand: {pack_s:.1f} s, once)")  # fmt: skip
    print(
        f"  per-clip npy : {r['seconds']:8.2f} s   peak RSS {r['peak_rss_mib']:8.0f} MiB"
        f" (main process anonymous {r['peak_anon_mib']:.0f} MiB, workers in peak RSS)"
    )
    print(f"  speed-up     : {r['seconds'] / s['seconds']:.2f}x")


if __name__ == "__main__":
    main()
