"""Embedding uvicorn in the daemon: servers that leave signal handling to the daemon.

``uvicorn.Server.serve`` installs its own SIGINT/SIGTERM handlers on the main thread and
re-raises the signal after it stops; inside the daemon that would close the API before the
pipeline drains. The daemon owns signals (first = drain, second = force), so embedded servers
must not capture them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that never touches process signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so a busy port is a plain ``OSError`` for the caller.

    uvicorn answers a bind failure with ``sys.exit(3)`` inside its task, which would skip the
    daemon's orderly shutdown of the components it already started.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by every accepted connection: uvicorn writes a response's headers and body
        # separately, and without it Nagle held a small body (OTLP/JSON's "{}") until the
        # client's delayed ACK, ~40 ms per request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def tls_kwargs(cfg: Any) -> dict[str, str]:
    """uvicorn's TLS settings from a config section's ``tls_cert_file`` / ``tls_key_file`` ({} = plain)."""
    if not getattr(cfg, "tls_cert_file", None):
        return {}
    return {"ssl_certfile": cfg.tls_cert_file, "ssl_keyfile": cfg.tls_key_file}


async def start_server(
    app: Any, host: str, port: int, **kwargs: Any
) -> tuple[EmbeddedServer, asyncio.Task[None]]:
    """Start ``app`` on ``host:port``; return once it listens (raises ``OSError`` if it cannot)."""
    sock = _bind(host, port)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", access_log=False, **kwargs
    )
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            task.result()
            raise OSError(f"cannot listen on {host}:{port}")
        await asyncio.sleep(0.02)
    return server, task


async def stop_server(server: EmbeddedServer, task: asyncio.Task[None], timeout_s: float = 5.0) -> None:
    server.should_exit = True
    with contextlib.suppress(asyncio.TimeoutError, Exception):
        await asyncio.wait_for(task, timeout=timeout_s)
