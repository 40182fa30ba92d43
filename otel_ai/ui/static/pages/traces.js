// Traces: search (#/traces?service=&operation=&status=&min_duration_ms=) and one trace (#/traces/ID).
import { get } from "../lib/api.js";
import { timeTicks } from "../lib/charts.js";
import { clear, emptyState, errorBox, fmtInt, fmtMs, fmtTime, h, s, serviceColour, timeEl } from "../lib/dom.js";
import { apiWindow, link } from "../lib/nav.js";
import { renderTrace } from "./waterfall.js";

const FILTERS = ["service", "operation", "status", "min_duration_ms", "limit"];

export async function render(ctx) {
  if (ctx.parts[1]) return renderTrace(ctx, ctx.parts[1]);
  return renderSearch(ctx);
}

async function renderSearch(ctx) {
  const root = clear(ctx.root);
  const q = ctx.query;
  const win = apiWindow(ctx.win);
  const services = await get("/api/v1/services", win, { signal: ctx.signal }).then((r) => r.services, () => []);
  const svcSel = h("select", { id: "f-service", name: "service", "aria-label": "Service" },
    h("option", { value: "" }, "any service"),
    services.map((sv) => h("option", { value: sv.name, selected: sv.name === q.get("service") }, sv.name)));
  if (q.get("service") && !services.some((sv) => sv.name === q.get("service"))) svcSel.append(h("option", { value: q.get("service"), selected: true }, q.get("service")));
  const opSel = h("select", { id: "f-operation", name: "operation", "aria-label": "Operation" });
  const fillOps = () => {
    const sv = services.find((x) => x.name === svcSel.value);
    const ops = sv ? sv.operations.map((o) => o.name) : [];
    const want = q.get("operation");
    clear(opSel).append(h("option", { value: "" }, "any operation"), ops.map((o) => h("option", { value: o, selected: o === want }, o)));
    if (want && !ops.includes(want)) opSel.append(h("option", { value: want, selected: true }, want));
  };
  fillOps();
  svcSel.addEventListener("change", fillOps);
  const status = h("select", { id: "f-status", name: "status", "aria-label": "Status" },
    [["", "any status"], ["error", "error"], ["ok", "ok"], ["unset", "unset"]].map(([v, t]) => h("option", { value: v, selected: v === (q.get("status") || "") }, t)));
  const minDur = h("input", { id: "f-min", name: "min_duration_ms", type: "number", min: 0, step: "any", placeholder: "0", value: q.get("min_duration_ms") || "", "aria-label": "Minimum duration (ms)", style: { width: "120px", minWidth: "0" } });
  const limit = h("select", { id: "f-limit", name: "limit", "aria-label": "Limit" }, ["20", "50", "100", "200", "500"].map((n) => h("option", { value: n, selected: n === (q.get("limit") || "50") }, n)));
  const form = h("form", { class: "search card", role: "search", "aria-label": "Search traces", onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = link(["traces"], { service: svcSel.value, operation: opSel.value, status: status.value, min_duration_ms: minDur.value, limit: limit.value === "50" ? "" : limit.value });
  } },
  h("label", {}, "Service", svcSel), h("label", {}, "Operation", opSel), h("label", {}, "Status", status),
  h("label", {}, "Min duration (ms)", minDur), h("label", {}, "Limit", limit),
  h("button", { class: "btn primary", type: "submit", id: "f-submit" }, "Find traces"));
  const results = h("div", { id: "trace-results" }, h("p", { class: "loading" }, "Searching…"));
  root.append(h("div", { class: "page-h" }, h("h1", {}, "Traces"), h("p", { class: "muted" }, "Newest first within the window; a trace's status is its worst span status.")), form, results);
  const params = { ...win };
  for (const k of FILTERS) if (q.get(k)) params[k] = q.get(k);
  const load = async () => {
    try {
      const { traces } = await get("/api/v1/traces", params, { signal: ctx.signal });
      drawResults(results, traces);
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(results).append(errorBox(err, "traces"));
    }
  };
  await load();
  ctx.live(load);
}

function scatter(traces) {
  const w = 1000;
  const hgt = 170;
  const pad = { l: 52, r: 12, t: 10, b: 22 };
  const times = traces.map((t) => new Date(t.start_time).getTime());
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1000);
  const maxD = Math.max(...traces.map((t) => t.duration_ms), 1);
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (w - pad.l - pad.r);
  const y = (d) => hgt - pad.b - (Math.sqrt(d) / Math.sqrt(maxD)) * (hgt - pad.t - pad.b);
  const ticks = timeTicks(t0, t1, 7);
  const yt = [0, maxD / 4, maxD].map((d) => s("g", {}, s("line", { class: "gridline", x1: pad.l, x2: w - pad.r, y1: y(d), y2: y(d) }), s("text", { class: "axis", x: pad.l - 6, y: y(d) + 3, "text-anchor": "end" }, fmtMs(d))));
  return s("svg", { class: "scatter", viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: "none", role: "img", "aria-label": "trace durations over time" },
    yt,
    ticks.map((t) => s("text", { class: "axis", x: x(t), y: hgt - 6, "text-anchor": "middle" }, fmtTime(new Date(t).toISOString()))),
    traces.map((t, i) => s("a", { href: link(["traces", t.trace_id]), "aria-label": `trace ${t.trace_id}` },
      s("circle", { class: "dot", cx: x(times[i]), cy: y(t.duration_ms), r: 3 + Math.min(5, Math.sqrt(t.span_count) / 2), fill: t.error_count ? "#f87171" : serviceColour(t.root_service), "fill-opacity": 0.8 }))));
}

function drawResults(box, traces) {
  clear(box);
  if (!traces.length) {
    box.append(emptyState("No traces match", "Widen the window or loosen the filters."));
    return;
  }
  const maxD = Math.max(...traces.map((t) => t.duration_ms), 1e-9);
  box.append(
    h("div", { class: "card", style: { marginBottom: "14px", padding: "8px 10px" } }, scatter(traces)),
    h("div", { class: "card" },
      h("table", { class: "tbl", id: "trace-table" },
        h("caption", {}, `${traces.length} traces`),
        h("thead", {}, h("tr", {}, ["Started", "Root", "Duration", "", "#Spans", "#Errors", "Services"].map((x) => h("th", { scope: "col", class: x.startsWith("#") ? "num" : "" }, x.replace("#", ""))))),
        h("tbody", {}, traces.map((t) => h("tr", { class: "clickable", "data-trace": t.trace_id, onclick: (ev) => { if (!ev.target.closest("a")) location.hash = link(["traces", t.trace_id]); } },
          h("td", {}, timeEl(t.start_time)),
          h("td", {}, h("a", { href: link(["traces", t.trace_id]), class: "trace-link" }, h("b", {}, t.root_service), " ", h("span", { class: "muted" }, t.root_operation))),
          h("td", { class: "num" }, fmtMs(t.duration_ms)),
          h("td", { style: { width: "18%" } }, h("div", { class: `durbar ${t.error_count ? "err" : ""}`, style: { width: `${(t.duration_ms / maxD) * 100}%` } })),
          h("td", { class: "num" }, fmtInt(t.span_count)),
          h("td", { class: `num ${t.error_count ? "bad-text" : "muted"}` }, fmtInt(t.error_count)),
          h("td", {}, h("div", { class: "svcdots", title: t.services.join(", ") }, t.services.slice(0, 14).map((sv) => h("span", { class: "svcdot", style: { background: serviceColour(sv) }, title: sv })), t.services.length > 14 ? h("span", { class: "muted tiny" }, `+${t.services.length - 14}`) : null)))))),
    ),
  );
}
