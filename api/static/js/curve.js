// The lead panel's score curve: GET /api/leads/{key}/curve drawn as steps (flat between points: events raise or
// lower the score, each UTC midnight past the inactivity window takes its decay step).
import { utcDateTime } from "./util.js";

let chart = null;

/** Draw `curve` (the API's answer) on `canvas`, replacing the previous lead's curve. */
export function drawCurve(canvas, curve) {
  // The curve runs on to as_of: the score then holds until the right edge.
  const last = curve.points[curve.points.length - 1];
  const points = [...curve.points, { at: curve.as_of, score: last.score, kind: "now" }];
  const data = points.map((p) => ({ x: Date.parse(p.at), y: p.score, kind: p.kind }));
  const config = {
    type: "line",
    data: {
      datasets: [
        {
          data,
          stepped: "after",
          borderColor: "#6c8ef5",
          backgroundColor: "rgba(108, 142, 245, .12)",
          fill: true,
          borderWidth: 1.5,
          pointRadius: data.map((d) => (d.kind === "event" ? 2.5 : 0)),
          pointHoverRadius: 4,
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => `${utcDateTime(new Date(items[0].raw.x).toISOString())} UTC`,
            label: (item) => `${item.raw.y} (${item.raw.kind === "decay" ? "decay at midnight" : item.raw.kind})`,
          },
        },
      },
      scales: {
        x: {
          type: "linear",
          ticks: { maxTicksLimit: 6, callback: (value) => new Date(value).toISOString().slice(0, 10) },
          grid: { display: false },
        },
        y: { beginAtZero: true, ticks: { precision: 0 } },
      },
    },
  };
  if (chart) chart.destroy();
  chart = new Chart(canvas, config);
}
