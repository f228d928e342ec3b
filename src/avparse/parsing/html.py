"""Self-contained HTML viewer (``--html``): a video player above its event timeline.

One page per video, no network resources: the events travel as JSON inside the page and an inline
script draws the SVG timeline, moves a cursor with playback and seeks the video to an event's
onset when the event is clicked. Every user-supplied string (class names, file names) is escaped:
HTML text through :func:`html.escape`, JSON inside ``<script>`` through :func:`script_json`, and
the script only ever inserts text with ``textContent``. ``page.html?selftest=1`` clicks the first
event and writes what happened into ``#selftest-result`` (used by the browser test).
"""

from __future__ import annotations

import html
import json
import os
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


_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.2em; word-break: break-all; }
video { max-width: 100%; max-height: 50vh; background: #000; display: block; }
#timeline { width: 100%; margin-top: 1em; user-select: none; }
#timeline rect.event { cursor: pointer; }
#timeline rect.event:hover { stroke: #000; stroke-width: 1; }
table { border-collapse: collapse; margin-top: 1em; }
td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #eee; }
tr.clickable { cursor: pointer; }
tr.clickable:hover { background: #f4f4f4; }
.meta { color: #666; }
#selftest-result { white-space: pre-wrap; word-break: break-all; color: #666; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 1em; }
"""

# Inline script: reads the JSON, builds the SVG with DOM calls, text only via textContent.
_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("avparse-data").textContent);
  var video = document.getElementById("video");
  var svgNS = "http://www.w3.org/2000/svg";
  var left = 190, width = 800, lane = 9, rowGap = 6, top = 24;
  var duration = data.duration > 0 ? data.duration : 1;
  var used = Object.create(null);
  data.events.concat(data.truth).forEach(function (e) { used[e.label] = true; });
  var rows = data.classes.filter(function (c) { return used[c]; });
  var display = Object.create(null);
  data.classes.forEach(function (c, i) { display[c] = data.display[i]; });
  var rowHeight = lane * data.modalities.length + rowGap;
  var height = top + Math.max(rows.length, 1) * rowHeight + 10;
  var svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", "0 0 " + (left + width + 10) + " " + height);
  svg.setAttribute("id", "timeline-svg");
  function el(name, attrs, parent) {
    var node = document.createElementNS(svgNS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (parent || svg).appendChild(node);
    return node;
  }
  function x(t) { return left + (t / duration) * width; }
  var step = duration > 60 ? 10 : duration > 20 ? 5 : 1;
  for (var t = 0; t <= duration + 1e-9; t += step) {
    el("line", {x1: x(t), x2: x(t), y1: top - 4, y2: height - 10, stroke: "#eee"});
    el("text", {x: x(t), y: top - 8, "font-size": 10, "text-anchor": "middle",
                fill: "#888"}).textContent = String(t);
  }
  rows.forEach(function (c, i) {
    var y = top + i * rowHeight;
    var label = el("text", {x: left - 8, y: y + rowHeight / 2 + 1, "font-size": 11,
                            "text-anchor": "end", "dominant-baseline": "middle",
                            "class": "row-label"});
    label.textContent = display[c];
    el("line", {x1: left, x2: left + width, y1: y + rowHeight - rowGap / 2,
                y2: y + rowHeight - rowGap / 2, stroke: "#ddd"});
  });
  if (!rows.length) {
    el("text", {x: left + width / 2, y: top + 10, "text-anchor": "middle", fill: "#888",
                "font-size": 12}).textContent = "no events";
  }
  function place(e, isTruth) {
    var i = rows.indexOf(e.label), k = data.modalities.indexOf(e.modality);
    var y = top + i * rowHeight + k * lane;
    var attrs = {x: x(e.onset), y: y + 1, width: Math.max(x(e.offset) - x(e.onset), 1),
                 height: lane - 2};
    if (isTruth) {
      attrs.fill = "none"; attrs.stroke = data.colours[e.modality];
      attrs["stroke-dasharray"] = "3 2"; attrs["class"] = "truth";
      el("rect", attrs);
      return;
    }
    attrs.fill = data.colours[e.modality];
    attrs["fill-opacity"] = 0.35 + 0.65 * Math.min(Math.max(e.confidence, 0), 1);
    attrs["class"] = "event";
    attrs["data-onset"] = e.onset;
    var r = el("rect", attrs);
    el("title", {}, r).textContent = e.modality + " " + display[e.label] + " " +
      e.onset.toFixed(2) + "-" + e.offset.toFixed(2) + " s (" + e.confidence.toFixed(2) + ")";
    r.addEventListener("click", function () { seek(e.onset); });
  }
  data.truth.forEach(function (e) { place(e, true); });
  data.events.forEach(function (e) { place(e, false); });
  var cursor = el("line", {x1: left, x2: left, y1: top - 4, y2: height - 10, stroke: "#d00",
                           "stroke-width": 1.5, id: "cursor"});
  document.getElementById("timeline").appendChild(svg);

  function moveCursor() {
    var t = Math.min(Math.max(video.currentTime || 0, 0), duration);
    cursor.setAttribute("x1", x(t));
    cursor.setAttribute("x2", x(t));
  }
  function seek(t) {
    video.currentTime = t;
    moveCursor();
  }
  video.addEventListener("timeupdate", moveCursor);
  video.addEventListener("seeked", moveCursor);
  function frame() { moveCursor(); if (!video.paused) { requestAnimationFrame(frame); } }
  video.addEventListener("play", function () { requestAnimationFrame(frame); });
  svg.addEventListener("click", function (ev) {
    if (ev.target.getAttribute("class") === "event") { return; }
    var box = svg.getBoundingClientRect();
    var sx = (ev.clientX - box.left) / box.width * (left + width + 10);
    if (sx >= left && sx <= left + width) { seek((sx - left) / width * duration); }
  });

  var body = document.getElementById("event-rows");
  data.events.forEach(function (e) {
    var tr = document.createElement("tr");
    tr.className = "clickable";
    [e.modality, display[e.label], e.onset.toFixed(2), e.offset.toFixed(2),
     e.confidence.toFixed(3)].forEach(function (v) {
      var td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    });
    tr.addEventListener("click", function () { seek(e.onset); });
    body.appendChild(tr);
  });

  if (new URLSearchParams(window.location.search).get("selftest") === "1") {
    var first = svg.querySelector("rect.event");
    var report = {rendered: svg.querySelectorAll("rect.event").length,
                  rows: Array.prototype.map.call(svg.querySelectorAll("text.row-label"),
                                                 function (n) { return n.textContent; }),
                  scripts: document.scripts.length};
    if (first) {
      first.dispatchEvent(new MouseEvent("click", {bubbles: true}));
      report.onset = parseFloat(first.getAttribute("data-onset"));
      report.currentTime = video.currentTime;
      report.cursorX = parseFloat(cursor.getAttribute("x1"));
      report.expectedX = x(report.onset);
    }
    var out = document.getElementById("selftest-result");
    out.textContent = JSON.stringify(report);
    out.setAttribute("data-done", "1");
  }
})();
"""


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
<style>{_STYLE}</style>
</head>
<body>
<h1>{name}</h1>
<p class="meta">{len(result.events)} events, {result.duration:.2f} s, {html.escape(result.mode)}: {model}</p>
<video id="video" controls preload="metadata" src="{html.escape(video_src, quote=True)}"></video>
<div class="meta">{legend}</div>
<div id="timeline"></div>
<table><thead><tr><th>modality</th><th>class</th><th>onset</th><th>offset</th><th>confidence</th></tr></thead>
<tbody id="event-rows"></tbody></table>
<pre id="selftest-result"></pre>
<script type="application/json" id="avparse-data">{script_json(data)}</script>
<script>{_SCRIPT}</script>
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


def write_index(pages: list[tuple[ParseResult, Path]], path: str | Path) -> Path:
    """An ``index.html`` linking the pages of many videos, with their event counts."""
    path = Path(path)
    items = []
    for result, page in pages:
        href = html.escape(video_href(page, path), quote=True)
        counts = ", ".join(f"{len(result.events_of(m))} {m}" for m in MODALITIES)
        items.append(
            f'<li><a href="{href}">{html.escape(Path(result.video).name)}</a> '
            f'<span class="meta">{result.duration:.1f} s; {counts}</span></li>'
        )
    body = "\n".join(items) or "<li>no videos</li>"
    write_text(
        path,
        f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>avparse results</title><style>{_STYLE}</style></head>
<body>
<h1>avparse results ({len(pages)} videos)</h1>
<ul>
{body}
</ul>
</body>
</html>
""",
    )
    return path
