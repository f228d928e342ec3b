"""Batches of clips of different lengths: length buckets, per-batch padding, a validity mask.

A split of clips of any length (:attr:`avparse.train.tasks.SplitData.lengths`, UnAV-100) is
stored without padding (:class:`avparse.data.ragged.Ragged`). Each batch is padded to its own
longest clip, with a mask (B, T) that is True on real segments; the model and the segment losses
see the mask. So that padding stays small, :func:`bucket_batches` puts clips of similar length
together, after lhotse's bucketing samplers: clips sorted by length (ties in a random order) are
cut into buckets of :data:`BUCKET_BATCHES` global batches, each bucket is shuffled and cut into
global batches, and the batches of all buckets are shuffled, all from one generator seeded with
``(seed, epoch)``, so every process draws the same batches. Each global batch is dealt to the
``torchrun`` ranks as today's ``DistributedSampler`` does (same step count on every rank).

Splits of 10-segment clips (LLP, AVE) never come here: their batches, and results, are today's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avparse.data.ragged import Ragged

BUCKET_BATCHES = 4
"""Global batches per length bucket: a bucket spans the lengths of ``4 * batch_size`` clips of
the sorted split (fewer buckets: more mixing, more padding; benchmarks/train_length.py)."""


def bucket_batches(
    lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    world: int = 1,
    rank: int = 0,
    bucket_batches: int = BUCKET_BATCHES,
) -> list[np.ndarray]:
    """This rank's batches (sorted row indices) of one epoch, clips of similar length together.

    Args:
        lengths: (N,) segments per clip.
        batch_size: the global batch (all ranks together).
        seed, epoch: the draw; the same on every rank, a new shuffle each epoch.
        world, rank: ``torchrun`` processes and this one; a global batch is dealt in turn
            (clip ``j`` of it to rank ``j % world``); a batch of fewer than ``world`` clips, or
            not a multiple of ``world``, repeats its own clips so every rank takes a step.
        bucket_batches: global batches per bucket.

    Every clip appears once per epoch (in one rank's batch), the last batch of a bucket may be
    smaller than ``batch_size``.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if batch_size < world:
        raise ValueError(f"batch size {batch_size} is smaller than the {world} processes")
    n = len(lengths)
    rng = np.random.default_rng([int(seed), int(epoch)])
    order = rng.permutation(n)
    order = order[np.argsort(lengths[order], kind="stable")]  # by length, ties at random
    span = max(1, bucket_batches) * batch_size
    batches: list[np.ndarray] = []
    for start in range(0, n, span):
        bucket = rng.permutation(order[start : start + span])
        batches += [bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size)]
    out = []
    for k in rng.permutation(len(batches)):
        batch = batches[k]
        short = -len(batch) % world
        if short:
            batch = np.concatenate([batch, np.resize(batch, short)])
        out.append(np.sort(batch[rank::world]))
    return out


def padding_waste(lengths: Sequence[int] | np.ndarray, batches: Sequence[np.ndarray]) -> float:
    """Share of padded segments in ``batches``: ``1 - real / (sum of batch size x longest)``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches if len(b))
    return 1.0 - real / padded if padded else 0.0


def pad_rows(
    arrays: dict[str, np.ndarray | Ragged], rows: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``rows`` of each array as float32, padded to the batch's longest clip, and the mask.

    Ragged arrays are padded with zeros to (n, T, ...); plain arrays (per-clip values such as
    weak labels, (N, ...)) are indexed. Returns ``(arrays, mask (n, T) bool)``.
    """
    out: dict[str, np.ndarray] = {}
    mask: np.ndarray | None = None
    for name, array in arrays.items():
        if isinstance(array, Ragged):
            out[name], mask = array.pad(rows, dtype=np.float32)
        else:
            out[name] = np.asarray(array[rows], dtype=np.float32)
    if mask is None:
        raise ValueError("no ragged array to take the clips' lengths from")
    return out, mask


__all__ = ["BUCKET_BATCHES", "bucket_batches", "pad_rows", "padding_waste"]
