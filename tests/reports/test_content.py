"""Report content from stored data, and the three formats carrying the same figures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from otel_ai.reports.charts import service_charts
from otel_ai.reports.render import fmt_delta, fmt_value, render, to_html, to_markdown
from tests.reports.conftest import ANOMALY_ID


def test_headline_anomalies_and_deltas(report: dict[str, Any]) -> None:
    assert report["status"] == "incident"
    refs = [r for reason in report["headline"]["reasons"] for r in reason["refs"]]
    assert ANOMALY_ID in refs and "svc.payment.error_rate" in refs
    (a,) = report["anomalies"]
    assert a["id"] == ANOMALY_ID and a["state"] == "opened" and a["root_causes"][0]["service"] == "payment"
    assert a["trace_ids"] and a["top_features"][0]["ratio"] == 40.0
    assert report["counts"]["anomalies_opened"] == 1 and report["counts"]["anomalies_ongoing"] == 0
    pay = next(s for s in report["services"] if s["name"] == "payment")
    assert pay["error_rate"] > 0.1 > pay["prev_error_rate"]  # 40% of calls fail in the last 30 min
    cart = next(s for s in report["services"] if s["name"] == "cart")
    assert cart["error_rate"] < 0.02
    assert report["comparison"]["end"] == report["window"]["start"]


def test_topology_changes(report: dict[str, Any]) -> None:
    t = report["topology"]
    assert t["new_services"] == ["recommendation"] and t["vanished_services"] == ["legacy-ads"]
    assert [(e["source"], e["target"]) for e in t["new_edges"]] == [("frontend", "recommendation")]
    assert [(e["source"], e["target"]) for e in t["vanished_edges"]] == [("frontend", "legacy-ads")]
    ids = {c["id"] for c in t["changes"]}
    assert {"topo.new_service.recommendation", "topo.vanished_service.legacy-ads",
            "topo.new_edge.frontend->recommendation", "topo.deploy.payment.1.4.2"} <= ids  # fmt: skip
    c = report["counts"]
    assert (c["new_services"], c["vanished_services"], c["new_edges"], c["vanished_edges"], c["deploys"]) == (
        1, 1, 1, 1, 1)  # fmt: skip


def test_deploy_ingest_and_missing_rooms(report: dict[str, Any]) -> None:
    (d,) = report["topology"]["deploys"]
    assert (d["service"], d["version"], d["previous_versions"]) == ("payment", "1.4.2", ["1.4.1"])
    stored = {(r["transport"], r["encoding"]): r["spans"] for r in report["ingest"]["stored"]}
    assert stored[("http", "json")] == 20
    assert report["insights"] == {"available": False, "reason": "insights: not available on this instance",
                                  "items": [], "total": 0}  # fmt: skip


def test_summary_is_grounded(report: dict[str, Any]) -> None:
    s = report["summary"]
    known = {f["id"] for f in report["figures"]} | {a["id"] for a in report["anomalies"]}
    known |= {c["id"] for c in report["topology"]["changes"]}
    assert s["llm"]["provider"] == "rules" and s["claims"]
    for item in s["claims"] + s["recommendations"]:
        assert item["evidence_ids"] and set(item["evidence_ids"]) <= known
    assert s["claims"][0]["evidence_ids"] == [ANOMALY_ID]
    assert s["dropped"] == 0  # the rules narrative states only the figures it cites


def test_summary_claims_must_state_the_cited_figures(report: dict[str, Any]) -> None:
    """A highlight's numbers must be figures of the evidence it cites, its names ones that
    evidence is about (the same per-claim rule as insights)."""
    from otel_ai.analysis.insights.grounding import validate
    from otel_ai.reports.summary import evidence_for, scopes, universe

    ev = evidence_for(report)
    fid = "svc.payment.error_rate"
    assert fid in {e["id"] for e in ev}
    f = next(f for f in report["figures"] if f["id"] == fid)
    pct = f["value"] * 100
    claims = {
        "right": f"payment's error rate reached {pct:.1f}%",
        "rounded": f"payment's error rate reached about {round(pct)} percent",
        "wrong-number": f"payment's error rate reached {pct * 3 + 7:.1f}%",
        "other-service": f"cart's error rate reached {pct:.1f}%",
    }
    items = [{"text": t, "evidence_ids": [fid], "key": k} for k, t in claims.items()]
    names = universe(report)
    verdict = validate(items, [e["id"] for e in ev], names, names, scopes=scopes(ev, report, names))
    assert sorted(i["key"] for i in verdict.kept) == ["right", "rounded"]
    assert sorted(i["key"] for i, _ in verdict.dropped) == ["other-service", "wrong-number"]


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_formats_carry_the_same_figures(report: dict[str, Any], service: Any, fmt: str) -> None:
    doc = service.get(report["id"])
    assert json.loads(render(doc, "json")[0])["figures"] == doc["figures"]
    text = to_markdown(doc) if fmt == "md" else to_html(doc)
    for f in doc["figures"]:
        assert f["id"] in text
        assert fmt_value(f["value"], f["unit"]) in text, f["id"]
        assert fmt_value(f["previous"], f["unit"]) in text, f["id"]
    for s in doc["services"]:
        assert fmt_delta(s["error_rate"], s["prev_error_rate"], "ratio") in text
    assert ANOMALY_ID in text and "1.4.2" in text
    for c in doc["summary"]["claims"]:
        assert c["text"].replace("&", "&amp;") in text


def test_html_is_self_contained(report: dict[str, Any]) -> None:
    html = to_html(report)
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    for needle in ("<script", "<link", "src=", "@import", "url("):
        assert needle not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_charts_have_titles_units_legend_and_anomaly_marks(report: dict[str, Any]) -> None:
    charts = service_charts(report["series"])
    assert len(charts) == 3 * len(report["series"]["services"]) >= 3
    pay = {c["metric"]: c["svg"] for c in charts if c["service"] == "payment"}
    for metric, unit in (("rate", "req/s"), ("error_rate", "%"), ("p95_ms", "ms")):
        svg = pay[metric]
        assert f"({unit})" in svg and "this window" in svg and "previous window" in svg
        assert 'fill="#dc2626" fill-opacity="0.13"' in svg  # the anomaly span is shaded
    cart = next(c["svg"] for c in charts if c["service"] == "cart")
    assert 'fill-opacity="0.13"' not in cart  # the anomaly is not about cart
    assert report["series"]["points"] == 60 and report["series"]["bucket_s"] == 60


@pytest.mark.parametrize("cfg, llm, note", [
    ({"summary": False}, True, "turned off (reports.summary)"),
    ({}, False, "no LLM manager on this instance"),
], ids=["off", "no-llm"])  # fmt: skip
def test_without_summary_the_report_says_why(seeded: Any, rules_llm: Any, llm_loop: Any, cfg: dict[str, Any],
                                             llm: bool, note: str) -> None:  # fmt: skip
    from tests.reports.conftest import make_service

    svc = make_service(seeded[0], rules_llm if llm else None, llm_loop, **cfg)
    try:
        doc = svc.generate(seeded[1], "no-summary")
    finally:
        svc.shutdown()
    assert doc["summary"] is None and doc["status"] == "incident"  # the figures do not need a model
    assert note in to_markdown(doc) and note in to_html(doc)


def test_telemetry_text_cannot_inject_markup(report: dict[str, Any]) -> None:
    evil = "<img src=http://evil.example/x.png>"
    doc = json.loads(json.dumps(report))
    doc["name"] = evil
    doc["services"][0]["name"] = evil
    doc["anomalies"][0]["label"] = evil
    doc["headline"]["reasons"][0]["text"] = evil
    for text in (to_markdown(doc, charts=False), to_html(doc)):
        assert "<img" not in text and "&lt;img src=http://evil.example/x.png&gt;" in text
