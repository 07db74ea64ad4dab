"""The fake server's OpenAI-compatible route (POST /v1/chat/completions), read with plain httpx.

The bytes are parsed as an OpenAI client parses them (SSE `data:` lines, `[DONE]` last), so these tests pin
the wire format the peers' benchmark (benchmarks/peers) relies on: the same queued Reply streams here as on
the Gemini route, with its chunking, timing, stalls and errors.
"""
from __future__ import annotations

import json

import httpx
import pytest

from agy_jupyter.testing import Chunk, FakeGemini, Reply

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"}, {"role": "user", "content": [{"type": "text", "text": "again"}]}]


@pytest.fixture
def fake():
    with FakeGemini() as server:
        yield server


def post(fake: FakeGemini, **body) -> httpx.Response:
    return httpx.post(f"{fake.openai_url}/chat/completions", json={"model": "gpt-fake", "messages": MESSAGES, **body},
                      headers={"Authorization": "Bearer sk-test"}, timeout=5)


def stream_events(fake: FakeGemini, **body) -> list:
    """Every `data:` payload of a streamed completion, JSON-decoded except the final `[DONE]`."""
    events = []
    with httpx.stream("POST", f"{fake.openai_url}/chat/completions", timeout=5,
                      json={"model": "gpt-fake", "messages": MESSAGES, "stream": True, **body}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines():
            if line.startswith("data: "):
                payload = line.removeprefix("data: ")
                events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_stream_gives_each_chunk_as_a_delta_then_done(fake):
    fake.enqueue(Reply.text("Hello brave new world", chunks=4))
    events = stream_events(fake)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len(chunks) == 4
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-fake" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "Hello brave new world"
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    rec = fake.requests[0]
    assert (rec.method, rec.stream, rec.model) == ("chatCompletions", True, "gpt-fake")
    assert rec.last_user_text == "again"
    assert rec.system_instruction == "Be brief."
    assert [c["role"] for c in rec.contents] == ["user", "model", "user"]


def test_usage_chunk_only_when_asked(fake):
    fake.enqueue(Reply.text("abcdefgh", chunks=2), Reply.text("abcdefgh", chunks=2))
    plain = stream_events(fake)
    assert all("usage" not in e for e in plain[:-1])
    with_usage = stream_events(fake, stream_options={"include_usage": True})
    assert with_usage[-2]["choices"] == []
    assert with_usage[-2]["usage"]["completion_tokens"] == 2  # 8 characters / 4


def test_non_stream_is_one_completion(fake):
    fake.enqueue(Reply.text("one two three", chunks=3, finish_reason="MAX_TOKENS"))
    response = post(fake)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "one two three"}
    assert body["choices"][0]["finish_reason"] == "length"
    rec = fake.requests[0]
    assert (rec.stream, rec.api_key) == (False, "sk-test")


def test_function_call_becomes_tool_calls(fake):
    fake.enqueue(Reply(chunks=[Chunk.function_call("add", {"a": 1, "b": 2}, id="c1")]))
    events = stream_events(fake)
    choice = events[0]["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["delta"]["tool_calls"][0]
    assert (call["id"], call["function"]["name"], json.loads(call["function"]["arguments"])) == \
        ("c1", "add", {"a": 1, "b": 2})


def test_error_reply_keeps_status_in_openai_shape(fake):
    fake.enqueue(Reply.error(429))
    response = post(fake, stream=True)
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == 429 and error["type"] == "RESOURCE_EXHAUSTED" and "quota" in error["message"]


def test_echo_default_and_bad_json(fake):
    assert post(fake).json()["choices"][0]["message"]["content"] == "You said: again"
    response = httpx.post(f"{fake.openai_url}/chat/completions", content=b"{nope", timeout=5)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_client_leaving_a_stalled_stream_is_recorded(fake):
    fake.enqueue(Reply.text("x" * 40, chunks=4).stall_after(2))
    seen = []
    with httpx.stream("POST", f"{fake.openai_url}/chat/completions", timeout=5,
                      json={"model": "m", "messages": MESSAGES, "stream": True}) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
            if len(seen) == 2:
                break  # leaving the block closes the connection mid-stream
    gone = fake.wait_for_disconnect(5)
    assert gone is not None and gone.request_index == 0 and gone.chunks_sent == 2
    assert fake.requests[0].disconnected


def test_same_reply_streams_alike_on_both_routes(fake):
    reply = Reply.text("The same words, chunk by chunk.", chunks=5)
    fake.enqueue(reply, reply)
    openai_text = [e["choices"][0]["delta"]["content"] for e in stream_events(fake)[:-1]]
    client = fake.client()  # held: a collected client closes its connection pool mid-stream
    gemini_text = [c.text for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")]
    client.close()
    assert openai_text == gemini_text and len(gemini_text) == 5
