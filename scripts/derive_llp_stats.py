"""Derive the event statistics of the synthetic generator from the real LLP and AVE annotations.

Run once (the result is committed as ``src/avparse/synthetic/llp_stats.json``)::

    python scripts/derive_llp_stats.py /work/shared/data/llp --ave /work/shared/data/ave

Weak labels exist for every split, dense labels only for val and test, so label-set statistics
(classes per clip, class frequency, co-occurrence) come from all clips and timing statistics
(which modality carries a tagged class, runs per event, run lengths) from the dense val + test
labels. Only counts and shares are stored; no clip ids.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avparse.data.llp import LLPAnnotations, runs
from avparse.utils.atomic import write_json
from avparse.vocab import AVE, LLP

OUT = Path(__file__).resolve().parents[1] / "src" / "avparse" / "synthetic" / "llp_stats.json"


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [round(float(c / total), 6) for c in counts] if total else [0.0] * len(counts)


def llp_stats(root: Path) -> dict:
    ann = LLPAnnotations(root)
    weak = {s: ann.weak(s) for s in ("train", "val", "test")}
    all_labels = np.concatenate([weak[s].labels for s in weak])
    per_clip = all_labels.sum(1)
    k_counts = np.bincount(per_clip, minlength=int(per_clip.max()) + 1)

    # Timing statistics from the dense labels of the tagged classes of val + test clips.
    kinds = np.zeros((len(LLP), 4), dtype=np.int64)  # audio-only, visual-only, both, neither
    runs_per_event = {m: np.zeros(11, dtype=np.int64) for m in ("audio", "visual")}
    run_length = {
        m: {n: np.zeros(11, dtype=np.int64) for n in ("single", "multi")}
        for m in ("audio", "visual")
    }
    for split in ("val", "test"):
        tags = weak[split].labels
        audio, visual = ann.dense(split)
        a_any, v_any = audio.any(1) & tags, visual.any(1) & tags
        for c in range(len(LLP)):
            t = tags[:, c]
            kinds[c, 0] += int((t & a_any[:, c] & ~v_any[:, c]).sum())
            kinds[c, 1] += int((t & ~a_any[:, c] & v_any[:, c]).sum())
            kinds[c, 2] += int((t & a_any[:, c] & v_any[:, c]).sum())
            kinds[c, 3] += int((t & ~a_any[:, c] & ~v_any[:, c]).sum())
        for name, matrix in (("audio", audio), ("visual", visual)):
            r = runs(matrix & tags[:, None, :])
            key = r[:, 0] * len(LLP) + r[:, 1]
            _, inverse, n_runs = np.unique(key, return_inverse=True, return_counts=True)
            runs_per_event[name] += np.bincount(n_runs, minlength=11)[:11]
            per_run = n_runs[inverse]
            lengths = r[:, 3] - r[:, 2]
            for group, mask in (("single", per_run == 1), ("multi", per_run > 1)):
                run_length[name][group] += np.bincount(lengths[mask], minlength=11)[:11]

    overall = kinds.sum(0)
    return {
        "source": "LLP annotation files (AVVP_*.csv); timing from dense val + test labels",
        "classes": LLP.names,
        "clips": {s: len(weak[s]) for s in weak},
        "classes_per_clip": {
            "counts": [int(c) for c in k_counts],
            "note": "index k = clips with k tagged classes, all splits",
        },
        "class_frequency": _shares(all_labels.sum(0)),
        "class_clip_counts": [int(c) for c in all_labels.sum(0)],
        "cooccurrence": (all_labels.T.astype(np.int64) @ all_labels.astype(np.int64)).tolist(),
        "modality": {
            "columns": ["audio_only", "visual_only", "audio_visual", "neither"],
            "overall": _shares(overall),
            "per_class_counts": kinds.tolist(),
        },
        "runs_per_event": {m: {"counts": [int(c) for c in v]} for m, v in runs_per_event.items()},
        "run_length": {
            m: {g: [int(c) for c in v] for g, v in groups.items()}
            for m, groups in run_length.items()
        },
    }


def ave_stats(root: Path) -> dict:
    from avparse.data.ave import read_ave_annotations

    clips = read_ave_annotations(root / "Annotations.txt")
    event = clips.segments[:, :, : len(AVE)].any(2)
    lengths = event.sum(1)
    onsets = event.argmax(1)
    return {
        "source": "AVE Annotations.txt",
        "clips": len(clips.ids),
        "class_clip_counts": [int(c) for c in clips.labels.sum(0)],
        "event_length_counts": [int(c) for c in np.bincount(lengths, minlength=11)],
        "onset_counts": [int(c) for c in np.bincount(onsets[lengths > 0], minlength=10)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("llp", type=Path, help="folder with the real AVVP_*.csv files")
    parser.add_argument("--ave", type=Path, help="folder with the real AVE Annotations.txt")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    stats = {"llp": llp_stats(args.llp)}
    if args.ave:
        stats["ave"] = ave_stats(args.ave)
    write_json(args.out, stats, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
