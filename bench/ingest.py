"""Ingest benchmark: engine decoder vs python decoder vs the whole daemon, side by side in one run.

    .venv/bin/python bench/ingest.py            # full run (a few minutes)
    .venv/bin/python bench/ingest.py --quick    # < 1 minute

Pre-encodes OTLP requests of 512 spans with realistic attributes (HTTP server/client spans, DB
spans, events, the odd link), then measures:

(a) ``engine``  — ClickHouse (embedded chDB) decoding + flattening + inserting the protobuf batches
    itself (``otel_ai.storage.decoders.engine``), in this process, no receivers;
(b) ``python``  — upb parse + Python flatten + column-oriented insert (``storage.decoders.python``);
    and, beside them, ``native`` — the C flatten into one Native block per batch
    (``storage.decoders.native``, the daemon's default decoder), in this process;
(c) the daemon end to end — ``python -m otel_ai serve`` as a subprocess on free ports with its own
    data dir, loaded over OTLP/HTTP (protobuf, then JSON, each against a fresh daemon and store) by a
    separate light load process using keep-alive socket clients (``_Conn``), which re-stamps every request
    (new ids, current times: unique spans, as real traffic; ``--static-bodies`` sends the same
    bodies again and again); spans/s acked and stored, p99 export latency, the daemon's peak RSS.

The daemon runs in both acknowledgement modes (``--ack both``, the default): ``pipeline.ack=insert``
(ack once rows are in ClickHouse; batches hold what the senders have in flight) and ``spool`` (ack
once fsynced to the write-ahead log; inserted from it in big batches). Prints ratios daemon/(a)
and daemon/(b) and the daemon's CPU per stored span for each. Issue-2 targets: protobuf >= 200k
spans/s stored on 2 cores, >= 0.7x (a), >= 2.5x (b); JSON >= 100k spans/s; RSS < 1 GiB under
overload. ``--breakdown`` prints the CPU per span of each step of the engine and native paths
instead.

(d) the storage alone — the daemon's tables, views and table settings, two threads inserting
fresh 16,384-span Native blocks back to back with background merges running, nothing else in the
process: the ceiling any ingest path has on this machine with this engine and schema. The summary
prints daemon/(d). ``--storage-alone`` runs only (d), with and without the topology component's
insert-time views and with LZ4 instead of ZSTD(1), to show where that ceiling comes from.

(e) ``--shapes 1,8,64`` — the load shapes users have: 1, 8 and 64 concurrent senders, protobuf
and JSON, each against a fresh daemon with the DEFAULT configuration, plus the engine alone
(ClickHouse's own Protobuf decode, one INSERT per ~100k spans into a contrib-shaped
``otel_traces`` with no views and no skip indexes, no daemon) before and after the daemon
phases in the same run. Prints, per shape, stored spans/s ÷ engine alone, CPU per span, peak
RSS, p99 export latency, the ack → queryable delay (a probe exporting one span every 0.5 s and
polling ``GET /api/v1/traces/{id}``) and acked vs stored (rows counted in the stopped daemon's
store: zero loss means stored >= acked). The CPU per span counts the daemon until the topology
ingest job has caught up (it yields to the inserts while they have a backlog: its catch-up is
part of the cost). ``--quick`` runs 10 s per phase (about 5 minutes).
The load average is printed with the figures: on a shared machine they are noisy.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import multiprocessing as mp
import os
import queue
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from google.protobuf.json_format import MessageToDict  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from otel_ai.model import Payload  # noqa: E402
from otel_ai.otlp.validate import validate  # noqa: E402

SPANS_PER_REQUEST = 512
SERVICES = ["frontend", "checkout", "cart", "payment", "shipping", "currency", "email", "recommendation"]
ROUTES = ["/api/cart", "/api/checkout", "/api/products/{id}", "/api/currency", "/healthz", "/api/ship"]


def _kv(target: Any, key: str, value: Any) -> None:
    kv = target.add()
    kv.key = key
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    elif isinstance(value, list):
        for v in value:
            kv.value.array_value.values.add(string_value=v)
    else:
        kv.value.string_value = value


def make_request(seed: int, now_ns: int, arrays: bool = False) -> ExportTraceServiceRequest:
    """One request: 8 resources x 64 spans, realistic semconv attributes.

    ``arrays`` adds a string-array resource attribute (``process.command_args``, as Node.js's
    process detector sets), which takes the engine's full (array/kvlist-capable) dialect.
    """
    rnd = random.Random(seed)
    req = ExportTraceServiceRequest()
    per_resource = SPANS_PER_REQUEST // len(SERVICES)
    for svc in SERVICES:
        rs = req.resource_spans.add()
        rs.schema_url = "https://opentelemetry.io/schemas/1.26.0"
        for k, v in (
            ("service.name", svc), ("service.version", "1.4.2"), ("service.namespace", "shop"),
            ("deployment.environment.name", "prod"), ("host.name", f"node-{rnd.randint(1, 9)}"),
            ("k8s.pod.name", f"{svc}-7d9f8-{rnd.randint(1000, 9999)}"), ("k8s.namespace.name", "shop"),
            ("telemetry.sdk.language", "python"), ("telemetry.sdk.name", "opentelemetry"),
            ("telemetry.sdk.version", "1.45.1"), ("process.pid", rnd.randint(1, 60000)),
        ):  # fmt: skip
            _kv(rs.resource.attributes, k, v)
        if arrays:
            _kv(rs.resource.attributes, "process.command_args", ["node", f"/app/{svc}.js", "--port=8080"])
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.flask"
        ss.scope.version = "0.66b1"
        trace_id = rnd.randbytes(16)
        parent = b""
        for i in range(per_resource):
            if i % 8 == 0:
                trace_id, parent = rnd.randbytes(16), b""
            sp = ss.spans.add()
            sp.trace_id = trace_id
            sp.span_id = rnd.randbytes(8)
            sp.parent_span_id = parent
            parent = sp.span_id
            start = now_ns - rnd.randint(0, 10**9)
            sp.start_time_unix_nano = start
            sp.end_time_unix_nano = start + rnd.randint(10**5, 5 * 10**8)
            sp.flags = 0x301
            route = rnd.choice(ROUTES)
            kind = rnd.choice((2, 3, 1))
            sp.kind = kind  # type: ignore[assignment]
            sp.name = f"GET {route}" if kind != 1 else "process"
            _kv(sp.attributes, "http.request.method", "GET")
            _kv(sp.attributes, "http.route", route)
            _kv(sp.attributes, "url.full", f"http://{svc}:8080{route}?q={rnd.randint(0, 10**6)}")
            _kv(sp.attributes, "http.response.status_code", rnd.choice((200, 200, 200, 404, 500)))
            _kv(sp.attributes, "server.address", f"{rnd.choice(SERVICES)}.shop.svc")
            _kv(sp.attributes, "server.port", 8080)
            _kv(sp.attributes, "network.protocol.version", "1.1")
            _kv(sp.attributes, "user_agent.original", "python-requests/2.32.3")
            if i % 5 == 0:
                _kv(sp.attributes, "db.system", "postgresql")
                _kv(sp.attributes, "db.statement", "SELECT * FROM carts WHERE user_id = $1")
                _kv(sp.attributes, "db.sampling_ratio", 0.25)
            if i % 16 == 0:
                ev = sp.events.add()
                ev.time_unix_nano = start + 1000
                ev.name = "exception"
                _kv(ev.attributes, "exception.type", "ValueError")
                _kv(ev.attributes, "exception.message", "bad cart id")
                sp.status.code = 2  # type: ignore[assignment]
                sp.status.message = "bad cart id"
            if i % 32 == 0:
                ln = sp.links.add()
                ln.trace_id = rnd.randbytes(16)
                ln.span_id = rnd.randbytes(8)
                _kv(ln.attributes, "messaging.system", "kafka")
    return req


def to_otlp_json(req: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON of ``req`` with hex ids (json_format would emit base64)."""
    doc = MessageToDict(req)
    for src, rs in zip(req.resource_spans, doc["resourceSpans"], strict=True):
        for ssrc, ss in zip(src.scope_spans, rs["scopeSpans"], strict=True):
            for psp, sp in zip(ssrc.spans, ss["spans"], strict=True):
                sp["traceId"], sp["spanId"] = psp.trace_id.hex(), psp.span_id.hex()
                if psp.parent_span_id:
                    sp["parentSpanId"] = psp.parent_span_id.hex()
                for pl, jl in zip(psp.links, sp.get("links", []), strict=True):
                    jl["traceId"], jl["spanId"] = pl.trace_id.hex(), pl.span_id.hex()
    return orjson.dumps(doc)


def payloads(n: int, encoding: str = "protobuf", arrays: bool = False) -> list[Payload]:
    now = time.time_ns()
    out = []
    for i in range(n):
        req = make_request(i, now, arrays)
        body = req.SerializeToString() if encoding == "protobuf" else to_otlp_json(req)
        p = validate("traces", encoding, "http", body)  # type: ignore[arg-type]
        # The client's bytes: the daemon transcodes JSON at validation, (a) and (b) decode it.
        out.append(dataclasses.replace(p, body=body, wire=None))
    return out


# -- unique spans on every send ------------------------------------------------------------------


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


# field number -> what it is, per message: "id"/"ts" are patched, a message name is walked into
_WALK: dict[str, dict[int, str]] = {
    "request": {1: "resource_spans"},
    "resource_spans": {2: "scope_spans"},
    "scope_spans": {2: "span"},
    "span": {1: "id", 2: "id", 4: "id", 7: "ts", 8: "ts", 11: "event", 13: "link"},
    "event": {1: "ts"},
    "link": {1: "id", 2: "id"},
}


def _pb_offsets(body: bytes) -> tuple[list[tuple[int, int]], list[int]]:
    """(offset, length) of every trace/span id and the offset of every fixed64 time in a request."""
    ids: list[tuple[int, int]] = []
    times: list[int] = []

    def walk(lo: int, hi: int, msg: str) -> None:
        i = lo
        while i < hi:
            key, i = _read_varint(body, i)
            num, wt = key >> 3, key & 7
            what = _WALK[msg].get(num)
            if wt == 0:
                _, i = _read_varint(body, i)
            elif wt == 1:
                if what == "ts":
                    times.append(i)
                i += 8
            elif wt == 5:
                i += 4
            elif wt == 2:
                n, i = _read_varint(body, i)
                if what == "id" and n:
                    ids.append((i, n))
                elif what in _WALK:
                    walk(i, i + n, what)
                i += n
            else:
                raise ValueError(f"wire type {wt} in {msg}")

    walk(0, len(body), "request")
    return ids, times


class FreshBodies:
    """Re-stamps a pre-encoded trace request on every send, cheaply: new ids, current times.

    Sending the same bodies over and over stores the same spans again and again, which
    ClickHouse compresses and merges far more cheaply than real traffic (and the trace-id and
    topology tables see the same few traces). Each ``next()`` maps the first 8 bytes (protobuf) or
    hex digits (JSON) of every id through a fresh random permutation — ids stay unique within the
    request, parent/child and link references stay consistent, and a send never repeats an
    earlier one — and moves every timestamp forward by the whole seconds elapsed since the bodies
    were made. numpy does it in well under 0.1 ms per 512-span request.
    """

    def __init__(self, body: bytes, encoding: str, made_ns: int, seed: int) -> None:
        import re

        import numpy as np

        self.np = np
        self.body = np.frombuffer(body, dtype=np.uint8)
        self.encoding = encoding
        self.made_s = made_ns // 10**9
        self.rnd = np.random.default_rng(seed)
        if encoding == "protobuf":
            ids, times = _pb_offsets(body)
            stamps = [(o, int.from_bytes(body[o : o + 8], "little")) for o in times]
        else:
            ids = [
                (a, b - a)
                for a, b in (
                    m.span(2) for m in re.finditer(rb'"(traceId|spanId|parentSpanId)":"([0-9a-fA-F]+)"', body)
                )
            ]
            found = re.finditer(rb'"(startTimeUnixNano|endTimeUnixNano|timeUnixNano)":"(\d{19})"', body)
            stamps = [(m.start(2), int(m.group(2))) for m in found]
            hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
            self.hex = hexd
        self.id_pos = (np.asarray([o for o, _ in ids])[:, None] + np.arange(8)).ravel()
        if encoding == "protobuf":
            self.ts_pos = np.asarray([o for o, _ in stamps])[:, None] + np.arange(8)
            self.ts0 = np.asarray([ns for _, ns in stamps], dtype=np.uint64)
        else:
            # 19-digit nanoseconds: the first 10 digits are the whole seconds, which only a few
            # distinct values share — rewrite each group's digits from one rendering.
            groups: dict[int, list[int]] = {}
            for off, ns in stamps:
                groups.setdefault(ns // 10**9, []).append(off)
            self.sec_groups = [
                (sec, np.asarray(offs)[:, None] + np.arange(10)) for sec, offs in groups.items()
            ]

    def next(self) -> bytes:
        np = self.np
        out = self.body.copy()
        shift = max(0, time.time_ns() // 10**9 - self.made_s)
        if self.encoding == "protobuf":
            out[self.id_pos] = self.rnd.permutation(256).astype(np.uint8)[out[self.id_pos]]
            ts = self.ts0 + np.uint64(shift * 10**9)
            out[self.ts_pos] = ts.astype("<u8").view(np.uint8).reshape(-1, 8)
        else:
            table = np.arange(256, dtype=np.uint8)
            table[self.hex] = self.hex[self.rnd.permutation(16)]
            out[self.id_pos] = table[out[self.id_pos]]
            for sec, pos in self.sec_groups:
                out[pos] = np.frombuffer(b"%d" % (sec + shift), dtype=np.uint8)
        return out.tobytes()


# -- (a) and (b): in-process decoders ------------------------------------------------------------


def bench_decoders(n_requests: int, batch: int) -> dict[str, float]:
    from otel_ai.storage.decoders.engine import EngineDecoder
    from otel_ai.storage.decoders.native import NativeDecoder
    from otel_ai.storage.decoders.python import write_python
    from otel_ai.testing.stores import storage_at

    pb = payloads(n_requests, "protobuf")
    js = payloads(max(4, n_requests // 4), "json")
    tmp = tempfile.mkdtemp(prefix="otel-ai-bench-")
    atexit.register(shutil.rmtree, tmp, True)  # the engine keeps it open until the process ends
    storage = storage_at(f"chdb://{tmp}/clickhouse", "bench")
    storage.start()
    engine = EngineDecoder(storage)
    native = NativeDecoder(storage, engine.write)
    results: dict[str, float] = {}

    def run(name: str, items: list[Payload], fn: Any) -> None:
        fn(items[:batch])  # warm-up (also creates parts)
        started, cpu0 = time.perf_counter(), time.process_time()
        for i in range(0, len(items), batch):
            fn(items[i : i + batch])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
        spans = sum(p.items for p in items)
        results[name] = spans / elapsed
        print(
            f"  {name:<30} {spans:>9,} spans in {elapsed:6.2f} s = {spans / elapsed:>10,.0f} spans/s"
            f"  ({cpu / spans * 1e6:5.1f} us CPU per span)",
            flush=True,
        )

    print(f"(a)/(b) in-process, batches of {batch} requests x {SPANS_PER_REQUEST} spans:")
    run("(a) engine protobuf", pb, engine.insert)
    run("(a) engine protobuf + arrays", payloads(n_requests, "protobuf", arrays=True), engine.insert)
    run("(b) python protobuf", pb, lambda b: write_python(storage, b))
    run("native (C) protobuf", pb, native.write)
    run("native (C) protobuf + arrays", payloads(n_requests, "protobuf", arrays=True), native.write)
    run("(a) engine json", js, engine.insert)
    run("(b) python json", js, lambda b: write_python(storage, b))
    total = storage.query("SELECT count() FROM bench.otel_traces")[0][0]
    print(f"  rows stored: {total:,}")
    storage.shutdown()
    return results


def bench_breakdown(n_requests: int) -> None:
    """CPU per span of each step of the engine path, in-process, one batch of ``n_requests``."""
    from otel_ai.analysis.topology.schema import MIGRATIONS
    from otel_ai.storage.decoders.engine import EngineDecoder
    from otel_ai.storage.decoders.native import NativeDecoder, traces_block
    from otel_ai.testing.stores import storage_at

    pb = payloads(n_requests)
    bodies = [p.body for p in pb]
    spans = sum(p.items for p in pb)
    tmp = tempfile.mkdtemp(prefix="otel-ai-bench-")
    atexit.register(shutil.rmtree, tmp, True)  # the engine keeps it open until the process ends
    core = storage_at(f"chdb://{tmp}/clickhouse", "core")
    core.start()
    core.command("CREATE TABLE core.null_traces AS core.otel_traces ENGINE = Null")
    topo = storage_at(core.dsn, "topo")
    topo.start()
    topo.apply_migrations("topology", MIGRATIONS)

    def cpu_us(fn: Any) -> float:
        best = float("inf")
        for _ in range(3):
            c0 = time.process_time()
            fn()
            best = min(best, time.process_time() - c0)
        return best / spans * 1e6

    to_null = EngineDecoder(core)
    run = to_null._run
    to_null._run = lambda sql: run(sql.replace("`core`.otel_traces", "`core`.null_traces"))  # type: ignore[method-assign]
    print(f"CPU per span, in-process, one batch of {n_requests} requests ({spans:,} spans), best of 3:")
    steps = [
        ("validate() (upb parse + id checks)", lambda: [validate("traces", "protobuf", "http", b) for b in bodies]),
        ("engine decode + flatten into a Null table", lambda: to_null.insert(pb)),
        ("engine into otel_traces (+ trace-id view)", lambda: EngineDecoder(core).insert(pb)),
        ("... plus the topology insert-time views", lambda: EngineDecoder(topo).insert(pb)),
        ("native: C flatten into a Native block", lambda: traces_block(pb)),
        ("native: block into a Null table", lambda: core.raw_insert("null_traces", traces_block(pb)[0], "Native")),
        ("native: into otel_traces (+ trace-id view)", lambda: NativeDecoder(core, print).write(pb)),
        ("native: ... plus the topology views", lambda: NativeDecoder(topo, print).write(pb)),
    ]  # fmt: skip
    for name, fn in steps:
        print(f"  {name:<44} {cpu_us(fn):6.1f} us")
    core.shutdown()


class PeakRss:
    """Samples a process's resident memory (with its children's) every 0.1 s in a thread."""

    def __init__(self, proc: Any) -> None:
        self.proc, self.peak = proc, 0
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                rss = self.proc.memory_info().rss
                rss += sum(c.memory_info().rss for c in self.proc.children(recursive=True))
            except psutil.Error:
                break
            self.peak = max(self.peak, rss)
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()


# -- (d) the storage alone: what any ingest path could reach on this machine ---------------------


def bench_storage_alone(
    seconds: float,
    threads: int = 2,
    batch_requests: int = 32,
    topology_views: bool = True,
    lz4: bool = False,
    root: str | None = None,
) -> dict[str, float]:
    """The daemon's tables, views and table settings, fed by ``threads`` threads back to back.

    Each thread re-stamps requests (:class:`FreshBodies`: unique spans, as the daemon phases send),
    flattens them in C and inserts ``batch_requests`` at a time (32 x 512 = 16,384 spans: the
    batch the daemon forms under 64 senders) through the daemon's own native decoder, for
    ``seconds``; background merges run as in the daemon, and after the window the merges it left
    behind are run to the end and counted. Nothing else runs: no HTTP, no validation, no queue, no
    analyzers — the spans/s stored is the ceiling of any ingest path writing this schema into
    this engine on this machine. Variants: without the topology component (its tables, and the
    ingest job that fills them from otel_traces every 2 s, as the daemon runs it, caught up after
    the window and counted in the settled CPU);
    with LZ4 instead of ZSTD(1) on ``otel_traces`` (not what the contrib exporter's DDL says).
    """
    import psutil

    from otel_ai.analysis.topology.schema import MIGRATIONS
    from otel_ai.storage.client import Storage
    from otel_ai.storage.config import StorageConfig
    from otel_ai.storage.decoders.native import NativeDecoder

    tmp = root or tempfile.mkdtemp(prefix="otel-ai-bench-alone-")
    # The daemon's storage settings (MergeTree tuning, deferred attribute indexes).
    storage = Storage(StorageConfig(dsn=f"chdb://{tmp}/clickhouse", database="alone"))
    storage.start()
    job: Any = None
    if topology_views:  # the topology component: its tables, and the ingest job that fills them
        storage.apply_migrations("topology", MIGRATIONS)
        from otel_ai.analysis.topology.ingest import SpanIngest

        job = SpanIngest(storage, batch_rows=2_000_000)
    if lz4:
        columns = "SELECT name, type, compression_codec FROM system.columns WHERE database = 'alone'"
        for name, type_, codec in storage.query(f"{columns} AND table = 'otel_traces'"):
            if "ZSTD(1)" in codec:
                storage.command(
                    f"ALTER TABLE alone.otel_traces MODIFY COLUMN `{name}` {type_} {codec.replace('ZSTD(1)', 'LZ4')}"
                )
    made_ns = time.time_ns()
    templates = payloads(64)
    stored = [0] * threads
    last_done = [0.0] * threads
    restamp_s = [0.0] * threads
    rss = PeakRss(psutil.Process())

    def declined(batch: Any) -> None:
        raise RuntimeError("storage alone: the native decoder declined the benchmark's spans")

    def loop(k: int) -> None:
        native = NativeDecoder(storage, declined)
        fresh = [FreshBodies(p.body, "protobuf", made_ns, 1000 * k + i) for i, p in enumerate(templates)]
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            batch = []
            for _ in range(batch_requests):
                j = i % len(templates)
                batch.append(dataclasses.replace(templates[j], body=fresh[j].next()))
                i += 1
            restamp_s[k] += time.perf_counter() - t0
            native.write(batch)
            stored[k] += sum(p.items for p in batch)
            last_done[k] = time.perf_counter()

    def job_loop() -> None:  # as the daemon's scheduler runs it: every 2 s
        while time.perf_counter() < deadline:
            job.run()
            time.sleep(2.0)

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    if job is not None:
        workers.append(threading.Thread(target=job_loop))
    started, cpu0 = time.perf_counter(), time.process_time()
    deadline = started + seconds
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed, cpu = max(last_done) - started, time.process_time() - cpu0
    spans = sum(stored)
    while job is not None and job.run():  # what the window left for the job: counted below
        pass
    settle_deadline = time.perf_counter() + 120
    while time.perf_counter() < settle_deadline and storage.query("SELECT count() FROM system.merges")[0][0]:
        time.sleep(0.5)
    cpu_settled = time.process_time() - cpu0
    rss.stop()
    in_table = storage.query("SELECT count() FROM alone.otel_traces")[0][0]
    storage.shutdown()
    if in_table != spans:
        raise RuntimeError(f"storage alone: {spans:,} spans inserted but {in_table:,} in the table")
    out = {
        "stored_per_s": spans / elapsed,
        "cpu_us_per_span": cpu / spans * 1e6,
        "settled_us_per_span": cpu_settled / spans * 1e6,
        "restamp_us_per_span": sum(restamp_s) / spans * 1e6,
        "peak_rss_mib": rss.peak / 2**20,
    }
    label = ", ".join(
        [
            "topology tables + ingest job" if topology_views else "no topology tables",
            "LZ4" if lz4 else "ZSTD(1) (contrib DDL)",
        ]
    )
    print(
        f"  (d) {label}: {spans:,} spans in {elapsed:.1f} s = {out['stored_per_s']:,.0f} spans/s stored; "
        f"CPU per span {out['cpu_us_per_span']:.1f} us in the window (incl. "
        f"{out['restamp_us_per_span']:.1f} us re-stamping), {out['settled_us_per_span']:.1f} us with the merges "
        f"it left behind; peak RSS {out['peak_rss_mib']:,.0f} MiB",
        flush=True,
    )
    return out


def _storage_alone_child(q: Any, kwargs: dict[str, Any]) -> None:
    q.put(bench_storage_alone(**kwargs))


def storage_alone(seconds: float, **kwargs: Any) -> dict[str, float]:
    """:func:`bench_storage_alone` in a fresh process: chDB opens one engine path per process, and
    each variant's merges, CPU and RSS are its own."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    root = tempfile.mkdtemp(prefix="otel-ai-bench-alone-")
    child = ctx.Process(target=_storage_alone_child, args=(q, {"seconds": seconds, "root": root, **kwargs}))
    child.start()
    try:
        while True:
            try:
                out: dict[str, float] = q.get(timeout=5)
                break
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"(d) ended without a result (exit code {child.exitcode})") from None
    finally:
        child.join()
        shutil.rmtree(root, ignore_errors=True)
    return out


# -- (c) the daemon end to end ------------------------------------------------------------------


def _send(
    url: str, bodies: list[bytes], ctype: str, seconds: float, conc: int, made_ns: int
) -> dict[str, Any]:
    """Post ``bodies`` for ``seconds`` from ``conc`` senders in a spawned process; its results."""
    q: Any = mp.get_context("spawn").Queue()
    worker = mp.get_context("spawn").Process(
        target=_load_worker, args=(url, bodies, ctype, seconds, conc, q, made_ns)
    )
    worker.start()
    res: dict[str, Any] = q.get()
    worker.join()
    return res


def _drain(api_url: str, timeout_s: float, settle_s: float = 1.5, poll_s: float = 0.1) -> tuple[int, float]:
    """Wait until the stored counter stops moving: (its last value, the drain time in seconds).

    The drain time ends at the first poll that saw the final value (it then held for
    ``settle_s``), so it overstates the true drain by at most one poll. (Until 2026-12-02 it was
    the whole wait minus 1.5 s with 0.5-s polls: 0.5-1.0 s too long, 5-10 % of a 10-s phase.)
    """
    t_end = time.perf_counter()
    last, seen_at = _stored(api_url), 0.0
    while time.perf_counter() - t_end < timeout_s:
        time.sleep(poll_s)
        cur = _stored(api_url)
        now = time.perf_counter() - t_end
        if cur != last:
            last, seen_at = cur, now
        elif now - seen_at >= settle_s:
            break
    return last, seen_at


class _Conn:
    """One keep-alive HTTP/1.1 connection posting bodies: a few dozen lines of socket code.

    The load generator shares the machine's cores with the daemon, and a lone sender waits for
    its own client code on every request: httpx spent ~1 ms of Python per 445 KB request here
    (5.3-9.2 ms round trips against 4.4-8.5 with this client, same daemon, same bodies), which
    the engine-alone reference never pays. The issue's own measurement used wrk (C).
    """

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        import urllib.parse

        u = urllib.parse.urlsplit(url)
        self.addr, self.path, self.timeout_s = (u.hostname or "127.0.0.1", u.port or 80), u.path, timeout_s
        self.sock: Any = None
        self.buf = b""

    def post(self, body: bytes, content_type: str) -> tuple[int, float]:
        """(status, Retry-After seconds or 0) for one POST; reconnects once if the peer closed."""
        import socket

        for attempt in (0, 1):
            if self.sock is None:
                self.sock = socket.create_connection(self.addr, timeout=self.timeout_s)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.buf = b""
            try:
                head = (
                    f"POST {self.path} HTTP/1.1\r\nHost: {self.addr[0]}:{self.addr[1]}\r\n"
                    f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                self.sock.sendall(head.encode() + body if len(body) < 65536 else head.encode())
                if len(body) >= 65536:
                    self.sock.sendall(body)
                return self._response()
            except (ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _response(self) -> tuple[int, float]:
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
        if b"content-length" not in fields:
            raise ConnectionError(f"a response without Content-Length: {head[:200]!r}")
        n = int(fields[b"content-length"])
        while len(rest) < n:
            self.buf = rest
            self._recv()
            rest = self.buf
        self.buf = rest[n:]
        if fields.get(b"connection", b"").lower() == b"close":
            self.close()
        retry = fields.get(b"retry-after", b"")
        return status, float(retry) if retry.replace(b".", b"", 1).isdigit() else 0.0

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the daemon closed the connection")
        self.buf += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def _load_worker(
    url: str, bodies: list[bytes], content_type: str, seconds: float, conc: int, q: Any, made_ns: int = 0
) -> None:
    """Runs in a separate process: ``conc`` threads POSTing pre-encoded bodies for ``seconds``.

    With ``made_ns`` (when the bodies were made) every send is re-stamped (:class:`FreshBodies`):
    new ids, timestamps moved to the present; without it the same bodies go out again and again.
    Each sender re-stamps its next body on a helper thread while the current one is in flight,
    so a lone sender's requests follow each other as closely as a C client's would.
    """
    encoding = "protobuf" if "protobuf" in content_type else "json"
    fresh = [FreshBodies(b, encoding, made_ns, seed) for seed, b in enumerate(bodies)] if made_ns else None

    latencies: list[float] = []
    acked = refused = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def stamped(k: int, out: queue.Queue[bytes | None]) -> None:
        i = k
        while time.perf_counter() < deadline:
            assert fresh is not None
            out.put(fresh[i % len(bodies)].next())
            i += conc
        out.put(None)

    def loop(k: int) -> None:
        nonlocal acked, refused
        conn = _Conn(url)
        ready: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        if fresh:
            threading.Thread(target=stamped, args=(k, ready), daemon=True).start()
        i = k
        try:
            while time.perf_counter() < deadline:
                if fresh:
                    body = ready.get()
                    if body is None:
                        break
                else:
                    body = bodies[i % len(bodies)]
                    i += conc
                t0 = time.perf_counter()
                status, retry_after = conn.post(body, content_type)
                dt = time.perf_counter() - t0
                with lock:
                    if status == 200:
                        acked += 1
                        latencies.append(dt)
                    else:
                        refused += 1
                if status != 200:
                    time.sleep(retry_after or 0.2)
        finally:
            conn.close()

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(conc)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q.put({"acked": acked, "refused": refused, "elapsed": time.perf_counter() - started, "lat": latencies})


def _insert_stats(api_url: str) -> tuple[int, float]:
    """(batches inserted, seconds spent in writer.write) from the daemon's status and /metrics."""
    import httpx

    pipe = httpx.get(f"{api_url}/api/v1/status", timeout=10).json().get("pipeline") or {}
    seconds = 0.0
    for line in httpx.get(f"{api_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("otel_ai_writer_insert_seconds_sum"):
            seconds += float(line.rsplit(" ", 1)[1])
    return int(pipe.get("inserted_batches", 0)), seconds


def _stored(api_url: str) -> int:
    import httpx

    status = httpx.get(f"{api_url}/api/v1/status", timeout=10).json()
    pipe = status.get("pipeline") or {}
    for key in ("inserted_items", "items_inserted", "inserted"):
        if isinstance(pipe.get(key), int):
            return int(pipe[key])
        if isinstance(pipe.get(key), dict):
            return int(sum(v for v in pipe[key].values() if isinstance(v, int)))
    return -1


def bench_daemon(
    seconds: float,
    conc: int,
    n_bodies: int,
    decoder: str,
    env: dict[str, str] | None = None,
    static_bodies: bool = False,
) -> dict[str, dict[str, float]]:
    """Each encoding against its own fresh daemon and empty store.

    (Until 2026-11-29 the JSON phase ran in the daemon the protobuf phase had just loaded with
    millions of spans: it paid for the merges of that backlog, and with fresh spans a second
    phase costs ~25 % more CPU per span whatever its encoding.)
    """
    out: dict[str, dict[str, float]] = {}
    for encoding in ENCODING_PHASES:
        out.update(_bench_daemon_phases(seconds, conc, n_bodies, decoder, env, static_bodies, (encoding,)))
    out["rss"] = {"peak_mib": max(r["peak_rss_mib"] for k, r in out.items() if k in ENCODING_PHASES)}
    return out


ENCODING_PHASES = ("protobuf", "json")
_CONTENT_TYPES = {"protobuf": "application/x-protobuf", "json": "application/json"}


def _bench_daemon_phases(
    seconds: float,
    conc: int,
    n_bodies: int,
    decoder: str,
    env: dict[str, str] | None,
    static_bodies: bool,
    encodings: tuple[str, ...],
) -> dict[str, dict[str, float]]:
    import httpx
    import psutil

    from otel_ai.testing.daemons import SubprocessDaemon

    data = Path(tempfile.mkdtemp(prefix="otel-ai-bench-daemon-"))
    daemon = SubprocessDaemon(data, extra_env={"OTEL_AI_PIPELINE__DECODER": decoder, **(env or {})}).start()
    proc = psutil.Process(daemon.proc.pid)  # type: ignore[union-attr]
    rss = PeakRss(proc)
    out: dict[str, dict[str, float]] = {}
    try:
        for encoding in encodings:
            ctype = _CONTENT_TYPES[encoding]
            made_ns = time.time_ns()
            bodies = [p.body for p in payloads(n_bodies, encoding)]
            before = _stored(daemon.api_url)
            batches0, insert_s0 = _insert_stats(daemon.api_url)
            cpu0 = sum(proc.cpu_times()[:2])
            url = f"{daemon.ep.http_url}/v1/traces"
            res = _send(url, bodies, ctype, seconds, conc, 0 if static_bodies else made_ns)
            last, drain = _drain(daemon.api_url, 60)
            lat = sorted(res["lat"]) or [0.0]
            acked_spans = res["acked"] * SPANS_PER_REQUEST
            stored = last - before if last >= 0 else -1
            out[encoding] = {
                "acked_per_s": acked_spans / res["elapsed"],
                "stored_per_s": stored / (res["elapsed"] + drain) if stored >= 0 else float("nan"),
                "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
                "refused": res["refused"],
                "acked": acked_spans,
                "stored": stored,
            }
            cpu = sum(proc.cpu_times()[:2]) - cpu0
            batches1, insert_s1 = _insert_stats(daemon.api_url)
            nb = max(1, batches1 - batches0)
            out[encoding]["avg_batch"] = stored / nb
            out[encoding]["avg_insert_s"] = (insert_s1 - insert_s0) / nb
            out[encoding]["insert_busy"] = (insert_s1 - insert_s0) / (res["elapsed"] + drain)
            # CPU per stored span is what the machine's other load disturbs least; 2 cores at
            # 100% would store 2 / cpu_us_per_span spans per microsecond.
            out[encoding]["cpu_us_per_span"] = cpu / max(1, stored) * 1e6
            r = out[encoding]
            print(
                f"  daemon {encoding:<8} acked {r['acked_per_s']:>9,.0f} spans/s  stored "
                f"{r['stored_per_s']:>9,.0f} spans/s  p99 {r['p99_ms']:7.1f} ms  "
                f"refused(503) {int(r['refused'])}  ({int(r['acked']):,} acked, {int(r['stored']):,} stored)",
                flush=True,
            )
            r["peak_rss_mib"] = rss.peak / 2**20
            print(
                f"           peak RSS {r['peak_rss_mib']:,.0f} MiB; "
                f"batches: {r['avg_batch']:,.0f} spans avg, {r['avg_insert_s']:.2f} s per writer.write, "
                f"writer busy {r['insert_busy']:.2f} worker-seconds per second, daemon CPU "
                f"{r['cpu_us_per_span']:.1f} us per stored span (= {2e6 / r['cpu_us_per_span']:,.0f} spans/s "
                "if 2 cores were all its own)",
                flush=True,
            )
            mem = httpx.get(f"{daemon.api_url}/api/v1/status", timeout=10).json().get("memory") or {}
            if mem.get("enabled"):
                print(
                    f"           memory guard: {mem['refusal_periods']} periods above the soft limit "
                    f"({mem['soft_limit_bytes'] / 2**20:,.0f} MiB), {mem['purges']} purges releasing "
                    f"{mem['purged_bytes'] / 2**20:,.0f} MiB",
                    flush=True,
                )
    finally:
        rss.stop()
        daemon.terminate()
        shutil.rmtree(data, ignore_errors=True)
    return out


# -- (e) load shapes: 1, 8, 64 senders, default config, against the engine alone ---------------

REF_SPANS_PER_INSERT = 100_000


def bench_engine_reference(seconds: float, root: str | None = None) -> dict[str, float]:
    """The engine alone: ClickHouse's own Protobuf decode, one INSERT per ~100k spans, into a
    contrib-shaped ``otel_traces`` with no views and no skip indexes; no daemon, no HTTP.

    The reference every load shape is divided by: what this engine stores per second on this
    machine, right now, when nothing but decoding and inserting runs (re-stamped, unique spans).
    """
    import re

    from otel_ai.storage.decoders.engine import EngineDecoder
    from otel_ai.testing.stores import storage_at

    tmp = root or tempfile.mkdtemp(prefix="otel-ai-bench-ref-")
    core = storage_at(f"chdb://{tmp}/clickhouse", "core")
    core.start()
    ddl = core.query("SHOW CREATE TABLE core.otel_traces")[0][0]
    ddl = "\n".join(line for line in ddl.splitlines() if not line.strip().startswith("INDEX "))
    ddl = re.sub(r",\s*\)", "\n)", ddl, count=1)  # the comma the last INDEX line leaves behind
    core.command("CREATE DATABASE IF NOT EXISTS ref")
    core.command(ddl.replace("core.otel_traces", "ref.otel_traces", 1))
    views = core.query(
        "SELECT count() FROM system.tables WHERE database = 'ref' AND engine = 'MaterializedView'"
    )[0][0]
    indexes = core.query("SELECT count() FROM system.data_skipping_indices WHERE database = 'ref'")[0][0]
    assert views == 0 and indexes == 0, (views, indexes)
    engine = EngineDecoder(core)
    run = engine._run
    engine._run = lambda sql: run(sql.replace("`core`.otel_traces", "`ref`.otel_traces"))  # type: ignore[method-assign]
    made_ns = time.time_ns()
    templates = payloads(64)
    fresh = [FreshBodies(p.body, "protobuf", made_ns, i) for i, p in enumerate(templates)]
    per_insert = -(-REF_SPANS_PER_INSERT // SPANS_PER_REQUEST)
    stored, i, restamp = 0, 0, 0.0
    started, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        batch = []
        for _ in range(per_insert):
            j = i % len(templates)
            batch.append(dataclasses.replace(templates[j], body=fresh[j].next()))
            i += 1
        restamp += time.perf_counter() - t0
        engine.insert(batch)
        stored += sum(p.items for p in batch)
    elapsed, cpu = time.perf_counter() - started - restamp, time.process_time() - cpu0
    in_table = core.query("SELECT count() FROM ref.otel_traces")[0][0]
    core.shutdown()
    if in_table != stored:
        raise RuntimeError(f"engine alone: {stored:,} spans inserted but {in_table:,} in the table")
    out = {"stored_per_s": stored / elapsed, "cpu_us_per_span": cpu / stored * 1e6, "spans": stored}
    print(
        f"  engine alone: {stored:,} spans in {elapsed:.1f} s (re-stamping excluded) = "
        f"{out['stored_per_s']:,.0f} spans/s, {out['cpu_us_per_span']:.1f} us CPU per span  "
        f"[load avg {_loadavg()}]",
        flush=True,
    )
    return out


def _engine_reference_child(q: Any, seconds: float, root: str) -> None:
    q.put(bench_engine_reference(seconds, root))


def engine_reference(seconds: float) -> dict[str, float]:
    """:func:`bench_engine_reference` in a fresh process (its own engine, CPU and memory)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    root = tempfile.mkdtemp(prefix="otel-ai-bench-ref-")
    child = ctx.Process(target=_engine_reference_child, args=(q, seconds, root))
    child.start()
    try:
        while True:
            try:
                out: dict[str, float] = q.get(timeout=5)
                break
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(
                        f"engine alone ended without a result (exit {child.exitcode})"
                    ) from None
    finally:
        child.join()
        shutil.rmtree(root, ignore_errors=True)
    return out


def _loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


class VisibilityProbe:
    """Measures read-after-write: every ``interval_s`` one single-span request is exported and
    ``GET /api/v1/traces/{id}`` polled until it answers; the delay is ack → queryable."""

    def __init__(self, otlp_url: str, api_url: str, interval_s: float = 0.5) -> None:
        self.otlp_url, self.api_url, self.interval_s = otlp_url, api_url, interval_s
        self.delays: list[float] = []
        self.unseen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> VisibilityProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=30.0) as client:
            while not self._stop.wait(self.interval_s):
                req = ExportTraceServiceRequest()
                span = req.resource_spans.add().scope_spans.add().spans.add()
                rs = req.resource_spans[0]
                _kv(rs.resource.attributes, "service.name", "visibility-probe")
                trace_id = os.urandom(16)
                span.trace_id, span.span_id, span.name = trace_id, os.urandom(8), "probe"
                now = time.time_ns()
                span.start_time_unix_nano, span.end_time_unix_nano = now - 1000, now
                r = client.post(
                    self.otlp_url,
                    content=req.SerializeToString(),
                    headers={"Content-Type": "application/x-protobuf"},
                )
                if r.status_code != 200:
                    continue
                acked = time.perf_counter()
                while time.perf_counter() - acked < 30:
                    if client.get(f"{self.api_url}/api/v1/traces/{trace_id.hex()}").status_code == 200:
                        self.delays.append(time.perf_counter() - acked)
                        break
                    time.sleep(0.02)
                else:
                    self.unseen += 1


def _metric(api_url: str, name: str) -> float:
    import httpx

    for line in httpx.get(f"{api_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def _topology_caught_up(api_url: str, stored: int, timeout_s: float) -> float:
    """Wait until the topology ingest job has copied ``stored`` spans; the seconds it took."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        if _metric(api_url, "otel_ai_topology_ingest_spans_total") >= stored:
            break
        time.sleep(0.25)
    return time.perf_counter() - t0


def _rows_in_store(data_dir: Path) -> int:
    """Spans in the stopped daemon's store (read from disk by a fresh process)."""
    code = (
        "import sys; from otel_ai.testing.stores import storage_at; "
        "s = storage_at(sys.argv[1], 'otel'); s.start(); "
        "print(s.query(\"SELECT count() FROM otel.otel_traces WHERE ServiceName != 'visibility-probe'\")[0][0]); "
        "s.shutdown()"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code, f"chdb://{data_dir / 'clickhouse'}"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"counting the store failed: {out.stderr[-2000:]}")
    return int(out.stdout.strip().splitlines()[-1])


def bench_shape(
    seconds: float, conc: int, encoding: str, n_bodies: int, env: dict[str, str] | None = None
) -> dict[str, float]:
    """One load shape against a fresh default-config daemon (``env``: ``--daemon-env`` overrides)."""
    import psutil

    from otel_ai.testing.daemons import SubprocessDaemon

    data = Path(tempfile.mkdtemp(prefix="otel-ai-bench-shape-"))
    daemon = SubprocessDaemon(data, extra_env=env or {}).start()  # default config: only ports, paths
    proc = psutil.Process(daemon.proc.pid)  # type: ignore[union-attr]
    rss = PeakRss(proc)
    try:
        made_ns = time.time_ns()
        bodies = [p.body for p in payloads(n_bodies, encoding)]
        cpu0 = sum(proc.cpu_times()[:2])
        before = _stored(daemon.api_url)
        url = f"{daemon.ep.http_url}/v1/traces"
        probe = VisibilityProbe(url, daemon.api_url).start()
        res = _send(url, bodies, _CONTENT_TYPES[encoding], seconds, conc, made_ns)
        probe.stop()
        last, drain = _drain(daemon.api_url, 120)
        # The topology ingest job may have yielded to the inserts (topology.ingest_max_lag_s):
        # its catch-up is part of the cost of these spans, so the CPU is taken once it is done.
        catch_up = _topology_caught_up(daemon.api_url, last, 180)
        deferred = _metric(daemon.api_url, "otel_ai_topology_ingest_deferred_runs")
        cpu = sum(proc.cpu_times()[:2]) - cpu0
        probes = len(probe.delays) + probe.unseen
        stored_counter = last - before - probes
    finally:
        rss.stop()
        daemon.terminate()
    try:
        in_store = _rows_in_store(data)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    lat = sorted(res["lat"]) or [0.0]
    vis = sorted(probe.delays) or [float("nan")]
    acked = res["acked"] * SPANS_PER_REQUEST
    out = {
        "senders": conc,
        "acked": acked,
        "stored": in_store,
        "stored_counter": stored_counter,
        "lost": max(0, acked - in_store),
        "refused": res["refused"],
        "stored_per_s": in_store / (res["elapsed"] + drain),
        "acked_per_s": acked / res["elapsed"],
        "cpu_us_per_span": cpu / max(1, in_store) * 1e6,
        "peak_rss_mib": rss.peak / 2**20,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "vis_p50_ms": vis[len(vis) // 2] * 1000,
        "vis_max_ms": vis[-1] * 1000,
        "vis_unseen": probe.unseen,
        "drain_s": drain,
        "catch_up_s": catch_up,
        "deferred_runs": deferred,
    }
    print(
        f"  {conc:>3} senders {encoding:<8} stored {out['stored_per_s']:>9,.0f} spans/s  acked "
        f"{int(acked):,} stored {in_store:,} (lost {int(out['lost'])})  refused(503) {res['refused']}  "
        f"p99 {out['p99_ms']:.0f} ms  CPU {out['cpu_us_per_span']:.1f} us/span  RSS "
        f"{out['peak_rss_mib']:,.0f} MiB  ack->queryable p50 {out['vis_p50_ms']:.0f} ms max "
        f"{out['vis_max_ms']:.0f} ms ({len(probe.delays)} probes)  topology caught up {catch_up:.1f} s "
        f"after the drain ({deferred:.0f} runs deferred)  [load avg {_loadavg()}]",
        flush=True,
    )
    return out


SHAPE_TARGETS = {("protobuf", 1): 0.4, ("protobuf", 8): 0.7, ("protobuf", 64): 0.8}


def bench_shapes(
    shapes: list[int], encodings: list[str], seconds: float, n_bodies: int, env: dict[str, str] | None = None
) -> None:
    """Every shape x encoding against the default daemon, the engine alone before and after."""
    print(f"engine alone (reference), {seconds:.0f} s:")
    refs = [engine_reference(seconds)]
    results: dict[tuple[str, int], dict[str, float]] = {}
    print(f"daemon, default config + {env or {}}, OTLP/HTTP, {seconds:.0f} s per shape, unique spans:")
    for encoding in encodings:
        for conc in shapes:
            results[(encoding, conc)] = bench_shape(seconds, conc, encoding, n_bodies, env)
    print("engine alone (reference) again, after the daemon phases:")
    refs.append(engine_reference(seconds))
    ref = sum(r["stored_per_s"] for r in refs) / len(refs)
    each = ", ".join(f"{r['stored_per_s']:,.0f}" for r in refs)
    print(
        f"\nsummary — engine alone {ref:,.0f} spans/s (mean of {each}); "
        f"load avg {_loadavg()}; {os.cpu_count()} CPUs visible"
    )
    print(
        "  | encoding | senders | stored spans/s | ÷ engine alone | target | CPU µs/span | peak RSS MiB "
        "| p99 export ms | ack→queryable p50 / max ms | topology catch-up s | acked | stored | lost |"
    )
    print("  |---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (encoding, conc), r in results.items():
        target = SHAPE_TARGETS.get((encoding, conc), 0.5 if encoding == "json" else 0.0)
        print(
            f"  | {encoding} | {conc} | {r['stored_per_s']:,.0f} | {r['stored_per_s'] / ref:.2f} | ≥ {target:.1f} "
            f"| {r['cpu_us_per_span']:.1f} | {r['peak_rss_mib']:,.0f} | {r['p99_ms']:.0f} "
            f"| {r['vis_p50_ms']:.0f} / {r['vis_max_ms']:.0f} | {r['catch_up_s']:.1f} "
            f"| {int(r['acked']):,} | {int(r['stored']):,} "
            f"| {int(r['lost'])} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run, < 1 minute")
    ap.add_argument("--no-daemon", action="store_true", help="only (a) and (b)")
    ap.add_argument(
        "--decoder", default="native", choices=("native", "engine", "python"), help="daemon decoder"
    )
    ap.add_argument(
        "--daemon-env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the daemon, e.g. OTEL_AI_PIPELINE__BATCH_MIN_ITEMS=20000",
    )  # fmt: skip
    ap.add_argument("--senders", type=int, default=0, help="concurrent senders (default 32 quick, 64 full)")
    ap.add_argument("--ack", default="both", choices=("insert", "spool", "both"), help="pipeline.ack mode(s)")
    ap.add_argument(
        "--breakdown",
        action="store_true",
        help="only the CPU-per-span breakdown of the engine and native paths",
    )
    ap.add_argument(
        "--static-bodies",
        action="store_true",
        help="send the pre-encoded bodies unchanged, again and again (before 2026-11-29 the only "
        "mode; the same spans compress and merge far more cheaply than real traffic)",
    )
    ap.add_argument(
        "--storage-alone",
        action="store_true",
        help="only (d), the storage alone, in four variants: with and without the topology views, "
        "ZSTD(1) and LZ4",
    )
    ap.add_argument(
        "--shapes",
        default="",
        metavar="1,8,64",
        help="only the load shapes: these sender counts x --encodings against the default daemon, with "
        "the engine-alone reference in the same run (--quick: 10 s each)",
    )
    ap.add_argument("--encodings", default="protobuf,json", help="encodings of the --shapes phases")
    ap.add_argument("--seconds", type=float, default=0, help="seconds per phase (overrides the size)")
    args = ap.parse_args()
    if args.shapes:
        secs = args.seconds or (10.0 if args.quick else 20.0)
        print(f"otel-ai ingest load shapes ({'quick' if args.quick else 'full'}), load avg {_loadavg()}")
        bench_shapes(
            [int(x) for x in args.shapes.split(",")],
            args.encodings.split(","),
            secs,
            16 if args.quick else 64,
            dict(kv.split("=", 1) for kv in args.daemon_env),
        )
        return
    if args.breakdown:
        bench_breakdown(50)
        return
    n, batch, seconds, conc = (24, 12, 8.0, 32) if args.quick else (200, 50, 30.0, 64)
    conc = args.senders or conc
    print(f"otel-ai ingest benchmark ({'quick' if args.quick else 'full'}), {os.cpu_count()} CPUs visible")
    print(f"(d) the storage alone: 2 threads insert 16,384 fresh spans at a time, {seconds:.0f} s:")
    if args.storage_alone:
        for views, lz4 in ((True, False), (True, True), (False, False), (False, True)):
            storage_alone(seconds, topology_views=views, lz4=lz4)
        return
    alone = storage_alone(seconds)
    dec = bench_decoders(n, batch)
    if args.no_daemon:
        print(f"ratio (a)/(b) protobuf: {dec['(a) engine protobuf'] / dec['(b) python protobuf']:.2f}x")
        return
    env = dict(kv.split("=", 1) for kv in args.daemon_env)
    modes = ("insert", "spool") if args.ack == "both" else (args.ack,)
    runs: dict[str, dict[str, dict[str, float]]] = {}
    for ack in modes:
        print(
            f"(c) daemon end to end over OTLP/HTTP, decoder={args.decoder}, pipeline.ack={ack}, "
            f"{conc} concurrent senders:"
        )
        runs[ack] = bench_daemon(
            seconds,
            conc,
            16 if args.quick else 64,
            args.decoder,
            {"OTEL_AI_PIPELINE__ACK": ack, **env},
            static_bodies=args.static_bodies,
        )
    a, b = dec["(a) engine protobuf"], dec["(b) python protobuf"]
    heads = "".join(f"{'ack=' + m:>14}" for m in modes)
    print(f"\nsummary (spans/s)              {heads}    target")

    def row(label: str, values: list[str], target: str) -> None:
        print(f"  {label:<29}{''.join(f'{v:>14}' for v in values)}    {target}")

    row(
        "daemon protobuf stored", [f"{runs[m]['protobuf']['stored_per_s']:,.0f}" for m in modes], ">= 200,000"
    )
    row("daemon json stored", [f"{runs[m]['json']['stored_per_s']:,.0f}" for m in modes], ">= 100,000")
    row(
        "daemon / (a) engine alone",
        [f"{runs[m]['protobuf']['stored_per_s'] / a:.2f}x" for m in modes],
        ">= 0.7x",
    )
    row("daemon / (b) python", [f"{runs[m]['protobuf']['stored_per_s'] / b:.2f}x" for m in modes], ">= 2.5x")
    row(
        "daemon / (d) storage alone",
        [f"{runs[m]['protobuf']['stored_per_s'] / alone['stored_per_s']:.2f}x" for m in modes],
        f"(d) = {alone['stored_per_s']:,.0f} spans/s, the ceiling here",
    )
    row("daemon json / (a) engine json",
        [f"{runs[m]['json']['stored_per_s'] / dec['(a) engine json']:.2f}x" for m in modes], "")  # fmt: skip
    row("daemon CPU per stored span", [f"{runs[m]['protobuf']['cpu_us_per_span']:.1f} us" for m in modes], "")
    row("daemon peak RSS", [f"{runs[m]['rss']['peak_mib']:,.0f} MiB" for m in modes], "< 1024 MiB")
    print(f"  (a) / (b) protobuf: {a / b:.2f}x")


if __name__ == "__main__":
    main()
