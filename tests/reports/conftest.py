"""Shared fixtures: one seeded store (a payment error burst in the last hour), a rules-only LLM
manager on its own event loop, and a report service built on them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from otel_ai.analysis.anomaly import synthetic as syn
from otel_ai.analysis.anomaly.store import AnomalyStore
from otel_ai.analysis.topology.config import TopologyConfig
from otel_ai.analysis.topology.service import TopologyService
from otel_ai.llm import LLMConfig, LLMManager
from otel_ai.reports.config import ReportsConfig
from otel_ai.reports.content import Window
from otel_ai.reports.service import ReportService
from otel_ai.storage import Storage
from otel_ai.testing.daemons import unique_db
from otel_ai.testing.stores import storage_at
from otel_ai.timeutil import rfc3339

ANOMALY_ID = "a1b2c3d4e5f60718"


@pytest.fixture(scope="session")
def llm_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop in a thread, like the daemon's, for the (async) LLM manager."""
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, name="llm-loop", daemon=True)
    t.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)


@pytest.fixture(scope="session")
def rules_llm(llm_loop: asyncio.AbstractEventLoop) -> LLMManager:
    return LLMManager(LLMConfig.model_validate({"embedded": {"enabled": False}}))


def _spans_with_versions(storage: Storage, now: datetime) -> None:
    """A deploy (payment 1.4.1 → 1.4.2) and spans received as JSON over HTTP."""
    rows = []
    for i in range(40):
        prev = i < 20
        ts = now - timedelta(minutes=90 if prev else 20, seconds=i)
        rows.append([ts, f"{i:032x}", f"{i:016x}", "", "Charge", "Server", "payment", 5_000_000, "Unset",
                     {"service.version": "1.4.1" if prev else "1.4.2"}, "json", "http"])  # fmt: skip
    storage.insert("otel_traces", rows, ["Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind",
                                         "ServiceName", "Duration", "StatusCode", "ResourceAttributes",
                                         "IngestEncoding", "IngestTransport"])  # fmt: skip


def _topology_changes(storage: Storage, now: datetime) -> None:
    """frontend starts calling ``recommendation`` in the window; ``legacy-ads`` was called only before."""
    rows = []
    for i in range(12):
        for child, minutes in (("recommendation", 10), ("legacy-ads", 70)):
            ts = now - timedelta(minutes=minutes, seconds=i)
            tid, parent = f"{0xABC000 + i + minutes:032x}", f"{0xF000 + i + minutes:016x}"
            rows.append([ts, tid, parent, "", "GET /", "Server", "frontend", 9_000_000, "Unset"])
            rows.append(
                [ts, tid, f"{0xE000 + i + minutes:016x}", parent, "Get", "Server", child, 3_000_000, "Unset"]
            )
    storage.insert("otel_traces", rows, syn.COLUMNS)


@pytest.fixture(scope="session")
def seeded(chdb_path: Path) -> Iterator[tuple[Storage, Window]]:
    """Two hours of shop traffic; payment fails 40% of calls in the last 30 minutes."""
    st = storage_at(f"chdb://{chdb_path}", unique_db("rep"))
    st.start()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(hours=2)
    fault = syn.Fault(
        "payment", int((now - timedelta(minutes=30)).timestamp()), int(now.timestamp()), error_p=0.4
    )
    syn.write(st, start, 120, syn.SynthConfig(rate_per_min=30, faults=[fault], seed=7, diurnal=0.0))
    _spans_with_versions(st, now)
    _topology_changes(st, now)
    store = AnomalyStore(st)
    store.migrate()
    store.save_anomaly({
        "id": ANOMALY_ID, "entity": {"kind": "service", "service": "payment", "operation": "Charge", "target": None},
        "opened_at": rfc3339(now - timedelta(minutes=29)), "closed_at": None, "score": 4.2, "severity": "critical",
        "features": [{"name": "payment error ratio", "text": "payment error ratio 40.0x baseline (0.4 vs 0.01 ratio)",
                      "value": 0.4, "baseline": 0.01, "ratio": 40.0, "unit": "ratio"}],
        "root_causes": [{"service": "payment", "score": 0.93}, {"service": "checkout", "score": 0.41}],
        "evidence": {"services": ["payment", "checkout"], "trace_ids": ["0" * 31 + "1"], "kind": "own_errors"},
    }, "live")  # fmt: skip
    yield st, Window(now - timedelta(hours=1), now)
    st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


def make_service(storage: Storage, llm: Any, loop: Any, **cfg: Any) -> ReportService:
    topo = TopologyService(storage, TopologyConfig(), CollectorRegistry())
    topo.start()
    sources = SimpleNamespace(
        llm=llm, topology=topo, anomaly=None, insights=None, receivers=None, pipeline=None
    )
    svc = ReportService(
        storage, ReportsConfig.model_validate(cfg), CollectorRegistry(), sources=sources, loop=loop
    )
    svc.start()
    return svc


@pytest.fixture(scope="session")
def service(seeded: tuple[Storage, Window], rules_llm: LLMManager, llm_loop: Any) -> Iterator[ReportService]:
    svc = make_service(seeded[0], rules_llm, llm_loop)
    yield svc
    svc.shutdown()


@pytest.fixture(scope="session")
def report(service: ReportService, seeded: tuple[Storage, Window]) -> dict[str, Any]:
    return service.generate(seeded[1], "hourly")
