// Small DOM and formatting helpers shared by every page (no framework).

const SVG_NS = "http://www.w3.org/2000/svg";

function put(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** h("div", {class: "x", onclick: fn}, child, "text", [more]) → an HTML element. */
export function h(tag, attrs, ...children) {
  return put(document.createElement(tag), attrs, children);
}

/** The SVG counterpart of h(). */
export function s(tag, attrs, ...children) {
  return put(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function esc(text) {
  return encodeURIComponent(text);
}

// ---------------------------------------------------------------------------------------------
// Number and time formatting.

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}

export function fmtRate(perS) {
  if (perS === null || perS === undefined) return "–";
  if (perS >= 100) return `${perS.toFixed(0)}/s`;
  if (perS >= 1) return `${perS.toFixed(1)}/s`;
  if (perS * 60 >= 1) return `${(perS * 60).toFixed(1)}/min`;
  if (perS > 0) return `${(perS * 3600).toFixed(1)}/h`;
  return "0/s";
}

export function fmtPct(ratio) {
  if (ratio === null || ratio === undefined) return "–";
  if (ratio === 0) return "0%";
  const p = ratio * 100;
  return p < 0.1 ? "<0.1%" : p < 10 ? `${p.toFixed(1)}%` : `${p.toFixed(0)}%`;
}

export function fmtInt(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US");
}

export function fmtNum(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  const v = Number(x);
  if (Math.abs(v) >= 1000) return v.toLocaleString("en-US", { maximumFractionDigits: 0 });
  return v.toLocaleString("en-US", { maximumFractionDigits: digits });
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 && i ? 1 : 0)} ${units[i]}`;
}

export function fmtUsd(x) {
  if (x === null || x === undefined) return "–";
  return x === 0 ? "$0" : x < 0.01 ? `$${x.toFixed(5)}` : `$${x.toFixed(2)}`;
}

/** "14:03:12" for today, "Dec 1 14:03" otherwise; the full instant goes in the title. */
export function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const now = new Date();
  const same = d.toDateString() === now.toDateString();
  return same
    ? d.toLocaleTimeString("en-GB", { hour12: false })
    : d.toLocaleString("en-GB", { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

export function fmtAgo(iso) {
  if (!iso) return "–";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 0) return "just now";
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${(s / 86400).toFixed(1)} d ago`;
}

export function timeEl(iso) {
  return h("time", { datetime: iso || "", title: iso || "" }, fmtTime(iso));
}

// ---------------------------------------------------------------------------------------------
// Colours: a stable hue per service name; health by error rate / anomaly.

const PALETTE = [
  "#60a5fa", "#34d399", "#fbbf24", "#f472b6", "#a78bfa", "#22d3ee", "#fb923c", "#a3e635",
  "#e879f9", "#2dd4bf", "#facc15", "#818cf8", "#4ade80", "#f97316", "#38bdf8", "#c084fc",
];

export function serviceColour(name) {
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619);
  return PALETTE[Math.abs(hash) % PALETTE.length];
}

/** "ok" | "warn" | "bad" | "idle" from an error rate and whether an anomaly is open. */
export function health(errorRate, anomalous, traffic = 1) {
  if (anomalous || errorRate >= 0.05) return "bad";
  if (errorRate >= 0.01) return "warn";
  if (!traffic) return "idle";
  return "ok";
}

export const SEVERITY_ORDER = ["critical", "high", "medium", "low", "info"];

export function severityBadge(sev) {
  return h("span", { class: `sev sev-${sev || "info"}` }, sev || "info");
}

export function chip(text, cls = "") {
  return h("span", { class: `chip ${cls}` }, text);
}

/** A labelled figure: big value, small label. */
export function stat(label, value, cls = "") {
  return h("div", { class: `stat ${cls}` }, h("div", { class: "stat-v" }, value), h("div", { class: "stat-l" }, label));
}

export function table(headers, rows, opts = {}) {
  return h(
    "table",
    { class: `tbl ${opts.class || ""}` },
    opts.caption ? h("caption", {}, opts.caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", class: x.startsWith("#") ? "num" : "" }, x.replace(/^#/, ""))))),
    h("tbody", {}, rows),
  );
}

export function emptyState(title, detail) {
  return h("div", { class: "empty" }, h("div", { class: "empty-t" }, title), detail ? h("p", {}, detail) : null);
}

export function errorBox(err, what) {
  const status = err && err.status ? `HTTP ${err.status}` : "network";
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", {}, what ? `Could not load ${what}` : "Something went wrong"),
    h("span", { class: "muted" }, ` (${status})`),
    h("div", { class: "mono" }, (err && err.message) || String(err)),
  );
}
