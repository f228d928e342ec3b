"""Training on clips of any length: length buckets, per-batch padding with a mask, masked
segment losses and padded predictions, each against a plain per-clip computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avparse.data.ragged import Ragged
from avparse.model.han import HANOutput
from avparse.train import uwav
from avparse.train.batching import bucket_batches, pad_rows, padding_waste
from avparse.train.evaluate import predict
from avparse.train.losses import valor_loss
from avparse.train.recipe import TrainConfig
from avparse.train.tasks import SplitData


def _unav_like_lengths(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(10, 61, size=n)


def test_buckets_cover_every_clip_once_and_are_deterministic_per_epoch() -> None:
    lengths = _unav_like_lengths(203)
    one = bucket_batches(lengths, 16, seed=3, epoch=1)
    rows = np.concatenate(one)
    assert sorted(rows.tolist()) == list(range(203))
    assert all(len(b) <= 16 for b in one) and all((np.diff(b) > 0).all() for b in one)
    again = bucket_batches(lengths, 16, seed=3, epoch=1)
    assert all((a == b).all() for a, b in zip(one, again, strict=True))
    other = bucket_batches(lengths, 16, seed=3, epoch=2)
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(one, other, strict=False))


def test_buckets_are_dealt_to_ranks_like_one_process() -> None:
    lengths = _unav_like_lengths(101, seed=1)
    single = bucket_batches(lengths, 12, seed=5, epoch=4)
    ranks = [bucket_batches(lengths, 12, seed=5, epoch=4, world=3, rank=r) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(single)  # same steps
    for step, batch in enumerate(single):
        dealt = np.concatenate([r[step] for r in ranks])
        assert set(dealt.tolist()) == set(batch.tolist())  # repeats only to fill the last ranks
        assert {len(r[step]) for r in ranks} == {-(-len(batch) // 3)}


def test_padding_waste_of_unav_like_lengths_is_small() -> None:
    lengths = _unav_like_lengths(6489)
    batches = bucket_batches(lengths, 64, seed=0, epoch=1)
    assert padding_waste(lengths, batches) < 0.10
    shuffled = np.array_split(np.random.default_rng(0).permutation(6489), 6489 // 64)
    assert padding_waste(lengths, shuffled) > 0.25  # what buckets save: random batches waste


def test_pad_rows_pads_ragged_arrays_and_indexes_plain_ones() -> None:
    clips = [np.full((t, 2), t, dtype=np.float32) for t in (3, 5, 1)]
    arrays = {"x": Ragged.from_arrays(clips), "weak": np.eye(3)}
    out, mask = pad_rows(arrays, np.array([0, 2]))
    assert out["x"].shape == (2, 3, 2) and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert out["x"][1, 1:].sum() == 0 and out["weak"].tolist() == [[1, 0, 0], [0, 0, 1]]


def _output(logits: torch.Tensor) -> HANOutput:
    prob = torch.sigmoid(logits)
    video = prob.mean(dim=(1, 2))
    return HANOutput(video, video, video, prob, logits)


def test_masked_segment_losses_average_over_real_segments_only() -> None:
    g = torch.Generator().manual_seed(0)
    lengths = [4, 7, 2]
    logits = torch.randn(3, 7, 2, 5, generator=g)
    harvest = (torch.rand(3, 7, 5, generator=g) > 0.5).float()
    mask = torch.arange(7)[None, :] < torch.tensor(lengths)[:, None]
    harvest = harvest * mask[:, :, None]
    weak = torch.ones(3, 5)
    _, parts = valor_loss(_output(logits), weak, harvest, harvest, mask)
    real = torch.cat([logits[i, :t, 0] for i, t in enumerate(lengths)])
    target = torch.cat([harvest[i, :t] for i, t in enumerate(lengths)])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(real, target)
    torch.testing.assert_close(parts["audio"], expected)
    # padded logits do not move the masked loss
    moved = logits.clone()
    moved[~mask] = 50.0
    _, moved_parts = valor_loss(_output(moved), weak, harvest, harvest, mask)
    torch.testing.assert_close(moved_parts["audio"], parts["audio"])
    # UWAV's segment term: the same rule, and mixup draws from real segments only
    w = uwav.segment_loss(logits[:, :, 1], harvest, weak, (2.0, 0.5), mask)
    w_moved = uwav.segment_loss(moved[:, :, 1], harvest, weak, (2.0, 0.5), mask)
    torch.testing.assert_close(w, w_moved)
    perm = torch.randperm(int(mask.sum()), generator=g)
    mix = uwav.mixup_loss(logits[:, :, 0], harvest, 0.3, perm, mask)
    mix_moved = uwav.mixup_loss(moved[:, :, 0], harvest, 0.3, perm, mask)
    torch.testing.assert_close(mix, mix_moved)


def test_uwav_class_weights_count_real_segments_of_ragged_harvests() -> None:
    hard = Ragged.from_arrays([np.ones((2, 4), np.uint8), np.zeros((6, 4), np.uint8)])
    table = uwav.derive_targets(
        {"harvest_audio": hard, "harvest_visual": hard}, TrainConfig(uwav_weights="paper")
    )[uwav.WEIGHTS_TARGET]
    assert table.shape == (2, 2, 2)
    np.testing.assert_allclose(table[0, 0], [0.5 * (1 - 0.25), 0.25])  # 8 of 32 entries


class _PerSegment(torch.nn.Module):
    """A stand-in student whose segment outputs depend on the segment only and whose video
    output is a masked mean: any padding that leaked in would change them."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)

    def forward(self, audio, visual, motion, mask=None):
        logits = torch.stack((self.fc(audio), self.fc(visual + motion)), dim=2)
        prob = torch.sigmoid(logits)
        m = torch.ones(prob.shape[:2], dtype=torch.bool) if mask is None else mask
        w = m[:, :, None, None].float()
        video = (prob * w).sum(dim=(1, 2)) / (2 * w.sum(dim=(1, 2)))
        return HANOutput(video, video, video, prob, logits)


def test_predict_pads_clips_of_any_length_and_matches_each_clip_alone() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    lengths = np.array([5, 2, 9, 1, 5, 3])
    inputs = {
        r: Ragged.from_arrays([rng.normal(size=(t, 3)).astype(np.float32) for t in lengths])
        for r in ("audio", "visual", "motion")
    }
    data = SplitData("test", [f"c{i}" for i in range(6)], inputs, {}, lengths)
    model = _PerSegment()
    frame, video = predict(model, data, batch_size=4)
    assert frame.shape == (6, 9, 2, 4) and video.shape == (6, 4)
    for i, t in enumerate(lengths):
        alone = model(
            *[torch.from_numpy(inputs[r][i][None]) for r in ("audio", "visual", "motion")]
        )
        np.testing.assert_allclose(frame[i, :t], alone.frame_prob[0].detach().numpy(), atol=1e-6)
        np.testing.assert_allclose(video[i], alone.video_prob[0].detach().numpy(), atol=1e-6)
        assert not frame[i, t:].any()


@pytest.mark.parametrize("world", [1, 2])
def test_every_rank_steps_the_same_number_of_times(world: int) -> None:
    lengths = np.array([3] * 5 + [40] * 2)
    per_rank = [
        bucket_batches(lengths, 4, seed=0, epoch=1, world=world, rank=r) for r in range(world)
    ]
    assert len({len(b) for b in per_rank}) == 1
    assert all(len(b) >= 1 for batches in per_rank for b in batches)
