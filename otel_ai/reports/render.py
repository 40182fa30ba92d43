"""The three renderings of one report: JSON (canonical), Markdown and a self-contained HTML page.

All three are made from the same stored JSON document with the same value formatting
(:func:`fmt_value`), so every figure reads the same everywhere. The HTML page inlines its CSS and
its SVG charts and references nothing outside itself (no fonts, scripts, images or links).
"""

from __future__ import annotations

import base64
import json
from html import escape
from typing import Any

from otel_ai.reports.charts import service_charts
from otel_ai.timeutil import parse_instant

_COUNT_UNITS = ("requests", "spans", "items", "calls", "tokens")
STATUS_COLORS = {"healthy": "#15803d", "degraded": "#b45309", "incident": "#b91c1c", "failed": "#4b5563"}


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ratio":
        return f"{v * 100:.2f}%"
    if unit == "ms":
        return f"{v:.1f} ms" if abs(v) >= 10 else f"{v:.2f} ms"
    if unit == "USD":
        return f"${v:.4f}"
    if unit in _COUNT_UNITS:
        return f"{int(v):,}"
    return f"{v:g} {unit}"


def fmt_delta(v: float | None, prev: float | None, unit: str) -> str:
    if v is None or prev is None:
        return "-"
    if unit == "ratio":
        d = (v - prev) * 100
        return f"{d:+.2f} pp"
    if prev == 0:
        return "new" if v else "±0%"
    return f"{(v - prev) / prev * 100:+.0f}%"


def _when(text: str | None) -> str:
    if not text:
        return "-"
    return parse_instant(text).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(text: str | None) -> str:
    return parse_instant(text).strftime("%m-%d %H:%M:%S") if text else "-"


def _span(w: dict[str, str]) -> str:
    a, b = parse_instant(w["start"]), parse_instant(w["end"])
    secs = int((b - a).total_seconds())
    length = f"{secs // 86400}d" if secs % 86400 == 0 else f"{secs // 3600}h" if secs % 3600 == 0 else (
        f"{secs // 60}m" if secs % 60 == 0 else f"{secs}s")  # fmt: skip
    return f"{_when(w['start'])} → {_when(w['end'])} ({length})"


def _figs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in doc.get("figures", [])}


def _f(doc: dict[str, Any], fid: str) -> str:
    f = _figs(doc).get(fid)
    return fmt_value(f["value"], f["unit"]) if f else "-"


def _fd(doc: dict[str, Any], fid: str) -> str:
    f = _figs(doc).get(fid)
    return fmt_delta(f["value"], f["previous"], f["unit"]) if f else "-"


def _causes(a: dict[str, Any]) -> str:
    return ", ".join(f"{r['service']} ({float(r.get('score') or 0):.2f})" for r in a["root_causes"]) or "-"


def _features(a: dict[str, Any]) -> str:
    return "; ".join(str(f.get("text") or f.get("name")) for f in a["top_features"]) or "-"


def _edge(e: dict[str, Any]) -> str:
    return f"{e['source']} → {e['target']} ({e['kind']})"


def summary_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The report's JSON summary: what a webhook receives (the full record is one GET away)."""
    s = doc.get("summary") or {}
    return {
        "id": doc["id"], "name": doc["name"], "created_at": doc["created_at"], "window": doc["window"],
        "comparison": doc.get("comparison"), "status": doc["status"], "error": doc.get("error"),
        "headline": doc.get("headline"), "counts": doc.get("counts", {}),
        "summary": {"title": s.get("title"), "claims": s.get("claims", []),
                    "recommendations": s.get("recommendations", [])} if s else None,
        "anomalies": [{k: a[k] for k in ("id", "state", "severity", "label", "opened_at", "closed_at")}
                      for a in doc.get("anomalies", [])[:10]],
        "links": {f: f"/api/v1/reports/{doc['id']}?format={f}" for f in ("json", "md", "html")},
    }  # fmt: skip


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2)


# -- Markdown ---------------------------------------------------------------------------------
def _md_text(v: Any) -> str:
    """Telemetry text as Markdown text: raw HTML (which viewers would render) is neutralised."""
    return str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _md_cell(v: Any) -> str:
    return _md_text(v).replace("|", "\\|")


def _md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return [*out, ""]


def _refs(ids: list[str]) -> str:
    return " ".join(f"`{i}`" for i in ids)


def _sections(doc: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]], str]]:
    """(title, headers, rows, empty-text) for each tabular section, shared by Markdown and HTML."""
    c = doc.get("counts", {})
    anomalies = [[a["id"], a["state"], a["severity"], a["label"], _short(a["opened_at"]), _short(a["closed_at"]),
                  _causes(a), _features(a), " ".join(a["trace_ids"]) or "-"] for a in doc.get("anomalies", [])]  # fmt: skip
    ins = doc.get("insights", {})
    insights = [[i["id"], i.get("severity"), i.get("kind"), i.get("title"), i.get("status"),
                 f"{float(i.get('confidence') or 0):.2f}"] for i in ins.get("items", [])]  # fmt: skip
    t = doc.get("topology", {})
    topo = [["new service", s, ""] for s in t.get("new_services", [])]
    topo += [["vanished service", s, ""] for s in t.get("vanished_services", [])]
    topo += [["new edge", _edge(e), f"{e.get('calls', 0):,} calls"] for e in t.get("new_edges", [])]
    topo += [
        ["vanished edge", _edge(e), f"{e.get('calls', 0):,} calls before"]
        for e in t.get("vanished_edges", [])
    ]
    topo += [["deploy", f"{d['service']} {d['version']}", f"was {', '.join(d['previous_versions'])}; first seen "
              f"{_short(d['first_seen'])}"] for d in t.get("deploys", [])]  # fmt: skip
    svcs = []
    for s in doc.get("services", []):
        f = s["figures"]
        svcs.append([s["name"], _f(doc, f["requests"]), _fd(doc, f["requests"]), _f(doc, f["error_rate"]),
                     _fd(doc, f["error_rate"]), _f(doc, f["p50_ms"]), _f(doc, f["p95_ms"]), _fd(doc, f["p95_ms"]),
                     _f(doc, f["p99_ms"])])  # fmt: skip
    ing = doc.get("ingest", {})
    stored = [
        [r["transport"], r["encoding"], _f(doc, r["figure"]), _fd(doc, r["figure"])]
        for r in ing.get("stored", [])
    ]
    llm = doc.get("llm", {})
    llm_rows = [[m["provider"], m["model"], f"{m['calls']:,}", f"{m['input_tokens']:,}", f"{m['output_tokens']:,}",
                 fmt_value(m["cost_usd"], "USD")] for m in llm.get("by_model", [])]  # fmt: skip
    figures = [[f["id"], f["label"], fmt_value(f["value"], f["unit"]), fmt_value(f["previous"], f["unit"])]
               for f in doc.get("figures", [])]  # fmt: skip
    return [
        (f"Anomalies (opened {c.get('anomalies_opened', 0)} · ongoing {c.get('anomalies_ongoing', 0)} · closed "
         f"{c.get('anomalies_closed', 0)})",
         ["ID", "State", "Severity", "Entity", "Opened", "Closed", "Root causes", "Top features", "Example traces"],
         anomalies, "No anomaly in the window."),
        (f"Top insights ({len(insights)} of {ins.get('total', len(insights))})" if insights else "Top insights",
         ["ID", "Severity", "Kind", "Title", "Status", "Confidence"], insights,
         ins.get("reason") or "No insight in the window."),
        ("Topology changes (vs the comparison period)", ["Change", "What", "Detail"], topo,
         "No new or vanished service or edge, no deploy."),
        ("Service health", ["Service", "Requests", "Δ", "Error rate", "Δ", "p50", "p95", "Δ p95", "p99"], svcs,
         "No spans in the window."),
        ("Ingest health: spans stored by transport x encoding", ["Transport", "Encoding", "Spans", "Δ"], stored,
         "No spans stored in the window."),
        ("LLM usage in the window", ["Provider", "Model", "Calls", "Input tokens", "Output tokens", "Cost"], llm_rows,
         "No LLM call in the window." if llm.get("available", True) else "LLM usage: not available."),
        ("Figures", ["Figure id", "What", "Window", "Comparison"], figures, "No figures."),
    ]  # fmt: skip


def _ingest_line(doc: dict[str, Any]) -> str:
    ing = doc.get("ingest", {})
    parts = []
    if ing.get("receivers") is not None:
        parts.append(f"refused {_f(doc, 'ingest.refused')}, rejected {_f(doc, 'ingest.rejected')} spans")
    if ing.get("pipeline") is not None:
        parts.append(f"spooled {_f(doc, 'ingest.spooled')} items")
    return ("Since the daemon started: " + "; ".join(parts) + ".") if parts else ""


def _llm_line(doc: dict[str, Any]) -> str:
    if not doc.get("llm", {}).get("by_model"):
        return ""
    return f"Total: {_f(doc, 'llm.calls')} calls, {_f(doc, 'llm.tokens')} tokens, {_f(doc, 'llm.cost_usd')}."


def _title(doc: dict[str, Any]) -> str:
    return f"otel-ai report · {doc['name']} · {doc['status'].upper()}"


def to_markdown(doc: dict[str, Any], *, charts: bool = True) -> str:
    lines = [f"# {_md_text(_title(doc))}", ""]
    lines.append(f"**Window:** {_span(doc['window'])}  ")
    if doc.get("comparison"):
        lines.append(f"**Compared with:** {_span(doc['comparison'])}  ")
    lines += [f"**Report:** `{doc['id']}`, generated {_when(doc['created_at'])}", ""]
    if doc["status"] == "failed":
        lines += ["## Status: FAILED", "", f"The report could not be built: {doc.get('error')}", ""]
        return "\n".join(lines)
    h = doc["headline"]
    lines += [f"## Status: {h['status'].upper()}", ""]
    lines += [f"- {_md_text(r['text'])} ({_refs(r['refs'])})" for r in h["reasons"]] or [
        "- Nothing abnormal found."
    ]
    lines += ["", f"_Rule: {h['rule']}._", "", "## Executive summary", ""]
    s = doc.get("summary")
    if not s:
        lines += [f"Executive summary: not available ({doc.get('summary_note') or 'not written'}).", ""]
    else:
        lines += [f"**{s['title']}**", ""]
        lines += [f"- {_md_text(c['text'])} ({_refs(c['evidence_ids'])})" for c in s["claims"]] or [
            "- No claim survived validation."
        ]
        if s.get("recommendations"):
            lines += ["", "What to look at first:", ""]
            lines += [
                f"- **{_md_text(r['action'])}** — {_md_text(r['rationale'])} ({_refs(r['evidence_ids'])})"
                for r in s["recommendations"]
            ]
        lines += ["", f"_{_summary_note(s)}_", ""]
    for title, headers, rows, empty in _sections(doc):
        lines += [f"## {title}", ""]
        lines += _md_table(headers, rows) if rows else [empty, ""]
        if title.startswith("Ingest") and _ingest_line(doc):
            lines += [_ingest_line(doc), ""]
        if title.startswith("LLM") and _llm_line(doc):
            lines += [_llm_line(doc), ""]
    if charts and doc.get("series", {}).get("services"):
        lines += ["## Charts", ""]
        for ch in service_charts(doc["series"]):
            data = base64.b64encode(ch["svg"].encode()).decode()
            lines.append(f"![{ch['title']}](data:image/svg+xml;base64,{data})")
        lines.append("")
    return "\n".join(lines)


def _summary_note(s: dict[str, Any]) -> str:
    llm = s.get("llm") or {}
    note = f"Written by {llm.get('provider', '?')}/{llm.get('model', '?')}; every claim cites a figure, anomaly or insight id"
    if s.get("dropped"):
        note += f"; {s['dropped']} uncited or ungrounded claim(s) dropped"
    return note + "."


# -- HTML ---------------------------------------------------------------------------------------
CSS = """
*{box-sizing:border-box}body{margin:0;background:#f3f4f6;color:#111827;font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,sans-serif}main{max-width:1120px;margin:0 auto;padding:24px}
header{background:#fff;border-radius:10px;padding:20px 24px;border-left:8px solid var(--st);margin-bottom:16px}
h1{margin:0 0 6px;font-size:22px}h2{font-size:17px;margin:0 0 10px}.meta{color:#4b5563;margin:2px 0}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;color:#fff;background:var(--st);font-weight:600;
font-size:13px;letter-spacing:.04em}section{background:#fff;border-radius:10px;padding:16px 24px;margin-bottom:16px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:6px 8px;
border-bottom:1px solid #e5e7eb;vertical-align:top}th{color:#374151;background:#f9fafb;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}code{font-size:12px;background:#f3f4f6;
padding:1px 4px;border-radius:4px}.muted{color:#6b7280}ul{margin:6px 0 6px 18px;padding:0}li{margin:3px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:12px}.card{background:#f9fafb;border-radius:8px;
padding:8px 14px;min-width:120px}.card b{display:block;font-size:20px}.charts{display:grid;
grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:8px}.charts svg{width:100%;height:auto;
border:1px solid #e5e7eb;border-radius:6px}h3{font-size:14px;margin:14px 0 6px}
"""


def _h(v: Any) -> str:
    return escape("" if v is None else str(v))


def _html_table(headers: list[str], rows: list[list[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_h(x)}</th>" for x in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_h(c)}</td>' if i in numeric else f"<td>{_h(c)}</td>"
                         for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_refs(ids: list[str]) -> str:
    return " ".join(f"<code>{_h(i)}</code>" for i in ids)


_NUMERIC_COLS = {
    "Service health": {1, 2, 3, 4, 5, 6, 7, 8},
    "Ingest": {2, 3},
    "LLM": {2, 3, 4, 5},
    "Figures": {2, 3},
}


def _html_charts(doc: dict[str, Any]) -> list[str]:
    charts = service_charts(doc["series"]) if doc.get("series", {}).get("services") else []
    if not charts:
        return []
    out = ["<section><h2>Top services: this window vs the previous one</h2>"]
    for svc in dict.fromkeys(ch["service"] for ch in charts):
        out.append(f'<h3>{_h(svc)}</h3><div class="charts">')
        out += [ch["svg"] for ch in charts if ch["service"] == svc]
        out.append("</div>")
    out.append("</section>")
    return out


def to_html(doc: dict[str, Any]) -> str:
    color = STATUS_COLORS.get(doc["status"], "#4b5563")
    out = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
           f'content="width=device-width, initial-scale=1"><title>{_h(_title(doc))}</title>'
           f"<style>{CSS}</style></head><body><main style=\"--st:{color}\">"]  # fmt: skip
    out.append(f"<header><h1>otel-ai report · {_h(doc['name'])} <span class=\"badge\">{_h(doc['status'].upper())}"
               f"</span></h1><p class=\"meta\"><b>Window:</b> {_h(_span(doc['window']))}</p>")  # fmt: skip
    if doc.get("comparison"):
        out.append(f'<p class="meta"><b>Compared with:</b> {_h(_span(doc["comparison"]))}</p>')
    out.append(
        f'<p class="meta">Report <code>{_h(doc["id"])}</code>, generated {_h(_when(doc["created_at"]))}</p>'
    )
    if doc["status"] == "failed":
        out.append(
            f"<p><b>The report could not be built:</b> {_h(doc.get('error'))}</p></header></main></body></html>"
        )
        return "".join(out)
    c = doc["counts"]
    cards = [("requests", _f(doc, "total.requests")), ("error rate", _f(doc, "total.error_rate")),
             ("anomalies opened", c["anomalies_opened"]), ("ongoing", c["anomalies_ongoing"]),
             ("closed", c["anomalies_closed"]), ("insights", c["insights"]), ("deploys", c["deploys"])]  # fmt: skip
    out.append('<div class="cards">' + "".join(f'<div class="card"><b>{_h(v)}</b><span class="muted">{_h(k)}'
                                               f"</span></div>" for k, v in cards) + "</div></header>")  # fmt: skip
    h = doc["headline"]
    reasons = "".join(f"<li>{_h(r['text'])} {_html_refs(r['refs'])}</li>" for r in h["reasons"])
    out.append(f"<section><h2>Status: {_h(h['status'].upper())}</h2><ul>{reasons or '<li>Nothing abnormal found.</li>'}"
               f'</ul><p class="muted">Rule: {_h(h["rule"])}.</p></section>')  # fmt: skip
    s = doc.get("summary")
    out.append("<section><h2>Executive summary</h2>")
    if not s:
        out.append(
            f"<p>Executive summary: not available ({_h(doc.get('summary_note') or 'not written')}).</p>"
        )
    else:
        claims = "".join(f"<li>{_h(x['text'])} {_html_refs(x['evidence_ids'])}</li>" for x in s["claims"])
        out.append(
            f"<p><b>{_h(s['title'])}</b></p><ul>{claims or '<li>No claim survived validation.</li>'}</ul>"
        )
        if s.get("recommendations"):
            recs = "".join(f"<li><b>{_h(r['action'])}</b> — {_h(r['rationale'])} {_html_refs(r['evidence_ids'])}</li>"
                           for r in s["recommendations"])  # fmt: skip
            out.append(f"<h3>What to look at first</h3><ul>{recs}</ul>")
        out.append(f'<p class="muted">{_h(_summary_note(s))}</p>')
    out.append("</section>")
    for title, headers, rows, empty in _sections(doc):
        numeric = next((v for k, v in _NUMERIC_COLS.items() if title.startswith(k)), set())
        body = _html_table(headers, rows, numeric) if rows else f'<p class="muted">{_h(empty)}</p>'
        extra = ""
        if title.startswith("Ingest") and _ingest_line(doc):
            extra = f"<p>{_h(_ingest_line(doc))}</p>"
        if title.startswith("LLM") and _llm_line(doc):
            extra = f"<p>{_h(_llm_line(doc))}</p>"
        out.append(f"<section><h2>{_h(title)}</h2>{body}{extra}</section>")
        if title.startswith("Top insights"):
            out += _html_charts(doc)
    out.append("</main></body></html>")
    return "".join(out)


def render(doc: dict[str, Any], fmt: str) -> tuple[str, str]:
    """``(body, media type)`` of ``doc`` in ``fmt`` (json | md | html)."""
    if fmt == "md":
        return to_markdown(doc), "text/markdown; charset=utf-8"
    if fmt == "html":
        return to_html(doc), "text/html; charset=utf-8"
    return to_json(doc), "application/json"
