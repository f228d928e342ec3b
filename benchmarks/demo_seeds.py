"""The demo's comparison over several synthetic worlds: mean and spread per method.

    .venv/bin/python benchmarks/demo_seeds.py [--out runs/bench_demo] [--seeds 0 1 2]
    .venv/bin/python benchmarks/demo_seeds.py --clips 1000 --epochs 20   # a smaller run
    .venv/bin/python benchmarks/demo_seeds.py --precision float32 bfloat16 --no-uwav-network

Runs :func:`avparse.demo.run_demo` with the demo's defaults (or the sizes given) once per seed
(the seed of the synthetic world: clips, features and teachers; the training seed is each
preset's own), then
prints per method the mean, the standard deviation and the range of the ten test scores, and the
harvests themselves scored as a prediction on the test split (the modality-independent teachers'
and the fused teacher's labels against the dense truth: how good the targets are). Finished
seeds are reused (the demo's own reuse rules). ``OUT/results.json`` holds every number. The
demo's four columns train VALOR's network; a fifth, ``uwav_net``, trains UWAV's objective on
UWAV's network (``arch: uwav``) at the same width (``--no-uwav-network`` skips it).

``--precision float32 bfloat16`` trains every seed in each precision (``OUT/<precision>/seedN``;
the synthetic world of a seed is the same in both) and ends with each method's difference to
the first precision, per seed: the accuracy cost of bfloat16 autocast.

Disk: about 1.4 GB per seed and precision with the defaults (the synthetic data, its packed
store and the run folders; each precision folder generates its own copy of every seed's data),
so the default three seeds take about 4.2 GB and ``--precision float32 bfloat16`` twice that.
A reused seed keeps the wall and CPU times recorded when it ran (``OUT/results.json``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (on a shared machine wall time says little)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def harvest_scores(data: Path) -> dict[str, dict[str, float]]:
    """The test split's harvests (both teachers) scored as predictions with the LLP metric."""
    from avparse.data.llp import LLPAnnotations
    from avparse.eval.metrics import llp_scores
    from avparse.harvest.outputs import ClipOutputs
    from avparse.synthetic import FUSED

    ann = LLPAnnotations(data)
    true_a, true_v = ann.dense("test")
    ids = ann.weak("test").ids
    out = {}
    for teacher, base in (("modality", data), ("fused", data / FUSED)):
        pred = {
            m: np.stack([np.load(ClipOutputs(base, c).hard(m)) for c in ids]) > 0
            for m in ("audio", "visual")
        }
        out[teacher] = llp_scores(pred["audio"], pred["visual"], true_a, true_v)
    return out


def recorded_times(path: Path) -> dict[int, dict[str, float]]:
    """Seed -> the ``wall_s`` / ``cpu_s`` an earlier run recorded in ``path`` (none: {})."""
    from avparse.utils.jsonio import read_json_object

    if not path.is_file():
        return {}
    seeds = read_json_object(path, "demo_seeds results").get("seeds", {})
    out = {}
    for seed, record in seeds.items():
        times = {
            k: record[k] for k in ("wall_s", "cpu_s") if isinstance(record.get(k), float | int)
        }
        if len(times) == 2:
            out[int(seed)] = times
    return out


def describe_times(times: dict[str, float], reused: bool) -> str:
    """``95 s wall, 180 s CPU``, and for a reused seed what was recorded when it ran."""
    if not times:
        return "reused (no earlier time recorded)"
    text = f"{times['wall_s']:.0f} s wall, {times['cpu_s']:.0f} s CPU"
    return f"reused (recorded {text})" if reused else text


def main(argv: list[str] | None = None) -> int:
    from avparse.demo import DemoConfig
    from avparse.utils.precision import PRECISIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("runs/bench_demo"),
        help="folder of the runs: OUT/seedN per seed (OUT/<precision>/seedN with several "
        "precisions) and OUT/results.json; finished seeds there are reused (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2],
        help="seeds of the synthetic worlds, one demo each (default: 0 1 2)",
    )  # fmt: skip
    d = DemoConfig()
    parser.add_argument("--clips", type=int, default=d.clips, help="training clips")
    parser.add_argument("--val-clips", type=int, default=d.val_clips)
    parser.add_argument("--test-clips", type=int, default=d.test_clips)
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument(
        "--no-uwav-network", action="store_true",
        help="skip the fifth column (UWAV's objective on UWAV's network); the four demo columns "
        "all train VALOR's network",
    )  # fmt: skip
    parser.add_argument(
        "--precision", nargs="+", choices=PRECISIONS, default=["float32"],
        help="the students' arithmetic; several: every seed in each, then the differences",
    )  # fmt: skip
    args = parser.parse_args(argv)

    runs = {}
    for precision in args.precision:
        out = args.out if len(args.precision) == 1 else args.out / precision
        print(f"precision {precision}: {out}", flush=True)
        runs[precision] = run_seeds(args, out, precision)
    if len(runs) > 1:
        print_differences(runs, args.seeds)
    return 0


def print_differences(runs: dict[str, dict[int, dict]], seeds: list[int]) -> None:
    """Each method's segment and event Type@AV in every precision minus the first one's."""
    from avparse.demo import METHODS, UWAV_NETWORK

    first, *others = runs
    keys = [m.key for m in (*METHODS, UWAV_NETWORK) if m.key in runs[first][seeds[0]]]
    for precision in others:
        print(f"\n{precision} - {first}, Type@AV points per seed {seeds} (segment / event):")
        for key in keys:
            diffs = {
                lv: [runs[precision][s][key][f"{lv}_type"] - runs[first][s][key][f"{lv}_type"]
                     for s in seeds]
                for lv in ("seg", "evt")
            }  # fmt: skip
            cells = [
                f"{a:+.2f} / {b:+.2f}" for a, b in zip(diffs["seg"], diffs["evt"], strict=True)
            ]
            mean = f"{np.mean(diffs['seg']):+.2f} / {np.mean(diffs['evt']):+.2f}"
            print(f"  {key:<12}" + ", ".join(cells) + f"; mean {mean}")


def run_seeds(args: argparse.Namespace, out: Path, precision: str) -> dict[int, dict]:
    """Every seed's demo in one precision; prints the summary; returns the per-seed numbers."""
    from avparse.demo import SCORE_KEYS, DemoConfig, run_demo
    from avparse.utils.atomic import write_json

    earlier = recorded_times(out / "results.json")
    per_seed: dict[int, dict] = {}
    for seed in args.seeds:
        start, cpu = time.perf_counter(), _cpu_seconds()
        cfg = DemoConfig(
            out=out / f"seed{seed}", seed=seed, clips=args.clips, val_clips=args.val_clips,
            test_clips=args.test_clips, epochs=args.epochs, plot=False, progress=False,
            notes=False, uwav_network=not args.no_uwav_network, precision=precision,
        )  # fmt: skip
        result = run_demo(cfg)
        harvest = harvest_scores(cfg.out / "data")
        times = {
            "wall_s": round(time.perf_counter() - start, 1),
            "cpu_s": round(_cpu_seconds() - cpu, 1),
        }
        if result.reused:  # this call only read finished runs: keep the times of the one that ran
            times = earlier.get(seed, {})
        per_seed[seed] = {**result.scores, "harvest": harvest, **times}
        print(f"seed {seed}: {describe_times(times, result.reused)}, segment Type@AV "
              + ", ".join(f"{m.key} {result.scores[m.key]['seg_type']:.2f}" for m in cfg.methods),
              flush=True)  # fmt: skip

    rows = [(m.key, m.title) for m in cfg.methods]
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for key, _ in rows:
        summary[key] = {}
        for score in SCORE_KEYS:
            v = np.asarray([per_seed[s][key][score] for s in args.seeds])
            summary[key][score] = {
                "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                "min": float(v.min()), "max": float(v.max()),
            }  # fmt: skip
    write_json(out / "results.json", {"seeds": per_seed, "summary": summary})

    print(f"\nTest F-score %, mean ± std over seeds {args.seeds} [min, max]")
    print(f"{'score':<10}" + "".join(f"{title:>26}" for _, title in rows))
    for score in SCORE_KEYS:
        cells = []
        for key, _ in rows:
            s = summary[key][score]
            cells.append(f"{s['mean']:6.2f} ± {s['std']:4.2f} [{s['min']:5.1f}, {s['max']:5.1f}]")
        print(f"{score:<10}" + "".join(f"{c:>26}" for c in cells))
    print("\nHarvests as a prediction on test (segment / event Type@AV, per seed):")
    for teacher in ("modality", "fused"):
        cells = [
            f"{per_seed[s]['harvest'][teacher]['seg_type']:.2f} / "
            f"{per_seed[s]['harvest'][teacher]['evt_type']:.2f}"
            for s in args.seeds
        ]
        print(f"  {teacher:<9} " + ", ".join(cells))
    print("\nSign of the paper's orderings per seed (segment Type@AV):")
    pairs = [("valor", "valor_fused"), ("valor_fused", "han"), ("valor", "han"), ("uwav", "valor"),
             ("uwav_net", "uwav")]  # fmt: skip
    keys = {k for k, _ in rows}
    for a, b in pairs:
        if a in keys and b in keys:
            diffs = [per_seed[s][a]["seg_type"] - per_seed[s][b]["seg_type"] for s in args.seeds]
            print(f"  {a} - {b}: " + ", ".join(f"{d:+.2f}" for d in diffs))
    print(f"wrote {out / 'results.json'}")
    return per_seed


if __name__ == "__main__":
    raise SystemExit(main())
