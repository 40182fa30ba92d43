// Insights: cards by severity with evidence, cited claims and recommendations (#/insights,
// #/insights/ID), and an "ask" box. A daemon without the insights API shows an empty state.
import { ApiError, get, post } from "../lib/api.js";
import { chip, clear, emptyState, errorBox, fmtNum, fmtPct, fmtUsd, h, severityBadge, timeEl, SEVERITY_ORDER } from "../lib/dom.js";
import { apiWindow, link } from "../lib/nav.js";

const NOT_YET = "Insights are not available on this daemon yet";

function entityLink(e) {
  const id = e.id || "";
  if (e.kind === "edge" && id.includes("->")) {
    const [a, b] = id.split("->");
    return h("span", {}, h("a", { class: "chip", href: link(["services", a]) }, a), "→", h("a", { class: "chip", href: link(["services", b]) }, b));
  }
  const svc = e.kind === "operation" ? id.split(":")[0] : id;
  return h("a", { class: "chip", href: link(["services", svc]) }, id);
}

function figure(ev) {
  const unit = ev.unit ? ` ${ev.unit}` : "";
  if (ev.observed === null || ev.observed === undefined) return "";
  const obs = ev.unit === "ratio" ? fmtPct(ev.observed) : `${fmtNum(ev.observed)}${unit}`;
  if (ev.baseline === null || ev.baseline === undefined) return obs;
  const base = ev.unit === "ratio" ? fmtPct(ev.baseline) : `${fmtNum(ev.baseline)}${unit}`;
  return `${obs} vs ${base}`;
}

function cites(ids, anchorPrefix, numbers) {
  return (ids || []).map((id) => h("a", { class: "cite", href: `#${anchorPrefix}-${id}`, "aria-label": `evidence ${id}`, onclick: (ev) => {
    ev.preventDefault();
    const el = document.getElementById(`${anchorPrefix}-${id}`);
    if (el) { el.scrollIntoView({ block: "center" }); el.classList.add("flash"); }
  }, title: `evidence ${id}` }, numbers && numbers.has(id) ? `[${numbers.get(id)}]` : id));
}

export function insightCard(ins, opts = {}) {
  const pre = `ev-${ins.id}`;
  const numbers = new Map((ins.evidence || []).map((ev, i) => [ev.id, i + 1]));
  const cite = (ids) => cites(ids, pre, numbers);
  return h("article", { class: `card ins s-${ins.severity}`, "data-insight": ins.id, "aria-labelledby": `t-${ins.id}` },
    h("div", { class: "meta" }, severityBadge(ins.severity), chip(ins.kind), ins.category ? chip(ins.category) : null,
      h("span", {}, `confidence ${fmtPct(ins.confidence)}`), h("span", {}, ins.status), h("span", {}, "last seen ", timeEl(ins.last_seen))),
    h("h2", { id: `t-${ins.id}` }, opts.link ? h("a", { href: link(["insights", ins.id]) }, ins.title) : ins.title),
    ins.summary ? h("p", {}, ins.summary) : null,
    (ins.entities || []).length ? h("div", { class: "row wrap" }, ins.entities.map(entityLink)) : null,
    ins.root_cause ? h("p", { class: "muted" }, "Root cause: ", h("b", {}, ins.root_cause.entity), ` (${ins.root_cause.change_type})`, cite(ins.root_cause.evidence_ids)) : null,
    (opts.compact ? (el) => h("details", { class: "ins-more", open: opts.open || null }, h("summary", {}, `${(ins.claims || []).length} claims · ${(ins.recommendations || []).length} recommendations · ${(ins.evidence || []).length} evidence`), el) : (el) => el)(h("div", {},
    (ins.claims || []).length ? h("div", { class: "psec" }, h("h3", {}, "Claims"), h("ul", {}, ins.claims.map((c) => h("li", {}, c.text, cite(c.evidence_ids))))) : null,
    (ins.recommendations || []).length ? h("div", { class: "psec" }, h("h3", {}, "Recommendations"), h("ul", {}, ins.recommendations.map((r) => h("li", {}, h("b", {}, r.action), r.rationale ? h("span", { class: "muted" }, ` — ${r.rationale}`) : null, cite(r.evidence_ids))))) : null,
    (ins.evidence || []).length ? h("div", { class: "psec" }, h("h3", {}, `Evidence (${ins.evidence.length})`), ins.evidence.map((ev) => h("div", { class: "ev", id: `${pre}-${ev.id}` },
      h("span", { class: "eid", title: ev.id }, `[${numbers.get(ev.id)}]`), h("span", {}, ev.description, " ", h("span", { class: "muted tiny" }, `${ev.kind} · ${ev.id}`),
        (ev.trace_ids || []).length ? h("div", { class: "row wrap gap tiny" }, ev.trace_ids.slice(0, 5).map((t) => h("a", { class: "mono", href: link(["traces", t]) }, `trace ${t.slice(0, 10)}…`))) : null),
      h("span", { class: "fig" }, figure(ev))))) : null
    )),
    ins.llm ? h("p", { class: "muted tiny" }, `narrative: ${ins.llm.provider || "–"} ${ins.llm.model || ""}${ins.llm.cached ? " (cached)" : ""} · ${fmtUsd(ins.llm.cost_usd)}${ins.abstained ? " · abstained" : ""}`) : null,
  );
}

function askBox(ctx) {
  const q = h("textarea", { id: "ask-q", placeholder: "Ask about the system, e.g. why is checkout slow?", "aria-label": "Question", required: true });
  const out = h("div", { class: "answer", "aria-live": "polite" });
  const btn = h("button", { class: "btn primary", type: "submit" }, "Ask");
  const form = h("form", { class: "ask", onsubmit: async (ev) => {
    ev.preventDefault();
    if (!q.value.trim()) return;
    btn.disabled = true;
    clear(out).append(h("p", { class: "loading" }, "Thinking…"));
    try {
      const r = await post("/api/v1/insights/ask", { question: q.value.trim(), ...apiWindow(ctx.win) });
      clear(out).append(
        r.abstained ? h("p", { class: "warn-text" }, "Not enough evidence to answer; nothing below is a guess.") : null,
        h("p", {}, r.answer),
        (r.claims || []).length ? h("ul", {}, r.claims.map((c) => h("li", {}, c.text, (c.evidence_ids || []).map((id) => h("span", { class: "cite" }, id))))) : null,
        (r.insight_ids || []).length ? h("p", { class: "muted" }, "From insights: ", r.insight_ids.map((id) => h("a", { class: "chip", href: link(["insights", id]) }, id))) : null,
        r.llm ? h("p", { class: "muted tiny" }, `${r.llm.provider || ""} ${r.llm.model || ""} · ${fmtUsd(r.llm.cost_usd)}`) : null);
    } catch (err) {
      clear(out).append(err instanceof ApiError && err.status === 404 ? emptyState(NOT_YET, "The ask endpoint is not served by this daemon.") : errorBox(err, "an answer"));
    } finally {
      btn.disabled = false;
    }
  } }, q, btn);
  return h("div", { class: "card", style: { marginBottom: "14px" } }, h("h3", {}, "Ask"), form, out);
}

export async function render(ctx) {
  const root = clear(ctx.root);
  if (ctx.parts[1]) {
    root.append(h("p", { style: { margin: "0 0 8px" } }, h("a", { href: link(["insights"]) }, "← Insights")));
    try {
      const ins = await get(`/api/v1/insights/${encodeURIComponent(ctx.parts[1])}`, {}, { signal: ctx.signal });
      root.append(insightCard(ins));
    } catch (err) {
      if (err.name === "AbortError") throw err;
      root.append(err.status === 404 ? emptyState(`Insight ${ctx.parts[1]} is not available`, "It is unknown, or this daemon does not serve insights yet.") : errorBox(err, "the insight"));
    }
    return;
  }
  const status = ctx.query.get("status") || "open";
  root.append(h("div", { class: "page-h" }, h("h1", {}, "Insights"), h("p", { class: "muted" }, "Architectural findings, each grounded in cited evidence."),
    h("div", { class: "row gap" }, ["open", "resolved", "all"].map((st) => h("a", { class: `btn ${st === status ? "primary" : ""}`, href: link(["insights"], { status: st === "open" ? null : st }) }, st)))));
  root.append(askBox(ctx));
  const box = h("div", { id: "insight-list", class: "cards" }, h("p", { class: "loading" }, "Loading…"));
  root.append(box);
  const load = async () => {
    try {
      const { insights } = await get("/api/v1/insights", { ...apiWindow(ctx.win), status }, { signal: ctx.signal });
      clear(box);
      if (!insights.length) {
        box.append(emptyState("No insights in this window", "Detectors run on a schedule; widen the window or generate them now."));
        return;
      }
      const sorted = [...insights].sort((a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity));
      for (const sev of SEVERITY_ORDER) {
        const group = sorted.filter((i) => i.severity === sev);
        if (group.length) box.append(h("h3", {}, `${sev} (${group.length})`), ...group.map((i, n) => insightCard(i, { link: true, compact: true, open: n < 2 && (sev === "critical" || sev === "high") })));
      }
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(box).append(err instanceof ApiError && err.status === 404 ? emptyState(NOT_YET, "This daemon does not serve /api/v1/insights; once the insight pipeline runs, findings appear here.") : errorBox(err, "insights"));
    }
  };
  await load();
  ctx.live(load);
}
