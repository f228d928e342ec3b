"""Compiled (``torch.compile``) and bfloat16 training against float32 eager on the same steps.

One epoch of the ``tiny`` preset (dropout off: compiled dropout draws other random numbers) on
a small synthetic root, three times: float32 eager, float32 compiled, bfloat16 autocast. Prints
the epoch's mean training loss of each, |compiled - eager| (goal: at most 1e-5), the largest
weight difference after the epoch, and each run's seconds (compilation included).

    python benchmarks/compile_check.py            # 24 train clips, batch 8: 3 steps
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "avparse-compile"))
    args = parser.parse_args()

    import torch

    from avparse.model.config import model_config
    from avparse.synthetic import generate_llp
    from avparse.train.loop import train
    from avparse.train.recipe import recipe

    cache = Path(args.cache)
    shutil.rmtree(cache, ignore_errors=True)
    root = generate_llp(cache / "root", n_train=args.clips, n_val=8, n_test=8)
    cfg = model_config(args.preset, {"dropout": 0.0})
    runs = {"float32 eager": {}, "float32 compiled": {"compile": True},
            "bfloat16 eager": {"precision": "bfloat16"}}  # fmt: skip
    loss, weights, seconds = {}, {}, {}
    for name, over in runs.items():
        rec = recipe(args.preset, {"epochs": 1, "batch_size": 8, **over})
        t0 = time.perf_counter()
        result = train(root, cache / name.replace(" ", "-"), cfg, rec, store=cache / "store",
                       progress=False, evaluate_test=False)  # fmt: skip
        seconds[name] = time.perf_counter() - t0
        loss[name] = result.log[0]["train_loss"]
        weights[name] = torch.load(
            cache / name.replace(" ", "-") / "checkpoint.pt", weights_only=True
        )["model"]
    base = "float32 eager"
    print(f"{args.preset} preset, {args.clips} clips, batch 8, 1 epoch, dropout 0")
    for name in runs:
        w = max(float((weights[name][k] - weights[base][k]).abs().max()) for k in weights[base])
        print(f"{name:>18}: mean loss {loss[name]:.8f}  |loss - eager| "
              f"{abs(loss[name] - loss[base]):.2e}  max |weight - eager| {w:.2e}  "
              f"{seconds[name]:.1f} s")  # fmt: skip
    diff = abs(loss["float32 compiled"] - loss[base])
    print(f"compiled vs eager: {'equal' if diff <= 1e-5 else 'NOT equal'} within 1e-5 ({diff:.1e})")


if __name__ == "__main__":
    main()
