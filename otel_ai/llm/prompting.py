"""Prompt assembly: messages from prompt/messages/system/data/conversation, per-deployment
trimming, schema instructions and redaction, and the chunk collector with per-chunk deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from otel_ai.llm.conversations import Conversation, trim_to_window
from otel_ai.llm.errors import BadResponse, InvalidRequest, Timeout
from otel_ai.llm.redact import DATA_INSTRUCTION, quote_data, redact
from otel_ai.llm.router import Deployment
from otel_ai.llm.structured import schema_instruction
from otel_ai.llm.types import Chunk, GenerateRequest, Message, ProviderCall, Usage

DEFAULT_SYSTEM = "You are the assistant of otel-ai, an observability tool (traces, metrics, logs, service topology, anomalies). Be concise and factual."


@dataclass
class Prepared:
    """A validated request, ready for the retry loop."""

    request: GenerateRequest
    messages: tuple[Message, ...]
    schema: dict[str, Any] | None
    max_tokens: int
    chain: list[str]
    key: str | None
    conversation: Conversation | None = None
    new_messages: list[Message] = field(default_factory=list)


def build_messages(
    prompt: str | None, messages: Any, system: str | None, data: Any, conv: Conversation | None
) -> tuple[Message, ...]:
    out: list[Message] = []
    if messages:
        for i, m in enumerate(messages):
            if isinstance(m, Message):
                out.append(m)
                continue
            if (
                not isinstance(m, dict)
                or m.get("role") not in ("system", "user", "assistant")
                or not isinstance(m.get("content"), str)
            ):
                raise InvalidRequest(f"messages[{i}]: need role system|user|assistant and string content")
            out.append(Message(m["role"], m["content"]))
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("prompt: must be a non-empty string")
        out.append(Message("user", prompt))
    if not out or out[-1].role != "user":
        raise InvalidRequest("prompt: give a prompt or messages ending with a user message")
    if data is not None:
        last = out[-1]
        out[-1] = Message("user", f"{last.content}\n\n{quote_data(data)}")
    sys_text = system or (conv.system if conv else None) or DEFAULT_SYSTEM
    if data is not None:
        sys_text += "\n\n" + DATA_INSTRUCTION
    history = list(conv.messages) if conv else []
    if not any(m.role == "system" for m in out):
        out.insert(0, Message("system", sys_text))
    elif data is not None:
        out.insert(0, Message("system", DATA_INSTRUCTION))
    system_msgs = [m for m in out if m.role == "system"]
    return tuple(system_msgs + history + [m for m in out if m.role != "system"])


def provider_messages(dep: Deployment, prep: Prepared) -> tuple[tuple[Message, ...], int]:
    msgs = list(prep.messages)
    if prep.conversation is not None:
        msgs = trim_to_window(msgs, dep.context_window - min(prep.max_tokens, dep.max_output_tokens))
    if prep.schema is not None and not (
        dep.provider.supports_json_schema and dep.provider.deployment.supports_json_schema
    ):
        msgs[0] = Message("system", msgs[0].content + "\n\n" + schema_instruction(prep.schema))
    replaced = 0
    if dep.redact:
        clean = []
        for m in msgs:
            text, n = redact(m.content)
            replaced += n
            clean.append(Message(m.role, text))
        msgs = clean
    return tuple(msgs), replaced


async def collect(
    dep: Deployment, call: ProviderCall, stream: bool, deadline: float, ttfc: list[float]
) -> AsyncIterator[Chunk | tuple[str, Usage | None, str | None, str | None]]:
    """Drive the provider with an idle timeout per chunk and the total deadline; yield text
    chunks, then ``(text, usage, finish, model)``."""
    agen = dep.provider.execute(call, stream=stream and dep.provider.can_stream)
    t0 = time.monotonic()
    parts: list[str] = []
    usage = finish = model = None
    try:
        while True:
            budget = min(call.timeout_s, deadline - time.monotonic())
            if budget <= 0:
                raise Timeout(f"{dep.name}: deadline passed")
            try:
                async with asyncio.timeout(budget):
                    chunk = await anext(agen)
            except StopAsyncIteration:
                break
            except TimeoutError as exc:
                raise Timeout(f"{dep.name}: no reply within {budget:.1f}s") from exc
            if chunk.usage is not None:
                usage = chunk.usage
            finish = chunk.finish_reason or finish
            model = chunk.response_model or model
            if chunk.text:
                if not ttfc:
                    ttfc.append(time.monotonic() - t0)
                parts.append(chunk.text)
                yield Chunk(text=chunk.text)
    finally:
        await agen.aclose()  # cancellation and early exits close the provider's HTTP stream
    text = "".join(parts)
    if not text.strip() and call.schema is None and finish != "length":
        raise BadResponse(f"{dep.name}: empty reply")
    yield (text, usage, finish, model)
