"""HTML viewer: escaping of hostile names, self-contained page, and a real headless-browser run."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avparse.parsing.events import Window, build_result
from avparse.parsing.html import script_json, video_href, write_page, write_results_index

CHROMIUM = Path("/usr/bin/chromium")
EVIL = "<script>alert(1)</script>"


def _result(video: Path):
    frame = np.full((10, 2, 3), 0.1)
    frame[2:5, 0, 0] = 0.9  # audio EVIL 2-5 s
    frame[6:9, 1, 1] = 0.8  # visual dog 6-9 s
    window = Window(0.0, 10.0, frame, np.array([0.9, 0.9, 0.1]))
    return build_result(str(video), 10.0, [window], [EVIL, "dog", "a & b"])


def test_script_json_cannot_close_the_script() -> None:
    text = script_json({"x": EVIL, "y": "a & b <!-- \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"x": EVIL, "y": "a & b <!-- \u2028"}


def test_page_is_self_contained_and_escaped(tmp_path: Path) -> None:
    video = tmp_path / "videos" / "we<b>ird & name.mp4"
    video.parent.mkdir()
    video.write_bytes(b"")
    page = write_page(_result(video), tmp_path / "out" / "page.html")
    text = page.read_text()
    assert EVIL not in text  # never as markup, only escaped
    assert "<b>" not in text
    assert "we&lt;b&gt;ird &amp; name.mp4" in text
    assert 'src="../videos/we%3Cb%3Eird%20%26%20name.mp4"' in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # no network resources
    assert text.count("<script") == 2
    assert video_href(video, tmp_path / "page.html") == "videos/we%3Cb%3Eird%20%26%20name.mp4"


def test_index_page_loads_the_results_and_does_not_grow(tmp_path: Path) -> None:
    """Issue 22: index.html is a fixed-size page that loads results.jsonl (results.js from
    disk); no per-video data is inlined, so 100,000 videos give the same page."""
    small = write_results_index(tmp_path / "a.html", 3).read_text()
    large = write_results_index(tmp_path / "b.html", 100_000).read_text()
    assert len(large) - len(small) == len("100000") - len("3")
    assert "results.jsonl" in small and "results.js" in small
    assert not re.search(r"(src|href)=\"(https?:)?//", small)


def _chromium_dom(url: str, profile: Path) -> str:
    args = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=3000",
        "--dump-dom",
        url,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# Appended to a copy of the page by the browser test only (the shipped page has no test hook):
# clicks the first event and writes what happened into a <pre> for --dump-dom to show.
HARNESS = """<script>
window.addEventListener("load", function () {
  var svg = document.getElementById("timeline-svg"), video = document.getElementById("video");
  var cursor = document.getElementById("cursor"), first = svg.querySelector("rect.event");
  var report = {rendered: svg.querySelectorAll("rect.event").length,
                rows: Array.prototype.map.call(svg.querySelectorAll("text.row-label"),
                                               function (n) { return n.textContent; }),
                scripts: document.scripts.length - 1};
  first.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  report.onset = parseFloat(first.getAttribute("data-onset"));
  report.currentTime = video.currentTime;
  report.cursorX = parseFloat(cursor.getAttribute("x1"));
  report.eventX = parseFloat(first.getAttribute("x"));
  var out = document.createElement("pre");
  out.id = "harness-result";
  out.textContent = JSON.stringify(report);
  document.body.appendChild(out);
});
</script>
"""


def test_assets_are_package_files_and_no_test_hook_ships(tmp_path: Path) -> None:
    from importlib import resources

    folder = resources.files("avparse.parsing")
    css, js = (folder.joinpath(n).read_text() for n in ("viewer.css", "viewer.js"))
    text = write_page(_result(tmp_path / "v.mp4"), tmp_path / "page.html").read_text()
    assert css in text and js in text  # inlined: the page works from disk alone
    assert "selftest" not in text and "selftest" not in js


@pytest.mark.skipif(
    not CHROMIUM.is_file(), reason="/usr/bin/chromium absent (apt-get install chromium)"
)
def test_browser_renders_timeline_and_click_seeks(tmp_path: Path, llp_video: Path) -> None:
    video = tmp_path / "my <clip>.mp4"
    shutil.copy(llp_video, video)
    res = _result(video)
    page = write_page(res, tmp_path / "page.html")
    harness = tmp_path / "harness.html"
    harness.write_text(page.read_text().replace("</body>", HARNESS + "</body>"))
    profile = tmp_path / "profile"
    profile.mkdir()
    dom = _chromium_dom(harness.as_uri(), profile)
    match = re.search(r'<pre id="harness-result">(.*?)</pre>', dom, re.S)
    assert match, dom[-3000:]
    report = json.loads(html.unescape(match.group(1)))
    assert report["rendered"] == len(res.events) == 2
    assert report["rows"] == [EVIL, "dog"]  # the hostile name is text, not a script
    assert report["scripts"] == 2
    first = min(res.events, key=lambda e: e.onset)
    assert report["onset"] == pytest.approx(first.onset)
    assert report["currentTime"] == pytest.approx(first.onset)
    assert report["cursorX"] == pytest.approx(report["eventX"])  # the cursor moved to the event
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
