"""Derive the statistics of the synthetic UnAV-like world from the real UnAV-100 annotations.

Run once (the result is committed as ``src/avparse/synthetic/unav_stats.json``)::

    python scripts/derive_unav_stats.py ../shared/data/unav100

From every video of the three splits: segments per video (``ceil(duration)``) and how many
durations are not whole seconds, classes per video, each class's video count and the class
co-occurrence (videos holding both), events of one class in one video, and event lengths as a
share of the video's duration (20 bins of 5 %, for classes with one event in the video and for
classes with several). Only counts; no video ids.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avparse.data.unav import UnAVAnnotations
from avparse.utils.atomic import write_json
from avparse.vocab import UNAV

OUT = Path(__file__).resolve().parents[1] / "src" / "avparse" / "synthetic" / "unav_stats.json"
SPLITS = ("train", "val", "test")
LENGTH_BINS = 20
"""Event length as a share of the duration, in bins of 5 % (the last bin holds 100 %)."""
MAX_EVENTS = 20
"""Events of one class in one video are counted up to this (the real file has at most 17)."""


def unav_stats(root: Path) -> dict:
    ann = UnAVAnnotations(root)
    c = len(UNAV)
    durations = np.concatenate([ann.durations(s) for s in SPLITS])
    lengths = np.concatenate([ann.lengths(s) for s in SPLITS])
    weak = np.concatenate([ann.weak(s) for s in SPLITS]).astype(np.int64)
    per_video = weak.sum(1)
    events_per_pair = np.zeros(MAX_EVENTS + 1, dtype=np.int64)
    length_share = {g: np.zeros(LENGTH_BINS, dtype=np.int64) for g in ("single", "multi")}
    n_events = 0
    event_seconds = []
    for s in SPLITS:
        ev = ann.events(s)
        n_events += len(ev.label)
        key = ev.video * c + ev.label
        _, inverse, count = np.unique(key, return_inverse=True, return_counts=True)
        events_per_pair += np.bincount(np.minimum(count, MAX_EVENTS), minlength=MAX_EVENTS + 1)
        share = (ev.end - ev.start) / ev.durations[ev.video]
        bins = np.minimum((share * LENGTH_BINS).astype(np.int64), LENGTH_BINS - 1)
        several = count[inverse] > 1
        length_share["single"] += np.bincount(bins[~several], minlength=LENGTH_BINS)
        length_share["multi"] += np.bincount(bins[several], minlength=LENGTH_BINS)
        event_seconds.append(ev.end - ev.start)
    seconds = np.concatenate(event_seconds)
    return {
        "source": "UnAV-100 unav100_annotations.json, all splits",
        "classes": UNAV.names,
        "videos": ann.counts(),
        "segments_per_video": {
            "counts": [int(x) for x in np.bincount(lengths, minlength=61)],
            "note": "index T = videos with ceil(duration) = T",
        },
        "fractional_duration_share": round(float((durations != np.floor(durations)).mean()), 6),
        "classes_per_video": {
            "counts": [int(x) for x in np.bincount(per_video)],
            "note": "index k = videos with k distinct classes",
        },
        "class_video_counts": [int(x) for x in weak.sum(0)],
        "cooccurrence": (weak.T @ weak).tolist(),
        "events_per_class_in_video": {
            "counts": [int(x) for x in events_per_pair],
            "note": f"index k = (video, class) pairs with k events (the last: {MAX_EVENTS}+)",
        },
        "event_length_share": {
            "bins": LENGTH_BINS,
            "note": "counts per 5 % bin of (end - start) / duration; single: the class has one "
            "event in the video, multi: several",
            **{g: [int(x) for x in v] for g, v in length_share.items()},
        },
        "summary": {
            "events": int(n_events),
            "events_per_video": round(n_events / len(durations), 3),
            "mean_duration": round(float(durations.mean()), 3),
            "mean_event_seconds": round(float(seconds.mean()), 3),
            "median_event_seconds": round(float(np.median(seconds)), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("unav", type=Path, help="folder with the real unav100_annotations.json")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    write_json(args.out, unav_stats(args.unav), indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
