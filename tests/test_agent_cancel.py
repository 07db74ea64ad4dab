"""Cancel at each point of a turn: the HTTP stream closes, the history stays valid, the next turn works."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

import agy_jupyter as agy
from agy_jupyter.agent.history import contents_for_model, history_is_valid
from agy_jupyter.testing import Chunk, Reply


def wait_for_event(stream, kind, timeout=5.0, count=1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(e.kind == kind for e in stream.events) >= count:
            return
        time.sleep(0.005)
    raise AssertionError(f"no {kind} event within {timeout}s: {stream.events}")


def check_next_turn_is_valid(fake, agent):
    """The history is valid, and the next request the server receives is a valid conversation."""
    assert history_is_valid(contents_for_model(agent.history()))
    fake.enqueue(Reply.text("fine again"))
    assert agent.chat("are you there?").text == "fine again"
    sent = fake.requests[-1].contents
    roles = [c["role"] for c in sent]
    assert all(a != b for a, b in zip(roles, roles[1:])), roles
    calls = [p["functionCall"]["id"] for c in sent for p in c["parts"] if "functionCall" in p]
    answered = [p["functionResponse"]["id"] for c in sent for p in c["parts"] if "functionResponse" in p]
    assert sorted(calls) == sorted(answered)


def test_cancel_before_the_first_token(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("never seen", ttft=30))
    stream = agent.stream("slow question")
    assert fake.wait_for_requests(1, timeout=5)
    cancelled_at = time.perf_counter()
    stream.cancel()
    response = stream.result(timeout=5)
    disconnect = fake.wait_for_disconnect(timeout=5)
    assert response.cancelled and response.stop_reason == "cancelled" and response.text == ""
    assert disconnect is not None and disconnect.time - cancelled_at < 0.5
    prompt = agent.history()[-1]
    assert prompt.status == "cancelled" and prompt.excluded  # kept in the transcript, not re-sent
    check_next_turn_is_valid(fake, agent)
    assert "slow question" not in str(fake.requests[-1].contents)


def test_cancel_mid_stream_keeps_the_partial_text(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply(chunks=[Chunk.text("Once "), Chunk.text("upon a time"), Chunk.text(" there was")])
                 .stall_after(2))
    stream = agent.stream("tell a story")
    wait_for_event(stream, "text", count=2)
    cancelled_at = time.perf_counter()
    agent.cancel()  # the runtime command; returns once the history is repaired
    disconnect = fake.wait_for_disconnect(timeout=5)
    response = stream.result(timeout=5)
    assert disconnect is not None and disconnect.time - cancelled_at < 0.5 and disconnect.chunks_sent == 2
    assert response.cancelled and response.text == "Once upon a time"
    reply = agent.history()[-1]
    assert (reply.role, reply.status, reply.text) == ("model", "cancelled", "Once upon a time")
    check_next_turn_is_valid(fake, agent)


def test_cancel_while_awaiting_approval(fake, make_agent):
    never = asyncio.Event()

    async def wait_forever(request):
        await never.wait()

    def add(a: int, b: int) -> int:
        return a + b

    agent = make_agent(tools=[add], approval_handler=wait_forever)
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 2}, id="c1"))
    stream = agent.stream("1+2")
    wait_for_event(stream, "approval")
    assert not agent.is_idle()
    agent.cancel()
    response = stream.result(timeout=5)
    assert response.cancelled
    assert [(c.id, c.status) for c in response.tool_calls] == [("c1", "cancelled")]
    results = agent.history()[-1]
    assert results.kind == "tool_results" and results.function_responses[0].id == "c1"
    assert agent.is_idle()
    check_next_turn_is_valid(fake, agent)


def test_cancel_inside_a_tool(fake, make_agent):
    started, release = threading.Event(), threading.Event()

    def slow_lookup(key: str) -> str:
        started.set()
        release.wait(10)
        return "value"

    agent = make_agent(tools=[slow_lookup], policies=[agy.allow_all()])
    fake.enqueue(Reply.function_calls([("slow_lookup", {"key": "a"}, "c1"), ("slow_lookup", {"key": "b"}, "c2")]))
    stream = agent.stream("look both up")
    assert started.wait(5)
    t0 = time.perf_counter()
    stream.cancel()
    response = stream.result(timeout=5)
    release.set()
    assert time.perf_counter() - t0 < 1  # the worker thread is abandoned, not awaited
    assert response.cancelled
    assert sorted((c.id, c.status) for c in response.tool_calls) == [("c1", "cancelled"), ("c2", "cancelled")]
    check_next_turn_is_valid(fake, agent)


async def test_cancelling_the_awaiting_task_cancels_the_turn(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("slow", chunks=4).stall_after(1))
    task = asyncio.create_task(agent.achat("hi"))
    assert await asyncio.to_thread(fake.wait_for_requests, 1, 5)
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    disconnect = await asyncio.to_thread(fake.wait_for_disconnect, 5)
    assert disconnect is not None
    await agent.aio.wait_for_idle()
    assert agent.history()[-1].status == "cancelled"


def test_chat_timeout_is_a_typed_error_and_keeps_the_history_valid(fake, runtime, monkeypatch):
    rt = agy.Runtime(agy.RuntimeConfig(chat_timeout=0.5, shutdown_timeout=5), quota=runtime.quota)
    try:
        agent = agy.Agent("slowpoke", runtime=rt)
        fake.enqueue(Reply.text("a b c d", chunks=4).stall_after(1))
        with pytest.raises(agy.Timeout, match="chat timed out after 0.5 s"):
            agent.chat("hi")
        assert fake.wait_for_disconnect(timeout=5) is not None
        assert agent.history()[-1].status == "error" and agent.history()[-1].text == "a"
        check_next_turn_is_valid(fake, agent)
    finally:
        rt.shutdown()
