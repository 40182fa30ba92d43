"""Root-cause ranking rules on small hand-made graphs (pure functions, no storage)."""

from __future__ import annotations

import pytest

from otel_ai.analysis.anomaly.rca import rank_root_causes

EDGES = [("gateway", "orders"), ("orders", "pricing"), ("orders", "payment")]
SERVICES = ["gateway", "orders", "payment", "pricing"]


def _rank(top_metrics: dict[str, list[tuple[str, float]]]) -> list[str]:
    anomalous = set(top_metrics)
    out = rank_root_causes(services=SERVICES, edges=EDGES, score=dict.fromkeys(anomalous, 5.0),
                           onset=dict.fromkeys(anomalous, 0), anomalous=anomalous, top_metrics=top_metrics,
                           threshold=1.0)  # fmt: skip
    return [str(r["service"]) for r in out]


@pytest.mark.parametrize(
    "top_metrics, first",
    [
        # the caller's own self-time moved; its callee only shows latency (a symptom, or the
        # model smearing the caller's slowdown): the caller is the cause, not the deeper callee
        ({"orders": [("self_slow", 1.6), ("p95", 1.2)], "pricing": [("p50", 0.3)]}, "orders"),
        # errors everywhere on the path: the deepest service with errors of its own
        (
            {"gateway": [("errors", 2.0)], "orders": [("errors", 2.0)], "payment": [("errors", 2.0)]},
            "payment",
        ),
        # nothing has evidence of its own: the deepest anomalous service, as before
        ({"orders": [("p95", 1.0)], "pricing": [("p95", 1.0)]}, "pricing"),
        # a pure traffic drop is blamed on the entry point upstream of what dropped
        ({"orders": [("volume", -0.7)], "pricing": [("volume", -0.7)]}, "gateway"),
    ],
    ids=[
        "own-self-time-beats-latency-only-callee",
        "deepest-with-errors",
        "latency-only-deepest",
        "traffic-drop",
    ],
)
def test_first_root_cause(top_metrics: dict[str, list[tuple[str, float]]], first: str) -> None:
    assert _rank(top_metrics)[0] == first


PEER_EDGES = [*EDGES, ("orders", "redis-1")]


@pytest.mark.parametrize(
    "top_metrics, first",
    [
        # the caller re-sends calls to a peer whose first attempts time out, and every logical
        # call still succeeds: the unanswered attempts are the re-sends, the caller is the cause
        ({"orders": [("retries", 1.5), ("slow", 0.8)]}, "orders"),
        # the peer's logical calls fail too (every attempt refused): the peer is unreachable
        ({"orders": [("retries", 1.5)], "redis-1": [("cfail", 3.0)]}, "redis-1"),
    ],
    ids=["resends-only-caller-first", "failed-logical-calls-peer-first"],
)
def test_retry_storm_at_a_peer(top_metrics: dict[str, list[tuple[str, float]]], first: str) -> None:
    anomalous = set(top_metrics)
    out = rank_root_causes(services=[*SERVICES, "redis-1"], edges=PEER_EDGES, score=dict.fromkeys(anomalous, 5.0),
                           onset=dict.fromkeys(anomalous, 0), anomalous=anomalous, top_metrics=top_metrics,
                           threshold=1.0, dropped_calls={"orders": [("redis-1", 0.0)]},
                           retrying={"orders": ["redis-1"]})  # fmt: skip
    assert str(out[0]["service"]) == first
