"""Conversations persisted in ClickHouse (chDB) survive a new manager; context trimming."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from otel_ai.errors import NotFound
from otel_ai.llm.conversations import trim_to_window
from otel_ai.llm.service import build_llm_manager
from otel_ai.llm.types import Message
from otel_ai.storage import Storage
from otel_ai.testing.llm_server import FakeLLMServer
from tests.llm.conftest import make_config

OPENAI = {"name": "oa", "group": "smart", "provider": "openai", "model": "gpt-4o-mini"}


async def test_conversation_lifecycle_survives_a_new_manager(fake: FakeLLMServer, storage: Storage) -> None:
    fake.reply("gpt-4o-mini", "first answer", "second answer")
    cfg = make_config(fake, [OPENAI])
    llm = build_llm_manager(cfg, storage, CollectorRegistry())
    assert llm is not None
    conv = await llm.create_conversation(system="You are terse.", title="latency", task="analysis")
    r1 = await llm.continue_conversation(conv.id, "why is checkout slow?")
    r2 = await llm.continue_conversation(conv.id, "and payment?")
    assert (r1.text, r2.text, r2.conversation_id) == ("first answer", "second answer", conv.id)
    sent = fake.requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"] == "You are terse." and sent[2]["content"] == "first answer"
    usage_before = await llm.usage()
    await llm.aclose()

    again = build_llm_manager(cfg, storage, CollectorRegistry())  # as after a restart
    assert again is not None
    loaded = await again.get_conversation(conv.id)
    assert loaded is not None and loaded.task == "analysis" and loaded.title == "latency"
    assert [(m.role, m.content) for m in loaded.messages] == [
        ("user", "why is checkout slow?"),
        ("assistant", "first answer"),
        ("user", "and payment?"),
        ("assistant", "second answer"),
    ]
    listed = await again.list_conversations()
    assert [c.id for c in listed] == [conv.id] and listed[0].as_dict(with_messages=False)[
        "message_count"
    ] == 4
    usage = await again.usage()  # persisted call records
    assert usage["totals"]["requests"] == usage_before["totals"]["requests"] == 2
    assert usage["by_task"][0]["task"] == "analysis" and usage["totals"]["input_tokens"] == 22
    assert await again.delete_conversation(conv.id)
    assert await again.get_conversation(conv.id) is None and not await again.delete_conversation(conv.id)
    with pytest.raises(NotFound):
        await again.continue_conversation(conv.id, "hello?")
    await again.aclose()


async def test_long_conversation_is_trimmed_to_the_window_keeping_system(fake: FakeLLMServer) -> None:
    from otel_ai.llm import LLMManager

    deps = [{**OPENAI, "context_window": 300, "max_output_tokens": 50}]
    llm = LLMManager(make_config(fake, deps))
    conv = await llm.create_conversation(system="SYSTEM PROMPT")
    for i in range(8):
        await llm.continue_conversation(conv.id, f"question {i} " + "x" * 200)
    sent = fake.requests[-1]["body"]["messages"]
    assert sent[0] == {"role": "system", "content": "SYSTEM PROMPT"}
    assert sent[-1]["content"].startswith("question 7") and len(sent) < 17
    assert sent[1]["role"] == "user"
    await llm.aclose()


def test_trim_keeps_system_and_newest_turns() -> None:
    msgs = (
        [Message("system", "s")]
        + [Message("user" if i % 2 == 0 else "assistant", "w" * 40) for i in range(10)]
        + [Message("user", "last")]
    )
    out = trim_to_window(msgs, 60)
    assert out[0].role == "system" and out[-1].content == "last" and out[1].role == "user"
    assert len(out) < len(msgs)
