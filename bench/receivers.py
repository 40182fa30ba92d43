"""Receivers + pipeline ceiling: the OTLP listeners and the queue with a writer that does nothing.

    .venv/bin/python bench/receivers.py [--requests 600] [--concurrency 32] [--spans 512]

Separates the cost of the ingest front (HTTP/gRPC handling, validation, queueing, batching,
acknowledgement) from the cost of decoding + inserting (``bench/ingest.py``). Load comes from a
separate process (httpx threads for HTTP, a grpc channel for gRPC) with pre-encoded protobuf
requests. Prints spans/s acked and the daemon-side CPU per request, for both transports.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry  # noqa: E402

from otel_ai.config import load_config  # noqa: E402
from otel_ai.ingest import Receivers  # noqa: E402
from otel_ai.model import Payload  # noqa: E402
from otel_ai.pipeline import Pipeline  # noqa: E402
from otel_ai.testing.daemons import free_port  # noqa: E402
from otel_ai.testing.otlp_payloads import trace_request  # noqa: E402

GRPC_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class NullWriter:
    def write(self, payloads: Sequence[Payload]) -> None:
        return None


def _http_load(url: str, body: bytes, n: int, conc: int, out: Any) -> None:
    import httpx

    lock, done = threading.Lock(), [0]

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    if done[0] >= n:
                        return
                    done[0] += 1
                r = client.post(url, content=body, headers={"content-type": "application/x-protobuf"})
                assert r.status_code == 200, r.status_code

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(time.perf_counter() - t0)


def _grpc_load(addr: str, body: bytes, n: int, conc: int, out: Any) -> None:
    import grpc

    channel = grpc.insecure_channel(addr)
    export = channel.unary_unary(GRPC_EXPORT, request_serializer=None, response_deserializer=None)
    lock, done = threading.Lock(), [0]

    def worker() -> None:
        while True:
            with lock:
                if done[0] >= n:
                    return
                done[0] += 1
            export(body, timeout=60)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(time.perf_counter() - t0)


async def main(args: argparse.Namespace) -> None:
    req, _ = trace_request(args.spans)
    body = req.SerializeToString()
    http_port, grpc_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            None,
            environ={},
            overrides={
                "server.otlp_http": f"127.0.0.1:{http_port}",
                "server.otlp_grpc": f"127.0.0.1:{grpc_port}",
                "pipeline.spool_dir": tmp,
            },
        )
        registry = CollectorRegistry()
        pipeline = Pipeline(cfg.pipeline, NullWriter(), registry=registry)
        await pipeline.start()
        receivers = Receivers(cfg.server, cfg.ingest, pipeline, registry=registry)
        await receivers.start()
        ctx = mp.get_context("spawn")
        print(
            f"receivers + pipeline, null writer: {args.requests} requests x {args.spans} spans ({len(body):,} B), {args.concurrency} concurrent"
        )
        for name, target, where in (
            ("http", _http_load, f"http://127.0.0.1:{http_port}/v1/traces"),
            ("grpc", _grpc_load, f"127.0.0.1:{grpc_port}"),
        ):
            out = ctx.Queue()
            proc = ctx.Process(target=target, args=(where, body, args.requests, args.concurrency, out))
            proc.start()
            cpu0 = time.process_time()
            while proc.is_alive():
                await asyncio.sleep(0.05)
            cpu = time.process_time() - cpu0  # includes the worker threads of this process
            elapsed = out.get()
            spans = args.requests * args.spans
            print(
                f"  {name:4}  {spans / elapsed:>10,.0f} spans/s acked   daemon CPU {cpu / args.requests * 1e3:5.2f} ms/request"
                f" = {spans / cpu:>10,.0f} spans per CPU-second"
            )
        await receivers.shutdown(1)
        await pipeline.shutdown(5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--spans", type=int, default=512)
    asyncio.run(main(parser.parse_args()))
