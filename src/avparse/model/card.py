"""Converting a published ``checkpoint_best.pt`` into our model folder, with a model card.

``avparse convert`` writes ``config.json`` + ``model.safetensors`` (see
:mod:`avparse.model.checkpoint`) and a ``README.md`` model card: the preset, the input features,
the class vocabulary, where the weights came from (file name and SHA-256) and, when given, the
scores measured with them, with hub metadata in the front matter, so the folder can be uploaded
to the hub as it is and loaded by id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avparse.errors import AvparseError
from avparse.model.config import NO_MOTION, ModelConfig
from avparse.utils.atomic import write_text
from avparse.utils.jsonio import read_json_object
from avparse.utils.text import count

CARD_FILE = "README.md"
_ARCH_NAMES = {
    "valor": "VALOR's HAN layout",
    "uwav": "UWAV's HybridAttentionNet layout (MLP projections and MIL attentions)",
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_metrics(path: str | Path) -> dict[str, float]:
    """Scores to put in a card: a JSON object of finite numbers (``avparse evaluate``'s
    ``metrics.json`` or ``avparse score --json``'s file); other keys are ignored."""
    data = read_json_object(Path(path), "metrics file")
    scores = {
        str(k): float(v)
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    if not scores:
        raise AvparseError(f"{path}: no numeric scores in the metrics file")
    return scores


def model_card(
    config: ModelConfig,
    *,
    source: str,
    sha256: str | None = None,
    metrics: Mapping[str, float] | None = None,
    metrics_note: str | None = None,
) -> str:
    """The ``README.md`` of a model folder (markdown with hub front matter)."""
    from avparse.eval import format_scores

    lines = [
        "---",
        "library_name: avparse",
        "tags:",
        "- audio-visual-video-parsing",
        "- weakly-supervised",
        f"- {config.name}",
        "---",
        "",
        f"# avparse student: preset `{config.name}`",
        "",
        "A HAN student for audio-visual video parsing (VALOR / UWAV family): for every second of a",
        "video it says which events are heard, seen, and both. Load it with",
        "`avparse.parse(video, model=<this folder or hub id>)` or",
        "`avparse parse clip.mp4 --model <this folder or hub id>`.",
        "",
        "## Inputs",
        "",
        "| input | feature kind | size |",
        "| --- | --- | --- |",
        f"| audio | `{config.audio_feature}` | {config.audio_dim} |",
        f"| visual (2D) | `{config.visual_feature}` | {config.visual_dim} |",
        (
            f"| motion (3D) | `{config.motion_feature}` | {config.motion_dim} |"
            if config.motion_feature != NO_MOTION
            else "| motion (3D) | none: the 2D input enters the encoder unprojected | - |"
        ),
        "",
        f"Architecture: {_ARCH_NAMES[config.arch]}, d_model {config.d_model}, "
        f"{count(config.num_layers, 'layer')}, {count(config.nhead, 'head')},",
        f"feed-forward {config.dim_feedforward}, {config.norm}-norm (all fields in `config.json`).",
        "",
        f"## Classes ({len(config.class_names)}, vocabulary `{config.vocabulary}`)",
        "",
        ", ".join(f"`{_md(name)}`" for name in config.class_names),
        "",
        "## Source",
        "",
        f"Converted with `avparse convert` from `{_md(source)}`"
        + (f" (SHA-256 `{sha256}`)." if sha256 else "."),
        "The weights are unchanged; `config.json` records the preset they were trained with.",
    ]
    if metrics:
        lines += ["", "## Scores", ""]
        if metrics_note:
            lines += [_md(metrics_note), ""]
        lines += ["```", format_scores(metrics), "```"]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Text safe inside a markdown line (no line breaks or backticks from a user)."""
    return " ".join(str(text).split()).replace("`", "'")


def convert_published(
    checkpoint: str | Path,
    preset: str,
    out: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    metrics_note: str | None = None,
    source: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``out`` = our model folder of a published ``.pt`` plus its model card.

    The ``.pt`` is read with ``torch.load(..., weights_only=True)`` and loaded strictly into the
    preset's network, so a checkpoint of another preset fails here with one line, not later.
    """
    from avparse.model.checkpoint import CONFIG_FILE, load_published, save_student

    checkpoint, out = Path(checkpoint), Path(out)
    if (checkpoint / CONFIG_FILE).is_file():
        raise AvparseError(
            f"{checkpoint}: already a model folder ({CONFIG_FILE} + weights); nothing to "
            "convert: use it directly (--model / --checkpoint)"
        )
    if checkpoint.is_dir():
        raise AvparseError(f"{checkpoint}: a folder, not a published .pt checkpoint")
    if not checkpoint.is_file():
        raise AvparseError(f"{checkpoint}: checkpoint not found")
    if out.exists() and not out.is_dir():
        raise AvparseError(f"{out}: output folder is an existing file (--out)")
    if (out / CONFIG_FILE).exists() and not overwrite:
        raise AvparseError(f"{out}: already holds a model (--overwrite replaces it)")
    model, config = load_published(checkpoint, preset, overrides)
    save_student(model, config, out)
    card = model_card(
        config,
        source=source or checkpoint.name,
        sha256=file_sha256(checkpoint),
        metrics=metrics,
        metrics_note=metrics_note,
    )
    write_text(out / CARD_FILE, card)
    return out
