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
