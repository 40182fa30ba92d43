// Anomalies: a timeline of open and recent ones (#/anomalies) and one anomaly (#/anomalies/ID).
import { get } from "../lib/api.js";
import { featureChart, timeTicks } from "../lib/charts.js";
import { clear, emptyState, errorBox, fmtAgo, fmtNum, fmtTime, h, s, severityBadge, stat, table, timeEl, SEVERITY_ORDER } from "../lib/dom.js";
import { apiWindow, link } from "../lib/nav.js";

function entityText(e) {
  if (!e) return "–";
  if (e.kind === "edge") return `${e.service} → ${e.target}`;
  if (e.kind === "operation") return `${e.service} · ${e.operation}`;
  return e.service;
}

const SEV_COLOUR = { critical: "#ef4444", high: "#f97316", medium: "#eab308", low: "#60a5fa", info: "#94a3b8" };

export async function render(ctx) {
  if (ctx.parts[1]) return renderOne(ctx, ctx.parts[1]);
  const root = clear(ctx.root);
  const q = ctx.query;
  const status = q.get("status") || "";
  const service = q.get("service") || "";
  const filters = h("div", { class: "row gap wrap" },
    ["", "open", "closed"].map((st) => h("a", { class: `btn ${st === status ? "primary" : ""}`, href: link(["anomalies"], { status: st, service }) }, st || "all")),
    service ? h("span", { class: "chip" }, `service: ${service} `, h("a", { href: link(["anomalies"], { status }), "aria-label": "Clear the service filter" }, "×")) : null);
  const box = h("div", { id: "anomaly-list" }, h("p", { class: "loading" }, "Loading…"));
  root.append(h("div", { class: "page-h" }, h("h1", {}, "Anomalies"), h("p", { class: "muted" }, "Open and recent anomalies overlapping the window, newest first."), filters), box);
  const load = async () => {
    try {
      const { anomalies } = await get("/api/v1/anomalies", { ...apiWindow(ctx.win), status, service }, { signal: ctx.signal });
      draw(box, anomalies, ctx);
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(box).append(errorBox(err, "anomalies"));
    }
  };
  await load();
  ctx.live(load);
}

function draw(box, list, ctx) {
  clear(box);
  if (!list.length) {
    box.append(emptyState("No anomalies in this window", "The detector scores every closed window against its learned baseline; nothing stood out. Widen the window to see older ones."));
    return;
  }
  const now = Date.now();
  const t0 = Math.min(...list.map((a) => new Date(a.opened_at).getTime()));
  const tEnd = Math.max(now, ...list.map((a) => (a.closed_at ? new Date(a.closed_at).getTime() : now)));
  const rowH = 24;
  const labelW = 260;
  const w = 1100;
  const rows = [...list].sort((a, b) => (a.opened_at < b.opened_at ? -1 : 1));
  const x = (t) => labelW + ((t - t0) / Math.max(tEnd - t0, 1)) * (w - labelW - 20);
  const hgt = rows.length * rowH + 30;
  const ticks = timeTicks(t0, tEnd, 8);
  const svg = s("svg", { class: "timeline", viewBox: `0 0 ${w} ${hgt}`, role: "list", "aria-label": "anomaly timeline" },
    ticks.map((t) => s("g", {}, s("line", { class: "gridline", x1: x(t), x2: x(t), y1: 0, y2: hgt - 22 }), s("text", { class: "axis", x: x(t), y: hgt - 6, "text-anchor": "middle" }, fmtTime(new Date(t).toISOString())))),
    rows.map((a, i) => {
      const a0 = new Date(a.opened_at).getTime();
      const a1 = a.closed_at ? new Date(a.closed_at).getTime() : now;
      const y = i * rowH + 4;
      const label = entityText(a.entity);
      return s("a", { href: link(["anomalies", a.id]), role: "listitem", "aria-label": `${a.severity} anomaly on ${label}` },
        s("text", { class: "tl-label", x: 0, y: y + 13 }, label.length > 38 ? `${label.slice(0, 37)}…` : label),
        s("rect", { class: "tl-bar", x: x(a0), y: y + 2, width: Math.max(x(a1) - x(a0), 4), height: rowH - 8, rx: 4, fill: SEV_COLOUR[a.severity] || "#94a3b8", opacity: a.closed_at ? 0.55 : 0.95 }),
        a.closed_at ? null : s("circle", { cx: x(a1), cy: y + rowH / 2 - 2, r: 4, fill: "#f8fafc" }));
    }));
  const sorted = [...list].sort((a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity) || (a.opened_at < b.opened_at ? 1 : -1));
  box.append(
    h("div", { class: "card", style: { marginBottom: "14px" } }, h("h3", {}, "Timeline"), svg),
    h("div", { class: "card" }, table(["Severity", "Entity", "Opened", "Status", "#Score", "Root causes"], sorted.map((a) => h("tr", { class: "clickable", onclick: (ev) => { if (!ev.target.closest("a")) location.hash = link(["anomalies", a.id]); } },
      h("td", {}, severityBadge(a.severity)),
      h("td", {}, h("a", { href: link(["anomalies", a.id]) }, entityText(a.entity)), h("div", { class: "muted tiny" }, a.entity.kind)),
      h("td", {}, timeEl(a.opened_at), h("div", { class: "muted tiny" }, fmtAgo(a.opened_at))),
      h("td", {}, a.closed_at ? h("span", { class: "muted" }, "closed") : h("b", { class: "bad-text" }, "open")),
      h("td", { class: "num" }, fmtNum(a.score)),
      h("td", {}, (a.root_causes || []).slice(0, 3).map((r) => h("a", { class: "chip", href: link(["services", r.service]) }, r.service))))))),
  );
}

async function renderOne(ctx, id) {
  const root = clear(ctx.root);
  root.append(h("p", { style: { margin: "0 0 8px" } }, h("a", { href: link(["anomalies"]) }, "← Anomalies")));
  let a;
  try {
    a = await get(`/api/v1/anomalies/${encodeURIComponent(id)}`, {}, { signal: ctx.signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    root.append(errorBox(err, `anomaly ${id}`));
    return;
  }
  const ev = a.evidence || {};
  const chain = a.root_causes || [];
  const maxScore = Math.max(1e-9, ...chain.map((r) => r.score));
  const traces = ev.trace_ids || [];
  const feats = (a.features || []).slice(0, 12);
  const services = [...new Set([a.entity.service, ...chain.map((r) => r.service), ...(ev.services || [])].filter(Boolean))];
  root.append(
    h("div", { class: "page-h" }, severityBadge(a.severity), h("h1", {}, entityText(a.entity)), h("span", { class: "muted" }, `${a.entity.kind} anomaly · ${a.id}`)),
    h("div", { class: "statsrow" },
      stat("status", a.closed_at ? "closed" : "open", a.closed_at ? "" : "bad"), stat("opened", timeEl(a.opened_at)),
      stat("closed", a.closed_at ? timeEl(a.closed_at) : "–"), stat("score", fmtNum(a.score)), stat("features", String((a.features || []).length))),
    h("div", { class: "grid2" },
      h("div", { class: "card" }, h("h3", {}, "Features against their baselines"),
        feats.length ? [featureChart(feats), h("p", { class: "muted tiny" }, "grey: baseline · red: observed above it · blue: below it")] : h("p", { class: "muted" }, "No feature detail stored."),
        feats.length ? table(["Feature", "#Observed", "#Baseline", "#Ratio"], feats.map((f) => h("tr", { title: f.text || "" }, h("td", { class: "mono" }, f.name || f.feature), h("td", { class: "num" }, fmtNum(f.value, 4)), h("td", { class: "num" }, fmtNum(f.baseline, 4)), h("td", { class: "num" }, f.ratio === null || f.ratio === undefined ? "–" : `×${fmtNum(f.ratio)}`))), { class: "compact" }) : null),
      h("div", { class: "cards" },
        h("div", { class: "card" }, h("h3", {}, "Root-cause chain"),
          chain.length ? h("ol", { class: "chain", "aria-label": "root causes, most likely first" }, chain.slice(0, 6).map((r, i) => [
            i ? h("span", { class: "arrow-r", "aria-hidden": "true" }, "←") : null,
            h("li", { class: "step", style: { listStyle: "none" } }, h("b", {}, h("a", { href: link(["services", r.service]) }, r.service)), h("span", { class: "muted tiny" }, `score ${fmtNum(r.score)}`), h("div", { class: "scorebar", style: { width: `${(r.score / maxScore) * 100}%` } }))]))
            : (ev.services || []).length ? h("p", {}, "No ranked root cause; services involved: ", ev.services.map((sv) => h("a", { class: "chip", href: link(["services", sv]) }, sv)))
              : h("p", { class: "muted" }, "No root cause ranked."),
          h("a", { class: "btn", href: link(["map"], { highlight: services.join(",") }) }, "Show the chain on the map")),
        h("div", { class: "card" }, h("h3", {}, `Example traces (${traces.length})`),
          traces.length ? h("ul", { class: "plain", style: { marginBottom: "10px" } }, traces.map((t) => h("li", {}, h("a", { class: "mono", href: link(["traces", t]) }, t)))) : h("p", { class: "muted" }, "None stored with this anomaly."),
          h("a", { class: "btn", href: link(["traces"], { service: chain[0] ? chain[0].service : a.entity.service, status: "error", since: a.opened_at, until: a.closed_at || null }) }, "Search failed traces in that window")),
        h("div", { class: "card" }, h("h3", {}, "Evidence"), h("dl", { class: "kv" }, Object.entries(ev).filter(([k]) => k !== "trace_ids").map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]))))),
  );
}
