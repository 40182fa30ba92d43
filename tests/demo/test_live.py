"""The generator against a real daemon (in-process, loopback ports, chDB) in every protocol.

Asserts what a user would check: the demo's services and edges are stored, every span arrived with
the encoding and transport the ``--protocol`` switch chose, the status counters show the flip, and
the injected faults change the stored figures in their windows.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from otel_ai.cli.main import main
from otel_ai.demo import SERVICES, RunResult, TimelineEvent, generate

ENCODING = {
    "grpc": ("protobuf", "grpc"),
    "http/protobuf": ("protobuf", "http"),
    "http/json": ("json", "http"),
}
EDGES = """
SELECT DISTINCT p.ServiceName, c.ServiceName
FROM {db:Identifier}.otel_traces AS c
INNER JOIN {db:Identifier}.otel_traces AS p ON c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId
WHERE c.ServiceName != p.ServiceName
"""


def endpoint(d: Any, protocol: str) -> str:
    return f"http://{d.ep.grpc}" if protocol == "grpc" else d.ep.http_url


def q(d: Any, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    st = d.daemon.storage
    return list(st.query(sql, {"db": st.database, **params}))


def wait_rows(d: Any, table: str, n: int, timeout: float = 60.0) -> int:
    """Acknowledged data may sit in the spool for a moment; wait until ``n`` rows are stored."""
    deadline, got = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        got = int(q(d, f"SELECT count() FROM {{db:Identifier}}.{table}")[0][0])
        if got >= n:
            return got
        time.sleep(0.3)
    return got


def backfill(
    d: Any, protocol: str, minutes: float, rate: float, stored: int = 0, **kw: Any
) -> tuple[RunResult, datetime]:
    """Generate ``minutes`` of past traffic and wait until all of it is stored (``stored`` rows before)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes + 1)
    res = generate(start, start + timedelta(minutes=minutes), endpoint=endpoint(d, protocol), protocol=protocol,
                   rate=rate, diurnal=False, **kw)  # fmt: skip
    assert res.dropped_spans == 0 and res.exported_spans == res.spans
    assert wait_rows(d, "otel_traces", stored + res.spans) == stored + res.spans
    return res, start


@pytest.mark.parametrize("protocol", list(ENCODING))
def test_each_protocol_stores_the_shop_with_its_encoding(make_daemon: Any, protocol: str) -> None:
    d = make_daemon()
    res, _ = backfill(d, protocol, 1.5, 8.0, seed=2, metrics=True, metric_interval_s=60)
    assert {r[0] for r in q(d, "SELECT DISTINCT ServiceName FROM {db:Identifier}.otel_traces")} == set(
        SERVICES
    )
    edges = set(q(d, EDGES))
    assert {("frontend-proxy", "frontend"), ("frontend", "checkout"), ("checkout", "payment"),
            ("cart", "flagd"), ("shipping", "quote"), ("checkout", "accounting"),
            ("recommendation", "product-catalog")} <= edges  # fmt: skip
    enc = q(
        d, "SELECT IngestEncoding, IngestTransport, count() FROM {db:Identifier}.otel_traces GROUP BY 1, 2"
    )
    assert enc == [(*ENCODING[protocol], res.spans)]
    # Links survive the trip: fraud-detection's consumer spans point at checkout's producer spans.
    linked = q(d, """SELECT count() FROM {db:Identifier}.otel_traces AS c ARRAY JOIN c.Links.SpanId AS l
                     INNER JOIN {db:Identifier}.otel_traces AS p ON p.SpanId = l
                     WHERE c.ServiceName = 'fraud-detection' AND p.SpanKind = 'Producer'""")  # fmt: skip
    assert linked[0][0] > 0
    assert wait_rows(d, "otel_logs", res.logs) == res.logs
    logs = q(d, "SELECT DISTINCT IngestEncoding FROM {db:Identifier}.otel_logs")
    assert logs == [(ENCODING[protocol][0],)]
    counters = d.get("/api/v1/status").json()["receivers"]["counters"]
    enc_name, transport = ENCODING[protocol]
    assert counters["traces"][transport][enc_name]["items_accepted"] == res.spans
    assert counters["logs"][transport][enc_name]["items_accepted"] == res.logs
    # Metrics follow the switch too (one export per service at shutdown).
    assert counters["metrics"][transport][enc_name]["items_accepted"] > 0
    assert set(counters["metrics"]) == {transport} and set(counters["metrics"][transport]) == {enc_name}


def test_flipping_the_switch_is_visible_per_service(make_daemon: Any) -> None:
    d = make_daemon()
    a, _ = backfill(d, "http/protobuf", 0.5, 6.0, seed=4)
    b, _ = backfill(d, "http/json", 0.5, 6.0, stored=a.spans, seed=5)
    rows = q(d, "SELECT ServiceName, IngestEncoding, count() FROM {db:Identifier}.otel_traces GROUP BY 1, 2")
    per: dict[str, dict[str, int]] = {}
    for svc, encoding, n in rows:
        per.setdefault(svc, {})[encoding] = n
    assert per["frontend"]["protobuf"] > 0 and per["frontend"]["json"] > 0
    assert sum(v.get("protobuf", 0) for v in per.values()) == a.spans
    assert sum(v.get("json", 0) for v in per.values()) == b.spans
    http = d.get("/api/v1/status").json()["receivers"]["counters"]["traces"]["http"]
    assert http["protobuf"]["items_accepted"] == a.spans and http["json"]["items_accepted"] == b.spans
    services = d.get("/api/v1/services")
    if services.status_code == 404:
        pytest.skip("/api/v1/services is not mounted yet (topology issue); SQL and status assertions passed")
    by_name = {s["name"]: s for s in services.json()["services"]}
    assert by_name["frontend"]["encodings"]["protobuf"] > 0 and by_name["frontend"]["encodings"]["json"] > 0


def test_cli_live_run_sends_traces_logs_and_metrics(make_daemon: Any, tmp_path: Path) -> None:
    d = make_daemon()
    gt = tmp_path / "truth.json"
    rc = main(["demo", "--endpoint", d.ep.http_url, "--protocol", "http/json", "--duration", "3s", "--rate", "20",
               "--seed", "3", "--scenario", "cart-failure", "--magnitude", "severe", "--ground-truth", str(gt),
               "--quiet"])  # fmt: skip
    assert rc == 0
    doc = json.loads(gt.read_text())
    assert doc["protocol"] == "http/json" and doc["seed"] == 3
    assert [(e["scenario"], e["magnitude"], e["parameter"]) for e in doc["events"]] == [
        ("cart-failure", "severe", 1.0)
    ]
    counters = d.get("/api/v1/status").json()["receivers"]["counters"]
    assert counters["traces"]["http"]["json"]["items_accepted"] > 0
    assert counters["logs"]["http"]["json"]["items_accepted"] > 0
    assert counters["metrics"]["http"]["json"]["requests"] > 0  # one export per service at shutdown at least
    n = counters["traces"]["http"]["json"]["items_accepted"]
    assert wait_rows(d, "otel_traces", n) == n
    cart = q(d, "SELECT countIf(StatusCode = 'Error'), count() FROM {db:Identifier}.otel_traces "
                "WHERE ServiceName = 'cart' AND SpanKind = 'Server'")  # fmt: skip
    assert cart[0][1] > 0 and cart[0][0] == cart[0][1]


def test_injected_faults_change_the_stored_figures(make_daemon: Any, tmp_path: Path) -> None:
    d = make_daemon()
    m = timedelta(minutes=1)
    timeline = [
        TimelineEvent(2 * m, 2 * m, "payment-failure", "severe"),
        TimelineEvent(5 * m, 2 * m, "shipping-slow", "medium"),
        TimelineEvent(8 * m, 2 * m, "payment-unreachable", "severe"),
        TimelineEvent(11 * m, 2 * m, "kafka-queue-problems", "medium"),
    ]
    gt = tmp_path / "truth.json"
    _, start = backfill(d, "http/protobuf", 14, 4.0, seed=8, timeline=timeline, ground_truth_path=gt)
    truth = json.loads(gt.read_text())["events"]
    assert [e["scenario"] for e in truth] == [e.scenario for e in timeline]

    def window(i: int) -> dict[str, Any]:
        """Figures over [start + i min, start + i + 2 min) of root-trace time."""
        lo = start + i * m
        sql = """
        WITH roots AS (SELECT TraceId, min(Timestamp) AS t0 FROM {db:Identifier}.otel_traces GROUP BY TraceId)
        SELECT
          countIf(s.ServiceName = 'payment' AND s.SpanKind = 'Server') AS pay,
          countIf(s.ServiceName = 'payment' AND s.SpanKind = 'Server' AND s.StatusCode = 'Error') AS pay_err,
          avgIf(s.Duration, s.ServiceName = 'shipping' AND s.SpanKind = 'Server') / 1e6 AS ship_ms,
          countIf(s.ServiceName = 'checkout' AND s.SpanKind = 'Server' AND s.StatusCode = 'Error') AS co_err
        FROM {db:Identifier}.otel_traces AS s INNER JOIN roots USING TraceId
        WHERE roots.t0 >= {lo:DateTime64(9)} AND roots.t0 < {hi:DateTime64(9)}"""
        row = d.daemon.storage.query_dicts(
            sql, {"db": d.daemon.storage.database, "lo": lo, "hi": lo + 2 * m}
        )[0]
        lag = q(d, """SELECT avg(dateDiff('millisecond', p.Timestamp + toIntervalNanosecond(p.Duration), c.Timestamp))
                      FROM {db:Identifier}.otel_traces AS c ARRAY JOIN c.Links.SpanId AS l
                      INNER JOIN {db:Identifier}.otel_traces AS p ON p.SpanId = l
                      WHERE c.SpanKind = 'Consumer' AND p.Timestamp >= {lo:DateTime64(9)}
                        AND p.Timestamp < {hi:DateTime64(9)}""", lo=lo, hi=lo + 2 * m)  # fmt: skip
        row["lag_ms"] = lag[0][0]
        return row

    base, pay, ship, unreach, kafka = window(0), window(2), window(5), window(8), window(11)
    assert base["pay_err"] <= 1 and pay["pay"] > 5 and pay["pay_err"] == pay["pay"]  # error rate 0 → 100%
    assert base["ship_ms"] < 50 and ship["ship_ms"] > 1500  # latency
    assert base["pay"] > 5 and unreach["pay"] == 0 and unreach["co_err"] > 5  # missing spans, errors upstream
    assert base["lag_ms"] < 50 and kafka["lag_ms"] > 3000  # consumer lag
