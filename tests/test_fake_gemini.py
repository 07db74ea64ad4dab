"""Tests for agy_jupyter.testing.FakeGemini, driven through the real google-genai client.

Everything a test asserts is what the SDK parsed from the fake's bytes, so these tests
pin the wire format (SSE framing, chunked encoding, camelCase JSON, error bodies).
"""
from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from google.genai import errors, types

from agy_jupyter.testing import Chunk, Disconnect, FakeGemini, RecordedRequest, Reply, Usage
from agy_jupyter.testing.fake_gemini import normalize_keys
from agy_jupyter.testing.replies import format_duration

MODEL = "gemini-2.5-flash"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake():
    with FakeGemini() as server:
        yield server


@pytest.fixture
def client(fake):
    client = fake.client()
    yield client
    client.close()


@pytest.fixture
async def aclient(fake):
    """For async tests: closing the aio transport on the test's loop avoids unclosed-socket warnings."""
    client = fake.client()
    yield client
    await client.aio.aclose()
    client.close()


def stream_texts(client, contents="hi", **kwargs):
    return [c.text for c in client.models.generate_content_stream(model=MODEL, contents=contents, **kwargs)]


# ----------------------------------------------------------------------------- basics
def test_public_api_basics(fake):
    assert fake.url == f"http://127.0.0.1:{fake.port}" and fake.port > 0
    assert fake.env() == {"GOOGLE_GEMINI_BASE_URL": fake.url, "GEMINI_API_KEY": "fake-key"}


def test_stream_text_in_order_sync(fake, client):
    fake.enqueue(Reply.text("Hello brave new world", chunks=4))
    texts = stream_texts(client, "hi there")
    assert len(texts) == 4
    assert "".join(texts) == "Hello brave new world"
    assert texts[0] == "Hello"

    (req,) = fake.requests
    assert isinstance(req, RecordedRequest)
    assert req.method == "streamGenerateContent" and req.stream
    assert req.model == MODEL
    assert req.path.endswith(f"/models/{MODEL}:streamGenerateContent?alt=sse")
    assert req.api_key == "fake-key" and req.headers["x-goog-api-key"] == "fake-key"
    assert req.last_user_text == "hi there"
    assert req.completed_time is not None and req.completed_time >= req.time
    assert not req.disconnected


async def test_stream_text_in_order_async(fake, aclient):
    fake.enqueue(Reply.text("one two three four five six", chunks=3, delay=0.01))
    texts = []
    async for chunk in await aclient.aio.models.generate_content_stream(model=MODEL, contents="go"):
        texts.append(chunk.text)
    assert texts == ["one two t", "hree four", " five six"]  # 27 chars in 3 even pieces
    assert fake.requests[0].last_user_text == "go"


def test_api_versions_both_accepted(fake, client):
    # google-genai 3.6.1 defaults to v1 (GOOGLE_AI_API_DEFAULT_VERSION); v1beta on request.
    assert client.models.generate_content(model=MODEL, contents="a").text == "You said: a"
    with fake.client(api_version="v1beta") as beta:
        assert beta.models.generate_content(model=MODEL, contents="b").text == "You said: b"
    assert [r.api_version for r in fake.requests] == ["v1", "v1beta"]
    assert fake.requests[1].path.startswith("/v1beta/models/")


def test_env_base_url_is_honoured(fake, monkeypatch):
    from google import genai

    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with genai.Client() as env_client:  # keep a reference: a Client closes its transport when collected
        response = env_client.models.generate_content(model=MODEL, contents="via env")
    assert response.text == "You said: via env"


def test_non_stream_merged(fake, client):
    fake.enqueue(Reply.text("merged answer text", chunks=5, usage=Usage(prompt=7, output=3)))
    response = client.models.generate_content(model=MODEL, contents="q")
    assert response.text == "merged answer text"
    (candidate,) = response.candidates
    assert len(candidate.content.parts) == 1  # adjacent text chunks are joined
    assert candidate.finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.total_token_count == 10
    assert response.model_version == MODEL and response.response_id
    assert fake.requests[0].method == "generateContent"


def test_default_echo_and_fifo(fake, client):
    fake.enqueue(Reply.text("first"), Reply.text("second"))
    answers = [client.models.generate_content(model=MODEL, contents=f"m{i}").text for i in range(3)]
    assert answers == ["first", "second", "You said: m2"]
    fake.default = Reply.echo(prefix="Echo> ", chunks=2)
    assert stream_texts(client, "abcd") == ["Echo>", " abcd"]  # 10 chars in 2 even pieces


def test_callable_reply(fake, client):
    fake.enqueue(lambda req: Reply.text(req.last_user_text.upper() + f" #{req.index}"))
    assert client.models.generate_content(model=MODEL, contents="shout").text == "SHOUT #0"


def test_broken_callable_gives_500(fake, client):
    fake.enqueue(lambda req: 1 / 0)
    with pytest.raises(errors.ServerError, match="ZeroDivisionError"):
        client.models.generate_content(model=MODEL, contents="x")


def test_count_tokens(fake, client):
    result = client.models.count_tokens(model=MODEL, contents="abcd" * 10)
    assert result.total_tokens == 10
    assert fake.requests[0].method == "countTokens"
    # countTokens does not consume scripted replies
    fake.enqueue(Reply.text("still queued"))
    client.models.count_tokens(model=MODEL, contents="x")
    assert fake.pending == 1


def test_unknown_path_is_404(fake):
    req = urllib.request.Request(fake.url + "/v1/models/x:embedContent", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 404
    assert json.loads(info.value.read())["error"]["status"] == "NOT_FOUND"
    assert fake.requests == []


# ----------------------------------------------------------------------------- parts and usage
def test_thoughts_function_call_signature_usage_stream(fake, client):
    fake.enqueue(Reply(
        chunks=[Chunk.thought("thinking..."), Chunk.text("a", thought_signature=b"sig"),
                Chunk.function_call("add", {"a": 1, "b": 2}, id="call-1"), Chunk.text("b")],
        finish_reason="STOP", usage=Usage(prompt=10, output=5, thoughts=2, cached=3)))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="add"))
    assert len(chunks) == 4

    thought = chunks[0].candidates[0].content.parts[0]
    assert thought.thought is True and thought.text == "thinking..."
    signed = chunks[1].candidates[0].content.parts[0]
    assert signed.text == "a" and not signed.thought and signed.thought_signature == b"sig"
    call = chunks[2].candidates[0].content.parts[0].function_call
    assert (call.name, call.args, call.id) == ("add", {"a": 1, "b": 2}, "call-1")
    assert chunks[2].function_calls[0].id == "call-1"

    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.candidates[0].content.role == "model" and last.candidates[0].index == 0
    assert chunks[0].candidates[0].finish_reason is None
    usage = last.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count,
            usage.cached_content_token_count, usage.total_token_count) == (10, 5, 2, 3, 17)
    assert chunks[0].usage_metadata is None
    assert all(c.model_version == MODEL and c.response_id == chunks[0].response_id for c in chunks)


def test_function_calls_non_stream(fake, client):
    fake.enqueue(Reply.function_calls([("add", {"a": 1}, "c1"), ("mul", {"b": 2}, "c2")]))
    response = client.models.generate_content(model=MODEL, contents="two calls")
    assert [(c.name, c.args, c.id) for c in response.function_calls] == [
        ("add", {"a": 1}, "c1"), ("mul", {"b": 2}, "c2")]


async def test_function_call_async(fake, aclient):
    fake.enqueue(Reply.function_call("add", {"a": 1}, id="call-1"))
    response = await aclient.aio.models.generate_content(model=MODEL, contents="x")
    assert response.function_calls[0].name == "add" and response.function_calls[0].id == "call-1"


def test_usage_estimated_when_not_given(fake, client):
    prompt, answer = "p" * 40, "r" * 21
    fake.enqueue(Reply.text(answer, chunks=3))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=prompt))
    usage = chunks[-1].usage_metadata
    assert usage.prompt_token_count == 10
    assert usage.candidates_token_count == 5
    assert usage.total_token_count == 15
    assert usage.thoughts_token_count is None


def test_max_tokens(fake, client):
    fake.enqueue(Reply.text("cut off mid", chunks=3, finish_reason="MAX_TOKENS"))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="long"))
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert "".join(c.text for c in chunks) == "cut off mid"


def test_safety_finish(fake, client):
    fake.enqueue(Reply.text("how to make", chunks=2, finish_reason="SAFETY"))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="bad"))
    candidate = chunks[-1].candidates[0]
    assert candidate.finish_reason == types.FinishReason.SAFETY
    fired = [r for r in candidate.safety_ratings if r.blocked]
    assert [(r.category, r.probability) for r in fired] == [
        (types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT, types.HarmProbability.HIGH)]


@pytest.mark.parametrize("stream", [True, False])
def test_blocked_prompt(fake, client, stream):
    fake.enqueue(Reply.blocked(reason="SAFETY"))
    if stream:
        (response,) = list(client.models.generate_content_stream(model=MODEL, contents="bad"))
    else:
        response = client.models.generate_content(model=MODEL, contents="bad")
    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert not response.candidates
    assert any(r.blocked for r in response.prompt_feedback.safety_ratings)


# ----------------------------------------------------------------------------- errors
def test_429_quota_and_retry_info(fake, client):
    fake.enqueue(Reply.error(429, retry_delay=2.0, quota_id="GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                             quota_value="15", retry_after=7))
    with pytest.raises(errors.ClientError) as info:
        list(client.models.generate_content_stream(model=MODEL, contents="x"))
    err = info.value
    assert err.code == 429 and err.status == "RESOURCE_EXHAUSTED"
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in err.details["error"]["details"]}
    assert details["RetryInfo"]["retryDelay"] == "2s"
    violation = details["QuotaFailure"]["violations"][0]
    assert violation["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    assert violation["quotaValue"] == "15"
    assert violation["quotaDimensions"] == {"model": MODEL, "location": "global"}
    assert violation["quotaMetric"].endswith("free_tier_requests")
    assert err.response.headers["retry-after"] == "7"


async def test_429_async_fractional_delay(fake, aclient):
    fake.enqueue(Reply.error(429, retry_delay=0.5))
    with pytest.raises(errors.ClientError) as info:
        await aclient.aio.models.generate_content(model=MODEL, contents="x")
    (retry,) = info.value.details["error"]["details"]
    assert retry == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.500s"}
    assert "retry-after" not in info.value.response.headers


def test_format_duration():
    assert [format_duration(x) for x in (2, 2.0, 0.5, 37.25)] == ["2s", "2s", "0.500s", "37.250s"]


@pytest.mark.parametrize("code,status,exc", [
    (400, "INVALID_ARGUMENT", errors.ClientError),
    (500, "INTERNAL", errors.ServerError),
    (503, "UNAVAILABLE", errors.ServerError),
])
def test_http_errors(fake, client, code, status, exc):
    fake.enqueue(Reply.error(code, message="custom message"))
    with pytest.raises(exc) as info:
        client.models.generate_content(model=MODEL, contents="x")
    assert info.value.code == code and info.value.status == status
    assert info.value.message == "custom message"


async def test_503_async_stream(fake, aclient):
    fake.enqueue(Reply.error(503))
    with pytest.raises(errors.ServerError) as info:
        async for _ in await aclient.aio.models.generate_content_stream(model=MODEL, contents="x"):
            pass
    assert info.value.code == 503 and "overloaded" in info.value.message


# ----------------------------------------------------------------------------- faults
def test_drop_after_sync(fake, client):
    fake.enqueue(Reply.text("abcdefghij", chunks=10).drop_after(3))
    got = []
    # The SDK lets the transport error through: httpx2.RemoteProtocolError
    # ("peer closed connection without sending complete message body: incomplete chunked read").
    with pytest.raises(Exception) as info:
        for chunk in client.models.generate_content_stream(model=MODEL, contents="x"):
            got.append(chunk.text)
    assert got == ["a", "b", "c"]
    assert type(info.value).__name__ == "RemoteProtocolError"
    assert fake.disconnects == []  # the server hung up; that is not a client disconnect
    # The client's pool recovers: the next request works on a fresh connection.
    assert client.models.generate_content(model=MODEL, contents="after").text == "You said: after"
    assert fake.requests[1].connection != fake.requests[0].connection


async def test_drop_after_async(fake, aclient):
    fake.enqueue(Reply.text("abcdef", chunks=6).drop_after(2))
    got = []
    with pytest.raises(Exception) as info:  # httpx2.RemoteProtocolError, as in the sync client
        async for chunk in await aclient.aio.models.generate_content_stream(model=MODEL, contents="x"):
            got.append(chunk.text)
    assert got == ["a", "b"]
    assert type(info.value).__name__ == "RemoteProtocolError"


def test_drop_non_stream(fake, client):
    fake.enqueue(Reply.text("whole").drop_after(0))
    with pytest.raises(Exception) as info:
        client.models.generate_content(model=MODEL, contents="x")
    assert type(info.value).__name__ == "RemoteProtocolError"


def test_malformed_after(fake, client):
    fake.enqueue(Reply.text("abcdef", chunks=6).malformed_after(2))
    got = []
    with pytest.raises(errors.UnknownApiResponseError, match="not json"):
        for chunk in client.models.generate_content_stream(model=MODEL, contents="x"):
            got.append(chunk.text)
    assert got == ["a", "b"]
    assert fake.requests[0].completed_time is not None
    assert not fake.requests[0].disconnected
    assert client.models.generate_content(model=MODEL, contents="again").text == "You said: again"


async def test_stall_cancel_disconnect_latency(fake, aclient):
    fake.enqueue(Reply.text("abcdefgh", chunks=8).stall_after(2))
    got: list[str] = []
    two_chunks = asyncio.Event()

    async def consume():
        async for chunk in await aclient.aio.models.generate_content_stream(model=MODEL, contents="x"):
            got.append(chunk.text)
            if len(got) == 2:
                two_chunks.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(two_chunks.wait(), 5)
    await asyncio.sleep(0.05)  # let the server settle into its stall
    t0 = time.perf_counter()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    disconnect = await asyncio.to_thread(fake.wait_for_disconnect, 2.0)
    assert isinstance(disconnect, Disconnect)
    latency = disconnect.time - t0
    print(f"\nstall -> cancel -> server saw disconnect in {latency * 1000:.1f} ms")
    assert latency < 0.5
    assert disconnect.request_index == 0 and disconnect.chunks_sent == 2
    req = fake.requests[0]
    assert req.disconnected and req.completed_time == disconnect.time
    assert got == ["a", "b"]
    assert fake.wait_for_disconnect(timeout=0.05) is None  # each disconnect is returned once


async def test_disconnect_during_ttft_and_delay(fake, aclient):
    # ttft: the client gives up before the first byte.
    fake.enqueue(Reply.text("late", ttft=30), Reply.text("abc", chunks=3, delay=30))
    task = asyncio.create_task(aclient.aio.models.generate_content(model=MODEL, contents="x"))
    assert await asyncio.to_thread(fake.wait_for_requests, 1, 5.0)
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    first = await asyncio.to_thread(fake.wait_for_disconnect, 2.0)
    assert first is not None and first.chunks_sent == 0 and first.time - t0 < 0.5

    # delay: the client leaves between chunks.
    async def consume():
        async for _ in await aclient.aio.models.generate_content_stream(model=MODEL, contents="y"):
            pass

    task = asyncio.create_task(consume())
    assert await asyncio.to_thread(fake.wait_for_requests, 2, 5.0)
    await asyncio.sleep(0.1)
    t0 = time.perf_counter()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    second = await asyncio.to_thread(fake.wait_for_disconnect, 2.0)
    assert second is not None and second.request_index == 1 and second.chunks_sent == 1
    assert second.time - t0 < 0.5
    assert [d.request_index for d in fake.disconnects] == [0, 1]


def test_sync_client_timeout_is_a_disconnect(fake):
    fake.enqueue(Reply.text("slow", ttft=30))
    with fake.client(timeout=300) as client:  # HttpOptions.timeout is in milliseconds
        with pytest.raises(Exception):  # httpx2.ReadTimeout
            client.models.generate_content(model=MODEL, contents="x")
    disconnect = fake.wait_for_disconnect(timeout=2.0)
    assert disconnect is not None and disconnect.chunks_sent == 0
    assert disconnect.time - fake.requests[0].time < 1.0


def test_stop_is_prompt_while_stalled():
    fake = FakeGemini().start()
    fake.enqueue(Reply.text("abc", chunks=3).stall_after(1))
    errors_seen: list[BaseException] = []
    client = fake.client()

    def call():
        try:
            list(client.models.generate_content_stream(model=MODEL, contents="x"))
        except BaseException as exc:  # the server going away mid-stream
            errors_seen.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    assert fake.wait_for_requests(1, 5.0)
    time.sleep(0.1)
    t0 = time.perf_counter()
    fake.stop()
    elapsed = time.perf_counter() - t0
    thread.join(5)
    client.close()
    print(f"\nstop() with a stalled stream took {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0
    assert not thread.is_alive() and errors_seen
    assert fake.disconnects == []  # server-initiated, not a client disconnect
    assert not fake.running


# ----------------------------------------------------------------------------- connections
def test_keep_alive_reuses_connection(fake, client):
    fake.enqueue(Reply.text("one", chunks=3), Reply.text("two"), Reply.text("three", chunks=2))
    assert "".join(stream_texts(client)) == "one"
    assert client.models.generate_content(model=MODEL, contents="x").text == "two"
    assert "".join(stream_texts(client)) == "three"
    assert len({r.connection for r in fake.requests}) == 1


async def test_concurrent_streams(fake, aclient):
    for _ in range(4):
        fake.enqueue(Reply.text("abc", chunks=3, delay=0.1, ttft=0.2))

    async def one(i):
        return "".join([c.text async for c in await aclient.aio.models.generate_content_stream(
            model=MODEL, contents=f"c{i}")])

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(4)))
    elapsed = time.perf_counter() - t0
    assert results == ["abc"] * 4
    assert elapsed < 1.2  # sequential would take 4 x 0.4 s
    assert len({r.connection for r in fake.requests}) == 4


def test_timing_ttft_and_delay(fake, client):
    fake.enqueue(Reply.text("abc", chunks=3, delay=0.1, ttft=0.2))
    t0 = time.perf_counter()
    stamps = [time.perf_counter() - t0 for _ in client.models.generate_content_stream(model=MODEL, contents="x")]
    assert stamps[0] >= 0.19  # the first chunk waits for ttft
    # then two delays: measured from the start, since a late first read (a loaded machine) shortens the gap after it
    assert stamps[2] >= 0.39


def test_wait_for_requests_and_reset(fake, client):
    assert fake.wait_for_requests(1, timeout=0.05) is False
    fake.enqueue(Reply.text("a"), Reply.text("b"))
    client.models.generate_content(model=MODEL, contents="x")
    assert fake.wait_for_requests(1, timeout=1.0) is True
    fake.reset()
    assert fake.requests == [] and fake.disconnects == [] and fake.pending == 0
    assert client.models.generate_content(model=MODEL, contents="y").text == "You said: y"
    assert fake.requests[0].index == 0


# ----------------------------------------------------------------------------- request parsing
def test_sdk_request_fields_are_normalised(fake, client):
    config = types.GenerateContentConfig(
        system_instruction="be brief",
        temperature=0.5,
        thinking_config=types.ThinkingConfig(include_thoughts=True),
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
            name="read", description="read a file",
            parameters_json_schema={"type": "object", "properties": {"file_path": {"type": "string"}}})])])
    contents = [
        types.Content(role="user", parts=[types.Part(text="read it")]),
        types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(name="read", args={"file_path": "a"}))]),
        types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
            name="read", response={"file_text": "hello"}))]),
    ]
    client.models.generate_content(model=MODEL, contents=contents, config=config)
    req = fake.requests[0]
    # The SDK sends snake_case inside some objects; the record normalises them.
    assert req.body["generationConfig"]["thinkingConfig"] == {"include_thoughts": True}
    assert req.generation_config["thinkingConfig"] == {"includeThoughts": True}
    assert req.generation_config["temperature"] == 0.5
    assert req.system_instruction == "be brief"
    decl = req.tools[0]["functionDeclarations"][0]
    assert decl["parametersJsonSchema"]["properties"] == {"file_path": {"type": "string"}}
    assert req.last_user_text == "read it"  # the tool-result turn has no text
    assert req.contents[2]["parts"][0]["functionResponse"]["response"] == {"file_text": "hello"}
    assert req.contents[1]["parts"][0]["functionCall"]["args"] == {"file_path": "a"}


@pytest.mark.parametrize("style", ["snake", "camel"])
def test_raw_snake_and_camel_bodies(fake, style):
    snake = {
        "contents": [{"role": "user", "parts": [{"text": "hello raw"}]}],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "generation_config": {"max_output_tokens": 5, "thinking_config": {"include_thoughts": True}},
        "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {
            "type": "object", "properties": {"file_path": {"type": "string"}}}}]}],
    }
    body = snake if style == "snake" else normalize_keys(snake)
    assert ("generationConfig" in body) == (style == "camel")
    fake.enqueue(Reply.text("raw ok", chunks=2))
    req = urllib.request.Request(f"{fake.url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "x-goog-api-key": "k-raw"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        events = [json.loads(line[len(b"data: "):]) for line in resp.read().split(b"\r\n\r\n") if line]
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events) == "raw ok"

    rec = fake.requests[0]
    assert rec.body == body  # stored as sent
    assert rec.api_key == "k-raw"
    assert rec.last_user_text == "hello raw"
    assert rec.system_instruction == "sys"
    assert rec.generation_config == {"maxOutputTokens": 5, "thinkingConfig": {"includeThoughts": True}}
    assert rec.tools[0]["functionDeclarations"][0]["parametersJsonSchema"]["properties"] == {
        "file_path": {"type": "string"}}


def test_invalid_json_body(fake):
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    conn.request("POST", f"/v1/models/{MODEL}:generateContent", body=b"{nope", headers={"x-goog-api-key": "k"})
    resp = conn.getresponse()
    assert resp.status == 400 and json.loads(resp.read())["error"]["status"] == "INVALID_ARGUMENT"
    conn.close()
    assert fake.requests[0].body is None


def test_reply_from_dict(fake, client):
    script = [
        "plain",
        {"text": "abcdef", "chunks": 3, "finish_reason": "MAX_TOKENS", "usage": {"prompt": 1, "output": 2}},
        {"chunks": [{"thought": "hmm"}, {"function_call": {"name": "add", "args": {"a": 1}, "id": "c1"},
                                          "thought_signature": "s"}]},
        {"error": 429, "retry_delay": 1.5},
        {"blocked": "OTHER"},
        {"echo": True, "prefix": "E: "},
        {"text": "abcd", "chunks": 4, "drop_after": 1},
    ]
    fake.enqueue(*[Reply.from_dict(item) for item in script])
    assert client.models.generate_content(model=MODEL, contents="x").text == "plain"
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="x"))
    assert [c.text for c in chunks] == ["ab", "cd", "ef"]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert chunks[-1].usage_metadata.total_token_count == 3
    parts = client.models.generate_content(model=MODEL, contents="x").candidates[0].content.parts
    assert parts[0].thought and parts[1].function_call.id == "c1" and parts[1].thought_signature == b"s"
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=MODEL, contents="x")
    assert info.value.details["error"]["details"][0]["retryDelay"] == "1.500s"
    blocked = client.models.generate_content(model=MODEL, contents="x")
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.OTHER
    assert client.models.generate_content(model=MODEL, contents="yo").text == "E: yo"
    with pytest.raises(Exception):
        list(client.models.generate_content_stream(model=MODEL, contents="x"))
    with pytest.raises(ValueError):
        Reply.from_dict({"nothing": 1})


def test_builders_do_not_mutate():
    base = Reply.text("abc", chunks=3)
    dropped = base.drop_after(1).stall_after(2)
    assert base.drop_at is None and base.stall_at is None
    assert (dropped.drop_at, dropped.stall_at) == (1, 2)


# ----------------------------------------------------------------------------- CLI
def test_cli_subprocess(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "from script", "chunks": 2}]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agy_jupyter.testing", "--port", "0", "--script", str(script), "--chunks", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 10
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("GOOGLE_GEMINI_BASE_URL="):
                url = line.strip().split("=", 1)[1]
        assert url and url.startswith("http://127.0.0.1:"), lines
        assert "GEMINI_API_KEY=fake-key\n" in lines + [proc.stdout.readline()]

        from google import genai

        with genai.Client(api_key="fake-key", http_options=types.HttpOptions(base_url=url)) as client:
            texts = [c.text for c in client.models.generate_content_stream(model=MODEL, contents="q")]
            assert texts == ["from ", "script"]
            assert client.models.generate_content(model=MODEL, contents="ping").text == "You said: ping"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.stderr.close()
    assert proc.returncode == 0, stderr
    assert "streamGenerateContent" in stderr  # request log


def test_port_is_free_after_stop():
    fake = FakeGemini().start()
    port = fake.port
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # listening while running
    fake.stop()
    assert not fake.running
    with pytest.raises(ConnectionRefusedError):  # nobody listens any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # and the port can be taken again
        sock.listen()
        assert sock.getsockname() == ("127.0.0.1", port)
