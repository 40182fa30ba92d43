"""A real loopback HTTP server speaking the OpenAI chat-completions and Anthropic messages wire
formats (JSON and SSE), scripted per model name, so the official SDKs are exercised offline.

Behaviours (consumed in order per model; when the script is empty, ``ok``): ``ok``, ``429``
(``retry-after-ms: 50``), ``429-long`` (``Retry-After: 120``), ``500``, ``401``, ``400ctx``
(context-length error), ``hang`` (sleeps 3 s), ``malformed`` (HTTP 200 with broken JSON),
``slowstream`` (one chunk, then silence), ``length`` (finish_reason "length"), ``overloaded`` (Anthropic mid-stream ``error`` event).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLLMServer:
    def __init__(self) -> None:
        self.script: dict[str, deque[str]] = defaultdict(deque)
        self.replies: dict[str, list[str]] = {}
        self.requests: list[dict[str, Any]] = []
        self.stall_s = 3.0  # how long ``slowstream`` stays silent after its first chunk
        self.disconnects = 0  # streams whose client went away before the server finished
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def plan(self, model: str, *behaviours: str) -> None:
        self.script[model].extend(behaviours)

    def reply(self, model: str, *texts: str) -> None:
        """Replies in order (the last one repeats)."""
        self.replies[model] = list(texts)

    def calls(self, model: str) -> int:
        return sum(1 for r in self.requests if r["body"].get("model") == model)

    def _next(self, model: str) -> tuple[str, str]:
        with self.lock:
            behaviour = self.script[model].popleft() if self.script[model] else "ok"
            texts = self.replies.get(model, ["Hello from the fake server."])
            text = texts.pop(0) if len(texts) > 1 else texts[0]
        return behaviour, text

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one segment (no Nagle/delayed-ACK stall)
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _sse_start(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()

            def _send(self, data: str, event: str | None = None) -> None:
                msg = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
                self.wfile.write(msg.encode())
                self.wfile.flush()

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with fake.lock:
                    fake.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                        }
                    )
                behaviour, text = fake._next(body.get("model", ""))
                anthropic = self.path.endswith("/messages")
                if behaviour == "429":
                    return self._json(
                        429,
                        {"error": {"message": "slow down", "type": "rate_limit_error"}},
                        {"retry-after-ms": "50"},
                    )
                if behaviour == "429-long":
                    return self._json(
                        429,
                        {"error": {"message": "slow down", "type": "rate_limit_error"}},
                        {"Retry-After": "120"},
                    )
                if behaviour == "500":
                    return self._json(500, {"error": {"message": "boom", "type": "server_error"}})
                if behaviour == "401":
                    return self._json(401, {"error": {"message": "bad key", "type": "authentication_error"}})
                if behaviour == "400ctx":
                    return self._json(
                        400,
                        {
                            "error": {
                                "message": "This model's maximum context length is 10 tokens",
                                "code": "context_length_exceeded",
                                "type": "invalid_request_error",
                            }
                        },
                    )
                if behaviour == "hang":
                    time.sleep(3)
                    return self._json(500, {"error": {"message": "late"}})
                if behaviour == "malformed":
                    return self._json(200, b'{"id": "x", "choices": [ {"message": ')
                if anthropic:
                    return self._anthropic(body, text, behaviour)
                return self._openai(body, text, behaviour)

            def _openai(self, body: dict[str, Any], text: str, behaviour: str) -> None:
                model = body.get("model", "")
                if not body.get("stream"):
                    return self._json(200, {
                        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model + "-0001",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length" if behaviour == "length" else "stop"}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    })  # fmt: skip
                self._sse_start()
                pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
                for i, piece in enumerate(pieces):
                    chunk = {
                        "id": "chatcmpl-1",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": model,
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                    }
                    try:
                        self._send(json.dumps(chunk))
                    except (BrokenPipeError, ConnectionResetError):
                        with fake.lock:
                            fake.disconnects += 1
                        return
                    if behaviour == "slowstream" and i == 0:
                        time.sleep(fake.stall_s)
                    elif behaviour == "slowstream":
                        time.sleep(0.05)
                done = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
                self._send(json.dumps(done))
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage = {
                        "id": "chatcmpl-1",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": model,
                        "choices": [],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    }
                    self._send(json.dumps(usage))
                self._send("[DONE]")

            def _anthropic(self, body: dict[str, Any], text: str, behaviour: str) -> None:
                model = body.get("model", "")
                tool = (body.get("tool_choice") or {}).get("name")
                usage = {
                    "input_tokens": 20,
                    "output_tokens": 9,
                    "cache_read_input_tokens": 5,
                    "cache_creation_input_tokens": 0,
                }
                if not body.get("stream"):
                    block = (
                        {"type": "tool_use", "id": "tu_1", "name": tool, "input": json.loads(text)}
                        if tool
                        else {"type": "text", "text": text}
                    )
                    return self._json(
                        200,
                        {
                            "id": "msg_1",
                            "type": "message",
                            "role": "assistant",
                            "model": model,
                            "content": [block],
                            "stop_reason": "tool_use" if tool else "end_turn",
                            "stop_sequence": None,
                            "usage": usage,
                        },
                    )
                self._sse_start()
                start = {
                    "type": "message_start",
                    "message": {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {**usage, "output_tokens": 1},
                    },
                }
                self._send(json.dumps(start), "message_start")
                self._send(
                    json.dumps(
                        {
                            "type": "content_block_start",
                            "index": 0,
                            "content_block": {"type": "text", "text": ""},
                        }
                    ),
                    "content_block_start",
                )
                self._send(json.dumps({"type": "ping"}), "ping")
                for i in range(0, len(text), 5):
                    delta = {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": text[i : i + 5]},
                    }
                    self._send(json.dumps(delta), "content_block_delta")
                    if behaviour == "overloaded":  # an `error` event in the middle of the stream
                        self._send(
                            json.dumps(
                                {
                                    "type": "error",
                                    "error": {"type": "overloaded_error", "message": "Overloaded"},
                                }
                            ),
                            "error",
                        )
                        return
                    if behaviour == "slowstream":
                        time.sleep(3)
                        return
                self._send(json.dumps({"type": "content_block_stop", "index": 0}), "content_block_stop")
                # two message_delta events: usage is cumulative, the client must keep the last one
                self._send(
                    json.dumps(
                        {
                            "type": "message_delta",
                            "delta": {"stop_reason": None, "stop_sequence": None},
                            "usage": {"output_tokens": 5},
                        }
                    ),
                    "message_delta",
                )
                self._send(
                    json.dumps(
                        {
                            "type": "message_delta",
                            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                            "usage": {"output_tokens": 12},
                        }
                    ),
                    "message_delta",
                )
                self._send(json.dumps({"type": "message_stop"}), "message_stop")

        return Handler
