"""AVE on synthetic data: weak-label baseline (HAN) vs VALOR (harvests), plus full supervision.

    .venv/bin/python benchmarks/ave.py [--out runs/bench_ave] [--clips 1200] [--epochs 40]
    .venv/bin/python benchmarks/ave.py --annotations ../shared/data/ave   # real clips and labels

Generates (or reuses) an AVE data root with synthetic features (from AVE-like statistics, or
from the real ``Annotations.txt`` and splits with ``--annotations``), trains the same narrowed
student with each loss through the ``ave`` task, and prints test segment accuracy side by side;
``results.json`` holds accuracy and per-class accuracy of each method. Runs finished with the
same settings are reused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METHODS = ("han", "valor", "supervised")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_ave"))
    parser.add_argument("--annotations", type=Path, default=None, help="real AVE folder")
    parser.add_argument("--per-split", type=int, default=None, help="first N clips per split")
    parser.add_argument("--clips", type=int, default=1200, help="synthetic training clips")
    parser.add_argument("--val-clips", type=int, default=200)
    parser.add_argument("--test-clips", type=int, default=400)
    parser.add_argument("--features", choices=("valor", "valor++"), default="valor")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from avparse.data.synthetic import generate_ave
    from avparse.model.config import model_config
    from avparse.train.loop import read_run, train
    from avparse.train.recipe import recipe
    from avparse.utils.atomic import write_json

    data = generate_ave(
        args.out / "data", n_train=args.clips, n_val=args.val_clips, n_test=args.test_clips,
        annotations=args.annotations, per_split=args.per_split, features=args.features,
        seed=args.seed, overwrite=True,
    )  # fmt: skip
    preset = "valor" if args.features == "valor" else "valor++"
    model_cfg = model_config(
        preset,
        {"vocabulary": "ave", "d_model": args.d_model, "nhead": 4,
         "dim_feedforward": 2 * args.d_model, "num_layers": 1},
    )  # fmt: skip
    results = {}
    for method in args.methods:
        train_cfg = recipe(preset, {"task": "ave", "loss": method, "epochs": args.epochs,
                                    "warmup": 2, "lr": 1e-3, "lr_min": 1e-5, "batch_size": 32})  # fmt: skip
        folder = args.out / method
        run = read_run(folder)
        same = (
            run is not None
            and run.get("status") == "finished"
            and run.get("model") == model_cfg.to_dict()
            and run.get("train") == json.loads(json.dumps(train_cfg.to_dict()))
        )
        result = train(
            data, folder, model_cfg, train_cfg, preset=preset, resume=same,
            overwrite=not same, progress=False,
        )  # fmt: skip
        results[method] = result.test_scores
        print(f"{method:<11} test accuracy {result.test_scores['accuracy']:6.2f}", flush=True)
    write_json(args.out / "results.json", results)
    print(f"\n{'method':<11}{'accuracy':>10}{'background':>12}")
    for method, scores in results.items():
        print(f"{method:<11}{scores['accuracy']:>10.2f}{scores.get('acc/background', 0):>12.2f}")
    print(f"wrote {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
