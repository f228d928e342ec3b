"""Self-contained HTML viewer (``--html``): a video player above its event timeline.

One page per video, no network resources: the events travel as JSON inside the page and an inline
script draws the SVG timeline, moves a cursor with playback and seeks the video to an event's
onset when the event is clicked. Every user-supplied string (class names, file names) is escaped:
HTML text through :func:`html.escape`, JSON inside ``<script>`` through :func:`script_json`, and
the script only ever inserts text with ``textContent``. The style and script are package data
files (``viewer.css``, ``viewer.js`` beside this module), inlined into each page so that a page
works from disk with no other file.
"""

from __future__ import annotations

import html
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from avparse.parsing.events import MODALITIES, Event, ParseResult
from avparse.parsing.plot import COLOURS
from avparse.utils.atomic import write_text


def script_json(data: Any) -> str:
    """JSON safe to embed in ``<script>``: ``<``, ``>``, ``&`` and line separators escaped.

    With these escaped no string can close the script element (``</script>``) or open a comment,
    and the result is still valid JSON and JavaScript.
    """
    text = json.dumps(data, ensure_ascii=False)
    for raw, esc in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return text


def video_href(video: str | Path, page: str | Path) -> str:
    """Link from ``page`` to ``video``: a relative, percent-encoded path, else a file URL."""
    video, page = Path(video).resolve(), Path(page).resolve()
    try:
        rel = os.path.relpath(video, page.parent)
    except ValueError:  # another drive on Windows
        return video.as_uri()
    return "/".join(quote(part) for part in Path(rel).parts)


def _events(events: list[Event]) -> list[dict[str, Any]]:
    return [
        {
            "modality": e.modality,
            "label": e.label,
            "onset": round(e.onset, 3),
            "offset": round(e.offset, 3),
            "confidence": round(e.confidence, 4),
        }
        for e in events
    ]


def page_data(result: ParseResult, truth: list[Event] | None = None) -> dict[str, Any]:
    return {
        "video": Path(result.video).name,
        "duration": result.duration,
        "mode": result.mode,
        "model": result.model,
        "classes": result.classes,
        "display": result.display,
        "modalities": list(MODALITIES),
        "colours": COLOURS,
        "events": _events(result.events),
        "truth": _events(truth or []),
    }


def _asset(name: str) -> str:
    """A viewer file shipped as package data (``viewer.css``, ``viewer.js``)."""
    text = resources.files("avparse.parsing").joinpath(name).read_text(encoding="utf-8")
    if "</" in text:  # inlined into <style>/<script>: must not be able to close the element
        raise RuntimeError(f"avparse/parsing/{name} contains '</'")
    return text


def render_page(result: ParseResult, video_src: str, truth: list[Event] | None = None) -> str:
    """The page for one video as a string; ``video_src`` is the (already encoded) video link."""
    data = page_data(result, truth)
    name = html.escape(Path(result.video).name)
    legend = "".join(
        f'<span class="swatch" style="background:{COLOURS[m]}"></span>{m}' for m in MODALITIES
    )
    if truth:
        legend += '<span class="swatch" style="border:1px dashed #555"></span>truth'
    model = html.escape(result.model or result.mode)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} - avparse</title>
<style>{_asset("viewer.css")}</style>
</head>
<body>
<h1>{name}</h1>
<p class="meta">{len(result.events)} events, {result.duration:.2f} s, {html.escape(result.mode)}: {model}</p>
<video id="video" controls preload="metadata" src="{html.escape(video_src, quote=True)}"></video>
<div class="meta">{legend}</div>
<div id="timeline"></div>
<table><thead><tr><th>modality</th><th>class</th><th>onset</th><th>offset</th><th>confidence</th></tr></thead>
<tbody id="event-rows"></tbody></table>
<script type="application/json" id="avparse-data">{script_json(data)}</script>
<script>{_asset("viewer.js")}</script>
</body>
</html>
"""


def write_page(
    result: ParseResult,
    path: str | Path,
    *,
    video: str | Path | None = None,
    truth: list[Event] | None = None,
) -> Path:
    """Write the viewer page of ``result`` to ``path``; the player links to ``video``."""
    path = Path(path)
    write_text(path, render_page(result, video_href(video or result.video, path), truth))
    return path


def write_results_index(path: str | Path, count: int) -> Path:
    """``index.html`` of an output folder: a fixed-size page that loads ``results.jsonl``
    (``results.js`` from disk) and shows it paged and searchable (``index.js``): its size does not
    grow with the number of videos, so it stays usable at 100,000."""
    path = Path(path)
    options = "".join(f"<option>{s}</option>" for s in ("parsed", "skipped", "failed"))
    write_text(
        path,
        f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>avparse results</title><style>{_asset("viewer.css")}</style></head>
<body>
<h1>avparse results</h1>
<p class="meta">{count} videos in results.jsonl</p>
<p><input id="search" type="search" placeholder="search names, classes, errors" size="40">
<select id="status"><option value="">any status</option>{options}</select>
<button id="prev" type="button">previous</button> <button id="next" type="button">next</button>
<span id="page" class="meta">loading results.jsonl ...</span></p>
<table><thead><tr><th>video</th><th>duration</th><th>audio</th><th>visual</th><th>audio-visual</th>
<th>status</th></tr></thead><tbody id="rows"></tbody></table>
<script>{_asset("index.js")}</script>
</body>
</html>
""",
    )
    return path
