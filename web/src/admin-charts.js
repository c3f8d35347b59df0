// The admin page's charts (Chart.js, pinned and bundled): sessions and questions per day, the
// average confidence per day, the confidence histogram, the most cited knowledge-base entries
// and the end reasons. Each chart's numbers are also in a table (admin.js), for readers and
// tests that cannot see a canvas.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";

import { byCount, histogramLabels } from "./admin-model.js";
import { $ } from "./page.js";

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip);
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif';
Chart.defaults.color = "#1b1f24";
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;

const BLUE = "#1a5fb4";
const ORANGE = "#b04a00";

// `points`: how many bars or points carry data; a list chart with none gives way to its
// "none in this range" line.
function draw(charts, testid, config, points, { hideWhenEmpty = false } = {}) {
  const figure = $(testid);
  charts.get(testid)?.destroy();
  figure.querySelector(".canvas-box").hidden = hideWhenEmpty && points === 0;
  charts.set(testid, new Chart(figure.querySelector("canvas"), config));
  figure.dataset.points = String(points);
}

function bars(labels, datasets, { horizontal = false } = {}) {
  const valueAxis = { beginAtZero: true, ticks: { precision: 0 } };
  for (const d of datasets) d.maxBarThickness = 36;
  return {
    type: "bar",
    data: { labels, datasets },
    options: {
      indexAxis: horizontal ? "y" : "x",
      scales: horizontal ? { x: valueAxis } : { y: valueAxis },
      plugins: { legend: { display: datasets.length > 1 } },
    },
  };
}

// `charts`: the page's Chart per figure (by data-testid); a redraw replaces the last one.
export function drawCharts(charts, days, report) {
  const labels = days.map((d) => d.date.slice(5)); // MM-DD: the year is in the range above
  draw(
    charts,
    "chart-activity",
    bars(labels, [
      { label: "Sessions ended", data: days.map((d) => d.sessions), backgroundColor: BLUE },
      { label: "Questions answered", data: days.map((d) => d.queries), backgroundColor: ORANGE },
    ]),
    days.filter((d) => d.sessions || d.queries).length,
  );
  draw(
    charts,
    "chart-confidence",
    {
      type: "line",
      data: {
        labels,
        datasets: [
          {
            label: "Average confidence",
            data: days.map((d) => (d.avg_confidence === null ? null : Math.round(d.avg_confidence * 1000) / 10)),
            borderColor: BLUE,
            backgroundColor: BLUE,
            spanGaps: true,
            pointRadius: 4, // a lone day with answers is a point, not a line
          },
        ],
      },
      options: {
        scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
        plugins: { legend: { display: false } },
      },
    },
    days.filter((d) => d.avg_confidence !== null).length,
  );
  const hist = report.confidence_histogram;
  draw(
    charts,
    "chart-histogram",
    bars(histogramLabels(), [{ label: "Answers", data: hist, backgroundColor: hist.map((_, i) => (i < 5 ? ORANGE : BLUE)) }]),
    hist.reduce((a, b) => a + b, 0),
  );
  const kb = report.top_kb_entries;
  draw(
    charts,
    "chart-kb",
    bars(kb.map((e) => e.entry_id), [{ label: "Citations", data: kb.map((e) => e.uses), backgroundColor: BLUE }], { horizontal: true }),
    kb.length,
    { hideWhenEmpty: true },
  );
  const reasons = byCount(report.end_reasons);
  draw(
    charts,
    "chart-end-reasons",
    bars(reasons.map(([r]) => r), [{ label: "Sessions", data: reasons.map(([, n]) => n), backgroundColor: BLUE }], { horizontal: true }),
    reasons.length,
    { hideWhenEmpty: true },
  );
}
