// Ingest: receiver counters by signal × transport × encoding, queue, spool, refusals, memory.
import { get } from "../lib/api.js";
import { clear, errorBox, fmtBytes, fmtInt, h, stat, table } from "../lib/dom.js";

function gauge(used, cap) {
  const r = cap ? Math.min(used / cap, 1) : 0;
  return h("div", { class: `bargauge ${r > 0.8 ? "bad" : r > 0.5 ? "warn" : ""}`, role: "meter", "aria-valuenow": used, "aria-valuemin": 0, "aria-valuemax": cap || 0 }, h("span", { style: { width: `${r * 100}%` } }));
}

function counterRows(counters) {
  const rows = [];
  for (const [signal, byTransport] of Object.entries(counters || {})) {
    for (const [transport, byEnc] of Object.entries(byTransport)) {
      for (const [enc, c] of Object.entries(byEnc)) rows.push({ signal, transport, enc, ...c });
    }
  }
  return rows;
}

export async function render(ctx) {
  const root = clear(ctx.root);
  root.append(h("div", { class: "page-h" }, h("h1", {}, "Ingest"), h("p", { class: "muted" }, "OTLP receivers, the write pipeline and the spool, since the daemon started.")));
  const box = h("div", { id: "ingest-body" }, h("p", { class: "loading" }, "Loading…"));
  root.append(box);
  const load = async () => {
    try {
      const st = await get("/api/v1/status", {}, { signal: ctx.signal });
      const rec = st.receivers || null;
      const pipe = st.pipeline || null;
      const rows = counterRows(rec && rec.counters);
      const sum = (k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
      const q = pipe ? pipe.queue : null;
      const sp = pipe ? pipe.spool : null;
      clear(box).append(
        h("div", { class: "statsrow" },
          stat("version", st.version), stat("role", st.role), stat("uptime", `${Math.round(st.uptime_s / 60)} min`),
          stat("items received", fmtInt(sum("items_received"))), stat("accepted", fmtInt(sum("items_accepted"))),
          stat("refused", fmtInt(sum("items_refused")), sum("items_refused") ? "warn" : ""), stat("rejected", fmtInt(sum("items_rejected")), sum("items_rejected") ? "warn" : ""),
          pipe ? stat("storage", pipe.storage_down ? "down" : "up", pipe.storage_down ? "bad" : "") : null),
        h("div", { class: "card", style: { marginBottom: "14px" } }, h("h3", {}, "Receivers by signal × transport × encoding"),
          rec ? table(["Signal", "Transport", "Encoding", "#Requests", "#Received", "#Accepted", "#Refused", "#Rejected", "Outcomes"], rows.map((r) => h("tr", {},
            h("td", {}, h("b", {}, r.signal)), h("td", {}, r.transport), h("td", {}, r.enc),
            h("td", { class: "num" }, fmtInt(r.requests)), h("td", { class: "num" }, fmtInt(r.items_received)), h("td", { class: "num" }, fmtInt(r.items_accepted)),
            h("td", { class: `num ${r.items_refused ? "warn-text" : ""}` }, fmtInt(r.items_refused)), h("td", { class: `num ${r.items_rejected ? "warn-text" : ""}` }, fmtInt(r.items_rejected)),
            h("td", { class: "muted tiny" }, Object.entries(r.outcomes || {}).map(([k, v]) => `${k} ${fmtInt(v)}`).join(" · ")))))
            : h("p", { class: "muted" }, "Receivers do not run on this instance (server.role)."),
          rec && rec.endpoints ? h("p", { class: "muted tiny" }, `listening: grpc ${rec.endpoints.grpc || "–"} · http ${rec.endpoints.http || "–"} · max body ${fmtBytes(rec.max_body_bytes)}`) : null),
        pipe ? h("div", { class: "grid2" },
          h("div", { class: "card" }, h("h3", {}, "Queue"),
            h("p", {}, `${fmtInt(q.items)} of ${fmtInt(q.capacity_items)} items`), gauge(q.items, q.capacity_items),
            h("p", {}, `${fmtBytes(q.bytes)} of ${fmtBytes(q.capacity_bytes)}`), gauge(q.bytes, q.capacity_bytes),
            h("p", { class: "muted tiny" }, `batches waiting ${fmtInt(q.batches_waiting)} · batch ${fmtInt(pipe.batch.items)} items / ${pipe.batch.timeout_ms} ms · ${pipe.batch.insert_workers} insert workers · ack ${pipe.ack}`)),
          h("div", { class: "card" }, h("h3", {}, "Spool (storage outages)"),
            h("p", {}, `${fmtBytes(sp.bytes)} of ${fmtBytes(sp.max_bytes)} in ${fmtInt(sp.segments)} segments`), gauge(sp.bytes, sp.max_bytes),
            h("p", { class: "muted tiny" }, `pending ${fmtInt(sp.pending_items)} items / ${fmtInt(sp.pending_records)} records · torn records skipped ${fmtInt(sp.torn_records_skipped)} · ${sp.dir}`),
            pipe.last_error ? h("p", { class: "bad-text" }, `last error: ${pipe.last_error}`) : null),
          h("div", { class: "card" }, h("h3", {}, "Pipeline totals"), table(["Counter", "#Value"], Object.entries(pipe).filter(([, v]) => typeof v === "number").map(([k, v]) => h("tr", {}, h("td", {}, k.replaceAll("_", " ")), h("td", { class: "num" }, fmtInt(v)))), { class: "compact" })),
          st.memory ? h("div", { class: "card" }, h("h3", {}, "Memory guard"), table(["Figure", "#Value"], Object.entries(st.memory).filter(([, v]) => typeof v !== "object").map(([k, v]) => h("tr", {}, h("td", {}, k.replaceAll("_", " ")), h("td", { class: "num" }, typeof v === "number" && /bytes/.test(k) ? fmtBytes(v) : String(v)))), { class: "compact" })) : null)
          : null,
        st.scheduler ? h("div", { class: "card", style: { marginTop: "14px" } }, h("h3", {}, "Scheduled jobs"), table(["Job", "Next run"], st.scheduler.jobs.map((j) => h("tr", {}, h("td", { class: "mono" }, j.id), h("td", {}, j.next_run || "–"))), { class: "compact" })) : null,
        h("p", { class: "muted tiny" }, `storage ${st.storage.dsn} · database ${st.storage.database}`));
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(box).append(errorBox(err, "the daemon status"));
    }
  };
  await load();
  ctx.live(load);
}
