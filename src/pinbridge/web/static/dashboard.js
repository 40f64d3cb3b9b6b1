// pinbridge dashboard: draws the time series with uPlot (vendored), refreshes every 15 s.
// The tables on the page carry the same figures for readers without JavaScript.
(function () {
  "use strict";
  var COLORS = ["#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var charts = {};
  window.pbCharts = {};

  function width(el) { return Math.max(300, el.clientWidth || 480); }

  function draw(id, labels, columns, t, percent) {
    var el = document.getElementById(id);
    if (!el || typeof uPlot === "undefined") { return; }
    var series = [{}];
    labels.forEach(function (label, i) {
      series.push({
        label: label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
        value: percent ? function (u, v) { return v == null ? "—" : (100 * v).toFixed(1) + " %"; } : undefined
      });
    });
    var data = [t].concat(columns);
    window.pbCharts[id] = { series: labels, points: t.length, data: data };
    var opts = {
      width: width(el), height: 220, series: series,
      axes: [{}, { values: percent ? function (u, vals) { return vals.map(function (v) { return (100 * v).toFixed(0) + "%"; }); } : undefined }],
      scales: percent ? { y: { range: [0, 1] } } : {}
    };
    if (charts[id]) { charts[id].destroy(); }
    el.textContent = "";
    charts[id] = new uPlot(opts, data, el);
  }

  function render(tl) {
    var names = Object.keys(tl.series);
    draw("chart-throughput", names, names.map(function (k) { return tl.series[k]; }), tl.t, false);
    var codes = Object.keys(tl.errors);
    if (codes.length === 0) { codes = ["none"]; tl.errors = { none: tl.t.map(function () { return 0; }) }; }
    draw("chart-errors", codes.map(function (c) { return "answer " + c; }), codes.map(function (c) { return tl.errors[c]; }), tl.t, false);
    draw("chart-rates", ["dedup rate", "offline share"], [tl.dedup_rate, tl.offline_share], tl.t, true);
  }

  function window_() {
    var m = /[?&]window=([^&]+)/.exec(location.search);
    return m ? decodeURIComponent(m[1]) : "1h";
  }

  function refresh() {
    fetch("/ui/api/timeline?window=" + encodeURIComponent(window_()), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (tl) { if (tl) { render(tl); } })
      .catch(function () { /* keep the last drawing */ });
  }

  var embedded = document.getElementById("timeline-data");
  if (embedded) {
    render(JSON.parse(embedded.textContent));
    setInterval(refresh, 15000);
    window.addEventListener("resize", function () {
      Object.keys(charts).forEach(function (id) {
        var el = document.getElementById(id);
        charts[id].setSize({ width: width(el), height: 220 });
      });
    });
  }
})();
