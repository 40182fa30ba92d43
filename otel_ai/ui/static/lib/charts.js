// Tiny SVG charts: sparklines, stacked encoding bars, value-vs-baseline bars, a time axis.
import { s } from "./dom.js";

/** A sparkline of values (null = gap) with a soft area; the last value is marked. */
export function sparkline(values, opts = {}) {
  const w = opts.width || 220;
  const hgt = opts.height || 40;
  const colour = opts.colour || "#60a5fa";
  const nums = values.filter((v) => v !== null && v !== undefined);
  const max = Math.max(opts.min_max || 0, ...nums, 1e-9);
  const n = Math.max(values.length - 1, 1);
  const x = (i) => (i / n) * (w - 4) + 2;
  const y = (v) => hgt - 3 - (v / max) * (hgt - 8);
  let d = "";
  let area = "";
  let started = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined) {
      started = false;
      return;
    }
    d += `${started ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    started = true;
  });
  if (nums.length) area = `M${x(0)},${hgt - 2}` + values.map((v, i) => `L${x(i).toFixed(1)},${y(v || 0).toFixed(1)}`).join("") + `L${x(values.length - 1)},${hgt - 2}Z`;
  let lastI = -1;
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) { lastI = i; break; }
  return s(
    "svg",
    { class: "spark", viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, role: "img", "aria-label": opts.label || "trend" },
    s("path", { d: area, fill: colour, opacity: 0.14 }),
    s("path", { d, fill: "none", stroke: colour, "stroke-width": 1.6, "stroke-linejoin": "round" }),
    lastI >= 0 ? s("circle", { cx: x(lastI), cy: y(values[lastI]), r: 2.6, fill: colour }) : null,
  );
}

/** Stacked bars per bucket: protobuf (blue) and JSON (amber), so a switch shows where it happened. */
export function encodingBars(series, opts = {}) {
  const w = opts.width || 220;
  const hgt = opts.height || 34;
  const n = Math.max(series.length, 1);
  const bw = (w - 2) / n;
  const max = Math.max(1, ...series.map((b) => (b.encodings.protobuf || 0) + (b.encodings.json || 0)));
  const bars = [];
  series.forEach((b, i) => {
    const pb = b.encodings.protobuf || 0;
    const js = b.encodings.json || 0;
    const hp = (pb / max) * (hgt - 4);
    const hj = (js / max) * (hgt - 4);
    const x = 1 + i * bw;
    if (pb) bars.push(s("rect", { x, y: hgt - 2 - hp, width: Math.max(bw - 1, 1), height: hp, fill: "#60a5fa" }));
    if (js) bars.push(s("rect", { x, y: hgt - 2 - hp - hj, width: Math.max(bw - 1, 1), height: hj, fill: "#fbbf24" }));
  });
  return s("svg", { class: "spark", viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, role: "img", "aria-label": "spans per encoding over time" }, bars);
}

/** Horizontal bars of observed value against baseline for each feature of an anomaly. */
export function featureChart(features, opts = {}) {
  const w = opts.width || 520;
  const row = 34;
  const labelW = 200;
  const hgt = features.length * row + 18;
  const barW = w - labelW - 70;
  const items = [];
  features.forEach((f, i) => {
    const v = Math.abs(Number(f.value) || 0);
    const b = Math.abs(Number(f.baseline) || 0);
    const max = Math.max(v, b, 1e-9);
    const y = 8 + i * row;
    const name = f.name || f.feature || "feature";
    items.push(
      s("text", { x: 0, y: y + 14, class: "fc-label" }, name.length > 30 ? `${name.slice(0, 29)}…` : name),
      s("rect", { x: labelW, y: y + 2, width: Math.max((b / max) * barW, 1), height: 9, rx: 2, class: "fc-base" }),
      s("rect", { x: labelW, y: y + 13, width: Math.max((v / max) * barW, 1), height: 9, rx: 2, class: (f.ratio || 1) >= 1 ? "fc-high" : "fc-low" }),
      s("text", { x: labelW + barW + 8, y: y + 20, class: "fc-ratio" }, f.ratio !== undefined && f.ratio !== null ? `×${Number(f.ratio).toFixed(1)}` : ""),
    );
  });
  return s(
    "svg",
    { class: "featchart", viewBox: `0 0 ${w} ${hgt}`, width: "100%", role: "img", "aria-label": "features against their baselines" },
    items,
  );
}

/** Tick marks for [t0, t1] (ms): about `count` round instants. */
export function timeTicks(t0, t1, count = 6) {
  const span = t1 - t0;
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((x) => x * 1000);
  const step = steps.find((st) => span / st <= count) || 86400000 * Math.ceil(span / (86400000 * count));
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return out;
}
