"""TLS on both receivers and the API, bearer-token auth on the receivers, a guarded /metrics.

A self-signed certificate is made at test time with ``openssl`` (for localhost and 127.0.0.1);
the clients are the official OpenTelemetry SDK exporters with their certificate options (gRPC
channel credentials, the HTTP exporter's ``certificate_file``) and headers.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_ai.testing.daemons import InProcessDaemon, daemon_config

TOKEN = "s3cret-ingest"
API_TOKEN = "s3cret-api"
pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is needed to make a certificate"
)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


@pytest.fixture(scope="module")
def daemon(
    chdb_path: Path, tmp_path_factory: pytest.TempPathFactory, cert: tuple[Path, Path]
) -> Iterator[InProcessDaemon]:
    crt, key = (str(p) for p in cert)
    extra = {
        "ingest.tls_cert_file": crt, "ingest.tls_key_file": key, "ingest.token": TOKEN,
        "api.tls_cert_file": crt, "api.tls_key_file": key, "api.token": API_TOKEN, "api.protect_metrics": True,
        "pipeline.batch_timeout_ms": 20,
    }  # fmt: skip
    cfg, ep = daemon_config(chdb_path, tmp=tmp_path_factory.mktemp("tls-daemon"), extra=extra)
    # the readiness wait of InProcessDaemon is in-process (no HTTP), so TLS does not get in its way
    d = InProcessDaemon(cfg, ep).start()
    yield d
    d.stop()


def _export(exporter: SpanExporter, name: str) -> SpanExportResult:
    provider = TracerProvider(resource=Resource.create({"service.name": "tls-test"}))
    span = provider.get_tracer("t").start_span(name)
    span.end()
    try:
        return exporter.export([span])  # type: ignore[list-item]
    finally:
        exporter.shutdown()


def _grpc(d: InProcessDaemon, crt: Path, token: str | None) -> SpanExporter:
    port = d.ep.grpc.rpartition(":")[2]
    creds = grpc.ssl_channel_credentials(root_certificates=crt.read_bytes())
    headers = {"authorization": f"Bearer {token}"} if token else None
    return GrpcSpanExporter(endpoint=f"localhost:{port}", credentials=creds, headers=headers, timeout=10)


@pytest.fixture(autouse=True)
def _no_ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's ``verify`` (the HTTP
    exporter's ``certificate_file``): unset them so the exporter trusts the test's certificate."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _http(d: InProcessDaemon, crt: Path, token: str | None) -> SpanExporter:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return HttpSpanExporter(endpoint=f"https://{d.ep.http}/v1/traces", certificate_file=str(crt), headers=headers,
                            timeout=10)  # fmt: skip


def _stored(d: InProcessDaemon, name: str) -> int:
    d.wait_inserted()  # acknowledged by the write-ahead log (the default) before the insert
    st = d.daemon.storage
    sql = "SELECT count() FROM {db:Identifier}.otel_traces WHERE SpanName = {n:String}"
    return int(st.query(sql, {"db": st.database, "n": name})[0][0])


@pytest.mark.parametrize("make", [_grpc, _http], ids=["grpc", "http"])
def test_sdk_exporters_over_tls_with_the_token_are_stored(
    daemon: InProcessDaemon, cert: tuple[Path, Path], make: object
) -> None:
    name = f"tls-{uuid.uuid4().hex[:8]}"
    assert _export(make(daemon, cert[0], TOKEN), name) == SpanExportResult.SUCCESS  # type: ignore[operator]
    assert _stored(daemon, name) == 1


@pytest.mark.parametrize("make", [_grpc, _http], ids=["grpc", "http"])
@pytest.mark.parametrize("token", [None, "wrong"], ids=["no-token", "wrong-token"])
def test_without_the_token_nothing_is_accepted(
    daemon: InProcessDaemon, cert: tuple[Path, Path], make: object, token: str | None
) -> None:
    name = f"noauth-{uuid.uuid4().hex[:8]}"
    assert _export(make(daemon, cert[0], token), name) == SpanExportResult.FAILURE  # type: ignore[operator]
    assert _stored(daemon, name) == 0


def test_the_refusals_are_401_and_unauthenticated(daemon: InProcessDaemon, cert: tuple[Path, Path]) -> None:
    crt = ssl.create_default_context(cafile=str(cert[0]))
    r = httpx.post(f"https://{daemon.ep.http}/v1/traces", content=b"", verify=crt,
                   headers={"content-type": "application/x-protobuf"})  # fmt: skip
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    with grpc.secure_channel(f"localhost:{daemon.ep.grpc.rpartition(':')[2]}",
                             grpc.ssl_channel_credentials(cert[0].read_bytes())) as ch:  # fmt: skip
        call = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as err:
            call(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert call(b"", timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),)) == b""
    with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS listener
        httpx.post(f"http://{daemon.ep.http}/v1/traces", content=b"", timeout=5)


def test_the_api_over_https_and_the_guarded_metrics(daemon: InProcessDaemon, cert: tuple[Path, Path]) -> None:
    base, crt = f"https://{daemon.ep.api}", ssl.create_default_context(cafile=str(cert[0]))
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert httpx.get(f"{base}/healthz", verify=crt).status_code == 200  # always open
    assert httpx.get(f"{base}/metrics", verify=crt).status_code == 401  # api.protect_metrics
    metrics = httpx.get(f"{base}/metrics", verify=crt, headers=auth)
    assert metrics.status_code == 200 and "otel_ai_receiver_rejected_items" in metrics.text
    assert httpx.get(f"{base}/docs", verify=crt).status_code == 200  # api.protect_docs is off
    assert httpx.get(f"{base}/api/v1/status", verify=crt).status_code == 401
    assert httpx.get(f"{base}/api/v1/status", verify=crt, headers=auth).status_code == 200
