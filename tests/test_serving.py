"""The listening sockets the HTTP servers (OTLP/HTTP, API) are given."""

from __future__ import annotations

import socket

from otel_ai.serving import _bind


def test_accepted_connections_do_not_wait_for_nagle() -> None:
    """uvicorn writes a response's headers and body separately: without TCP_NODELAY a small body
    (OTLP/JSON's ``{}``) waited for the client's delayed ACK, ~40 ms per request."""
    listener = _bind("127.0.0.1", 0)
    try:
        listener.setblocking(True)
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        try:
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            conn.close()
            client.close()
    finally:
        listener.close()
