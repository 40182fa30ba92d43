// The service map (#/map, #/services/NAME): a layered SVG call graph and a side panel.
import { get } from "../lib/api.js";
import { chip, clear, emptyState, errorBox, fmtMs, fmtPct, fmtRate, h, health, s } from "../lib/dom.js";
import { layered, place } from "../lib/layout.js";
import { apiWindow, link } from "../lib/nav.js";
import { edgePanel, overviewPanel, servicePanel } from "./service.js";

const NODE_W = 192;
const NODE_H = 44;
const COL_W = 254;
const ROW_H = 62;
const PAD = 40;
const KIND_TAG = { database: "DB", messaging: "MQ", external: "EXT" };

let st = null; // page state: {ctx, topo, anomalies, svg, view, selectedEdge, ...}

function anomalousServices(anomalies) {
  const set = new Set();
  for (const a of anomalies || []) {
    if (a.closed_at) continue;
    if (a.entity && a.entity.service) set.add(a.entity.service);
    if (a.root_causes && a.root_causes[0]) set.add(a.root_causes[0].service);
  }
  return set;
}

async function load(ctx) {
  const win = apiWindow(ctx.win);
  const [topo, anomalies] = await Promise.all([
    get("/api/v1/topology", win, { signal: ctx.signal }),
    get("/api/v1/anomalies", { ...win, status: "open" }, { signal: ctx.signal }).then((r) => r.anomalies, () => null),
  ]);
  return { topo, anomalies };
}

/** First load: the shell's early requests; the stored snapshot is drawn if it beats the live window. */
function firstLoad(ctx) {
  const win = apiWindow(ctx.win);
  const pre = window.__otelAiPrefetch;
  window.__otelAiPrefetch = null;
  const fresh = pre && pre.key === JSON.stringify(win);
  const live = fresh ? pre.topology : get("/api/v1/topology", win, { signal: ctx.signal });
  const snapshot = fresh ? pre.snapshot : ctx.win.until ? Promise.resolve(null) : get("/api/v1/topology", { at: "now" }, { signal: ctx.signal }).catch(() => null);
  const anomalies = (fresh ? pre.anomalies : get("/api/v1/anomalies", { ...win, status: "open" }, { signal: ctx.signal })).then((r) => r.anomalies, () => null);
  const first = Promise.race([
    live.then((t) => ({ topo: t, snapshot: false })),
    snapshot.then((t) => (t && t.nodes && t.nodes.length ? { topo: t, snapshot: true } : live.then((x) => ({ topo: x, snapshot: false })))),
  ]);
  return { first, live, anomalies };
}

function summaryText() {
  const n = st.topo.nodes;
  const bad = n.filter((x) => health(x.error_rate, anomalousServices(st.anomalies).has(x.id), x.request_count) === "bad").length;
  const base = `${n.length} nodes · ${st.topo.edges.length} edges${bad ? ` · ${bad} unhealthy` : ""}`;
  return st.snapshot ? `${base} · stored snapshot ${fmtTimeShort(st.topo.window.end)}, loading the window…` : base;
}

function fmtTimeShort(iso) {
  return iso ? new Date(iso).toLocaleTimeString("en-GB", { hour12: false, hour: "2-digit", minute: "2-digit" }) : "";
}

export async function render(ctx) {
  const { first, live, anomalies } = firstLoad(ctx);
  const [got, anoms] = await Promise.all([first, anomalies]);
  st = { ctx, topo: got.topo, anomalies: anoms, snapshot: got.snapshot, view: null, selectedEdge: null, filter: "" };
  drawPage();
  // ms from navigation start to the map drawn (read by the UI tests and docs/ui.md's figure)
  if (!window.__otelAiFirstMap) window.__otelAiFirstMap = performance.now();
  if (got.snapshot) {
    try {
      const topo = await live;
      if (st && st.ctx === ctx) {
        Object.assign(st, { topo, snapshot: false });
        redraw();
      }
    } catch (err) {
      if (err.name === "AbortError") return;
      const el = document.getElementById("map-summary");
      if (el) { el.textContent = `${summaryText()} — the live window failed: ${err.message}`; el.classList.add("bad-text"); }
    }
  }
  ctx.live(async () => {
    const fresh = await load(ctx);
    if (st && st.ctx === ctx) {
      Object.assign(st, fresh, { snapshot: false });
      redraw();
    }
  });
}

async function redraw() {
  const el = document.getElementById("map-summary");
  if (el) el.textContent = summaryText();
  if (!st.topo.nodes.length || !document.getElementById("map-svg")) drawPage();
  else drawGraph();
  await drawPanel();
}

export async function update(ctx) {
  if (!st) return render(ctx);
  st.ctx = ctx;
  st.selectedEdge = null;
  markSelected();
  await drawPanel();
}

export function teardown() {
  st = null;
}

function selectedService() {
  const { parts } = st.ctx;
  return parts[0] === "services" && parts[1] ? parts[1] : null;
}

function highlightSet() {
  const hl = st.ctx.query.get("highlight");
  return hl ? hl.split(",").filter(Boolean) : [];
}

function drawPage() {
  const root = clear(st.ctx.root);
  const nodes = st.topo.nodes;
  const find = h("input", {
    type: "search", id: "map-find", placeholder: "Find a service…", "aria-label": "Find a service", autocomplete: "off",
    oninput: (e) => { st.filter = e.target.value.trim().toLowerCase(); applyFilter(); },
    onkeydown: (e) => {
      if (e.key !== "Enter") return;
      const hit = st.topo.nodes.find((n) => n.id.toLowerCase().includes(st.filter));
      if (hit) location.hash = link(["services", hit.id]);
    },
  });
  const toolbar = h(
    "div", { class: "map-toolbar" },
    find,
    h("div", { class: "spacer" }),
    h("span", { class: "muted", id: "map-summary", "aria-live": "polite" }, summaryText()),
    h("div", { class: "zoom", role: "group", "aria-label": "Zoom" },
      h("button", { class: "btn", "aria-label": "Zoom in", onclick: () => zoom(1 / 1.25) }, "+"),
      h("button", { class: "btn", "aria-label": "Zoom out", onclick: () => zoom(1.25) }, "−"),
      h("button", { class: "btn", "aria-label": "Fit the map", onclick: () => fit() }, "Fit")),
  );
  const stage = h("div", { class: "map-stage", id: "map-stage" });
  const legend = h("div", { class: "legend", "aria-label": "Legend" },
    h("span", { class: "lg ok" }, "healthy"), h("span", { class: "lg warn" }, "≥1% errors"),
    h("span", { class: "lg bad" }, "≥5% errors or open anomaly"), h("span", { class: "lg virt" }, "database / queue / external"),
    h("span", {}, "bar: traffic · line width: call rate"));
  const panel = h("aside", { class: "panel", id: "panel", "aria-label": "Details", "aria-live": "polite" });
  root.append(h("div", { class: "map-page" }, h("section", { class: "map-main", "aria-label": "Service map" }, toolbar, h("div", { class: "map-wrap" }, stage, legend)), panel));
  if (!nodes.length) {
    stage.append(emptyState("No services in this window", "Send OTLP data to the receivers (or run `otel-ai demo`), then widen the window."));
  } else {
    drawGraph();
  }
  drawPanel();
}

function nodeBox(n, xy, anomalous, maxRate) {
  const p = xy.get(n.id);
  const hl = health(n.error_rate, anomalous, n.request_count);
  const virtual = n.kind !== "service";
  const rateW = n.request_rate > 0 ? 8 + (NODE_W - 24) * Math.sqrt(n.request_rate / maxRate) : 0;
  const name = n.name || n.id;
  const label = name.length > 22 ? `${name.slice(0, 21)}…` : name;
  const sub = virtual
    ? `${fmtRate(n.request_rate)} · p95 ${fmtMs(n.p95_ms)}`
    : `${fmtRate(n.request_rate)} · ${fmtPct(n.error_rate)} err · p95 ${fmtMs(n.p95_ms)}`;
  const aria = `${name}: ${n.kind}, ${fmtRate(n.request_rate)}, ${fmtPct(n.error_rate)} errors, p95 ${fmtMs(n.p95_ms)}${anomalous ? ", open anomaly" : ""}`;
  return s(
    "a",
    { href: link(["services", n.id]), class: `node h-${hl} ${virtual ? "virtual" : ""}`, "data-id": n.id, "aria-label": aria, transform: `translate(${p.x},${p.y})` },
    s("title", {}, aria),
    anomalous ? s("rect", { class: "halo", x: -5, y: -5, width: NODE_W + 10, height: NODE_H + 10, rx: 12 }) : null,
    s("rect", { class: "box", width: NODE_W, height: NODE_H, rx: 8 }),
    s("rect", { class: "stripe", width: 4, height: NODE_H - 12, x: 6, y: 6, rx: 2 }),
    s("text", { class: "n-name", x: 16, y: 18 }, label),
    s("text", { class: "n-sub", x: 16, y: 33 }, sub),
    virtual ? s("g", { transform: `translate(${NODE_W - 34},6)` }, s("rect", { class: "tag", width: 28, height: 13, rx: 6.5 }), s("text", { class: "tag-t", x: 14, y: 10 }, KIND_TAG[n.kind] || n.kind)) : null,
    rateW ? s("rect", { class: "traffic", x: 16, y: NODE_H - 5, width: rateW, height: 2.2, rx: 1.1 }) : null,
  );
}

function edgePath(a, b, isBack) {
  const x1 = a.x + NODE_W;
  const y1 = a.y + NODE_H / 2;
  const x2 = b.x;
  const y2 = b.y + NODE_H / 2;
  if (!isBack && x2 > x1) {
    const dx = Math.max(40, (x2 - x1) / 2);
    return `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
  }
  // Against the flow (a cycle or same layer): loop below both boxes.
  const sx = a.x + NODE_W / 2;
  const tx = b.x + NODE_W / 2;
  const low = Math.max(a.y, b.y) + NODE_H + 30;
  return `M${sx},${a.y + NODE_H} C${sx},${low} ${tx},${low} ${tx},${b.y + NODE_H}`;
}

function drawGraph() {
  const stage = document.getElementById("map-stage");
  if (!stage) return;
  const { nodes, edges } = st.topo;
  if (!nodes.length) return;
  const anomalous = anomalousServices(st.anomalies);
  const rate = new Map(nodes.map((n) => [n.id, n.request_rate || 0]));
  const lay = layered(nodes.map((n) => n.id), edges, (id) => rate.get(id) || 0);
  const { xy, width, height } = place(lay, { colW: COL_W, rowH: ROW_H, nodeW: NODE_W, nodeH: NODE_H });
  st.xy = xy;
  st.size = { width: width + 2 * PAD, height: height + 2 * PAD };
  const maxRate = Math.max(1e-9, ...nodes.map((n) => n.request_rate || 0));
  const maxCalls = Math.max(1e-9, ...edges.map((e) => e.request_rate || 0));
  const edgeEls = edges.map((e, i) => {
    const a = xy.get(e.source);
    const b = xy.get(e.target);
    if (!a || !b) return null;
    const d = edgePath(a, b, lay.back.has(i));
    const cls = e.error_rate >= 0.05 ? "bad" : e.error_rate >= 0.01 ? "warn" : "ok";
    const w = 1.2 + 3.8 * Math.sqrt((e.request_rate || 0) / maxCalls);
    const text = `${e.source} → ${e.target} (${e.kind}): ${fmtRate(e.request_rate)}, ${fmtPct(e.error_rate)} errors, p95 ${fmtMs(e.p95_ms)}`;
    return s("g", { class: `edge e-${cls}`, "data-i": i, "data-source": e.source, "data-target": e.target },
      s("path", { class: "e-line", d, "stroke-width": w.toFixed(2), "marker-end": `url(#arrow-${cls})` }),
      s("path", { class: "e-hit", d, tabindex: 0, role: "button", "aria-label": text,
        onmouseenter: (ev) => showTip(ev, e), onmousemove: (ev) => moveTip(ev), onmouseleave: hideTip,
        onfocus: (ev) => showTip(ev, e), onblur: hideTip,
        onclick: () => selectEdge(i), onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); selectEdge(i); } } }));
  });
  const markers = ["ok", "warn", "bad"].map((c) => s("marker", { id: `arrow-${c}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M0,1 L9,5 L0,9 z", class: `arrow a-${c}` })));
  const nodeEls = nodes.map((n) => nodeBox(n, xy, anomalous.has(n.id), maxRate));
  const layerLabels = lay.order.map((_, l) => s("text", { class: "layer-l", x: l * COL_W + 2, y: -14 }, l === 0 ? "entry" : `depth ${l}`));
  const svg = s("svg", { class: "map", id: "map-svg", role: "group", "aria-label": `Service map: ${nodes.length} nodes`, preserveAspectRatio: "xMidYMid meet" },
    s("defs", {}, markers),
    s("g", { transform: `translate(${PAD},${PAD})` }, s("g", { class: "layers" }, layerLabels), s("g", { class: "edges" }, edgeEls), s("g", { class: "nodes" }, nodeEls)));
  const old = st.svg;
  st.svg = svg;
  clear(stage).append(svg);
  wireView(svg, stage);
  if (old && st.view) setView(st.view);
  else fit();
  for (const el of svg.querySelectorAll(".node")) {
    el.addEventListener("mouseenter", () => focusNeighbours(el.dataset.id));
    el.addEventListener("mouseleave", () => focusNeighbours(null));
    el.addEventListener("focus", () => focusNeighbours(el.dataset.id));
    el.addEventListener("blur", () => focusNeighbours(null));
  }
  markSelected();
  applyFilter();
}

function focusNeighbours(id) {
  if (!st.svg) return;
  st.svg.classList.toggle("focusing", Boolean(id));
  const near = new Set(id ? [id] : []);
  for (const g of st.svg.querySelectorAll(".edge")) {
    const on = id && (g.dataset.source === id || g.dataset.target === id);
    g.classList.toggle("near", Boolean(on));
    if (on) { near.add(g.dataset.source); near.add(g.dataset.target); }
  }
  for (const n of st.svg.querySelectorAll(".node")) n.classList.toggle("near", near.has(n.dataset.id));
}

function markSelected() {
  if (!st || !st.svg) return;
  const sel = selectedService();
  const hl = highlightSet();
  st.svg.classList.toggle("highlighting", hl.length > 0);
  for (const n of st.svg.querySelectorAll(".node")) {
    n.classList.toggle("selected", n.dataset.id === sel);
    n.classList.toggle("hl", hl.includes(n.dataset.id));
    if (n.dataset.id === sel) n.setAttribute("aria-current", "true");
    else n.removeAttribute("aria-current");
  }
  for (const g of st.svg.querySelectorAll(".edge")) {
    g.classList.toggle("selected", String(st.selectedEdge) === g.dataset.i || (sel && (g.dataset.source === sel || g.dataset.target === sel)));
    g.classList.toggle("hl", hl.includes(g.dataset.source) && hl.includes(g.dataset.target));
  }
}

function applyFilter() {
  if (!st.svg) return;
  const f = st.filter;
  st.svg.classList.toggle("filtering", Boolean(f));
  for (const n of st.svg.querySelectorAll(".node")) n.classList.toggle("match", Boolean(f) && n.dataset.id.toLowerCase().includes(f));
}

function selectEdge(i) {
  st.selectedEdge = i;
  markSelected();
  drawPanel();
}

async function drawPanel() {
  const panel = document.getElementById("panel");
  if (!panel || !st) return;
  const sel = selectedService();
  const ctx = st.ctx;
  try {
    if (st.selectedEdge !== null && st.selectedEdge !== undefined && st.topo.edges[st.selectedEdge]) {
      clear(panel).append(edgePanel(st.topo.edges[st.selectedEdge], () => { st.selectedEdge = null; markSelected(); drawPanel(); }));
    } else if (sel) {
      const node = st.topo.nodes.find((n) => n.id === sel);
      await servicePanel(panel, ctx, sel, node, st.topo, st.anomalies);
    } else {
      clear(panel).append(overviewPanel(st.topo, st.anomalies, anomalousServices(st.anomalies)));
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    clear(panel).append(errorBox(err, sel ? `service ${sel}` : "the panel"));
  }
}

// ---------------------------------------------------------------------------------------------
// Pan and zoom through the viewBox.

function setView(v) {
  st.view = v;
  if (st.svg) st.svg.setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
}

function fit() {
  const stage = document.getElementById("map-stage");
  if (!stage || !st.size) return;
  const cw = stage.clientWidth || 800;
  const ch = stage.clientHeight || 600;
  const scale = Math.min(cw / st.size.width, ch / st.size.height, 1.15);
  const w = cw / scale;
  const hh = ch / scale;
  setView({ x: (st.size.width - w) / 2, y: (st.size.height - hh) / 2, w, h: hh });
}

function zoom(factor, cx, cy) {
  const v = st.view;
  if (!v) return;
  const px = cx === undefined ? v.x + v.w / 2 : cx;
  const py = cy === undefined ? v.y + v.h / 2 : cy;
  const w = Math.min(Math.max(v.w * factor, 200), 40000);
  const f = w / v.w;
  setView({ x: px - (px - v.x) * f, y: py - (py - v.y) * f, w, h: v.h * f });
}

function wireView(svg, stage) {
  let drag = null;
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    const v = st.view;
    const cx = v.x + ((ev.clientX - r.left) / r.width) * v.w;
    const cy = v.y + ((ev.clientY - r.top) / r.height) * v.h;
    zoom(ev.deltaY > 0 ? 1.12 : 1 / 1.12, cx, cy);
  }, { passive: false });
  svg.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest(".node") || ev.target.closest(".e-hit")) return;
    drag = { x: ev.clientX, y: ev.clientY, v: { ...st.view } };
    svg.setPointerCapture(ev.pointerId);
    svg.classList.add("dragging");
  });
  svg.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const r = svg.getBoundingClientRect();
    const k = drag.v.w / r.width;
    setView({ ...drag.v, x: drag.v.x - (ev.clientX - drag.x) * k, y: drag.v.y - (ev.clientY - drag.y) * k });
  });
  const end = () => { drag = null; svg.classList.remove("dragging"); };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
  new ResizeObserver(() => { if (!st || !st.view) return; }).observe(stage);
}

// ---------------------------------------------------------------------------------------------
// Edge tooltip.

function showTip(ev, e) {
  const tip = document.getElementById("tooltip");
  clear(tip).append(
    h("div", { class: "tip-t" }, `${e.source} → ${e.target}`),
    h("div", {}, chip(e.kind), e.destination ? chip(e.destination) : null),
    h("div", { class: "tip-g" },
      h("span", {}, "calls"), h("b", {}, fmtRate(e.request_rate)),
      h("span", {}, "errors"), h("b", { class: e.error_rate >= 0.05 ? "bad-text" : "" }, fmtPct(e.error_rate)),
      h("span", {}, "p50 / p95 / p99"), h("b", {}, `${fmtMs(e.p50_ms)} / ${fmtMs(e.p95_ms)} / ${fmtMs(e.p99_ms)}`)),
  );
  tip.hidden = false;
  moveTip(ev);
}

function moveTip(ev) {
  const tip = document.getElementById("tooltip");
  let x = ev.clientX;
  let y = ev.clientY;
  if (x === undefined) {
    const r = ev.target.getBoundingClientRect();
    x = r.left + r.width / 2;
    y = r.top + r.height / 2;
  }
  tip.style.left = `${Math.min(x + 14, window.innerWidth - 300)}px`;
  tip.style.top = `${y + 14}px`;
}

function hideTip() {
  document.getElementById("tooltip").hidden = true;
}
