// The shell: hash router, navigation, time-window picker, live refresh, error banner.
import { clear, errorBox, h } from "./lib/dom.js";
import { get } from "./lib/api.js";
import { apiWindow, link, parseHash } from "./lib/nav.js";

const PAGES = [
  { id: "map", label: "Service map", load: () => import("./pages/map.js") },
  { id: "traces", label: "Traces", load: () => import("./pages/traces.js") },
  { id: "anomalies", label: "Anomalies", load: () => import("./pages/anomalies.js") },
  { id: "insights", label: "Insights", load: () => import("./pages/insights.js") },
  { id: "reports", label: "Reports", load: () => import("./pages/reports.js") },
  { id: "llm", label: "LLM", load: () => import("./pages/llm.js") },
  { id: "ingest", label: "Ingest", load: () => import("./pages/ingest.js") },
];
// Which page draws a route's first segment (#/services/NAME is the map with a panel open).
const ALIASES = { services: "map", "": "map" };
const PRESETS = ["5m", "15m", "1h", "3h", "6h", "24h", "7d"];
const LIVE_MS = 15000;
const LIVE_KEY = "otel-ai.live";

const main = document.getElementById("main");
const banner = document.getElementById("banner");
let current = null; // {pageId, module, ctx, key}
let liveTimer = null;

function windowOf(query) {
  return { since: query.get("since") || "1h", until: query.get("until") || "" };
}

function isLive() {
  try {
    return sessionStorage.getItem(LIVE_KEY) !== "off";
  } catch {
    return true;
  }
}

function setLive(on) {
  try {
    sessionStorage.setItem(LIVE_KEY, on ? "on" : "off");
  } catch {
    /* ignore */
  }
  drawWindow();
  scheduleLive();
}

function showBanner(message) {
  if (!message) {
    banner.hidden = true;
    clear(banner);
    return;
  }
  clear(banner).append(h("span", {}, message), h("button", { class: "btn ghost", "aria-label": "Dismiss", onclick: () => showBanner(null) }, "×"));
  banner.hidden = false;
}

function drawNav(pageId) {
  const nav = clear(document.getElementById("nav"));
  for (const p of PAGES) {
    nav.append(h("a", { href: link([p.id]), class: p.id === pageId ? "active" : "", "aria-current": p.id === pageId ? "page" : null }, p.label));
  }
}

function drawWindow() {
  const box = clear(document.getElementById("window"));
  const { parts, query } = parseHash();
  const win = windowOf(query);
  const custom = Boolean(win.until) || !PRESETS.includes(win.since);
  const apply = (since, until) => {
    const q = new URLSearchParams(query);
    q.set("since", since);
    if (until) q.set("until", until);
    else q.delete("until");
    location.hash = `#/${parts.map(encodeURIComponent).join("/")}?${q}`;
  };
  const select = h(
    "select",
    { id: "win-preset", "aria-label": "Window", onchange: (e) => (e.target.value === "custom" ? drawCustom() : apply(e.target.value, "")) },
    PRESETS.map((p) => h("option", { value: p, selected: !custom && p === win.since }, `Last ${p}`)),
    h("option", { value: "custom", selected: custom }, custom ? `${win.since} → ${win.until || "now"}` : "Custom…"),
  );
  const drawCustom = () => {
    const since = h("input", { id: "win-since", value: win.since, "aria-label": "Since (RFC 3339 or 2h)", size: 22 });
    const until = h("input", { id: "win-until", value: win.until, placeholder: "now", "aria-label": "Until", size: 22 });
    const form = h("form", { class: "win-custom", onsubmit: (e) => { e.preventDefault(); apply(since.value.trim() || "1h", until.value.trim()); } },
      since, h("span", { class: "muted" }, "→"), until, h("button", { class: "btn", type: "submit" }, "Apply"));
    select.after(form);
    since.focus();
  };
  const live = isLive() && !win.until;
  box.append(
    select,
    h("button", {
      class: `btn live ${live ? "on" : ""}`, id: "live-toggle", "aria-pressed": String(live), disabled: Boolean(win.until),
      title: win.until ? "a fixed window does not refresh" : `refresh every ${LIVE_MS / 1000} s`, onclick: () => setLive(!isLive()),
    }, h("span", { class: "dot", "aria-hidden": "true" }), live ? "Live" : "Paused"),
  );
}

function scheduleLive() {
  if (liveTimer) clearInterval(liveTimer);
  liveTimer = null;
  const { query } = parseHash();
  if (!isLive() || query.get("until")) return;
  liveTimer = setInterval(() => {
    if (document.hidden || !current || !current.ctx.refresher) return;
    current.ctx.refresher().catch((err) => showBanner(`Refresh failed: ${err.message}`));
  }, LIVE_MS);
}

function makeCtx(pageId, parts, query) {
  const ctrl = new AbortController();
  return {
    pageId,
    root: main,
    parts,
    query,
    win: windowOf(query),
    signal: ctrl.signal,
    abort: () => ctrl.abort(),
    refresher: null,
    live(fn) {
      this.refresher = fn;
    },
  };
}

async function route() {
  const { parts, query } = parseHash();
  if (!location.hash || !parts.length) {
    history.replaceState(null, "", link(["map"]));
    return route();
  }
  const pageId = ALIASES[parts[0]] || parts[0];
  const page = PAGES.find((p) => p.id === pageId);
  drawNav(pageId);
  drawWindow();
  scheduleLive();
  if (!page) {
    clear(main).append(errorBox({ status: 404, message: `no page named "${parts[0]}"` }, "this page"), h("p", {}, h("a", { href: link(["map"]) }, "Back to the service map")));
    return;
  }
  const win = windowOf(query);
  const key = `${pageId}|${win.since}|${win.until}`;
  // Same page, same window: let the page update in place (the map keeps its layout when a panel opens).
  if (current && current.key === key && current.module.update) {
    const ctx = makeCtx(pageId, parts, query);
    ctx.refresher = current.ctx.refresher;
    current.ctx = Object.assign(current.ctx, { parts, query });
    try {
      await current.module.update(current.ctx);
    } catch (err) {
      showBanner(err.message);
    }
    return;
  }
  if (current) {
    current.ctx.abort();
    if (current.module.teardown) current.module.teardown();
  }
  const ctx = makeCtx(pageId, parts, query);
  clear(main).append(h("p", { class: "loading" }, "Loading…"));
  document.title = `${page.label} · otel-ai`;
  try {
    const module = await page.load();
    current = { pageId, module, ctx, key };
    await module.render(ctx);
  } catch (err) {
    if (err.name === "AbortError") return;
    console.warn("page failed", err);
    clear(main).append(errorBox(err, page.label.toLowerCase()));
  }
}

// The map is the landing page: ask for its data before its module is even loaded.
{
  const { parts, query } = parseHash();
  if (!parts.length || parts[0] === "map" || parts[0] === "services") {
    const win = apiWindow(windowOf(query));
    const swallow = (p) => { p.catch(() => {}); return p; }; // map.js reports the error
    window.__otelAiPrefetch = {
      key: JSON.stringify(win),
      topology: swallow(get("/api/v1/topology", win)),
      anomalies: swallow(get("/api/v1/anomalies", { ...win, status: "open" })),
      // the latest stored snapshot answers fast: drawn first when it wins, then replaced
      snapshot: win.until ? Promise.resolve(null) : get("/api/v1/topology", { at: "now" }).catch(() => null),
    };
  }
}

window.addEventListener("hashchange", () => route());
window.addEventListener("unhandledrejection", (ev) => {
  if (ev.reason && ev.reason.name === "AbortError") {
    ev.preventDefault();
    return;
  }
  showBanner(`Error: ${ev.reason && ev.reason.message ? ev.reason.message : ev.reason}`);
});
window.addEventListener("error", (ev) => showBanner(`Error: ${ev.message}`));
route();
