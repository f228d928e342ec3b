"""Training on videos of any length: time per segment against LLP-shaped clips, padding waste.

Issue 15's goals: on the synthetic UnAV-like world (6,489 train videos, the size of UnAV-100's
train split) an epoch costs at most 1.3x the time per segment of LLP-shaped data (10-segment
clips), and padding wastes under 10 % of the segments the model sees.

What is run: the real training loop's epoch (:func:`avparse.train.loop.train_one_epoch`: the
length-bucketed batches of :mod:`avparse.train.batching`, per-batch padding with the mask, the
masked HAN and the masked ``valor`` loss, AdamW) on

- **UnAV-like**: the train split of the synthetic UnAV-like world
  (:func:`avparse.synthetic.unav.unav_splits`: durations, weak and dense labels drawn from
  UnAV-100's statistics), ``T = ceil(duration)`` segments per video; the dense labels serve as
  both harvests (``--loss valor``);
- **LLP-shaped**: as many 10-segment clips as hold the same number of segments, batches of the
  same number of clips, through today's 10-segment path (no mask).

Both use the same network (the ``unav`` preset: VALOR's HAN, d 512, on VGGish 128 + I3D
1024 + 1024 inputs) and random features in memory-mapped ``.npy`` files under ``--cache``
(the values do not change the time). Printed: wall and CPU seconds per epoch, microseconds per
segment, their ratios, and the padding waste of the buckets (and of random batches, for
reference). On a shared machine compare the CPU ratio: other processes stretch the wall time.

Run::

    python benchmarks/train_length.py                      # 6,489 videos, 1 epoch each
    python benchmarks/train_length.py --batches 20         # the first 20 batches (about 55k
                                                           # segments) of the 6,489-video world
    python benchmarks/train_length.py --clips 500          # a quick look
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _memmap(folder: Path, name: str, shape: tuple[int, ...], rng, dtype=np.float32):
    arr = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
    step = 65536
    for start in range(0, shape[0], step):
        stop = min(start + step, shape[0])
        if dtype == np.float32:
            arr[start:stop] = rng.standard_normal((stop - start, *shape[1:]), dtype=np.float32)
    arr.flush()
    return np.load(folder / f"{name}.npy", mmap_mode="r")


def _world(clips: int, seed: int):
    """The train split of the synthetic UnAV-like world: events, dense and weak labels."""
    from avparse.synthetic.unav import unav_splits

    return unav_splits({"train": clips}, seed)["train"]


def _subset(split, rows: np.ndarray):
    """The videos ``rows`` of a synthetic split (events, dense and weak labels)."""
    from types import SimpleNamespace

    durations = split.events.durations[rows]
    return SimpleNamespace(
        events=SimpleNamespace(
            durations=durations, videos=[split.events.videos[i] for i in rows.tolist()]
        ),
        dense=split.dense.take(rows),
        weak=split.weak[rows],
    )


def _run(name, data, model_cfg, train_cfg, epochs: int, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds per epoch (means over ``epochs``) of the real loop on ``data``.

    CPU seconds (this process, all threads) are the number to compare on a shared machine:
    other processes lengthen the wall time, not this process's CPU time."""
    import torch

    from avparse.train.loop import Run, build_model, train_one_epoch
    from avparse.train.tasks import get_task
    from avparse.utils import distributed as D

    task = get_task(train_cfg.task)
    loss = task.loss(train_cfg.loss)
    d = D.setup("cpu")
    run = Run(Path("."), out, None, model_cfg, train_cfg, task, loss, d, torch.device("cpu"),
              False, False)  # fmt: skip
    model, optimizer, _ = build_model(run)
    seconds, cpu = [], []
    for epoch in range(1, epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        train_one_epoch(run, model, optimizer, data, epoch)
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        print(f"  {name} epoch {epoch}: {seconds[-1]:.1f} s wall, {cpu[-1]:.1f} s cpu", flush=True)
    D.teardown(d)
    return float(np.mean(seconds)), float(np.mean(cpu))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=6489, help="UnAV-like train videos")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--batches",
        type=int,
        default=None,
        help="time only the first K batches of the world's first epoch, as drawn from its "
        "length buckets (the LLP-shaped run then has as many segments)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--llp-batch-size",
        type=int,
        default=None,
        help="clips per batch of the LLP-shaped run (default: --batch-size; about 4.25x it "
        "gives the UnAV-like batches' segments per step)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "avparse-bench-length"
    )
    args = parser.parse_args(argv)

    import torch

    from avparse.data.ragged import Ragged
    from avparse.model.config import model_config
    from avparse.train.batching import bucket_batches, padding_waste
    from avparse.train.recipe import recipe
    from avparse.train.tasks import SplitData

    if args.threads:
        torch.set_num_threads(args.threads)
    split = _world(args.clips, args.seed)
    lengths = np.ceil(split.events.durations).astype(np.int64)
    total = int(lengths.sum())
    n_llp = total // 10
    cfg = model_config("unav", {"vocabulary": "unav"})
    train_cfg = recipe("unav", {"loss": "valor", "batch_size": args.batch_size})
    dims = {r: cfg.input_dim(r) for r in ("audio", "visual", "motion")}
    print(f"batches: UnAV-like {args.batch_size} videos, LLP-shaped "
          f"{args.llp_batch_size or args.batch_size} clips")  # fmt: skip
    print(f"UnAV-like world: {args.clips} videos, {total} segments (T {lengths.min()}-"
          f"{lengths.max()}, mean {lengths.mean():.1f}); LLP-shaped: {n_llp} clips x 10; "
          f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}", flush=True)  # fmt: skip

    batches = bucket_batches(lengths, args.batch_size, seed=train_cfg.seed, epoch=1)
    shuffled = np.array_split(
        np.random.default_rng(0).permutation(len(lengths)), -(-len(lengths) // args.batch_size)
    )
    waste = world_waste = padding_waste(lengths, batches)
    print(f"padding waste: {100 * waste:.1f} % of padded segments with length buckets "
          f"({100 * padding_waste(lengths, shuffled):.1f} % with random batches)")  # fmt: skip

    if args.batches is not None:
        # the videos of the epoch's first K batches, trained in exactly those batches
        picked = batches[: args.batches]
        rows = np.sort(np.concatenate(picked))
        index = {int(r): i for i, r in enumerate(rows)}
        subset_batches = [np.sort([index[int(r)] for r in b]) for b in picked]
        import avparse.train.batching as batching

        batching.bucket_batches = lambda *a, **k: subset_batches
        waste = padding_waste(lengths, picked)
        lengths = lengths[rows]
        total = int(lengths.sum())
        n_llp = total // 10
        split = _subset(split, rows)
        print(f"timed on the first {args.batches} batches of the epoch: {len(rows)} videos, "
              f"{total} segments (mean T {lengths.mean():.1f}), padding waste of these batches "
              f"{100 * waste:.1f} %; LLP-shaped: {n_llp} clips x 10", flush=True)  # fmt: skip
    rng = np.random.default_rng(args.seed)
    args.cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
        folder = Path(tmp)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        dense = np.asarray(split.dense.values, dtype=np.uint8)
        ragged = SplitData(
            "train",
            list(split.events.videos),
            {r: Ragged(_memmap(folder, f"u_{r}", (total, w), rng), offsets) for r, w in dims.items()},
            {
                "weak": split.weak.astype(np.float32),
                "harvest_audio": Ragged(dense, offsets),
                "harvest_visual": Ragged(dense, offsets),
            },
            lengths,
        )  # fmt: skip
        llp_dense = dense[: n_llp * 10].reshape(n_llp, 10, -1)
        llp = SplitData(
            "train",
            [f"c{i}" for i in range(n_llp)],
            {r: _memmap(folder, f"l_{r}", (n_llp, 10, w), rng) for r, w in dims.items()},
            {
                "weak": llp_dense.max(axis=1).astype(np.float32),
                "harvest_audio": llp_dense,
                "harvest_visual": llp_dense,
            },
        )
        t_unav, c_unav = _run("UnAV-like", ragged, cfg, train_cfg, args.epochs, folder / "u")
        llp_cfg = recipe(
            "unav", {"loss": "valor", "batch_size": args.llp_batch_size or args.batch_size}
        )
        t_llp, c_llp = _run("LLP-shaped", llp, cfg, llp_cfg, args.epochs, folder / "l")
    seg_unav, seg_llp = total, n_llp * 10
    for label, a, b in (("wall", t_unav, t_llp), ("cpu", c_unav, c_llp)):
        print(f"{label:4s}: UnAV-like {a:7.1f} s/epoch {1e6 * a / seg_unav:8.1f} us/segment; "
              f"LLP-shaped {b:7.1f} s/epoch {1e6 * b / seg_llp:8.1f} us/segment; ratio "
              f"{(a / seg_unav) / (b / seg_llp):.2f}x (goal <= 1.3x)")  # fmt: skip
    print(f"padding waste {100 * world_waste:.1f} % over the whole epoch, {100 * waste:.1f} % in "
          "the timed batches (goal < 10 %)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
