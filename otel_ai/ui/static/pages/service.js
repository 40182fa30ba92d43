// The map's side panel: a service (RED sparklines, operations, instances, versions, SDKs,
// encodings), an edge, or the overview (what needs attention).
import { ApiError, get, getOptional } from "../lib/api.js";
import { encodingBars, sparkline } from "../lib/charts.js";
import {
  chip, clear, emptyState, errorBox, fmtAgo, fmtInt, fmtMs, fmtPct, fmtRate, h, health, severityBadge, stat, table,
} from "../lib/dom.js";
import { apiWindow, link } from "../lib/nav.js";

function encodingSplit(enc) {
  const pb = (enc && enc.protobuf) || 0;
  const js = (enc && enc.json) || 0;
  const total = pb + js;
  if (!total) return h("p", { class: "muted" }, "No spans in this window.");
  const pbPct = (pb / total) * 100;
  return h("div", { class: "enc" },
    h("div", { class: "enc-bar", role: "img", "aria-label": `protobuf ${fmtInt(pb)} spans, JSON ${fmtInt(js)} spans` },
      h("span", { class: "enc-pb", style: { width: `${pbPct}%` } }), h("span", { class: "enc-js", style: { width: `${100 - pbPct}%` } })),
    h("div", { class: "enc-legend" },
      h("span", {}, h("i", { class: "sw pb" }), `protobuf ${fmtInt(pb)} (${fmtPct(pb / total)})`),
      h("span", {}, h("i", { class: "sw js" }), `JSON ${fmtInt(js)} (${fmtPct(js / total)})`)));
}

function section(title, ...body) {
  return h("section", { class: "psec" }, h("h3", {}, title), ...body);
}

function sparkRow(label, value, values, colour, extra) {
  return h("div", { class: "sparkrow" },
    h("div", {}, h("div", { class: "stat-l" }, label), h("div", { class: "stat-v sm" }, value)),
    sparkline(values, { colour, label: `${label} over the window`, ...extra }));
}

export async function servicePanel(panel, ctx, name, node, topo, anomalies) {
  const win = apiWindow(ctx.win);
  const hl = node ? health(node.error_rate, (anomalies || []).some((a) => a.entity && a.entity.service === name), node.request_count) : "idle";
  const head = h("header", { class: "phead" },
    h("div", { class: `hdot h-${hl}`, "aria-hidden": "true" }),
    h("div", { class: "grow" }, h("h2", { id: "panel-title" }, name), h("div", { class: "muted" }, node ? node.kind : "not seen in this window")),
    h("a", { class: "btn ghost", href: link(["map"]), "aria-label": "Close the panel" }, "×"));
  clear(panel).append(head, h("p", { class: "loading" }, "Loading…"));
  if (!node) {
    panel.append(emptyState("No data for this node in the window", "Widen the window or pick another node."));
    panel.querySelector(".loading").remove();
    return;
  }
  const callers = topo.edges.filter((e) => e.target === name);
  const callees = topo.edges.filter((e) => e.source === name);
  let overview = null;
  let overviewErr = null;
  if (node.kind === "service") {
    try {
      overview = await get(`/api/v1/services/${encodeURIComponent(name)}/overview`, win, { signal: ctx.signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      if (!(err instanceof ApiError && err.status === 404)) overviewErr = err;
    }
  }
  const [svcAnoms, insights] = await Promise.all([
    get("/api/v1/anomalies", { ...win, service: name }, { signal: ctx.signal }).then((r) => r.anomalies, () => []),
    getOptional("/api/v1/insights", { ...win, service: name }, { signal: ctx.signal }).then((r) => (r ? r.insights : null), () => null),
  ]);
  clear(panel).append(head);
  panel.append(h("div", { class: "stats4" },
    stat("requests", fmtRate(node.request_rate)),
    stat("errors", fmtPct(node.error_rate), node.error_rate >= 0.05 ? "bad" : node.error_rate >= 0.01 ? "warn" : ""),
    stat("p95", fmtMs(node.p95_ms)),
    stat("p99", fmtMs(node.p99_ms))));
  panel.append(h("div", { class: "row wrap gap" },
    h("a", { class: "btn", href: link(["traces"], { service: node.kind === "service" ? name : null }) }, "Traces"),
    node.kind === "service" ? h("a", { class: "btn", href: link(["traces"], { service: name, status: "error" }) }, "Failed traces") : null,
    node.kind === "service" && node.p95_ms ? h("a", { class: "btn", href: link(["traces"], { service: name, min_duration_ms: Math.round(node.p95_ms) }) }, "Slow traces (> p95)") : null,
    h("a", { class: "btn", href: link(["anomalies"], { service: name }) }, "Anomalies")));
  if (overviewErr) panel.append(errorBox(overviewErr, "the service overview"));
  if (overview) {
    const ser = overview.series;
    const stepS = overview.step_s;
    panel.append(section("RED over the window",
      sparkRow("requests / s", fmtRate(node.request_rate), ser.map((b) => b.requests / stepS), "#60a5fa"),
      sparkRow("error rate", fmtPct(node.error_rate), ser.map((b) => (b.requests ? b.errors / b.requests : null)), "#f87171", { min_max: 0.05 }),
      sparkRow("p95 latency", fmtMs(node.p95_ms), ser.map((b) => b.p95_ms), "#a78bfa")));
    const recent = ser.slice(-3).reduce((acc, b) => ({ protobuf: acc.protobuf + b.encodings.protobuf, json: acc.json + b.encodings.json }), { protobuf: 0, json: 0 });
    const now = recent.protobuf + recent.json ? (recent.json > recent.protobuf ? "JSON" : "protobuf") : "nothing";
    panel.append(section("Encodings it arrives in",
      h("p", { class: "enc-now" }, "Arriving now as ", h("b", { id: "enc-now" }, now),
        h("span", { class: "muted" }, ` (last ${Math.round((3 * stepS) / 60) || 1} min) · transports ${Object.entries(node.transports || {}).map(([k, v]) => `${k} ${fmtInt(v)}`).join(", ") || "–"}`)),
      encodingSplit(overview.encodings),
      h("div", { class: "enc-time" }, encodingBars(ser, { width: 300 }), h("div", { class: "muted tiny" }, "spans per bucket: protobuf (blue) / JSON (amber)"))));
  } else {
    panel.append(section("Encodings it arrives in", encodingSplit(node.encodings)));
  }
  if (node.operations && node.operations.length) {
    const ops = [...node.operations].sort((a, b) => b.span_count - a.span_count);
    panel.append(section(`Operations (${ops.length})`, table(["Operation", "Kind", "#Rate", "#Err", "#p95"], ops.slice(0, 40).map((o) =>
      h("tr", {},
        h("td", {}, h("a", { href: link(["traces"], { service: name, operation: o.name }) }, o.name)),
        h("td", { class: "muted" }, o.kind),
        h("td", { class: "num" }, fmtRate(o.rate)),
        h("td", { class: `num ${o.error_rate >= 0.05 ? "bad-text" : ""}` }, fmtPct(o.error_rate)),
        h("td", { class: "num" }, fmtMs(o.p95_ms)))), { class: "compact" })));
  }
  if (overview) {
    panel.append(section(`Instances (${overview.instances.length})`, table(["Instance", "Host", "Version", "#Spans", "Last seen"],
      overview.instances.slice(0, 30).map((i) => h("tr", {}, h("td", { class: "mono" }, i.id), h("td", {}, i.host || "–"), h("td", {}, i.version || "–"),
        h("td", { class: "num" }, fmtInt(i.spans)), h("td", { class: "muted" }, fmtAgo(i.last_seen)))), { class: "compact" })));
    panel.append(section("Versions & SDKs",
      h("div", { class: "row wrap gap" }, overview.versions.map((v) => chip(`${v.version || "no version"} · ${fmtInt(v.spans)}`, "ver"))),
      h("div", { class: "row wrap gap" }, overview.sdks.map((x) => chip(`${x.name || "sdk"} ${x.language || ""} ${x.version || ""} · ${fmtInt(x.spans)}`, "sdk")))));
  }
  const peerRow = (e, other) => h("tr", {},
    h("td", {}, h("a", { href: link(["services", other]) }, other)), h("td", { class: "muted" }, e.kind),
    h("td", { class: "num" }, fmtRate(e.request_rate)), h("td", { class: `num ${e.error_rate >= 0.05 ? "bad-text" : ""}` }, fmtPct(e.error_rate)),
    h("td", { class: "num" }, fmtMs(e.p95_ms)));
  if (callers.length) panel.append(section(`Called by (${callers.length})`, table(["Caller", "Kind", "#Rate", "#Err", "#p95"], callers.map((e) => peerRow(e, e.source)), { class: "compact" })));
  if (callees.length) panel.append(section(`Calls (${callees.length})`, table(["Callee", "Kind", "#Rate", "#Err", "#p95"], callees.map((e) => peerRow(e, e.target)), { class: "compact" })));
  panel.append(section("Anomalies", svcAnoms.length
    ? h("ul", { class: "plain" }, svcAnoms.slice(0, 8).map((a) => h("li", {}, severityBadge(a.severity), " ",
      h("a", { href: link(["anomalies", a.id]) }, `${a.entity.kind} ${a.entity.operation || a.entity.target || a.entity.service}`),
      h("span", { class: "muted" }, ` · ${a.closed_at ? "closed" : "open"} · ${fmtAgo(a.opened_at)}`))))
    : h("p", { class: "muted" }, "None in this window.")));
  panel.append(section("Insights", insights === null
    ? h("p", { class: "muted" }, "Insights are not available on this daemon yet.")
    : insights.length
      ? h("ul", { class: "plain" }, insights.slice(0, 8).map((i) => h("li", {}, severityBadge(i.severity), " ", h("a", { href: link(["insights", i.id]) }, i.title))))
      : h("p", { class: "muted" }, "None for this service.")));
}

export function edgePanel(e, close) {
  const stats = h("div", { class: "stats4" },
    stat("calls", fmtRate(e.request_rate)),
    stat("errors", fmtPct(e.error_rate), e.error_rate >= 0.05 ? "bad" : e.error_rate >= 0.01 ? "warn" : ""),
    stat("p95 (server)", fmtMs(e.p95_ms)),
    stat("p95 (client)", fmtMs(e.client_p95_ms)));
  return h("div", {},
    h("header", { class: "phead" }, h("div", { class: "grow" }, h("h2", {}, `${e.source} → ${e.target}`), h("div", { class: "muted" }, `${e.kind} call${e.destination ? ` via ${e.destination}` : ""}`)),
      h("button", { class: "btn ghost", "aria-label": "Close the panel", onclick: close }, "×")),
    stats,
    table(["Figure", "#Value"], [
      ["calls in window", fmtInt(e.call_count)], ["errors", fmtInt(e.error_count)],
      ["p50 / p95 / p99 (server side)", `${fmtMs(e.p50_ms)} / ${fmtMs(e.p95_ms)} / ${fmtMs(e.p99_ms)}`],
      ["p50 / p95 / p99 (client side)", `${fmtMs(e.client_p50_ms)} / ${fmtMs(e.client_p95_ms)} / ${fmtMs(e.client_p99_ms)}`],
      ["paired through span links", fmtInt(e.via_links)],
    ].map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, v))), { class: "compact" }),
    h("div", { class: "row wrap gap" },
      h("a", { class: "btn", href: link(["services", e.source]) }, e.source),
      e.target_kind === "service" ? h("a", { class: "btn", href: link(["services", e.target]) }, e.target) : null,
      h("a", { class: "btn", href: link(["traces"], { service: e.source, status: e.error_rate ? "error" : null }) }, "Traces")));
}

export function overviewPanel(topo, anomalies, anomalous) {
  const services = topo.nodes.filter((n) => n.kind === "service");
  const called = new Set(topo.edges.map((e) => e.target));
  const entries = services.filter((n) => !called.has(n.id));
  const req = entries.reduce((a, n) => a + (n.request_rate || 0), 0); // what enters the system
  const errs = services.reduce((a, n) => a + (n.error_count || 0), 0);
  const reqs = services.reduce((a, n) => a + (n.request_count || 0), 0);
  const ranked = [...topo.nodes].sort((a, b) =>
    Number(anomalous.has(b.id)) - Number(anomalous.has(a.id)) || b.error_rate - a.error_rate || b.request_rate - a.request_rate);
  const open = (anomalies || []).filter((a) => !a.closed_at);
  return h("div", {},
    h("header", { class: "phead" }, h("div", { class: "grow" }, h("h2", {}, "System"), h("div", { class: "muted" }, `${services.length} services, ${topo.nodes.length - services.length} databases / queues / externals`))),
    h("div", { class: "stats4" }, stat("entry requests", fmtRate(req)), stat("error rate", fmtPct(reqs ? errs / reqs : 0), errs && errs / reqs >= 0.05 ? "bad" : ""),
      stat("open anomalies", String(anomalies ? open.length : "–"), open.length ? "bad" : ""), stat("edges", String(topo.edges.length))),
    section("Open anomalies", anomalies === null ? h("p", { class: "muted" }, "Anomaly detection is not running.")
      : open.length ? h("ul", { class: "plain" }, open.slice(0, 6).map((a) => h("li", {}, severityBadge(a.severity), " ",
        h("a", { href: link(["anomalies", a.id]) }, a.entity.service + (a.entity.operation ? ` · ${a.entity.operation}` : "")),
        h("span", { class: "muted" }, ` · ${fmtAgo(a.opened_at)}`))))
        : h("p", { class: "muted" }, "None open. ", h("a", { href: link(["anomalies"]) }, "Recent anomalies"))),
    section("All nodes, least healthy first",
      h("ul", { class: "nodelist", id: "node-list", "aria-label": "Services" }, ranked.map((n) => {
        const hl = health(n.error_rate, anomalous.has(n.id), n.request_count);
        return h("li", { "data-id": n.id }, h("a", { href: link(["services", n.id]) },
          h("i", { class: `hdot sm h-${hl}`, "aria-hidden": "true" }), h("span", { class: "grow" }, n.id),
          h("span", { class: "muted tiny" }, `${fmtRate(n.request_rate)} · ${fmtPct(n.error_rate)}`)));
      }))));
}
