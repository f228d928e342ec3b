// avparse viewer page script, inlined into every page by avparse.parsing.html.
// Reads the JSON in #avparse-data, builds the SVG timeline with DOM calls (text only through
// textContent), moves a cursor with playback and seeks the video when an event is clicked.
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
})();
