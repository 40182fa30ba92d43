"""The HTTP API through a real in-process daemon (``make_daemon``) and httpx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from otel_ai.testing.llm_server import FakeLLMServer


def _llm_overrides(fake: FakeLLMServer) -> dict[str, Any]:
    return {
        "llm.deployments": [
            {
                "name": "oa",
                "group": "smart",
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": fake.url + "/v1",
                "api_key": "sk-test-000000000000000000",
            },
            {
                "name": "claude",
                "group": "claude",
                "provider": "anthropic",
                "model": "claude-haiku-4-5",
                "base_url": fake.url,
                "api_key": "sk-ant-test-0000000000000000",
            },
        ],
        "llm.embedded.enabled": False,
        "llm.timeouts.call_s": 2.0,
        "llm.retry.max_attempts": 1,
    }


@pytest.fixture
def api(make_daemon: Any, fake: FakeLLMServer) -> str:
    d = make_daemon(extra=_llm_overrides(fake))
    return d.api_url + "/api/v1/llm"  # type: ignore[no-any-return]


def _sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_generate_json_models_health_usage(api: str, fake: FakeLLMServer) -> None:
    r = httpx.post(f"{api}/generate", json={"prompt": "hi", "task": "analysis"}, timeout=20)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["text"] == "Hello from the fake server."
        and body["provider"] == "openai"
        and body["task"] == "analysis"
    )
    assert body["usage"]["input_tokens"] == 11 and body["cost_usd"] > 0 and body["cache"]["hit"] is False
    again = httpx.post(f"{api}/generate", json={"prompt": "hi", "task": "analysis"}, timeout=20).json()
    assert again["cache"]["hit"] is True

    models = httpx.get(f"{api}/models").json()
    assert set(models["groups"]) == {"smart", "claude", "rules"} and models["tasks"]["analysis"] == [
        "smart",
        "claude",
        "rules",
    ]
    assert "api_key" not in json.dumps(models) and "sk-test" not in json.dumps(models)

    health = httpx.get(f"{api}/health").json()
    by = {d["name"]: d for d in health["deployments"]}
    assert by["oa"]["breaker"]["state"] == "closed" and by["oa"]["last_latency_ms"] > 0

    usage = httpx.get(f"{api}/usage").json()
    assert usage["totals"]["requests"] == 2 and usage["totals"]["cache_hits"] == 1
    assert {r["provider"] for r in usage["by_provider"]} == {"openai"}

    status = httpx.get(api.replace("/llm", "/status")).json()
    assert status["llm"]["status"] == "ok"

    fake.plan("claude-haiku-4-5", "500")
    probed = {
        d["name"]: d
        for d in httpx.get(f"{api}/health", params={"probe": "true"}, timeout=20).json()["deployments"]
    }
    assert (
        probed["claude"]["last_error"].startswith("provider_unavailable") and probed["claude"]["calls"] == 1
    )


def test_schema_by_name_over_http_and_rules_fallback(api: str, fake: FakeLLMServer) -> None:
    fake.plan("gpt-4o-mini", "500")
    fake.plan("claude-haiku-4-5", "401")
    data = {"subject": "cart", "evidence": [{"id": "e7", "entity": "cart", "summary": "errors up"}]}
    r = httpx.post(
        f"{api}/generate",
        json={
            "prompt": "explain",
            "task": "anomaly-explanation",
            "schema_name": "anomaly-explanation",
            "data": data,
        },
        timeout=20,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["provider"] == "rules" and body["fallbacks"] == ["smart", "claude"]
    assert body["json"]["hypotheses"][0]["evidence_ids"] == ["e7"]


def test_sse_stream_openai_and_anthropic(api: str, fake: FakeLLMServer) -> None:
    fake.reply("claude-haiku-4-5", "streamed over sse")
    with httpx.stream(
        "POST", f"{api}/generate", json={"prompt": "hi", "stream": True, "model": "claude"}, timeout=20
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _sse(r.read().decode())
    kinds = [e for e, _ in events]
    assert kinds[-1] == "done" and kinds.count("chunk") >= 3
    assert "".join(d["text"] for e, d in events if e == "chunk") == "streamed over sse"
    assert events[-1][1]["usage"]["output_tokens"] == 12


def test_sse_error_event_when_the_stream_breaks(api: str, fake: FakeLLMServer) -> None:
    fake.plan("gpt-4o-mini", "slowstream")
    fake.reply("gpt-4o-mini", "partial then silence")
    with httpx.stream(
        "POST", f"{api}/generate", json={"prompt": "slow", "stream": True, "model": "oa"}, timeout=20
    ) as r:
        events = _sse(r.read().decode())
    assert (
        events[0] == ("chunk", {"text": "parti"})
        and events[-1][0] == "error"
        and events[-1][1]["type"] == "timeout"
    )


BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("task", {"prompt": "hi", "task": "poetry"}, "task"),
    ("empty-prompt", {"prompt": ""}, "prompt"),
    ("no-prompt", {}, "prompt"),
    ("bad-schema", {"prompt": "hi", "schema": {"type": 12}}, "schema"),
    ("schema-name", {"prompt": "hi", "schema_name": "nope"}, "schema_name"),
    ("model", {"prompt": "hi", "model": "gpt-99"}, "model"),
    ("temperature", {"prompt": "hi", "temperature": 9}, "temperature"),
    ("max-tokens", {"prompt": "hi", "max_tokens": 0}, "max_tokens"),
    ("unknown-field", {"prompt": "hi", "bogus": 1}, "bogus"),
    ("bad-role", {"messages": [{"role": "robot", "content": "x"}]}, "messages"),
    ("bad-json-type", {"prompt": ["not", "a", "string"]}, "prompt"),
]


def test_bad_parameters_are_400_with_a_message(api: str, fake: FakeLLMServer) -> None:
    """One daemon for the whole table (each case is named in the assertion message)."""
    for case, body, message in BAD_REQUESTS:
        r = httpx.post(f"{api}/generate", json=body, timeout=20)
        assert r.status_code == 400, f"{case}: {r.status_code} {r.text}"
        assert message in r.json()["error"], f"{case}: {r.json()}"
    assert fake.requests == []  # nothing reached a provider


def test_all_failed_is_503(api: str, fake: FakeLLMServer) -> None:
    fake.plan("gpt-4o-mini", "500")
    r = httpx.post(f"{api}/generate", json={"prompt": "hi", "model": "oa"}, timeout=20)
    assert r.status_code == 503 and "all providers failed" in r.json()["error"] and r.headers["retry-after"]


def test_conversations_over_http(api: str, fake: FakeLLMServer) -> None:
    fake.reply("gpt-4o-mini", "one", "two")
    created = httpx.post(f"{api}/conversations", json={"title": "t", "system": "be brief"})
    assert created.status_code == 201
    cid = created.json()["id"]
    r1 = httpx.post(f"{api}/conversations/{cid}/messages", json={"content": "q1"}, timeout=20).json()
    with httpx.stream(
        "POST", f"{api}/conversations/{cid}/messages", json={"content": "q2", "stream": True}, timeout=20
    ) as r:
        events = _sse(r.read().decode())
    assert r1["text"] == "one" and events[-1][1]["text"] == "two" and events[-1][1]["conversation_id"] == cid
    got = httpx.get(f"{api}/conversations/{cid}").json()
    assert [m["content"] for m in got["messages"]] == ["q1", "one", "q2", "two"]
    assert (
        httpx.post(f"{api}/generate", json={"prompt": "q3", "conversation_id": cid}, timeout=20).status_code
        == 200
    )
    listed = httpx.get(f"{api}/conversations").json()["conversations"]
    assert listed[0]["id"] == cid and listed[0]["message_count"] == 6
    assert httpx.delete(f"{api}/conversations/{cid}").json() == {"deleted": True, "id": cid}
    assert httpx.get(f"{api}/conversations/{cid}").status_code == 404
    assert httpx.delete(f"{api}/conversations/{cid}").status_code == 404
    assert httpx.post(f"{api}/conversations/{cid}/messages", json={"content": "x"}).status_code == 404
    assert httpx.post(f"{api}/conversations", json={"task": "nope"}).status_code == 400


def test_cli_generate_stream_models_health_usage(
    api: str, fake: FakeLLMServer, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    from otel_ai.cli.main import main

    base = api.removesuffix("/api/v1/llm")
    fake.reply("gpt-4o-mini", "cli says hello")
    assert main(["llm", "generate", "hi there", "--api-url", base]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "cli says hello" and "openai/gpt-4o-mini" in out.err
    assert main(["llm", "generate", "stream it", "--stream", "--api-url", base]) == 0
    assert capsys.readouterr().out.strip() == "cli says hello"
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}')
    fake.reply("gpt-4o-mini", '{"ok": true}')
    assert main(["llm", "generate", "json please", "--schema", str(schema), "--api-url", base]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True}
    for cmd, expect in (("models", "gpt-4o-mini"), ("health", "closed"), ("usage", "openai")):
        assert main(["llm", cmd, "--api-url", base]) == 0
        assert expect in capsys.readouterr().out
    assert main(["llm", "generate", "x", "--task", "poetry", "--api-url", base]) == 1
    assert "400" in capsys.readouterr().err


def test_client_disconnect_cancels_the_provider_stream(api: str, fake: FakeLLMServer) -> None:
    import time

    fake.stall_s = 0.5
    fake.plan("gpt-4o-mini", "slowstream")
    fake.reply("gpt-4o-mini", "x" * 400)  # 80 chunks the server would keep sending
    with httpx.stream(
        "POST", f"{api}/generate", json={"prompt": "long", "stream": True, "model": "oa"}, timeout=20
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                break  # first chunk arrived: hang up
    deadline = time.monotonic() + 10
    while fake.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.disconnects == 1  # the daemon closed its upstream connection too
    health = {d["name"]: d for d in httpx.get(f"{api}/health").json()["deployments"]}
    assert health["oa"]["breaker"]["state"] == "closed" and health["oa"]["failures"] == 0


def test_disabled_manager_answers_503(make_daemon: Any) -> None:
    d = make_daemon(extra={"llm.enabled": False})
    r = httpx.post(d.api_url + "/api/v1/llm/generate", json={"prompt": "hi"})
    assert r.status_code == 503 and "disabled" in r.json()["error"]
    assert "llm" not in httpx.get(d.api_url + "/api/v1/status").json()
