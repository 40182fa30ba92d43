"""OTLP/HTTP receiver: a lean ASGI app (``POST /v1/traces|metrics|logs``) served by uvicorn.

Checks in the order a client can fix them: path (404) → method (405 + ``Allow: POST``) →
Content-Type (415, parameters such as ``; charset=utf-8`` allowed) → Content-Encoding (415;
``gzip``, ``deflate``, ``identity``) → size (413, before AND while inflating: a gzip bomb is cut
off at ``ingest.max_body_bytes`` of output, never inflated in full) → bad compressed data (400)
→ the shared export path. Every error body is a ``google.rpc.Status`` in the request's encoding.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from otel_ai.errors import DecodeError, PayloadTooLarge, UnsupportedMediaType
from otel_ai.ingest import status as st
from otel_ai.ingest.export import Exporter, ExportResult
from otel_ai.model import Encoding, Signal

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PATHS: dict[str, Signal] = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
MEDIA_TYPES: dict[bytes, Encoding] = {
    b"application/x-protobuf": "protobuf",
    b"application/protobuf": "protobuf",
    b"application/json": "json",
}
ENCODINGS_ACCEPTED = (b"", b"identity", b"gzip", b"x-gzip", b"deflate")


def inflate(data: bytes, content_encoding: bytes, limit: int) -> bytes:
    """Decompress ``data``; :class:`PayloadTooLarge` past ``limit`` output bytes (checked while inflating)."""
    if content_encoding in (b"", b"identity"):
        return data
    # gzip: header required (wbits 16+15); deflate per RFC 9110 is zlib-wrapped, but raw deflate
    # is common in the wild, so fall back to it when the zlib header is absent.
    if content_encoding in (b"gzip", b"x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif len(data) >= 2 and (data[0] & 0x0F) == 8 and ((data[0] << 8) | data[1]) % 31 == 0:
        wbits = zlib.MAX_WBITS
    else:
        wbits = -zlib.MAX_WBITS
    name = "gzip" if wbits > 16 else "deflate"
    parts: list[bytes] = []
    size = 0
    rest = data
    while True:  # one pass per gzip member (concatenated members are valid gzip)
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise DecodeError(f"invalid {name} body: {exc}") from exc
        size += len(out)
        if size > limit:
            raise PayloadTooLarge(f"decompressed body exceeds ingest.max_body_bytes ({limit} bytes)")
        parts.append(out)
        if not d.eof:
            raise DecodeError(f"invalid {name} body: truncated compressed data")
        rest = d.unused_data
        if wbits <= 16 or not rest:
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


class OtlpHttpApp:
    """ASGI callable. Unknown scope types (lifespan, websocket) are refused politely."""

    def __init__(self, exporter: Exporter, max_body_bytes: int) -> None:
        self.exporter = exporter
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while True:
                    msg = await receive()
                    if msg["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif msg["type"] == "lifespan.shutdown":
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            return
        result, encoding = await self._handle(scope, receive)
        headers = [(b"content-type", st.CONTENT_TYPES[encoding].encode())]
        if result.outcome == "bad_method":
            headers.append((b"allow", b"POST"))
        if result.outcome == "unauthenticated":
            headers.append((b"www-authenticate", b"Bearer"))
        if result.retry_after_s is not None:
            headers.append((b"retry-after", str(result.retry_after_s).encode()))
        headers.append((b"content-length", str(len(result.body)).encode()))
        await send({"type": "http.response.start", "status": result.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": result.body})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[ExportResult, Encoding]:
        ex = self.exporter
        ctype = _header(scope, b"content-type")
        media = ctype.split(b";", 1)[0].strip().lower()
        encoding: Encoding | None = MEDIA_TYPES.get(media)
        # Refusals before the Content-Type is known to be OTLP are counted under "unknown", not
        # under protobuf, and answered with a protobuf Status (st.reply_encoding).
        counted: st.CountedEncoding = encoding or st.UNKNOWN
        reply_enc = st.reply_encoding(counted)
        path = scope["path"]
        signal = PATHS.get(path.rstrip("/") if len(path) > 1 else path)
        if signal is None:
            return ex.rejected_request(
                "",
                "http",
                counted,
                "not_found",
                f"unknown path {path!r}: OTLP/HTTP accepts POST /v1/traces, /v1/metrics, /v1/logs",
            ), reply_enc
        if not ex.authorized(_header(scope, b"authorization")):
            return ex.rejected_request(
                signal, "http", counted, "unauthenticated", "missing or invalid bearer token (ingest.token)"
            ), reply_enc
        if scope["method"] != "POST":
            return ex.rejected_request(
                signal,
                "http",
                counted,
                "bad_method",
                f"method {scope['method']} not allowed, supported: [POST]",
            ), reply_enc
        if encoding is None:
            shown = ctype.decode("latin-1") or "(none)"
            return ex.fail(
                signal,
                "http",
                counted,
                UnsupportedMediaType(
                    f"unsupported content type {shown!r}: use application/x-protobuf or application/json"
                ),
            ), reply_enc
        cenc = _header(scope, b"content-encoding").strip().lower()
        if cenc not in ENCODINGS_ACCEPTED:
            msg = f"unsupported content encoding {cenc.decode('latin-1')!r}: use gzip, deflate or identity"
            return ex.fail(signal, "http", encoding, UnsupportedMediaType(msg)), encoding
        try:
            raw = await self._read_body(scope, receive)
            body = inflate(raw, cenc, self.max_body_bytes)
        except DecodeError as exc:
            return ex.fail(signal, "http", encoding, exc), encoding
        return await ex.export(signal, encoding, "http", body), encoding

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(
                f"body of {int(declared)} bytes exceeds ingest.max_body_bytes ({limit} bytes)"
            )
        first = b""
        chunks: list[bytes] | None = None
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise DecodeError("client disconnected before sending the whole body")
            chunk = msg.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"body exceeds ingest.max_body_bytes ({limit} bytes)")
                if not first and chunks is None:
                    first = chunk
                else:
                    if chunks is None:
                        chunks = [first]
                    chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        return first if chunks is None else b"".join(chunks)
