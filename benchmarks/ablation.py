"""UWAV ablation (the paper's table A8) on the synthetic world: binary / soft / soft + re-weight /
soft + mixup / all, mean and spread over training seeds.

    .venv/bin/python benchmarks/ablation.py [--out runs/bench_ablation] [--seeds 3] [--epochs 12]

Generates (or reuses) one synthetic LLP-like data root (the demo's generator, data seed
``--data-seed``), then trains the same narrowed student with ``--loss uwav`` and each row's
switches (``uwav_soft``, ``uwav_reweight``, ``uwav_mixup``) once per training seed, through the
normal training loop, ``--jobs`` runs at a time with one torch thread each (on a busy 2-core
machine one thread per run was 10x faster than torch's default thread pool). The test scores of
each run's best epoch (segment-level Type@AV on val) are averaged over seeds; the table shows
mean and sample standard deviation. ``results-<weights>.json`` holds every run's ten scores.
Finished runs with the same settings are reused.

UWAV's settings are used throughout: ``T = 2``, ``alpha = 1.7``, ``W = 0.5`` with the published
code's weight scale; ``--weights paper`` (or ``fixed``) trains the re-weighting rows with the
paper's (or fixed) weights instead, in folders of their own (``soft+reweight-paper``, ...). The
synthetic world is fixed; nothing here tunes it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from avparse.eval import SCORE_KEYS

ROWS: dict[str, dict[str, bool]] = {
    "binary": {"uwav_soft": False, "uwav_reweight": False, "uwav_mixup": False},
    "soft": {"uwav_soft": True, "uwav_reweight": False, "uwav_mixup": False},
    "soft+reweight": {"uwav_soft": True, "uwav_reweight": True, "uwav_mixup": False},
    "soft+mixup": {"uwav_soft": True, "uwav_reweight": False, "uwav_mixup": True},
    "all": {"uwav_soft": True, "uwav_reweight": True, "uwav_mixup": True},
}
"""Rows of UWAV's table A8 (``binary``: hard harvests, which is the ``valor`` loss)."""

HEAD = ("A", "V", "AV", "Type", "Event")


def _train_one(args: argparse.Namespace, data: Path, row: str, seed: int) -> dict[str, float]:
    import torch

    from avparse.model.config import model_config
    from avparse.train.loop import train
    from avparse.train.recipe import recipe
    from avparse.train.runfolder import run_state

    model_cfg = model_config(
        "valor",
        {"d_model": args.d_model, "nhead": 4, "dim_feedforward": 2 * args.d_model,
         "num_layers": 1},
    )  # fmt: skip
    train_cfg = recipe(
        "valor",
        {"loss": "uwav", "epochs": args.epochs, "warmup": 2, "lr": 1e-3, "lr_min": 1e-5,
         "batch_size": args.batch_size, "seed": seed, "uwav_weights": args.weights, **ROWS[row]},
    )  # fmt: skip
    torch.set_num_threads(1)  # a small model: one thread per run, runs side by side (--jobs)
    folder = args.out / _label(row, args.weights) / f"seed{seed}"
    same = args.reuse and run_state(folder, model_cfg, train_cfg) == "finished"
    result = train(
        data, folder, model_cfg, train_cfg, preset="valor", store=args.out / "store",
        resume=same, overwrite=not same, progress=False,
    )  # fmt: skip
    assert result.test_scores is not None
    return {k: float(result.test_scores[k]) for k in SCORE_KEYS}


def _cell(values: list[float]) -> str:
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:5.1f} ± {spread:3.1f}"


def _label(row: str, weights: str) -> str:
    """Row name; re-weighting rows with other than the code's weights say which (own folders)."""
    return row if weights == "code" or not ROWS[row]["uwav_reweight"] else f"{row}-{weights}"


def table(results: dict[str, list[dict[str, float]]]) -> str:
    """Markdown table: rows of ``ROWS``, segment then event level, mean ± sample std."""
    head = " | ".join(f"seg {h}" for h in HEAD) + " | " + " | ".join(f"evt {h}" for h in HEAD)
    lines = [f"| row | {head} |", "| --- |" + " --- |" * len(SCORE_KEYS)]
    for row, runs in results.items():
        cells = [_cell([r[k] for r in runs]) for k in SCORE_KEYS]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_ablation"))
    parser.add_argument("--clips", type=int, default=800, help="synthetic training clips")
    parser.add_argument("--val-clips", type=int, default=200)
    parser.add_argument("--test-clips", type=int, default=300)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per row (0, 1, ...)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs trained at once"
    )
    parser.add_argument(
        "--weights", choices=("paper", "code", "fixed"), default="code",
        help="uwav_weights of the re-weighting rows (code: the published code's scale)",
    )  # fmt: skip
    parser.add_argument("--rows", nargs="+", choices=tuple(ROWS), default=list(ROWS))
    args = parser.parse_args(argv)

    from avparse.synthetic import COMPLETE_MARKER, generate_llp
    from avparse.utils.atomic import write_json

    t0 = time.perf_counter()
    marker = args.out / "data" / COMPLETE_MARKER
    before = marker.stat().st_mtime_ns if marker.is_file() else None
    data = generate_llp(
        args.out / "data", n_train=args.clips, n_val=args.val_clips, n_test=args.test_clips,
        seed=args.data_seed, overwrite=True,
    )  # fmt: skip
    args.reuse = before == marker.stat().st_mtime_ns  # runs are reused on the same data only
    runs = [(row, seed) for row in args.rows for seed in range(args.seeds)]
    done: dict[tuple[str, int], dict[str, float]] = {}

    def report(row: str, seed: int, scores: dict[str, float]) -> None:
        done[row, seed] = scores
        print(f"{row:<14} seed {seed}: segment Type@AV {scores['seg_type']:5.1f}, "
              f"event Type@AV {scores['evt_type']:5.1f}", flush=True)  # fmt: skip

    # the first run alone packs the shared store; the others then only read it
    report(*runs[0], _train_one(args, data, *runs[0]))
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_train_one, args, data, *run): run for run in runs[1:]}
        for future in as_completed(futures):
            report(*futures[future], future.result())
    results = {
        _label(row, args.weights): [done[row, seed] for seed in range(args.seeds)]
        for row in args.rows
    }
    settings: dict[str, Any] = {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
    }
    write_json(args.out / f"results-{args.weights}.json", {"settings": settings, "runs": results})
    print()
    print(table(results))
    print(
        f"\n{args.seeds} seeds, {time.perf_counter() - t0:.0f} s; "
        f"wrote {args.out / f'results-{args.weights}.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
