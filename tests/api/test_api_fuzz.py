"""No value of any parameter makes the API answer 5xx: schemathesis over our own OpenAPI document.

A short, fixed-seed run (a few examples per operation) against a real daemon on loopback; the
schema itself must document the 400 the API answers for a bad parameter (not FastAPI's 422).
Time parameters get the values that used to overflow (huge durations, year 1, year 9999).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from otel_ai.testing.daemons import InProcessDaemon, daemon_config

# Endpoints that call the language model (each example would wait for a completion).
_SLOW = r"^/api/v1/llm/(generate|health|conversations/\{conv_id\}/messages)"


@pytest.fixture(scope="module")
def api_daemon(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDaemon]:
    cfg, ep = daemon_config(
        chdb_path, tmp=tmp_path_factory.mktemp("fuzz"), extra={"scheduler.enabled": False}
    )
    d = InProcessDaemon(cfg, ep).start()
    yield d
    d.stop()


def test_no_parameter_value_answers_5xx(api_daemon: InProcessDaemon) -> None:
    """Every operation, a few fixed-seed examples each (hypothesis drives schemathesis' strategies)."""
    schema = schemathesis.openapi.from_url(f"{api_daemon.api_url}/openapi.json")
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if re.match(_SLOW, op.path):
            continue

        @settings(max_examples=6, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            response = case.call(timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}")

        run()
        tried += 1
    assert tried >= 10
    assert not failures, failures


def test_the_schema_documents_400_not_422(api_daemon: InProcessDaemon) -> None:
    doc = httpx.get(f"{api_daemon.api_url}/openapi.json", timeout=30).json()
    codes = {
        code for item in doc["paths"].values() for op in item.values() for code in op.get("responses", {})
    }
    assert "422" not in codes and "400" in codes
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path in ("/api/v1/topology", "/api/v1/services"):
        assert "400" in doc["paths"][path]["get"]["responses"], path


@pytest.mark.parametrize(
    ("path", "param", "value"),
    [
        pytest.param("/api/v1/services", "since", "9999999999999999999999d", id="huge-duration"),
        pytest.param("/api/v1/services", "since", "1000000d", id="million-days"),
        pytest.param("/api/v1/services", "until", "0001-01-01T00:00:00Z", id="year-1"),
        pytest.param("/api/v1/services", "until", "9999-12-31T23:59:59Z", id="year-9999"),
        pytest.param("/api/v1/topology", "since", "200000w", id="weeks"),
        pytest.param("/api/v1/topology", "at", "1000000d", id="at-million-days"),
        pytest.param("/api/v1/topology", "at", "0001-01-01", id="at-year-1"),
        pytest.param("/api/v1/anomalies", "since", "99999999999999999999999999s", id="anomalies-seconds"),
        pytest.param("/api/v1/topology/diff", "a_since", "1000000d", id="diff-a-since"),
    ],
)
def test_out_of_range_times_answer_400_naming_the_parameter(
    api_daemon: InProcessDaemon, path: str, param: str, value: str
) -> None:
    r = httpx.get(f"{api_daemon.api_url}{path}", params={param: value}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(f"{param}: "), r.text


def test_train_since_is_named_in_detect(api_daemon: InProcessDaemon) -> None:
    body = {"since": "1h", "until": "now", "train_since": "0001-01-01T00:00:00Z", "train_until": "1h"}
    r = httpx.post(f"{api_daemon.api_url}/api/v1/anomalies/detect", json=body, timeout=30)
    assert r.status_code == 400 and r.json()["error"].startswith("train_since: "), r.text


def test_a_trace_id_with_a_trailing_newline_is_refused(api_daemon: InProcessDaemon) -> None:
    tid = "0123456789abcdef0123456789abcde%0A"  # 31 hex digits and a newline: 32 characters
    r = httpx.get(f"{api_daemon.api_url}/api/v1/traces/{tid}", timeout=30)
    assert r.status_code == 400 and r.json()["error"].startswith("trace_id: "), r.text
