"""Run a student over a split, score it, and write predictions (``avparse evaluate``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avparse.errors import AvparseError
from avparse.train.tasks import LoadRequest, SplitData, get_task, model_task
from avparse.utils.atomic import atomic_path, write_json
from avparse.utils.precision import autocast, check_precision, compiled


def batch_inputs(
    data: SplitData, rows: np.ndarray, device: torch.device
) -> list[torch.Tensor | None]:
    """Gather ``rows`` of the three inputs (one fancy index per memory map) as float tensors
    (None for a role the model does not take: a student without 3-D features)."""
    return [
        torch.from_numpy(np.ascontiguousarray(data.inputs[r][rows], dtype=np.float32)).to(device)
        if r in data.inputs
        else None
        for r in ("audio", "visual", "motion")
    ]


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    data: SplitData,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    precision: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Segment probabilities (N, T, 2, C) and video probabilities (N, C) of a whole split.

    ``precision`` ``bfloat16`` runs the forward passes under bfloat16 autocast
    (:mod:`avparse.utils.precision`); the probabilities come back as float32.

    T is 10 for 10-segment clips. For clips of any length (``data.lengths``) T is the longest
    clip and clip ``i``'s probabilities after its ``data.lengths[i]`` segments are 0: the clips
    go through the model in batches of similar length, padded per batch with a mask.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        with autocast(device, precision):
            if data.lengths is not None:
                return _predict_ragged(model, data, batch_size, device)
            frames, videos = [], []
            for start in range(0, len(data), batch_size):
                rows = np.arange(start, min(start + batch_size, len(data)))
                out = model(*batch_inputs(data, rows, device))
                frames.append(out.frame_prob.float().cpu().numpy())
                videos.append(out.video_prob.float().cpu().numpy())
    finally:
        model.train(was_training)
    if not frames:
        raise AvparseError(f"split {data.split!r} has no clips")
    return np.concatenate(frames), np.concatenate(videos)


def _predict_ragged(
    model: torch.nn.Module, data: SplitData, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    from avparse.train.batching import pad_rows

    lengths = np.asarray(data.lengths)
    if len(lengths) == 0:
        raise AvparseError(f"split {data.split!r} has no clips")
    frame_prob: np.ndarray | None = None
    video_prob: np.ndarray | None = None
    order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
    for start in range(0, len(order), batch_size):
        rows = np.sort(order[start : start + batch_size])
        host, mask = pad_rows(dict(data.inputs), rows)
        inputs = [
            torch.from_numpy(host[r]).to(device) if r in host else None
            for r in ("audio", "visual", "motion")
        ]
        out = model(*inputs, mask=torch.from_numpy(mask).to(device))
        frames = out.frame_prob.float().cpu().numpy()
        if frame_prob is None or video_prob is None:
            frame_prob = np.zeros((len(data), int(lengths.max()), *frames.shape[2:]), np.float32)
            video_prob = np.zeros((len(data), out.video_prob.shape[-1]), np.float32)
        frame_prob[rows, : frames.shape[1]] = frames * mask[:, :, None, None]
        video_prob[rows] = out.video_prob.float().cpu().numpy()
    assert frame_prob is not None and video_prob is not None
    return frame_prob, video_prob


def write_predictions(
    out: Path,
    data: SplitData,
    frame_prob: np.ndarray,
    video_prob: np.ndarray,
    vocab: Any,
    task: str = "llp",
) -> list[str]:
    """The task's prediction files (LLP: ``audio.tsv``/``visual.tsv`` in the dense format; AVE:
    ``predictions.tsv``; UnAV-100: ``audio.tsv``, ``visual.tsv``, ``audio_visual.tsv`` in
    seconds) and ``probs.npz`` (with ``lengths`` for clips of any length), atomically; returns
    the names written."""
    out.mkdir(parents=True, exist_ok=True)
    spec = get_task(task)
    if spec.write_predictions is not None:
        written = spec.write_predictions(out, data, frame_prob, video_prob)
    else:
        from avparse.data.llp import write_dense_tsv
        from avparse.eval.events import decide

        pred_a, pred_v = decide(frame_prob, video_prob)
        write_dense_tsv(out / "audio.tsv", data.filenames, pred_a, vocab)
        write_dense_tsv(out / "visual.tsv", data.filenames, pred_v, vocab)
        written = ["audio.tsv", "visual.tsv"]
    arrays = {
        "names": np.asarray(data.filenames),
        "frame_prob": frame_prob.astype(np.float32),
        "video_prob": video_prob.astype(np.float32),
    }
    if data.lengths is not None:  # clips of any length: frame_prob is padded to the longest
        arrays["lengths"] = np.asarray(data.lengths, dtype=np.int64)
    with atomic_path(out / "probs.npz", suffix=".npz") as tmp:
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
    return [*written, "probs.npz"]


def trained_precision(checkpoint: str | Path) -> str | None:
    """The precision a run folder's model (``RUN/model``) was trained in, from ``RUN/run.json``;
    None for any other checkpoint (a published ``.pt``, a hub id, a folder outside a run)."""
    from avparse.train.runfolder import MODEL_DIR, read_run

    path = Path(checkpoint)
    if path.name != MODEL_DIR or not path.is_dir():
        return None
    try:
        run = read_run(path.parent)
    except AvparseError:
        return None
    train = run.get("train") if run else None
    precision = train.get("precision") if isinstance(train, dict) else None
    return precision if isinstance(precision, str) else None


def evaluate_checkpoint(
    data_root: str | Path,
    checkpoint: str | Path,
    *,
    split: str,
    out: str | Path,
    preset: str | None = None,
    sets: list[str] | None = None,
    store: str | Path | None = None,
    task: str | None = None,
    device: str = "cpu",
    batch_size: int = 256,
    progress: bool = False,
    precision: str | None = None,
    compile: bool = False,
    written: list[str] | None = None,
    used: dict[str, str] | None = None,
) -> dict[str, float]:
    """Load a student (either checkpoint format), predict ``split``, write outputs and scores.

    ``precision`` and ``compile`` are those of :mod:`avparse.utils.precision` (bfloat16
    autocast; ``torch.compile`` with a one-line note on stderr where it cannot). ``precision``
    None is the one the model was trained in (:func:`trained_precision`), else float32;
    ``used``, when given, receives the precision used as ``used["precision"]``.

    ``preset`` and ``sets`` (``KEY=VALUE`` model overrides) describe a published ``.pt``; a
    model folder carries its own config, so giving them with one is an error.

    ``task`` None is the model's own (:func:`avparse.train.tasks.model_task`: from its
    vocabulary); a task that needs another vocabulary is refused with one line. ``written``,
    when given, receives the names of the files written into ``out``.
    """
    from avparse.model.checkpoint import load_student
    from avparse.train.recipe import model_sets
    from avparse.utils.atomic import prepare_output_folder

    out = Path(out)
    if precision is None:
        precision = trained_precision(checkpoint) or "float32"
    check_precision(precision)
    if used is not None:
        used["precision"] = precision
    if batch_size < 1:
        raise AvparseError(f"--batch-size must be positive, got {batch_size}")
    published = Path(checkpoint).is_file() or str(checkpoint).endswith((".pt", ".pth"))
    if not published and (preset is not None or sets):
        given = "--preset" if preset is not None else "--set"
        raise AvparseError(
            f"{checkpoint}: {given} describes a published .pt checkpoint; a model folder "
            "brings its own config (drop it)"
        )
    overrides = model_sets(list(sets or []), preset) if sets else None
    prepare_output_folder(out)
    model, config = load_student(checkpoint, preset, overrides)
    config.check_data_widths(str(checkpoint))
    if task is None:
        from avparse.data.roots import root_task

        task = model_task(config, None, str(checkpoint))
        laid_out = root_task(data_root)
        if laid_out not in (None, task):  # not "unav100_annotations.json: missing"
            raise AvparseError(
                f"{data_root}: a data root for task {laid_out}, but {checkpoint} is a model "
                f"for task {task} (its vocabulary {config.vocabulary!r}); evaluate it on a root "
                f"for task {task}"
            )
    else:
        task = model_task(config, task, str(checkpoint))
    spec = get_task(task)
    data = spec.load(
        LoadRequest(Path(data_root), None if store is None else Path(store), split, config,
                    progress=progress)
    )  # fmt: skip
    model.to(device)
    net = compiled(model, compile, lambda line: print(f"note: {line}", file=sys.stderr))
    frame_prob, video_prob = predict(
        net, data, batch_size=batch_size, device=device, precision=precision
    )
    scores = spec.evaluate(frame_prob, video_prob, data)
    files = write_predictions(out, data, frame_prob, video_prob, config.vocab, task)
    write_json(out / "metrics.json", scores)
    if written is not None:
        written += [*files[:-1], "metrics.json", *files[-1:]]
    return scores
