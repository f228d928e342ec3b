// avparse index page script, inlined into index.html by avparse.parsing.html.
// Loads results.jsonl (one JSON object per video) with fetch; a page opened from disk, where
// browsers refuse to fetch, loads results.js instead (the same rows). Shows PAGE rows at a
// time, filtered by a search over names, classes and errors and by status; text goes in only
// through textContent. select() and parseJsonl() are plain functions (tested under node).
(function () {
  "use strict";
  var PAGE = 100;

  function parseJsonl(text) {
    var rows = [];
    text.split("\n").forEach(function (line) {
      if (!line.trim()) { return; }
      try { rows.push(JSON.parse(line)); } catch (e) { /* a torn last line: skipped */ }
    });
    return rows;
  }

  function haystack(row) {
    return [row.video, row.output, (row.labels || []).join(" "), row.error || ""]
      .join(" ").toLowerCase();
  }

  function select(rows, query, status, page, size) {
    var words = (query || "").toLowerCase().split(/\s+/).filter(Boolean);
    var hits = rows.filter(function (row) {
      if (status && row.status !== status) { return false; }
      var text = haystack(row);
      return words.every(function (w) { return text.indexOf(w) >= 0; });
    });
    var pages = Math.max(1, Math.ceil(hits.length / size));
    var p = Math.min(Math.max(0, page), pages - 1);
    return {rows: hits.slice(p * size, (p + 1) * size), total: hits.length, pages: pages, page: p};
  }

  if (typeof module !== "undefined" && module.exports) {
    module.exports = {select: select, parseJsonl: parseJsonl, PAGE: PAGE};
    return;
  }

  var all = [], page = 0;
  var search = document.getElementById("search"), status = document.getElementById("status");
  var body = document.getElementById("rows"), info = document.getElementById("page");

  function link(row) {
    var files = row.files || [], html = row.output + ".html", json = row.output + ".json";
    var target = files.indexOf(html) >= 0 ? html : files.indexOf(json) >= 0 ? json : null;
    return target ? encodeURIComponent(target) : null;
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function render() {
    var got = select(all, search.value, status.value, page, PAGE);
    page = got.page;
    while (body.firstChild) { body.removeChild(body.firstChild); }
    got.rows.forEach(function (row) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      var href = link(row), name = row.video.split(/[\\/]/).pop();
      if (href) {
        var a = document.createElement("a");
        a.href = href;
        a.textContent = name;
        td.appendChild(a);
      } else {
        td.textContent = name;
      }
      td.title = row.path;
      tr.appendChild(td);
      var n = row.events || {};
      cell(tr, row.duration == null ? "" : row.duration.toFixed(1) + " s");
      cell(tr, n.audio == null ? "" : String(n.audio));
      cell(tr, n.visual == null ? "" : String(n.visual));
      cell(tr, n["audio-visual"] == null ? "" : String(n["audio-visual"]));
      cell(tr, row.status + (row.error ? ": " + row.error : ""), "status-" + row.status);
      body.appendChild(tr);
    });
    info.textContent = got.total + " of " + all.length + " videos, page " + (got.page + 1) +
      " of " + got.pages;
  }

  function start(rows) {
    all = rows;
    render();
  }

  window.avparseResults = start;
  search.addEventListener("input", function () { page = 0; render(); });
  status.addEventListener("change", function () { page = 0; render(); });
  document.getElementById("prev").addEventListener("click", function () { page -= 1; render(); });
  document.getElementById("next").addEventListener("click", function () { page += 1; render(); });
  function fallback() {
    var script = document.createElement("script");
    script.src = "results.js";
    document.body.appendChild(script);
  }
  if (window.fetch && location.protocol !== "file:") {
    fetch("results.jsonl").then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.text();
    }).then(function (text) { start(parseJsonl(text)); }).catch(fallback);
  } else {
    fallback();
  }
})();
