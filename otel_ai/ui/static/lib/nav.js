// Hash routes: #/page/arg?since=&until=&… — shareable links that keep the time window.

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const i = raw.indexOf("?");
  const pathPart = i < 0 ? raw : raw.slice(0, i);
  const queryPart = i < 0 ? "" : raw.slice(i + 1);
  const parts = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(queryPart) };
}

/** A hash for parts + query that keeps the current window (since/until) unless overridden. */
export function link(parts, query = {}) {
  const { query: cur } = parseHash();
  const q = new URLSearchParams();
  for (const k of ["since", "until"]) if (cur.get(k)) q.set(k, cur.get(k));
  for (const [k, v] of Object.entries(query)) {
    if (v === null || v === undefined || v === "") q.delete(k);
    else q.set(k, v);
  }
  const path = parts.map((p) => encodeURIComponent(p)).join("/");
  const qs = q.toString();
  return `#/${path}${qs ? `?${qs}` : ""}`;
}

export function go(parts, query) {
  location.hash = link(parts, query);
}

/** The API's window parameters for the current route. */
export function apiWindow(win) {
  return win.until ? { since: win.since, until: win.until } : { since: win.since };
}

const UNITS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** An API instant (RFC 3339, "now" or a duration before now such as 15m) → epoch ms, or null. */
export function instantMs(text, now = Date.now()) {
  if (!text || text === "now") return now;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(text);
  if (m) return now - Number(m[1]) * UNITS[m[2]] * 1000;
  const t = Date.parse(text);
  return Number.isNaN(t) ? null : t;
}

/** [start, end] of a route's window in epoch ms (the API's default: the hour before until). */
export function windowMs(win, now = Date.now()) {
  const end = instantMs(win.until || "now", now) ?? now;
  const start = win.since ? instantMs(win.since, now) ?? end - 3600000 : end - 3600000;
  return [start, end];
}
