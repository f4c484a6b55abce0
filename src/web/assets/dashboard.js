// The dashboards: tables sort by a column (by each cell's raw figure where it has one), the
// filter box narrows a table's rows, and the print button prints the page (A4 stylesheet).
"use strict";
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw !== null) {
      return raw === "" ? null : Number(raw);
    }
    return cell.textContent.trim().toLowerCase();
  }

  function sortBy(table, col, button) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.classList.contains("none"); });
    var descending = button.getAttribute("aria-sort") !== "descending";
    table.querySelectorAll("button.sort").forEach(function (b) { b.removeAttribute("aria-sort"); });
    button.setAttribute("aria-sort", descending ? "descending" : "ascending");
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      // Empty figures go last whichever way.
      if (x === null || x === "") return y === null || y === "" ? 0 : 1;
      if (y === null || y === "") return -1;
      var c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("button.sort").forEach(function (button) {
      button.addEventListener("click", function () {
        sortBy(table, Number(button.getAttribute("data-col")), button);
      });
    });
  });

  document.querySelectorAll("input.table-filter").forEach(function (input) {
    var table = document.getElementById("table-" + input.getAttribute("data-table"));
    if (!table) return;
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.hidden = q !== "" && r.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  });

  // Weekly trends (uPlot): the scope's line bold, one thinner line per team or manager.
  var data = document.getElementById("trend-data");
  if (data && window.uPlot) {
    var t = JSON.parse(data.textContent);
    // Week starts (UTC) as the page's language writes dates: "5 янв." in Russian, "Jan 5" in
    // English (uPlot's own axis labels are American whatever the language).
    var weekLabel = new Intl.DateTimeFormat(document.documentElement.lang || "en", {
      day: "numeric", month: "short", timeZone: "UTC",
    });
    var xValues = function (u, splits) {
      return splits.map(function (s) { return weekLabel.format(new Date(s * 1000)); });
    };
    // Ticks on the weeks themselves (Mondays), every k-th week so labels keep 72 px apart.
    var xSplits = function (u) {
      var width = u.bbox.width / (window.devicePixelRatio || 1);
      var every = Math.max(1, Math.ceil(t.x.length * 72 / Math.max(width, 1)));
      return t.x.filter(function (_, i) { return i % every === 0; });
    };
    var colours = ["#1d2433", "#2f5bd3", "#1b7a43", "#b42318", "#9a6400", "#7a3ed3", "#0e7490", "#be185d", "#4d7c0f", "#6b7280"];
    var chart = function (id, key, max) {
      var el = document.getElementById(id);
      if (!el || t.x.length === 0) return;
      var series = [{}].concat(t.series.map(function (s, i) {
        return {
          label: s.label,
          stroke: colours[i % colours.length],
          width: i === 0 ? 3 : 1.5,
          spanGaps: true,
          points: { show: true, size: i === 0 ? 6 : 4 },
        };
      }));
      var values = [t.x].concat(t.series.map(function (s) { return s[key]; }));
      var draw = function () {
        el.innerHTML = "";
        new window.uPlot({
          width: Math.max(280, el.clientWidth),
          height: 240,
          series: series,
          scales: { y: { range: [0, max] } },
          axes: [{ splits: xSplits, values: xValues }, { size: 44 }],
          legend: { live: false },
        }, values, el);
      };
      draw();
      var last = el.clientWidth;
      window.addEventListener("resize", function () {
        if (Math.abs(el.clientWidth - last) > 20) { last = el.clientWidth; draw(); }
      });
    };
    chart("trend-score", "score", 100);
    chart("trend-win", "win", 100);
  }

  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
})();
