"""Inter-agent messages: each agent's inbox is bounded, and its message turns are spaced on its own
schedule (a queue for one agent never delays another). Real agents against the fake Gemini server."""
from __future__ import annotations

import asyncio

import pytest

from agy_jupyter import Agent, AgentConfig, Runtime, RuntimeConfig
from agy_jupyter.runtime.errors import AgyError, InboxFull, RuntimeClosed
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import Reply


@pytest.fixture
def make_runtime(fake):
    made: list[Runtime] = []

    def make(**settings) -> Runtime:
        config = dict(chat_timeout=10, operation_timeout=5, shutdown_timeout=3)
        config.update(settings)
        made.append(Runtime(RuntimeConfig(**config), quota=QuotaRegistry()))
        return made[-1]

    yield make
    for runtime in made:
        runtime.shutdown()


def body(request) -> str:
    """The message a request carried, without the "[message from agent X]" header."""
    return request.last_user_text.split("]", 1)[-1].removeprefix("\n")


def stalled() -> Reply:
    return Reply.text("one two three four five six", chunks=6).stall_after(1)


def test_a_queue_for_one_agent_does_not_delay_another(make_runtime, fake):
    delay = 0.4
    rt = make_runtime(inter_agent_delay=delay)
    bob, carol = (rt.create_agent(AgentConfig(name=n)) for n in ("bob", "carol"))
    rt.chat(bob, "warm up the client").result(5)  # so connection setup does not skew the order
    fake.reset()
    for text in ("bob 1", "bob 2", "bob 3"):
        rt.send(bob, text, "alice")
    rt.send(carol, "carol 1", "alice")
    rt.wait_for_idle(bob)
    rt.wait_for_idle(carol)
    texts = [body(r) for r in fake.requests]
    assert sorted(texts) == ["bob 1", "bob 2", "bob 3", "carol 1"]
    # carol's message started at once: with one schedule for all agents it would wait for bob's three
    assert texts.index("carol 1") < texts.index("bob 2")
    bobs = [r for r, t in zip(fake.requests, texts) if t.startswith("bob")]
    assert all(b.time - a.time >= delay - 0.03 for a, b in zip(bobs, bobs[1:]))  # bob's own turns are spaced


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_full_inbox_refuses_the_message_and_says_why(make_runtime, fake, mode):
    rt = make_runtime(inbox_capacity=2, inter_agent_delay=0.0)
    bob = Agent("bob", runtime=rt)
    fake.enqueue(stalled())
    stream = bob.stream("busy with a long answer")
    assert fake.wait_for_requests(1)
    send = rt.send if mode == "sync" else lambda *a: asyncio.run(rt.aio.send(*a))
    send(bob.id, "first", "alice")
    send(bob.id, "second", "alice")
    with pytest.raises(InboxFull) as info:
        send(bob.id, "third", "alice")
    error = info.value
    assert isinstance(error, AgyError) and error.waiting == 2 and error.operation == "send"
    assert "2 undelivered messages" in str(error) and "idle" in str(error)  # what happened, what to do
    assert rt.is_idle(bob.id) is False
    bob.cancel()
    assert stream.result(2).cancelled
    bob.wait_for_idle()  # the two queued messages ran; the refused one never did
    assert bob.turn_count() == 3
    assert [body(r) for r in fake.requests[1:]] == ["first", "second"]
    send(bob.id, "room again", "alice")  # an emptied inbox takes messages again
    bob.wait_for_idle()
    assert bob.turn_count() == 4


def test_a_message_to_a_shut_down_agent_is_an_error_not_silently_dropped(make_runtime, fake):
    rt = make_runtime()
    bob = Agent("bob", runtime=rt)
    bob.shutdown()
    with pytest.raises(RuntimeClosed, match="not delivered"):
        rt.send(bob.id, "hello?", "alice")
