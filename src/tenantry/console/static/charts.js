/* Tenantry console charts: each chart is drawn by Chart.js from the data table the page already shows.
 *
 * The server renders a <figure class="chart"> holding a <canvas> and a <table data-chart="bar|stacked|line">:
 * the table's first column is the x labels, every further column one series (its <th> the series name), each
 * cell a number. The table is the chart's text alternative and stays in the page (in a <details>), so the data
 * reads the same with or without script, and nothing is sent to the browser twice. No inline script, no eval:
 * the page's CSP allows this site's files only. Charts are (re)drawn on load and after every htmx swap.
 */
(function () {
  "use strict";
  // Okabe–Ito: distinguishable with the common colour-vision deficiencies.
  var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

  function readTable(table) {
    var head = table.tHead ? table.tHead.rows[0] : null;
    var names = [];
    if (head) {
      for (var c = 1; c < head.cells.length; c++) names.push(head.cells[c].textContent.trim());
    }
    var labels = [];
    var series = names.map(function () { return []; });
    var body = table.tBodies[0];
    if (body) {
      for (var r = 0; r < body.rows.length; r++) {
        var row = body.rows[r];
        labels.push(row.cells[0].textContent.trim());
        for (var s = 0; s < names.length; s++) {
          var cell = row.cells[s + 1];
          var raw = cell ? (cell.getAttribute("data-value") || cell.textContent) : "";
          var value = Number(String(raw).replace(/[^0-9.\-]/g, ""));
          series[s].push(isFinite(value) ? value : 0);
        }
      }
    }
    return { labels: labels, names: names, series: series };
  }

  function draw(figure) {
    var canvas = figure.querySelector("canvas");
    var table = figure.querySelector("table[data-chart]");
    if (!canvas || !table || typeof window.Chart === "undefined") return;
    var existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    var data = readTable(table);
    var kind = table.getAttribute("data-chart");
    var stacked = kind === "stacked";
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    new window.Chart(canvas, {
      type: kind === "line" ? "line" : "bar",
      data: {
        labels: data.labels,
        datasets: data.names.map(function (name, i) {
          var colour = PALETTE[i % PALETTE.length];
          return { label: name, data: data.series[i], backgroundColor: colour, borderColor: colour };
        })
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
        plugins: { legend: { display: data.names.length > 1, position: "bottom" } },
        scales: {
          x: { stacked: stacked },
          y: { stacked: stacked, beginAtZero: true, ticks: { precision: 0 } }
        }
      }
    });
  }

  function drawAll(root) {
    var figures = (root || document).querySelectorAll("figure.chart");
    for (var i = 0; i < figures.length; i++) draw(figures[i]);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawAll(event.target); });
})();
