// One trace as a waterfall: spans nested by parent, service colours, the critical path marked,
// and per span its attributes, events, links, resource, scope and ingest encoding.
import { get } from "../lib/api.js";
import { clear, chip, emptyState, errorBox, fmtInt, fmtMs, h, serviceColour, stat, timeEl } from "../lib/dom.js";
import { link } from "../lib/nav.js";

const MAX_ROWS = 3000;

/** RFC 3339 with up to nanoseconds → [epoch seconds, nanoseconds] (Date keeps only ms). */
function parseNs(iso) {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(iso);
  if (!m) return [Date.parse(iso) / 1000, 0];
  const secs = Date.parse(`${m[1]}${m[3]}`) / 1000;
  const frac = m[2] ? Number((m[2] + "000000000").slice(0, 9)) : 0;
  return [secs, frac];
}

export function buildTree(spans) {
  const [s0, f0] = spans.reduce((best, sp) => {
    const p = parseNs(sp.start_time);
    return p[0] < best[0] || (p[0] === best[0] && p[1] < best[1]) ? p : best;
  }, [Infinity, 0]);
  const byId = new Map();
  for (const sp of spans) {
    const [sec, frac] = parseNs(sp.start_time);
    const start = (sec - s0) * 1e9 + (frac - f0);
    byId.set(sp.span_id, { span: sp, start, end: start + sp.duration_ns, children: [], depth: 0, critical: false });
  }
  const roots = [];
  for (const n of byId.values()) {
    const parent = n.span.parent_span_id && byId.get(n.span.parent_span_id);
    if (parent && parent !== n) parent.children.push(n);
    else roots.push(n);
  }
  const sortKids = (n) => { n.children.sort((a, b) => a.start - b.start || (a.span.name < b.span.name ? -1 : 1)); n.children.forEach(sortKids); };
  roots.sort((a, b) => a.start - b.start);
  roots.forEach(sortKids);
  const total = Math.max(1, ...[...byId.values()].map((n) => n.end));
  return { roots, byId, total };
}

/** Mark the critical path: from the end of a span, the child that finished last, then before it… */
export function markCritical(node) {
  node.critical = true;
  let cursor = node.end;
  const kids = [...node.children].sort((a, b) => b.end - a.end);
  for (const c of kids) {
    if (c.start >= cursor || c.end <= node.start) continue; // after the point traced back to
    markCritical(c);
    cursor = c.start;
  }
}

function flatten(roots) {
  const out = [];
  const walk = (n, depth) => {
    n.depth = depth;
    out.push(n);
    n.children.forEach((c) => walk(c, depth + 1));
  };
  roots.forEach((r) => walk(r, 0));
  return out;
}

function kv(obj, title) {
  const entries = Object.entries(obj || {}).sort(([a], [b]) => (a < b ? -1 : 1));
  return h("div", {}, h("h3", {}, `${title} (${entries.length})`),
    entries.length ? h("dl", { class: "kv" }, entries.map(([k, v]) => [h("dt", { title: k }, k), h("dd", {}, v)])) : h("p", { class: "muted" }, "none"));
}

function detail(n, traceId) {
  const sp = n.span;
  const ev = sp.events || [];
  const links = sp.links || [];
  return h("div", { class: "wf-detail", role: "region", "aria-label": `span ${sp.name}` },
    h("div", {},
      h("h3", {}, "Span"),
      h("dl", { class: "kv" },
        [["service", sp.service_name], ["name", sp.name], ["kind", sp.kind], ["span id", sp.span_id], ["parent", sp.parent_span_id || "(root)"],
          ["start", sp.start_time], ["duration", fmtMs(sp.duration_ns / 1e6)], ["status", `${sp.status_code}${sp.status_message ? `: ${sp.status_message}` : ""}`],
          ["scope", `${sp.scope_name || "–"} ${sp.scope_version || ""}`], ["encoding", sp.encoding || "–"], ["transport", sp.transport || "–"],
          ["critical path", n.critical ? "yes" : "no"]].map(([k, v]) => [h("dt", {}, k), h("dd", { class: k === "status" && sp.status_code === "Error" ? "bad-text" : "" }, v)])),
      h("div", { class: "row gap", style: { marginTop: "8px" } }, h("a", { class: "btn", href: link(["services", sp.service_name]) }, `${sp.service_name} on the map`))),
    kv(sp.attributes, "Attributes"),
    kv(sp.resource_attributes, "Resource"),
    h("div", {}, h("h3", {}, `Events (${ev.length})`), ev.length
      ? h("ul", { class: "plain" }, ev.map((e) => h("li", {}, h("b", {}, e.name), " ", h("span", { class: "muted" }, e.time), Object.keys(e.attributes || {}).length ? h("dl", { class: "kv" }, Object.entries(e.attributes).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])) : null)))
      : h("p", { class: "muted" }, "none"),
    h("h3", { style: { marginTop: "10px" } }, `Links (${links.length})`), links.length
      ? h("ul", { class: "plain" }, links.map((l) => h("li", {}, h("a", { href: link(["traces", l.trace_id]) }, l.trace_id === traceId ? "this trace" : `trace ${l.trace_id.slice(0, 12)}…`), h("span", { class: "mono muted" }, ` span ${l.span_id}`))))
      : h("p", { class: "muted" }, "none")));
}

export async function renderTrace(ctx, traceId) {
  const root = clear(ctx.root);
  let body;
  try {
    body = await get(`/api/v1/traces/${encodeURIComponent(traceId)}`, {}, { signal: ctx.signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    root.append(h("p", {}, h("a", { href: link(["traces"]) }, "← Traces")), errorBox(err, `trace ${traceId}`));
    return;
  }
  const spans = body.spans;
  if (!spans.length) {
    root.append(emptyState("This trace has no spans"));
    return;
  }
  const { roots, total } = buildTree(spans);
  const main = roots.reduce((a, b) => (b.end - b.start > a.end - a.start ? b : a), roots[0]);
  markCritical(main);
  const rows = flatten(roots);
  const services = [...new Set(spans.map((sp) => sp.service_name))].sort();
  const errors = spans.filter((sp) => sp.status_code === "Error").length;
  const encodings = [...new Set(spans.map((sp) => sp.encoding).filter(Boolean))];
  root.append(
    h("p", { style: { margin: "0 0 8px" } }, h("a", { href: link(["traces"]) }, "← Traces")),
    h("div", { class: "trace-h" }, h("h1", {}, h("span", { style: { color: serviceColour(main.span.service_name) } }, main.span.service_name), " ", main.span.name),
      h("span", { class: "mono muted" }, body.trace_id)),
    h("div", { class: "statsrow", style: { marginTop: "10px" } },
      stat("duration", fmtMs(total / 1e6)), stat("spans", fmtInt(spans.length)), stat("services", String(services.length)),
      stat("errors", fmtInt(errors), errors ? "bad" : ""), stat("started", timeEl(main.span.start_time)), stat("encoding", encodings.join(" + ") || "–")),
    h("div", { class: "row wrap gap", style: { marginBottom: "10px" } }, services.map((sv) => h("a", { class: "chip svc", style: { background: serviceColour(sv) }, href: link(["services", sv]) }, sv)),
      h("span", { class: "spacer" }), h("span", { class: "muted tiny crit-legend" }, "critical path"), h("span", { class: "muted tiny" }, " · click a span for its attributes, events, links and resource")),
  );
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const wf = h("div", { class: "wf", id: "waterfall", role: "tree", "aria-label": "Spans" },
    h("div", { class: "wf-head" }, h("div", {}, "Service · operation"), h("div", { class: "wf-ticks" }, ticks.map((t) => h("span", { style: { left: `${t * 100}%` } }, fmtMs((t * total) / 1e6))))));
  const collapsed = new Set();
  const open = new Set();
  const draw = () => {
    while (wf.children.length > 1) wf.lastChild.remove();
    let hiddenUnder = null;
    let shown = 0;
    for (const n of rows) {
      if (hiddenUnder !== null) {
        if (n.depth > hiddenUnder) continue;
        hiddenUnder = null;
      }
      if (collapsed.has(n.span.span_id)) hiddenUnder = n.depth;
      if (++shown > MAX_ROWS) {
        wf.append(h("div", { class: "muted", style: { padding: "8px 12px" } }, `… ${rows.length - MAX_ROWS} more spans not drawn`));
        break;
      }
      wf.append(...row(n));
    }
  };
  const row = (n) => {
    const sp = n.span;
    const colour = serviceColour(sp.service_name);
    const left = (n.start / total) * 100;
    const width = Math.max(((n.end - n.start) / total) * 100, 0.15);
    const isErr = sp.status_code === "Error";
    const hasKids = n.children.length > 0;
    const isOpen = open.has(sp.span_id);
    const tog = h("span", { class: "wf-tog", "aria-hidden": "true", onclick: (ev) => {
      if (!hasKids) return;
      ev.stopPropagation();
      if (collapsed.has(sp.span_id)) collapsed.delete(sp.span_id); else collapsed.add(sp.span_id);
      draw();
    } }, hasKids ? (collapsed.has(sp.span_id) ? "▸" : "▾") : "");
    const toggle = () => {
      if (open.has(sp.span_id)) open.delete(sp.span_id); else open.add(sp.span_id);
      draw();
      const again = wf.querySelector(`[data-span="${sp.span_id}"]`);
      if (again) again.focus();
    };
    const el = h("div", {
      class: `wf-row ${isOpen ? "open" : ""}`, role: "treeitem", tabindex: 0, "aria-expanded": String(isOpen), "aria-level": n.depth + 1,
      "data-span": sp.span_id, "data-critical": String(n.critical),
      "aria-label": `${sp.service_name} ${sp.name}, ${fmtMs(sp.duration_ns / 1e6)}${isErr ? ", error" : ""}${n.critical ? ", on the critical path" : ""}`,
      onclick: toggle,
      onkeydown: (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); toggle(); }
        else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          ev.preventDefault();
          const all = [...wf.querySelectorAll(".wf-row")];
          const i = all.indexOf(ev.currentTarget);
          const next = all[i + (ev.key === "ArrowDown" ? 1 : -1)];
          if (next) next.focus();
        }
      },
    },
    h("div", { class: "wf-name", style: { paddingLeft: `${10 + n.depth * 14}px` } }, tog,
      h("span", { class: "svcdot", style: { background: colour } }),
      h("span", { class: "svc" }, sp.service_name), h("span", { class: "op" }, sp.name), isErr ? h("span", { class: "wf-err", title: sp.status_message || "error" }, "!") : null),
    h("div", { class: "wf-lane" },
      h("div", { class: `wf-bar ${n.critical ? "crit" : ""} ${isErr ? "err" : ""}`, style: { left: `${left}%`, width: `${width}%`, backgroundColor: colour } }),
      (sp.events || []).map((e) => {
        const [sec, frac] = parseNs(e.time);
        const [s0, f0] = parseNs(sp.start_time);
        const off = n.start + (sec - s0) * 1e9 + (frac - f0);
        return h("div", { class: "wf-evt", title: e.name, style: { left: `${Math.min(Math.max((off / total) * 100, 0), 100)}%` } });
      }),
      h("span", { class: "wf-dur", style: left + width > 80 ? { right: `${100 - left + 0.6}%` } : { left: `${left + width + 0.6}%` } }, fmtMs(sp.duration_ns / 1e6))));
    return isOpen ? [el, detail(n, body.trace_id)] : [el];
  };
  draw();
  root.append(wf);
  if (encodings.length > 1) root.append(h("p", { class: "muted tiny" }, "Spans of this trace arrived in more than one encoding: ", encodings.map((e) => chip(e))));
}
