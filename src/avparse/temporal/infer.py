"""Running a teacher over a split: segment logits of clips of any length, batched with masks."""

from __future__ import annotations

import numpy as np
import torch

from avparse.data.ragged import Ragged
from avparse.temporal.network import TemporalTeacher
from avparse.utils.progress import progress as progress_bar


def text_tensors(text: dict[str, np.ndarray], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio, visual) class text embeddings as float32 tensors on ``device``."""
    return (
        torch.as_tensor(text["audio"], dtype=torch.float32, device=device),
        torch.as_tensor(text["visual"], dtype=torch.float32, device=device),
    )


def length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Rows in batches of similar length (longest first), so little of a batch is padding."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def split_logits(
    model: TemporalTeacher,
    audio: Ragged,
    visual: Ragged,
    text: dict[str, np.ndarray],
    *,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = False,
    desc: str = "teacher",
    precision: str = "float32",
) -> tuple[Ragged, Ragged]:
    """Audio and visual logits (T_i, C) of every clip, as Ragged arrays in the clips' order.

    ``precision`` ``bfloat16`` runs the network under bfloat16 autocast
    (:mod:`avparse.utils.precision`); the logits come back as float32.
    """
    from avparse.utils.precision import autocast

    model.eval()
    a_text, v_text = text_tensors(text, device)
    c = a_text.shape[0]
    out_a = np.zeros((len(audio.values), c), dtype=np.float32)
    out_v = np.zeros_like(out_a)
    batches = length_batches(audio.lengths, batch_size)
    for rows in progress_bar(batches, desc=desc, enabled=progress, unit="batch"):
        a, mask = audio.pad(rows)
        v, _ = visual.pad(rows)
        m = torch.from_numpy(mask).to(device)
        with autocast(torch.device(device), precision):
            za, zv = model(
                torch.from_numpy(a).to(device), torch.from_numpy(v).to(device), a_text, v_text, m
            )
        za_np, zv_np = za.float().cpu().numpy(), zv.float().cpu().numpy()
        for j, r in enumerate(rows):
            s, e = audio.offsets[r], audio.offsets[r + 1]
            out_a[s:e] = za_np[j, : e - s]
            out_v[s:e] = zv_np[j, : e - s]
    return Ragged(out_a, audio.offsets.copy()), Ragged(out_v, audio.offsets.copy())
