"""Timeline pictures (``--plot``): classes by seconds, one lane per modality, optional truth.

matplotlib is imported inside the function (Agg backend, no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avparse.data.llp import clip_id, read_dense_rows
from avparse.errors import require
from avparse.parsing.events import MODALITIES, Event, ParseResult
from avparse.utils.atomic import atomic_path
from avparse.vocab import Vocabulary

COLOURS = {"audio": "#1f77b4", "visual": "#ff7f0e", "audio-visual": "#2ca02c"}
"""One colour per modality, shared with the HTML viewer."""


def truth_events(
    stem: str,
    vocab: Vocabulary,
    audio_tsv: str | Path | None = None,
    visual_tsv: str | Path | None = None,
) -> list[Event]:
    """Dense-label events of one video (rows whose filename is ``stem`` or starts with its id).

    Files are in the dense annotation format (``filename, onset, offset, event_labels``); an
    audio-visual truth event is drawn where an audio and a visual row of a class overlap.
    """
    spans: dict[str, list[tuple[int, int, int]]] = {"audio": [], "visual": []}
    for modality, path in (("audio", audio_tsv), ("visual", visual_tsv)):
        if path is None:
            continue
        rows = read_dense_rows(path, vocab, reversed_rows="ignore")
        for name, c, on, off in zip(
            rows.filenames, rows.classes, rows.onsets, rows.offsets, strict=True
        ):
            if (name == stem or clip_id(name) == stem) and off > on:
                spans[modality].append((int(c), int(on), int(off)))
    events = [
        Event(m, vocab[c].name, float(on), float(off), 1.0)
        for m in ("audio", "visual")
        for c, on, off in spans[m]
    ]
    for ca, a_on, a_off in spans["audio"]:
        for cv, v_on, v_off in spans["visual"]:
            on, off = max(a_on, v_on), min(a_off, v_off)
            if ca == cv and off > on:
                events.append(Event("audio-visual", vocab[ca].name, float(on), float(off), 1.0))
    return events


def _plain(text: str) -> str:
    """Text shown as written: matplotlib would read ``$...$`` in a class name as maths."""
    return text.replace("$", r"\$")


def _charmap(path: str) -> set[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return set(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return set()


def _drawable(texts: list[str]) -> tuple[list[str], str | None]:
    """``texts`` as they can be drawn, and the font to draw them with (None: the default).

    A file or class name in a script the default font lacks (CJK, emoji) would make matplotlib
    warn once per glyph on the user's screen: an installed font that has every glyph is used,
    else the characters no font has are left out of the picture (the JSON keeps the name).
    """
    from matplotlib import font_manager

    default = str(font_manager.findfont(font_manager.FontProperties()))
    have = _charmap(default)
    wanted = {ord(ch) for t in texts for ch in t if not ch.isspace()}
    missing = wanted - have
    if not missing:
        return texts, None
    seen = {default}
    for entry in font_manager.fontManager.ttflist:
        fname = str(entry.fname)
        if fname in seen:
            continue
        seen.add(fname)
        if missing <= _charmap(fname):
            return texts, fname
    return ["".join(ch for ch in t if ch.isspace() or ord(ch) in have) for t in texts], None


def plot_timeline(
    result: ParseResult, path: str | Path, *, truth: list[Event] | None = None
) -> Path:
    """Draw ``result`` as a PNG: one row per class with events, three lanes per row.

    Predicted events are filled bars (opacity follows confidence); truth events, when given, are
    drawn as hatched outlines in the same lanes.
    """
    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager
    from matplotlib.patches import Patch, Rectangle

    truth = truth or []
    display = dict(zip(result.classes, result.display, strict=True))
    labels = [c for c in result.classes if any(e.label == c for e in [*result.events, *truth])]
    height = max(2.2, 0.55 * len(labels) + 1.4)
    fig, ax = plt.subplots(figsize=(10, height), dpi=100)
    lane = 1.0 / (len(MODALITIES) + 1)
    row_of = {c: i for i, c in enumerate(labels)}
    for e in truth:
        k = MODALITIES.index(e.modality)
        y = row_of[e.label] + (k + 0.5) * lane
        ax.add_patch(
            Rectangle(
                (e.onset, y),
                e.duration,
                lane * 0.9,
                fill=False,
                hatch="///",
                edgecolor=COLOURS[e.modality],
                linewidth=0.8,
            )
        )
    for e in result.events:
        k = MODALITIES.index(e.modality)
        y = row_of[e.label] + (k + 0.5) * lane
        alpha = 0.35 + 0.65 * min(max(e.confidence, 0.0), 1.0)
        ax.add_patch(
            Rectangle((e.onset, y), e.duration, lane * 0.9, color=COLOURS[e.modality], alpha=alpha)
        )
    ax.set_xlim(0, max(result.duration, 1e-3))
    ax.set_ylim(0, max(len(labels), 1))
    ax.set_yticks([i + 0.5 for i in range(len(labels))])
    title = f"{Path(result.video).name} ({result.mode})"
    texts, font = _drawable([title, *(display[c] for c in labels)])
    props: dict[str, Any] = {}
    if font is not None:
        props["fontproperties"] = font_manager.FontProperties(fname=font)
    ax.set_yticklabels([_plain(t) for t in texts[1:]], **props)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(_plain(texts[0]), fontsize=10, loc="left", **props)
    for i in range(1, len(labels)):
        ax.axhline(i, color="#dddddd", linewidth=0.6)
    if not labels:
        ax.text(
            0.5, 0.5, "no events", ha="center", va="center", transform=ax.transAxes, color="grey"
        )
    handles = [Patch(color=COLOURS[m], label=m) for m in MODALITIES]
    if truth:
        handles.append(Patch(fill=False, hatch="///", label="truth"))
    # above the axes, right of the title, so it never hides an event
    ax.legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
        ncol=len(handles),
    )
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
