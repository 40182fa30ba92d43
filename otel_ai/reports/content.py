"""The content of a report, computed from stored data only (no LLM for any figure).

Every number a reader (or the executive summary) may cite is a *figure* with a stable id
(``svc.checkout.error_rate``, ``total.requests``, ``ingest.protobuf.grpc``, ``llm.cost_usd``);
anomalies and insights are cited by their own ids. The renderers show the same figures in
JSON, Markdown and HTML.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from otel_ai.errors import OtelAiError
from otel_ai.reports.config import ReportsConfig
from otel_ai.reports.queries import ReportQueries, num
from otel_ai.storage import Storage
from otel_ai.timeutil import parse_instant, rfc3339

log = logging.getLogger(__name__)
_NICE_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_SEVERITY_RANK = {"critical": 0, "high": 1, "warning": 2, "medium": 2, "low": 3, "info": 4}


@dataclass(frozen=True)
class Window:
    """A half-open UTC range ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def previous(self) -> Window:
        return Window(self.start - (self.end - self.start), self.start)

    def public(self) -> dict[str, str]:
        return {"start": rfc3339(self.start), "end": rfc3339(self.end)}


class Figures:
    """The report's citable numbers, in the order they were added."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, fid: str, label: str, value: float | None, unit: str, previous: float | None = None) -> str:
        self.items[fid] = {"id": fid, "label": label, "value": value, "previous": previous, "unit": unit}
        return fid


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def bucket_seconds(window_s: float) -> int:
    """A round bucket giving about 60 points (or fewer) over the window."""
    want = window_s / 60
    return next((b for b in _NICE_BUCKETS if b >= want), _NICE_BUCKETS[-1])


class ContentBuilder:
    """Builds the sections of one report from storage and the daemon's running components.

    ``sources`` is anything with optional ``anomaly``, ``topology``, ``insights``, ``receivers``
    and ``pipeline`` attributes (the daemon's context); a missing one makes its section say
    "not available" instead of failing the report.
    """

    def __init__(self, storage: Storage, config: ReportsConfig, sources: Any = None) -> None:
        self.storage, self.cfg, self.sources = storage, config, sources

    def _src(self, name: str) -> Any:
        return getattr(self.sources, name, None) if self.sources is not None else None

    def build(self, window: Window) -> dict[str, Any]:
        q = ReportQueries(self.storage, window.start, window.end)
        figs = Figures()
        services = self._services(q, figs)
        anomalies = self._anomalies(window)
        insights = self._insights(window)
        headline = self._headline(services, anomalies, insights["items"], figs)
        series = self._series(q, window, self._charted(services, anomalies, headline), anomalies)
        topology = self._topology(q, window, services)
        ingest = self._ingest(q, figs)
        llm = self._llm(q, figs)
        counts = {
            "anomalies_opened": sum(1 for a in anomalies if a["state"] == "opened"),
            "anomalies_ongoing": sum(1 for a in anomalies if a["state"] == "ongoing"),
            "anomalies_closed": sum(1 for a in anomalies if a["closed_at"] and a["closed_in_window"]),
            "insights": int(insights.get("total", len(insights["items"]))),
            "services": sum(1 for s in services if s["spans"] > 0),
            "new_services": len(topology["new_services"]),
            "vanished_services": len(topology["vanished_services"]),
            "new_edges": len(topology["new_edges"]),
            "vanished_edges": len(topology["vanished_edges"]),
            "deploys": len(topology["deploys"]),
        }
        return {
            "window": window.public(),
            "comparison": window.previous.public(),
            "status": headline["status"],
            "headline": headline,
            "counts": counts,
            "anomalies": anomalies,
            "insights": insights,
            "topology": topology,
            "services": services,
            "ingest": ingest,
            "llm": llm,
            "series": series,
            "figures": list(figs.items.values()),
        }

    # -- service health ---------------------------------------------------------------------
    def _services(self, q: ReportQueries, figs: Figures) -> list[dict[str, Any]]:
        by: dict[str, dict[int, dict[str, Any]]] = {}
        for r in q.services():
            by.setdefault(str(r["service"]), {})[int(r["cur"])] = r
        rows: list[dict[str, Any]] = []
        tot = {1: [0, 0], 0: [0, 0]}
        for name, sides in by.items():
            cur, prev = sides.get(1), sides.get(0)
            row: dict[str, Any] = {"name": name, "figures": {}}
            for key, side in (("", cur), ("prev_", prev)):
                req = int(side["requests"]) if side else 0
                err = int(side["errors"]) if side else 0
                qs = list(side["q"]) if side and req else [None, None, None]
                row[f"{key}spans"] = int(side["spans"]) if side else 0
                row[f"{key}requests"], row[f"{key}errors"] = req, err
                row[f"{key}error_rate"] = err / req if req else None
                for pname, v in zip(("p50_ms", "p95_ms", "p99_ms"), qs, strict=True):
                    ns = num(v)
                    row[f"{key}{pname}"] = round(ns / 1e6, 3) if ns is not None else None
                tot[1 if key == "" else 0][0] += req
                tot[1 if key == "" else 0][1] += err
            rows.append(row)
        rows.sort(key=lambda r: (-r["requests"], -r["spans"], r["name"]))
        rows = rows[: self.cfg.max_table_services]
        for r in rows:
            n = r["name"]
            f = r["figures"]
            f["requests"] = figs.add(f"svc.{n}.requests", f"{n} requests", r["requests"], "requests",
                                     r["prev_requests"])  # fmt: skip
            f["error_rate"] = figs.add(f"svc.{n}.error_rate", f"{n} error rate", r["error_rate"], "ratio",
                                       r["prev_error_rate"])  # fmt: skip
            for p in ("p50_ms", "p95_ms", "p99_ms"):
                f[p] = figs.add(f"svc.{n}.{p}", f"{n} {p[:3]} latency", r[p], "ms", r[f"prev_{p}"])
        figs.add("total.requests", "requests (all services)", tot[1][0], "requests", tot[0][0])
        figs.add("total.error_rate", "error rate (all services)", _ratio(tot[1][1], tot[1][0]), "ratio",
                 _ratio(tot[0][1], tot[0][0]))  # fmt: skip
        return rows

    def _charted(self, services: list[dict[str, Any]], anomalies: list[dict[str, Any]],
                 headline: dict[str, Any]) -> list[str]:  # fmt: skip
        """Services to chart: what the headline and the anomalies point at first, then the busiest."""
        busy = [s["name"] for s in services if s["requests"] > 0]
        first = [str(r["service"]) for a in anomalies for r in a["root_causes"][:1]]
        first += [
            ref[4:].rsplit(".", 1)[0]
            for r in headline["reasons"]
            for ref in r["refs"]
            if ref.startswith("svc.")
        ]
        first += [a["entity"].get("service") or "" for a in anomalies]
        return [n for n in dict.fromkeys(first + busy) if n in busy][: self.cfg.top_services]

    # -- time series for the charts ---------------------------------------------------------
    def _series(
        self, q: ReportQueries, w: Window, top: list[str], anomalies: list[dict[str, Any]]
    ) -> dict[str, Any]:
        window_s = (w.end - w.start).total_seconds()
        b = bucket_seconds(window_s)
        n = math.ceil(window_s / b)
        out: dict[str, Any] = {}
        for name in top:
            out[name] = {side: {"rate": [0.0] * n, "error_rate": [None] * n, "p95_ms": [None] * n}
                         for side in ("current", "previous")}  # fmt: skip
        for r in q.series(top, b):
            i = int(r["i"])
            side, k = ("previous", i) if i < n else ("current", i - n)
            if not 0 <= k < n or r["service"] not in out:
                continue
            s = out[r["service"]][side]
            req, err = int(r["requests"]), int(r["errors"])
            s["rate"][k] = round(req / b, 4)
            s["error_rate"][k] = round(err / req, 4) if req else None
            p95 = num(r["p95"])
            s["p95_ms"][k] = round(p95 / 1e6, 3) if p95 is not None and req else None
        spans = []
        for a in anomalies:
            lo = max(parse_instant(a["opened_at"]), w.start)
            hi = min(parse_instant(a["closed_at"]) if a["closed_at"] else w.end, w.end)
            if hi > lo:
                spans.append({"id": a["id"], "services": a["services"], "start": rfc3339(lo), "end": rfc3339(hi),
                              "severity": a["severity"]})  # fmt: skip
        return {
            "bucket_s": b,
            "points": n,
            "start": rfc3339(w.start),
            "services": out,
            "anomaly_spans": spans,
        }

    # -- anomalies ----------------------------------------------------------------------------
    def _anomalies(self, w: Window) -> list[dict[str, Any]]:
        svc = self._src("anomaly")
        try:
            if svc is not None:
                found = svc.list(w.start, w.end)
            else:
                from otel_ai.analysis.anomaly.store import AnomalyStore

                found = AnomalyStore(self.storage).find(w.start, w.end)
        except OtelAiError as exc:  # e.g. the table does not exist on a fresh store
            log.info("report: anomalies not available: %s", exc.message)
            found = []
        out = []
        for a in found:
            opened = parse_instant(a["opened_at"])
            closed = parse_instant(a["closed_at"]) if a.get("closed_at") else None
            state = "opened" if opened >= w.start else ("closed" if closed and closed < w.end else "ongoing")
            ent = a["entity"]
            label = ent.get("service") or ""
            if ent.get("operation"):
                label += f" {ent['operation']}"
            if ent.get("target"):
                label += f" → {ent['target']}"
            ev = a.get("evidence") or {}
            feats = [{k: f.get(k) for k in ("name", "text", "value", "baseline", "ratio", "unit")}
                     for f in (a.get("features") or [])[:3]]  # fmt: skip
            causes = [str(r["service"]) for r in (a.get("root_causes") or [])[:3]]
            services = [
                x for x in dict.fromkeys([ent.get("service") or "", *ev.get("services", []), *causes]) if x
            ]
            out.append({
                "id": a["id"], "state": state, "entity": ent, "label": label, "severity": a.get("severity"),
                "score": a.get("score"), "opened_at": a["opened_at"], "closed_at": a.get("closed_at"),
                "closed_in_window": bool(closed and w.start <= closed < w.end),
                "kind": ev.get("kind"), "source": a.get("source", "live"),
                "root_causes": list(a.get("root_causes") or [])[:3], "top_features": feats,
                "trace_ids": list(ev.get("trace_ids") or [])[:3], "services": services,
            })  # fmt: skip
        out.sort(key=lambda a: (_SEVERITY_RANK.get(str(a["severity"]), 5), -(a["score"] or 0), a["id"]))
        return out

    # -- insights -----------------------------------------------------------------------------
    def _insights(self, w: Window) -> dict[str, Any]:
        svc = self._src("insights")
        if svc is None:
            return {
                "available": False,
                "reason": "insights: not available on this instance",
                "items": [],
                "total": 0,
            }
        try:
            found = list(svc.list(w.start, w.end, status="all"))
        except Exception as exc:  # another room's failure must not fail the whole report
            log.warning("report: insights not available: %s", exc)
            return {"available": False, "reason": f"insights: not available ({exc})", "items": [], "total": 0}
        found.sort(
            key=lambda i: (_SEVERITY_RANK.get(str(i.get("severity")), 5), -float(i.get("confidence") or 0))
        )
        items = [{k: i.get(k) for k in ("id", "kind", "title", "summary", "severity", "confidence", "status",
                                         "entities", "first_seen", "last_seen")} for i in found[:5]]  # fmt: skip
        return {"available": True, "reason": None, "items": items, "total": len(found)}

    # -- topology changes -----------------------------------------------------------------------
    def _topology(self, q: ReportQueries, w: Window, services: list[dict[str, Any]]) -> dict[str, Any]:
        topo = self._src("topology")
        out: dict[str, Any] = {"available": True, "new_services": [], "vanished_services": [], "new_edges": [],
                               "vanished_edges": [], "deploys": []}  # fmt: skip
        if topo is not None:
            try:
                d = topo.diff((w.previous.start, w.previous.end), (w.start, w.end))
                out["new_services"], out["vanished_services"] = list(d.new_nodes), list(d.vanished_nodes)
                out["new_edges"] = [{"source": e.source, "target": e.target, "kind": e.kind, "calls": e.call_count}
                                    for e in d.new_edges]  # fmt: skip
                out["vanished_edges"] = [{"source": e.source, "target": e.target, "kind": e.kind,
                                          "calls": e.call_count} for e in d.vanished_edges]  # fmt: skip
            except OtelAiError as exc:
                log.warning("report: topology diff failed: %s", exc.message)
                out["available"] = False
        else:  # services only, from the span counts
            out["new_services"] = sorted(s["name"] for s in services if s["spans"] and not s["prev_spans"])
            out["vanished_services"] = sorted(
                s["name"] for s in services if s["prev_spans"] and not s["spans"]
            )
            out["edges_available"] = False
        out["deploys"] = self._deploys(q)
        out["changes"] = _changes(out)
        return out

    def _deploys(self, q: ReportQueries) -> list[dict[str, Any]]:
        """``service.version`` values seen in the window that the service did not run before."""
        seen: dict[str, dict[int, dict[str, datetime]]] = {}
        for r in q.versions():
            if r["version"]:
                seen.setdefault(str(r["service"]), {}).setdefault(int(r["cur"]), {})[str(r["version"])] = r[
                    "first_seen"
                ]
        out = []
        for svc, sides in sorted(seen.items()):
            prev, cur = sides.get(0, {}), sides.get(1, {})
            ordered = sorted(cur.items(), key=lambda kv: kv[1])
            for i, (version, first) in enumerate(ordered):
                before = sorted(set(prev) | {v for v, _ in ordered[:i]})
                if version in prev or not before:
                    continue
                out.append({"service": svc, "version": version, "previous_versions": before,
                            "first_seen": rfc3339(first.replace(tzinfo=UTC))})  # fmt: skip
        return out

    # -- ingest health ----------------------------------------------------------------------------
    def _ingest(self, q: ReportQueries, figs: Figures) -> dict[str, Any]:
        cells: dict[tuple[str, str], list[int]] = {}
        for r in q.ingest():
            key = (str(r["encoding"]) or "unknown", str(r["transport"]) or "unknown")
            cells.setdefault(key, [0, 0])[int(r["cur"])] += int(r["spans"])
        rows = []
        for (enc, tr), (prev, cur) in sorted(cells.items(), key=lambda kv: -kv[1][1]):
            fid = figs.add(f"ingest.{enc}.{tr}", f"spans stored via {tr} / {enc}", cur, "spans", prev)
            rows.append({"encoding": enc, "transport": tr, "spans": cur, "prev_spans": prev, "figure": fid})
        out: dict[str, Any] = {"stored": rows, "receivers": None, "pipeline": None}
        receivers, pipeline = self._src("receivers"), self._src("pipeline")
        if receivers is not None:
            counters = receivers.status().get("counters", {}).get("traces", {})
            rec = {"received": 0, "accepted": 0, "refused": 0, "rejected": 0}
            for by_enc in counters.values():
                for c in by_enc.values():
                    rec["received"] += int(c.get("items_received", 0))
                    rec["accepted"] += int(c.get("items_accepted", 0))
                    rec["refused"] += int(c.get("items_refused", 0))
                    rec["rejected"] += int(c.get("items_rejected", 0))
            figs.add("ingest.refused", "spans refused since start (overload/outage)", rec["refused"], "spans")
            figs.add("ingest.rejected", "spans rejected since start (invalid)", rec["rejected"], "spans")
            out["receivers"] = rec
        if pipeline is not None:
            st = pipeline.status()
            p = {k: int(st.get(k, 0)) for k in ("spooled_items", "replayed_items", "failed_items")}
            p["spool_bytes"] = int(st.get("spool", {}).get("bytes", 0))
            figs.add(
                "ingest.spooled", "items spooled since start (storage outage)", p["spooled_items"], "items"
            )
            out["pipeline"] = p
        return out

    # -- LLM usage ----------------------------------------------------------------------------
    def _llm(self, q: ReportQueries, figs: Figures) -> dict[str, Any]:
        try:
            rows = q.llm()
        except OtelAiError:
            return {"available": False, "calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
                    "by_model": []}  # fmt: skip
        by_model = [{"provider": r["provider"], "model": r["model"], "calls": int(r["calls"]),
                     "errors": int(r["errors"]), "cache_hits": int(r["cache_hits"]),
                     "input_tokens": int(r["input_tokens"]), "output_tokens": int(r["output_tokens"]),
                     "cost_usd": round(float(r["cost_usd"]), 6)} for r in rows]  # fmt: skip
        tot = {k: sum(m[k] for m in by_model) for k in ("calls", "input_tokens", "output_tokens")}
        cost = round(sum(m["cost_usd"] for m in by_model), 6)
        figs.add("llm.calls", "LLM calls", tot["calls"], "calls")
        figs.add(
            "llm.tokens", "LLM tokens (input + output)", tot["input_tokens"] + tot["output_tokens"], "tokens"
        )
        figs.add("llm.cost_usd", "LLM cost", cost, "USD")
        return {"available": True, **tot, "cost_usd": cost, "by_model": by_model}

    # -- headline ----------------------------------------------------------------------------------
    def _headline(self, services: list[dict[str, Any]], anomalies: list[dict[str, Any]],
                  insights: list[dict[str, Any]], figs: Figures) -> dict[str, Any]:  # fmt: skip
        r = self.cfg.status
        incident: list[dict[str, Any]] = []
        degraded: list[dict[str, Any]] = []
        for a in anomalies:
            if a["severity"] in ("critical", "high"):
                incident.append({"text": f"{a['severity']} anomaly on {a['label']}", "refs": [a["id"]]})
            elif a["severity"] not in ("info", None):
                degraded.append({"text": f"{a['severity']} anomaly on {a['label']}", "refs": [a["id"]]})
        for i in insights:
            if i.get("severity") == "critical" and i.get("status") == "open":
                incident.append({"text": f"critical insight: {i.get('title')}", "refs": [i["id"]]})
            elif i.get("severity") == "high" and i.get("status") == "open":
                degraded.append({"text": f"high-severity insight: {i.get('title')}", "refs": [i["id"]]})
        for s in services:
            if s["requests"] < r.min_requests:
                continue
            er, per = s["error_rate"] or 0.0, s["prev_error_rate"] or 0.0
            ref = [s["figures"]["error_rate"]]
            if er >= r.incident_error_rate:
                incident.append({"text": f"{s['name']} error rate {er:.1%} (≥ {r.incident_error_rate:.0%})",
                                 "refs": ref})  # fmt: skip
            elif er >= r.degraded_error_rate and er > 2 * per:
                degraded.append({"text": f"{s['name']} error rate {er:.1%}, was {per:.1%}", "refs": ref})
            ratio = _ratio(s["p95_ms"], s["prev_p95_ms"])
            if ratio is not None and ratio >= r.latency_ratio and s["prev_requests"] >= r.min_requests:
                degraded.append({"text": f"{s['name']} p95 latency x{ratio:.1f} vs the comparison period",
                                 "refs": [s["figures"]["p95_ms"]]})  # fmt: skip
        status = "incident" if incident else "degraded" if degraded else "healthy"
        rule = (
            f"incident: a critical/high anomaly or open critical insight in the window, or a service with "
            f"≥ {r.min_requests} requests at ≥ {r.incident_error_rate:.0%} errors; degraded: any other "
            f"warning anomaly or open high insight, an error rate ≥ {r.degraded_error_rate:.0%} that more than "
            f"doubled, or p95 latency x{r.latency_ratio:g} or more vs the comparison period; healthy otherwise"
        )
        return {"status": status, "reasons": (incident + degraded)[:12], "rule": rule}


def _changes(t: dict[str, Any]) -> list[dict[str, Any]]:
    """Every topology change with a citable id (``topo.deploy.checkout.1.4.2`` ...)."""
    out = [
        {"id": f"topo.new_service.{n}", "entity": n, "text": f"new service {n}"} for n in t["new_services"]
    ]
    out += [{"id": f"topo.vanished_service.{n}", "entity": n, "text": f"service {n} vanished"}
            for n in t["vanished_services"]]  # fmt: skip
    for kind, verb in (("new_edges", "new call"), ("vanished_edges", "vanished call")):
        out += [{"id": f"topo.{kind[:-1]}.{e['source']}->{e['target']}", "entity": e["source"],
                 "text": f"{verb} {e['source']} -> {e['target']} ({e['kind']})"} for e in t[kind]]  # fmt: skip
    out += [{"id": f"topo.deploy.{d['service']}.{d['version']}", "entity": d["service"],
             "text": f"deploy of {d['service']} {d['version']} (was {', '.join(d['previous_versions'])})"}
            for d in t["deploys"]]  # fmt: skip
    return out


def window_ending(end: datetime, length: timedelta) -> Window:
    end = end.astimezone(UTC).replace(microsecond=0)
    return Window(end - length, end)
