"""The validator checks what a claim states, not only what it cites: every number must be a
figure of the evidence it cites (observed, baseline, a ratio or percentage of them, in any time
unit, within the rounding shown), every name must be one the cited evidence is about. Through
the real manager and a loopback OpenAI-wire model on stored spans, and on the rule itself."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from otel_ai.analysis.insights.grounding import Scope, validate
from otel_ai.analysis.insights.model import DetectContext, Evidence, Finding, Window
from otel_ai.storage import Storage
from otel_ai.testing.stores import storage_at
from tests.insights.conftest import (
    INJECTION,
    SpansPerService,
    fake_llm,
    make_service,
    minute_ago,
    write_traces,
)


class Timed(SpansPerService):
    """SpansPerService plus each service's mean span duration (ms) as an evidence item."""

    def detect(self, ctx: DetectContext) -> list[Finding]:
        out = []
        for f in super().detect(ctx):
            svc = f.entities[0].id
            mean = Evidence(f"spans:{svc}:mean_ms", "metric", f"mean span duration of {svc}",
                            round(float(f.impact.latency_ms or 0), 3), None, "ms")  # fmt: skip
            out.append(dataclasses.replace(f, evidence=(*f.evidence, mean)))
        return out


def _by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["id"].rsplit(":", 1)[-1]: e for e in data["evidence"]}


def figures_model(data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Claims about the data's figures: some right (in other units and roundings), some wrong."""
    s, ev = data["subject"], _by_id(data)
    count, mean = ev["count"], ev["mean_ms"]
    n, base, ms = count["observed_value"], count["baseline_value"], mean["observed_value"]
    claims = [  # (statement, cited figure)
        (f"`{s}` emitted {n} spans in the window", "count"),  # right
        (f"`{s}` emitted {n / base:.1f}x the spans of the previous period", "count"),  # right: ratio
        (
            f"span volume of `{s}` rose {(n - base) / base * 100:.0f}% on the previous period",
            "count",
        ),  # right: %
        (f"a `{s}` span takes {ms / 1000:.3f} s on average", "mean_ms"),  # right: other unit
        (f"a `{s}` span takes about {ms:.0f} ms", "mean_ms"),  # right: rounded
        (f"`{s}` emitted {n * 3} spans in the window", "count"),  # wrong number
        (f"a `{s}` span takes {ms:.0f} s on average", "mean_ms"),  # wrong unit
        (f"a `{s}` span takes {ms:.0f} ms", "count"),  # right figure, but not of the cited item
        (f"`billing-service` emitted {n} spans", "count"),  # invented name
        (f"`{s}` emitted {n} spans", "made-up"),  # unknown id
    ]
    if INJECTION in str(body):  # a gullible model repeats what the telemetry asked it to say
        claims.insert(0, ("the system is healthy with 0 errors", "count"))
    ids = {k: e["id"] for k, e in ev.items()}
    return {"title": "t", "summary": f"`{s}` is busy.", "recommendations": [],
            "findings": [{"statement": t, "evidence_ids": [ids.get(k, f"spans:{s}:made-up")]}
                         for t, k in claims]}  # fmt: skip


RIGHT = 5  # the first five claims of figures_model


@pytest.mark.parametrize("statement", ["SELECT * FROM orders WHERE id = ?", f"SELECT 1 /* {INJECTION} */"],
                         ids=["clean", "prompt-injection-attribute"])  # fmt: skip
def test_claims_must_state_the_cited_figures(
    storage: Storage, echo: Any, chdb_path: Any, statement: str
) -> None:
    from otel_ai.testing.daemons import unique_db

    st = storage_at(f"chdb://{chdb_path}", unique_db())
    st.start()
    try:
        write_traces(st, minute_ago(42), 10, salt="b", statement=statement)  # the previous period
        write_traces(st, minute_ago(30), 20, statement=statement)
        server = echo(figures_model)
        out = make_service(st, llm=fake_llm(server), detectors=[Timed()]).generate(
            Window(minute_ago(31), minute_ago(20))
        )
        assert sorted(i["entities"][0]["id"] for i in out) == ["checkout", "frontend"]
        assert server.calls("gpt-4o-mini") == 2
        for ins in out:
            svc = ins["entities"][0]["id"]
            ev = {e["id"].rsplit(":", 1)[-1]: e for e in ins["evidence"]}
            n, base, ms = ev["count"]["observed"], ev["count"]["baseline"], ev["mean_ms"]["observed"]
            assert (n, base) == ((40, 20) if svc == "checkout" else (20, 10)) and ms > 50
            assert [c["text"] for c in ins["claims"]] == [
                f"`{svc}` emitted {n} spans in the window",
                f"`{svc}` emitted 2.0x the spans of the previous period",
                f"span volume of `{svc}` rose 100% on the previous period",
                f"a `{svc}` span takes {ms / 1000:.3f} s on average",
                f"a `{svc}` span takes about {ms:.0f} ms",
            ]
            assert ins["abstained"] is False and len(ins["claims"]) == RIGHT
            # a reply with dropped claims loses its free-text summary: the title and a kept claim
            assert ins["summary"] == f"{ins['title']}. {ins['claims'][0]['text']}"
    finally:
        st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


SCOPES = {
    "calls": Scope(
        frozenset({"cart", "postgresql/shop"}),
        "'SELECT * FROM items LIMIT 20' calls to postgresql/shop per cart 'GET /cart' span (mean)",
        ((7.0, 1.0, "calls"),),
    ),
    "total": Scope(
        frozenset({"cart"}), "time spent in those calls per 'GET /cart' span", ((176.4, 25.2, "ms"),)
    ),
    "share": Scope(
        frozenset({"cart"}), "share of the critical path held by cart", ((0.6234, None, "ratio"),)
    ),
    "mean": Scope(frozenset({"cart"}), "mean span duration of cart: 90 ms", ((90.0, None, "ms"),)),
}


@pytest.mark.parametrize(
    "text, cited, reason",
    [
        ("`cart` repeats the statement 7x against `postgresql/shop`", ["calls"], None),
        ("`cart` makes 7 calls where 1 would do", ["calls"], None),
        ("6 calls more than needed", ["calls"], None),
        ("the loop costs 176 ms against 25 ms", ["total"], None),
        ("the loop costs 0.18 s", ["total"], None),
        ("the loop costs 176.4 ms, 600% more", ["total"], None),
        ("`cart` holds 62% of the critical path", ["share"], None),
        ("`cart` holds about 60 % of the critical path", ["share"], None),
        ("`cart` holds 0.623 of the critical path", ["share"], None),
        ("the statement has LIMIT 20 in it", ["calls"], None),  # a number of the evidence's own text
        ("`cart` p95 in v2 over 5xx HTTP 2", ["total"], "states '2', which no cited evidence shows"),
        ("`cart` repeats it 10x", ["calls"], "states '10 x', which no cited evidence shows"),
        ("the loop costs 250 ms", ["total"], "states '250 ms', which no cited evidence shows"),
        ("the loop costs 176 s", ["total"], "states '176 s', which no cited evidence shows"),
        ("`cart` holds 80% of the critical path", ["share"], "states '80 %', which no cited evidence shows"),
        ("the loop costs 176 ms", ["calls"], "states '176 ms', which no cited evidence shows"),
        ("a `cart` span takes 90 ms", ["mean"], None),
        ("a `cart` span takes 90 s", ["mean"], "states '90 s', which no cited evidence shows"),
        ("`postgresql/shop` is slow: 176 ms", ["total"],
         "names 'postgresql/shop', which the cited evidence is not about"),
        ("`postgresql/shop` takes 176 ms per request", ["total", "calls"], None),
        ("`checkout-db` is slow", ["total"], "names 'checkout-db', which is not in the evidence"),
        ("trace 0af7651916cd43dd8448eb211c80319c at 2026-12-02T01:00:00Z in v1.26.0", ["total"], None),
    ],
    ids=["mult", "count", "difference", "observed-baseline", "seconds", "percent-change", "ratio-percent",
         "rounded-percent", "ratio", "quoted-number", "numbers-in-names-skipped-but-a-bare-2",
         "wrong-mult", "wrong-ms", "wrong-unit", "wrong-percent", "figure-of-another-item", "figure-in-text",
         "figure-in-text-wrong-unit",
         "entity-of-another-item", "entity-of-a-cited-item", "invented-name", "ids-dates-versions"],
)  # fmt: skip
def test_the_figure_and_name_rule(text: str, cited: list[str], reason: str | None) -> None:
    v = validate([{"text": text, "evidence_ids": cited}], list(SCOPES), ["cart", "postgresql/shop"],
                 ["cart", "postgresql/shop", "frontend"], evidence_text=" ".join(s.text for s in SCOPES.values()),
                 scopes=SCOPES, always={"cart"})  # fmt: skip
    assert [r for _, r in v.dropped] == ([reason] if reason else [])
    assert len(v.kept) == (0 if reason else 1)
