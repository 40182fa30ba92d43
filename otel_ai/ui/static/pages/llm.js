// LLM: deployments with breaker states and latency, usage and cost by provider, model and task.
import { get } from "../lib/api.js";
import { chip, clear, errorBox, fmtInt, fmtMs, fmtUsd, h, stat, table } from "../lib/dom.js";

function usageTable(title, rows, key) {
  return h("div", { class: "card" }, h("h3", {}, title), rows.length
    ? table([key, "#Requests", "#Errors", "#Input tok", "#Output tok", "#Cache hits", "#Cost", "#Avg latency"], rows.map((r) => h("tr", {},
      h("td", {}, r[key.toLowerCase()] ?? r.name ?? r.key ?? "–"), h("td", { class: "num" }, fmtInt(r.requests)), h("td", { class: "num" }, fmtInt(r.errors)),
      h("td", { class: "num" }, fmtInt(r.input_tokens)), h("td", { class: "num" }, fmtInt(r.output_tokens)), h("td", { class: "num" }, fmtInt(r.cache_hits)),
      h("td", { class: "num" }, fmtUsd(r.cost_usd)), h("td", { class: "num" }, fmtMs(r.avg_latency_ms)))), { class: "compact" })
    : h("p", { class: "muted" }, "No calls yet."));
}

export async function render(ctx) {
  const root = clear(ctx.root);
  root.append(h("div", { class: "page-h" }, h("h1", {}, "LLM"), h("p", { class: "muted" }, "Deployments, circuit breakers, usage and cost of the LLM manager.")));
  const box = h("div", { id: "llm-body" }, h("p", { class: "loading" }, "Loading…"));
  root.append(box);
  const load = async () => {
    try {
      const [models, health, usage] = await Promise.all([
        get("/api/v1/llm/models", {}, { signal: ctx.signal }), get("/api/v1/llm/health", {}, { signal: ctx.signal }), get("/api/v1/llm/usage", {}, { signal: ctx.signal })]);
      const byName = new Map((models.deployments || []).map((d) => [d.name, d]));
      const t = usage.totals || {};
      clear(box).append(
        h("div", { class: "statsrow" }, stat("requests", fmtInt(t.requests)), stat("errors", fmtInt(t.errors), t.errors ? "warn" : ""), stat("input tokens", fmtInt(t.input_tokens)),
          stat("output tokens", fmtInt(t.output_tokens)), stat("cache hits", fmtInt(t.cache_hits)), stat("cost", fmtUsd(t.cost_usd)), stat("avg latency", fmtMs(t.avg_latency_ms))),
        h("div", { class: "card", style: { marginBottom: "14px" } }, h("h3", {}, `Deployments (${(health.deployments || []).length}) · strategy ${models.strategy || "–"}`),
          table(["Deployment", "Provider · model", "Status", "Breaker", "#Calls", "#Failures", "#Last / EWMA latency", "#Price in / out per 1M", "Last error"], (health.deployments || []).map((d) => {
            const m = byName.get(d.name) || {};
            const br = d.breaker || {};
            return h("tr", {},
              h("td", {}, h("b", {}, d.name), h("div", { class: "muted tiny" }, `group ${d.group}`)),
              h("td", {}, `${d.provider} · ${d.model}`, m.external ? chip("external") : chip("local")),
              h("td", { class: d.status === "ok" ? "ok-text" : d.status === "down" ? "bad-text" : "warn-text" }, d.status),
              h("td", { class: br.state === "closed" ? "ok-text" : br.state === "open" ? "bad-text" : "warn-text" }, br.state || "–", br.retry_in_s ? h("div", { class: "muted tiny" }, `retry in ${Math.round(br.retry_in_s)} s`) : null, h("div", { class: "muted tiny" }, `${fmtInt(br.trips)} trips`)),
              h("td", { class: "num" }, fmtInt(d.calls)), h("td", { class: "num" }, fmtInt(d.failures)),
              h("td", { class: "num" }, `${fmtMs(d.last_latency_ms)} / ${fmtMs(d.ewma_latency_ms)}`),
              h("td", { class: "num" }, m.input_cost_per_token !== undefined ? `${fmtUsd(m.input_cost_per_token * 1e6)} / ${fmtUsd(m.output_cost_per_token * 1e6)}` : "–"),
              h("td", { class: "muted tiny" }, d.last_error || ""));
          }))),
        h("div", { class: "card", style: { marginBottom: "14px" } }, h("h3", {}, "Task routing"), table(["Task", "Chain"], Object.entries(models.tasks || {}).map(([task, chain]) => h("tr", {}, h("td", {}, task), h("td", {}, chain.map((c, i) => [i ? " → " : "", chip(c)])))), { class: "compact" })),
        h("div", { class: "grid2" }, usageTable("By provider", usage.by_provider || [], "Provider"), usageTable("By model", usage.by_model || [], "Model"), usageTable("By task", usage.by_task || [], "Task")),
        health.cache ? h("p", { class: "muted" }, `Response cache: ${fmtInt(health.cache.entries)} entries, ${fmtInt(health.cache.hits)} hits, ${fmtInt(health.cache.misses)} misses, ${fmtInt(health.cache.evictions)} evictions`) : null);
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(box).append(errorBox(err, "the LLM manager"));
    }
  };
  await load();
  ctx.live(load);
}
