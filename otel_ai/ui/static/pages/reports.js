// Reports: the archive (#/reports) and one report (#/reports/ID) shown from its html format.
import { ApiError, get } from "../lib/api.js";
import { chip, clear, emptyState, errorBox, h, table, timeEl } from "../lib/dom.js";
import { apiWindow, link } from "../lib/nav.js";

const NOT_YET = "Reports are not available on this daemon yet";

function download(text, name, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function renderOne(ctx, id) {
  const root = clear(ctx.root);
  root.append(h("p", { style: { margin: "0 0 8px" } }, h("a", { href: link(["reports"]) }, "← Reports")));
  const path = `/api/v1/reports/${encodeURIComponent(id)}`;
  let meta;
  try {
    meta = await get(path, {}, { signal: ctx.signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    root.append(err instanceof ApiError && err.status === 404 ? emptyState(`Report ${id} is not available`, "It is unknown, or this daemon does not serve reports yet.") : errorBox(err, `report ${id}`));
    return;
  }
  const fetchFmt = (fmt) => get(path, { format: fmt }, { signal: ctx.signal, raw: true, accept: "*/*" });
  root.append(h("div", { class: "page-h" }, h("h1", {}, meta.name || "Report"), h("span", { class: "muted" }, meta.window ? `${meta.window.start} → ${meta.window.end}` : ""),
    h("div", { class: "row gap" },
      h("button", { class: "btn", onclick: async () => download(await fetchFmt("md"), `${id}.md`, "text/markdown") }, "Markdown"),
      h("button", { class: "btn", onclick: async () => download(JSON.stringify(meta, null, 2), `${id}.json`, "application/json") }, "JSON"),
      h("button", { class: "btn", onclick: async () => download(await fetchFmt("html"), `${id}.html`, "text/html") }, "HTML"))));
  const frameBox = h("div", {}, h("p", { class: "loading" }, "Rendering…"));
  root.append(frameBox);
  try {
    const html = await fetchFmt("html");
    // Sandboxed (no scripts, no same-origin access): the report is one self-contained page.
    clear(frameBox).append(h("iframe", { class: "report-frame", id: "report-frame", title: `report ${id}`, sandbox: "", srcdoc: html }));
  } catch (err) {
    if (err.name === "AbortError") throw err;
    clear(frameBox).append(errorBox(err, "the html format"), h("pre", { class: "card mono" }, JSON.stringify(meta, null, 2)));
  }
}

export async function render(ctx) {
  if (ctx.parts[1]) return renderOne(ctx, ctx.parts[1]);
  const root = clear(ctx.root);
  root.append(h("div", { class: "page-h" }, h("h1", {}, "Reports"), h("p", { class: "muted" }, "Scheduled anomaly reports, newest first.")));
  const box = h("div", { id: "report-list" }, h("p", { class: "loading" }, "Loading…"));
  root.append(box);
  const load = async () => {
    try {
      const { reports } = await get("/api/v1/reports", apiWindow(ctx.win), { signal: ctx.signal });
      clear(box);
      if (!reports.length) {
        box.append(emptyState("No reports in this window", "Reports are written on their schedules (reports.schedules); widen the window."));
        return;
      }
      box.append(h("div", { class: "card" }, table(["Created", "Name", "Window", "Status", "Counts", "Deliveries"], reports.map((r) => h("tr", {},
        h("td", {}, h("a", { href: link(["reports", r.id]) }, timeEl(r.created_at))),
        h("td", {}, h("a", { href: link(["reports", r.id]) }, r.name)),
        h("td", { class: "muted" }, r.window ? [timeEl(r.window.start), " → ", timeEl(r.window.end)] : "–"),
        h("td", {}, h("span", { class: `sev sev-${{ incident: "critical", degraded: "medium", healthy: "low" }[r.status] || "info"}` }, r.status)),
        h("td", {}, Object.entries(r.counts || {}).filter(([, v]) => v).map(([k, v]) => chip(`${k.replaceAll("_", " ")} ${typeof v === "object" ? JSON.stringify(v) : v}`))),
        h("td", {}, (r.deliveries || []).map((d) => chip(typeof d === "object" ? `${d.target || d.kind || "delivery"} ${d.status || ""}` : String(d)))))))));
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(box).append(err instanceof ApiError && err.status === 404 ? emptyState(NOT_YET, "This daemon does not serve /api/v1/reports; scheduled reports appear here once it does.") : errorBox(err, "reports"));
    }
  };
  await load();
  ctx.live(load);
}
