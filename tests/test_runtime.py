"""The runtime: its thread and loop, every command (sync and `await runtime.aio.X`), the bounded channel,
timeouts, crash and hang handling, context propagation, RuntimeConfig.

Commands run against the real agent (agy_jupyter.AgentConfig) talking to the fake Gemini server. A stub
session is used only where the real agent cannot produce the situation (a loop blocked by sync code).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import threading
import time

import pydantic
import pytest

from agy_jupyter import AgentConfig, Hooks, Runtime, RuntimeConfig
from agy_jupyter.agent.events import TextDelta
from agy_jupyter.runtime import (AgyError, ChatStream, ConfigError, RuntimeClosed, Timeout, UnknownAgent,
                                 chat_timeout_from_env, get_runtime)
from agy_jupyter.runtime.interrupt import POLL_INTERVAL, wait_interruptibly
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import Reply

# -- fixtures and helpers (the `fake` server fixture is in conftest.py) ------------------------------

@pytest.fixture
def make_runtime(fake):
    """make_runtime(**config) -> a fresh Runtime with small timeouts; every one is shut down afterwards."""
    made: list[Runtime] = []

    def make(**settings) -> Runtime:
        config = dict(chat_timeout=10, operation_timeout=5, shutdown_timeout=3, inter_agent_delay=0.0)
        config.update(settings)
        runtime = Runtime(RuntimeConfig(**config), quota=QuotaRegistry())
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        try:
            runtime.shutdown()
        except AgyError:
            pass  # the crash / hang tests end with a runtime whose shutdown reports an error
        runtime.thread.join(5)
        assert not runtime.thread.is_alive()


@pytest.fixture
def rt(make_runtime):
    return make_runtime()


@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


def run(runtime: Runtime, mode: str, command: str, *args, **kwargs):
    """Call a command in its sync form, or await its async form on a fresh event loop."""
    if mode == "sync":
        return getattr(runtime, command)(*args, **kwargs)
    return asyncio.run(getattr(runtime.aio, command)(*args, **kwargs))


class Call(threading.Thread):
    """Run fn(*args) in a thread; keep its value or error and how long it took."""

    def __init__(self, fn, *args, start: bool = True):
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.value = self.error = None
        self.elapsed: float | None = None
        if start:
            self.start()

    def run(self) -> None:
        started = time.perf_counter()
        try:
            self.value = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - the test inspects whatever happened
            self.error = exc
        self.elapsed = time.perf_counter() - started

    def result(self, timeout: float = 5.0):
        self.join(timeout)
        assert not self.is_alive(), f"{self.fn} did not return within {timeout} s"
        if self.error is not None:
            raise self.error
        return self.value


def stalled(text: str = "one two three four five six seven eight nine ten") -> Reply:
    """A streamed reply that sends two chunks, then nothing until the client goes away."""
    return Reply.text(text, chunks=10).stall_after(2)


def wait_until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def die() -> None:
    raise SystemExit("boom: the loop thread dies")


class BlockingSpec:
    """Stub spec. The real agent never blocks its loop, so a hung loop can only be simulated: this
    session's sync `is_idle` sleeps on the runtime loop (as a buggy sync hook or tool would)."""

    def __init__(self, name: str = "blocker", block: float = 1.0):
        self.name, self.block = name, block

    def create_session(self, services, agent_id):
        return BlockingSession(self.name, self.block)


class BlockingSession:
    def __init__(self, name: str, block: float):
        self.name, self.block = name, block

    def is_idle(self) -> bool:
        time.sleep(self.block)  # blocks the runtime loop
        return True

    async def shutdown(self) -> None:
        pass

    def snapshot(self):
        return None

    def restore(self, state) -> None:
        pass


# -- thread, loop, lifecycle -----------------------------------------------------------------------

def test_runtime_thread_is_a_named_daemon_with_its_own_loop(rt):
    thread = rt.thread
    assert thread.name == "agy-runtime" and thread.daemon and thread.is_alive()
    assert thread is not threading.current_thread()
    assert rt.is_alive and rt.loop.is_running()
    # the loop runs on that thread
    probe: concurrent.futures.Future = concurrent.futures.Future()
    rt.loop.call_soon_threadsafe(lambda: probe.set_result((threading.current_thread(),
                                                            asyncio.get_running_loop())))
    assert probe.result(2) == (thread, rt.loop)


async def test_created_inside_a_running_loop_gets_its_own_loop(make_runtime):
    caller_loop = asyncio.get_running_loop()
    rt = make_runtime()
    assert rt.loop is not caller_loop and rt.thread.is_alive()
    # awaiting a command does not block the caller's loop: a task here keeps ticking meanwhile
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    aid = await rt.aio.create_agent(AgentConfig(name="a"))
    assert await rt.aio.wait_for_wakeup(aid, 0.3) is False
    task.cancel()
    assert ticks >= 10
    # the sync form works from inside a running loop too (it blocks this loop, not the runtime's)
    assert rt.agent_ids() == {"a": aid}


def test_shutdown_joins_the_thread_and_is_idempotent(rt):
    thread, loop = rt.thread, rt.loop
    rt.shutdown()
    assert not thread.is_alive() and loop.is_closed() and not rt.is_alive
    rt.shutdown()  # the second call is a no-op
    assert "shut down" in repr(rt)


def test_commands_after_shutdown_raise_runtime_closed_at_once(rt, mode):
    aid = rt.create_agent(AgentConfig(name="a"))
    rt.shutdown()
    calls = [("agent_ids",), ("create_agent", AgentConfig(name="b")), ("chat", aid, "hi"), ("history", aid),
             ("wait_for_idle", aid), ("wait_for_wakeup", aid, 5.0), ("send", aid, "x", "b"), ("is_idle", aid),
             ("delete", aid), ("shutdown_agent", aid)]
    for command, *args in calls:
        started = time.perf_counter()
        with pytest.raises(RuntimeClosed) as info:
            run(rt, mode, command, *args)
        assert time.perf_counter() - started < 0.5, command
        assert command in str(info.value) and "shut down" in str(info.value)


def test_restart_after_shutdown_brings_commands_and_history_back(rt, fake):
    aid = rt.create_agent(AgentConfig(name="a"))
    fake.enqueue(Reply.text("first answer"))
    assert rt.chat(aid, "hello").result(5).text == "first answer"
    old_thread = rt.thread
    rt.shutdown()
    rt.restart()
    assert rt.is_alive and rt.thread is not old_thread and rt.thread.is_alive()
    assert [m.role for m in rt.history("a")] == ["user", "model"]
    assert rt.turn_count(aid) == 1 and rt.last_response(aid) == "first answer"
    fake.enqueue(Reply.text("second answer"))
    assert rt.chat("a", "again").result(5).text == "second answer"
    # the model saw the restored conversation
    assert [c["role"] for c in fake.requests[-1].contents] == ["user", "model", "user"]


# -- RuntimeConfig ---------------------------------------------------------------------------------

@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("AGY_CHAT_TIMEOUT_SECS", raising=False)
    monkeypatch.delenv("AGI_CHAT_TIMEOUT_SECS", raising=False)
    return monkeypatch


def test_config_defaults(clean_env):
    config = RuntimeConfig()
    assert config.channel_capacity == 64
    assert config.chat_timeout == 120
    assert config.operation_timeout == 240
    assert config.shutdown_timeout == 10
    assert config.inter_agent_delay == 0.5
    assert config.inbox_capacity == 32
    assert config.tool_threads == 8


def test_config_operation_timeout_derives_from_a_custom_chat_timeout(clean_env):
    assert RuntimeConfig(chat_timeout=30).operation_timeout == 150
    assert RuntimeConfig(chat_timeout=30, operation_timeout=7).operation_timeout == 7


def test_config_json_round_trip_is_exact(clean_env):
    config = RuntimeConfig(channel_capacity=16, chat_timeout=60.25, operation_timeout=10.1, shutdown_timeout=5,
                           inter_agent_delay=0.1, inbox_capacity=3, tool_threads=3)
    again = RuntimeConfig.model_validate_json(config.model_dump_json())
    assert again == config
    assert again.model_dump() == {"channel_capacity": 16, "chat_timeout": 60.25, "operation_timeout": 10.1,
                                  "shutdown_timeout": 5, "inter_agent_delay": 0.1, "inbox_capacity": 3,
                                  "tool_threads": 3}
    default = RuntimeConfig()
    assert RuntimeConfig.model_validate_json(default.model_dump_json()) == default


@pytest.mark.parametrize("name", ["AGY_CHAT_TIMEOUT_SECS", "AGI_CHAT_TIMEOUT_SECS"])
def test_config_chat_timeout_from_the_environment(clean_env, name):
    clean_env.setenv(name, "45")
    config = RuntimeConfig()
    assert config.chat_timeout == 45 and config.operation_timeout == 165


def test_config_env_project_name_wins_over_the_seed_name(clean_env):
    clean_env.setenv("AGI_CHAT_TIMEOUT_SECS", "45")
    clean_env.setenv("AGY_CHAT_TIMEOUT_SECS", "30")
    assert RuntimeConfig().chat_timeout == 30


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan"])
def test_config_invalid_env_value_warns_and_falls_back(clean_env, caplog, value):
    clean_env.setenv("AGY_CHAT_TIMEOUT_SECS", value)
    with caplog.at_level(logging.WARNING, logger="agy_jupyter.runtime.config"):
        assert RuntimeConfig().chat_timeout == 120
    assert "AGY_CHAT_TIMEOUT_SECS" in caplog.text and repr(value) in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agy_jupyter.runtime.config"):
        assert chat_timeout_from_env({"AGI_CHAT_TIMEOUT_SECS": value}) == 120
    assert "AGI_CHAT_TIMEOUT_SECS" in caplog.text


def test_config_valid_env_value_does_not_warn(clean_env, caplog):
    with caplog.at_level(logging.WARNING, logger="agy_jupyter.runtime.config"):
        assert chat_timeout_from_env({"AGY_CHAT_TIMEOUT_SECS": "2.5"}) == 2.5
        assert chat_timeout_from_env({}) == 120
    assert caplog.text == ""


@pytest.mark.parametrize("bad", [
    {"channel_capacity": 0}, {"channel_capacity": -1}, {"chat_timeout": -1}, {"chat_timeout": 0},
    {"operation_timeout": -0.5}, {"shutdown_timeout": 0}, {"inter_agent_delay": -0.1}, {"inbox_capacity": 0},
    {"chat_timeout": float("inf")}, {"operation_timeout": float("nan")}, {"unknown_setting": 1},
])
def test_config_rejects_bad_values(clean_env, bad):
    with pytest.raises(pydantic.ValidationError):
        RuntimeConfig(**bad)


def test_config_is_frozen(clean_env):
    with pytest.raises(pydantic.ValidationError):
        RuntimeConfig().chat_timeout = 5


# -- every command, sync and async -----------------------------------------------------------------

def test_create_chat_and_queries(rt, fake, mode):
    aid = run(rt, mode, "create_agent", AgentConfig(name="a"))
    assert isinstance(aid, int)
    assert run(rt, mode, "agent_ids") == {"a": aid}
    fake.enqueue(Reply.text("hi there", chunks=3, delay=0.01))
    stream = run(rt, mode, "chat", aid, "hello")
    assert isinstance(stream, ChatStream)
    response = stream.result(5)
    assert response.text == "hi there"
    assert "".join(e.text for e in stream.events if isinstance(e, TextDelta)) == "hi there"
    assert fake.requests[-1].last_user_text == "hello"
    assert [m.role for m in run(rt, mode, "history", aid)] == ["user", "model"]
    assert [m.role for m in run(rt, mode, "history", "a")] == ["user", "model"]  # by name too
    assert run(rt, mode, "turn_count", aid) == 1
    first = run(rt, mode, "last_turn_usage", aid)
    assert first.total_tokens > 0 and first.calls == 1
    assert run(rt, mode, "total_usage", aid) == first

    fake.enqueue(Reply.text("second reply"))
    assert run(rt, mode, "chat", "a", "more").result(5).text == "second reply"
    assert run(rt, mode, "turn_count", aid) == 2
    second = run(rt, mode, "last_turn_usage", aid)
    total = run(rt, mode, "total_usage", aid)
    assert total.calls == 2 and total.total_tokens == first.total_tokens + second.total_tokens
    assert run(rt, mode, "last_response", aid) == "second reply"
    assert run(rt, mode, "compaction_indices", aid) == []
    assert run(rt, mode, "is_idle", aid) is True

    assert run(rt, mode, "clear_history", aid) is None
    assert run(rt, mode, "history", aid) == []
    assert run(rt, mode, "turn_count", aid) == 0
    assert run(rt, mode, "last_response", aid) is None


def test_cancel_and_wait_for_idle(rt, fake, mode):
    aid = run(rt, mode, "create_agent", AgentConfig(name="a"))
    run(rt, mode, "cancel", aid)  # nothing running: a no-op
    fake.enqueue(stalled())
    stream = run(rt, mode, "chat", aid, "stall please")
    assert fake.wait_for_requests(1)
    assert run(rt, mode, "is_idle", aid) is False
    run(rt, mode, "cancel", aid)
    assert stream.done()  # cancel returns once the turn has ended
    assert stream.result(0).cancelled
    assert run(rt, mode, "is_idle", aid) is True
    assert fake.wait_for_disconnect(2) is not None  # the HTTP stream was closed

    fake.enqueue(Reply.text("slow reply here", chunks=3, delay=0.1))
    stream = run(rt, mode, "chat", aid, "go")
    started = time.perf_counter()
    run(rt, mode, "wait_for_idle", aid)
    assert time.perf_counter() - started >= 0.15
    assert stream.done() and stream.result(0).text == "slow reply here"
    assert run(rt, mode, "is_idle", aid) is True


def test_signal_idle_releases_idle_waiters(rt, fake, mode):
    aid = run(rt, mode, "create_agent", AgentConfig(name="a"))
    fake.enqueue(stalled())
    stream = run(rt, mode, "chat", aid, "stall please")
    assert fake.wait_for_requests(1)
    waiter = Call(run, rt, mode, "wait_for_idle", aid)
    time.sleep(0.2)
    assert waiter.is_alive()  # the turn is still running
    run(rt, mode, "signal_idle", aid)
    waiter.result(2)
    assert not stream.done()  # signal_idle released the waiter; it did not end the turn
    run(rt, mode, "cancel", aid)
    assert stream.result(2).cancelled


def test_send_and_wait_for_wakeup(rt, fake, mode):
    alice = run(rt, mode, "create_agent", AgentConfig(name="alice"))
    bob = run(rt, mode, "create_agent", AgentConfig(name="bob"))
    started = time.perf_counter()
    assert run(rt, mode, "wait_for_wakeup", bob, 0.2) is False
    assert time.perf_counter() - started >= 0.18
    waiter = Call(run, rt, mode, "wait_for_wakeup", bob, 3.0)
    time.sleep(0.05)
    fake.enqueue(Reply.text("pong"))
    assert run(rt, mode, "send", bob, "ping", "alice") is None
    assert waiter.result(2) is True and waiter.elapsed < 1.0
    run(rt, mode, "wait_for_idle", bob)
    request = fake.requests[-1]
    assert "ping" in request.last_user_text and "alice" in request.last_user_text  # the prompt names the sender
    assert run(rt, mode, "turn_count", bob) == 1 and run(rt, mode, "last_response", bob) == "pong"
    assert run(rt, mode, "turn_count", alice) == 0


def test_wait_for_idle_after_send_waits_for_the_delivery(make_runtime, fake, mode):
    rt = make_runtime(inter_agent_delay=0.3)
    bob = rt.create_agent(AgentConfig(name="bob"))
    run(rt, mode, "send", bob, "first", "alice")
    run(rt, mode, "send", bob, "second", "alice")  # delivered 0.3 s after the first
    assert run(rt, mode, "is_idle", bob) is False  # messages waiting in the inbox count
    run(rt, mode, "wait_for_idle", bob)
    assert run(rt, mode, "turn_count", bob) == 2
    assert [r.last_user_text.endswith(t) for r, t in zip(fake.requests, ["first", "second"])] == [True, True]


def test_shutdown_agent_keeps_history_and_refuses_new_turns(rt, fake, mode):
    aid = run(rt, mode, "create_agent", AgentConfig(name="a"))
    fake.enqueue(stalled())
    stream = run(rt, mode, "chat", aid, "stall please")
    assert fake.wait_for_requests(1)
    run(rt, mode, "shutdown_agent", aid)
    assert stream.result(2).cancelled
    assert [m.role for m in run(rt, mode, "history", aid)][0] == "user"  # still readable
    with pytest.raises(RuntimeClosed, match="shut down"):
        run(rt, mode, "chat", aid, "again")
    assert rt.is_alive and run(rt, mode, "agent_ids") == {"a": aid}


def test_try_shutdown_agent_never_blocks_or_raises(rt, fake, caplog):
    aid = rt.create_agent(AgentConfig(name="a"))
    other = rt.create_agent(AgentConfig(name="b"))
    fake.enqueue(stalled())
    stream = rt.chat(aid, "stall please")
    assert fake.wait_for_requests(1)
    started = time.perf_counter()
    assert rt.try_shutdown_agent(aid) is True
    assert asyncio.run(rt.aio.try_shutdown_agent(other)) is True
    with caplog.at_level(logging.WARNING, logger="agy_jupyter.runtime.core"):
        assert rt.try_shutdown_agent(12345) is True  # unknown: requested, then logged; never raised
        assert rt.try_shutdown_agent("nobody") is True
        assert time.perf_counter() - started < 0.3
        assert stream.result(2).cancelled  # the turn was cancelled in the background
        with pytest.raises(RuntimeClosed):
            rt.chat(aid, "again")
        with pytest.raises(RuntimeClosed):
            rt.chat(other, "again")
    wait_until(lambda: "no agent 12345" in caplog.text and "no agent 'nobody'" in caplog.text)
    rt.shutdown()
    started = time.perf_counter()
    assert rt.try_shutdown_agent(aid) is False
    assert asyncio.run(rt.aio.try_shutdown_agent(aid)) is False
    assert time.perf_counter() - started < 0.3


def test_delete_forgets_the_agent(rt, fake, mode):
    aid = run(rt, mode, "create_agent", AgentConfig(name="a"))
    fake.enqueue(Reply.text("hello"))
    run(rt, mode, "chat", aid, "hi").result(5)
    assert run(rt, mode, "delete", "a") is None
    for ref in (aid, "a"):
        with pytest.raises(UnknownAgent):
            run(rt, mode, "history", ref)
    assert run(rt, mode, "agent_ids") == {}
    again = run(rt, mode, "create_agent", AgentConfig(name="a"))  # the name is free again
    assert again != aid and run(rt, mode, "history", "a") == []


def test_disconnect_cancels_and_the_agent_still_works(rt, fake, mode):
    aid = run(rt, mode, "create_agent", AgentConfig(name="a"))
    fake.enqueue(stalled())
    stream = run(rt, mode, "chat", aid, "stall please")
    assert fake.wait_for_requests(1)
    run(rt, mode, "disconnect", aid)
    assert stream.result(2).cancelled
    assert fake.wait_for_disconnect(2) is not None
    fake.enqueue(Reply.text("back again"))
    assert run(rt, mode, "chat", aid, "are you there").result(5).text == "back again"


# -- backpressure, timeouts (the inbox and its spacing: test_inbox.py) -----------------------------

def test_full_channel_makes_the_next_command_wait(make_runtime, mode):
    rt = make_runtime(channel_capacity=2)
    aid = rt.create_agent(AgentConfig(name="a"))
    holders = [Call(rt.wait_for_wakeup, aid, 1.0) for _ in range(2)]
    time.sleep(0.2)
    started = time.perf_counter()
    assert run(rt, mode, "agent_ids") == {"a": aid}
    waited = time.perf_counter() - started
    assert waited >= 0.6  # it got a slot only when a holder finished (~1.0 s after they started)
    assert [h.result(2) for h in holders] == [False, False]


def test_full_channel_with_small_operation_timeout_does_not_hang(make_runtime):
    rt = make_runtime(channel_capacity=2, operation_timeout=0.4)
    aid = rt.create_agent(AgentConfig(name="a"))
    holders = [Call(rt.wait_for_wakeup, aid, 5.0) for _ in range(2)]
    time.sleep(0.1)
    waiter = Call(rt.agent_ids)
    for holder in holders:
        with pytest.raises(Timeout) as info:
            holder.result(2)
        assert info.value.timed_out_operation == "wait_for_wakeup"
        assert holder.elapsed < 1.0
    assert waiter.result(2) == {"a": aid} and 0.2 < waiter.elapsed < 1.0


def test_full_channel_on_a_blocked_loop_times_out(make_runtime, mode):
    rt = make_runtime(channel_capacity=2, operation_timeout=0.4)
    blocker = rt.create_agent(BlockingSpec(block=1.5))
    holders = [Call(rt.is_idle, blocker), Call(rt.agent_ids)]  # the first blocks the loop, the second queues
    time.sleep(0.1)
    started = time.perf_counter()
    with pytest.raises(Timeout) as info:
        run(rt, mode, "agent_ids")
    assert 0.3 < time.perf_counter() - started < 0.9
    assert "slots busy" in str(info.value) and "agent_ids" in info.value.timed_out_operation
    for holder in holders:
        holder.join(3)


def test_every_command_has_a_timeout(make_runtime, fake, mode):
    rt = make_runtime(operation_timeout=0.3)
    aid = rt.create_agent(AgentConfig(name="a"))
    fake.enqueue(stalled())
    stream = rt.chat(aid, "stall please")  # chat itself returns at once
    assert fake.wait_for_requests(1)
    started = time.perf_counter()
    with pytest.raises(Timeout) as info:
        run(rt, mode, "wait_for_idle", aid)
    assert 0.25 < time.perf_counter() - started < 0.8
    assert info.value.timed_out_operation == "wait_for_idle" and "wait_for_idle" in str(info.value)
    assert info.value.duration == 0.3
    assert rt.is_alive and not stream.done()  # the runtime and the turn go on
    rt.cancel(aid)
    assert stream.result(2).cancelled


# -- a dead or hung loop ---------------------------------------------------------------------------

def test_dead_loop_thread_fails_everything_promptly_and_restart_recovers(rt, fake):
    aid = rt.create_agent(AgentConfig(name="a"))
    fake.enqueue(stalled())
    stream = rt.chat(aid, "stall please")
    assert fake.wait_for_requests(1)
    in_flight = Call(rt.wait_for_wakeup, aid, 5.0)
    time.sleep(0.1)
    rt.loop.call_soon_threadsafe(die)

    with pytest.raises(RuntimeClosed) as info:
        in_flight.result(2)
    assert in_flight.elapsed < 1.5
    with pytest.raises(RuntimeClosed) as stream_info:
        stream.result(2)
    assert "SystemExit" in repr(stream_info.value.cause) or "SystemExit" in str(stream_info.value)
    rt.thread.join(2)
    assert not rt.thread.is_alive() and not rt.is_alive
    for mode in ("sync", "async"):
        started = time.perf_counter()
        with pytest.raises(RuntimeClosed) as info:
            run(rt, mode, "history", aid)
        assert time.perf_counter() - started < 0.5
        assert "SystemExit" in str(info.value) and isinstance(info.value.cause, SystemExit)
    with pytest.raises(RuntimeClosed) as info:
        rt.shutdown()
    assert isinstance(info.value.cause, SystemExit) and "boom" in str(info.value)

    rt.restart()
    assert rt.is_alive
    assert rt.history(aid)[0].role == "user"  # the history survived (repaired when the turn was cancelled)
    fake.enqueue(Reply.text("alive again"))
    assert rt.chat(aid, "hello").result(5).text == "alive again"


def test_commands_racing_a_dying_loop_never_hang(make_runtime):
    # Commands that land while the dying thread winds down must fail with RuntimeClosed at once:
    # neither wait out the operation timeout nor leak a RuntimeError("Event loop is closed").
    for _ in range(10):
        rt = make_runtime(operation_timeout=3)
        aid = rt.create_agent(AgentConfig(name="a"))
        rt.loop.call_soon_threadsafe(die)
        racers = [Call(rt.wait_for_wakeup, aid, 2.0) for _ in range(3)]
        for racer in racers:
            racer.join(2)
            assert not racer.is_alive() and racer.elapsed < 1.0
            assert isinstance(racer.error, RuntimeClosed), racer.error
        with pytest.raises(RuntimeClosed):
            rt.is_idle(aid)


def test_hung_loop_makes_shutdown_time_out(make_runtime):
    rt = make_runtime(shutdown_timeout=0.3)
    blocker = rt.create_agent(BlockingSpec(block=1.0))
    hold = Call(rt.is_idle, blocker)
    time.sleep(0.1)
    started = time.perf_counter()
    with pytest.raises(Timeout) as info:
        rt.shutdown()
    assert time.perf_counter() - started < 0.6
    assert "shutdown" in info.value.timed_out_operation and info.value.duration == 0.3
    hold.join(3)
    rt.thread.join(3)  # once unblocked, the thread finishes the shutdown it was asked for
    assert not rt.thread.is_alive()


# -- the interrupt-aware wait (every async wait on the runtime goes through it) ---------------------

async def test_interrupt_aware_wait_keeps_waking_and_cancels_what_it_waits_for():
    loop = asyncio.get_running_loop()
    fut, interrupted = loop.create_future(), []
    wakeups = 0
    real_wait = asyncio.wait

    async def counting_wait(*args, **kwargs):
        nonlocal wakeups
        wakeups += 1
        return await real_wait(*args, **kwargs)

    asyncio.wait = counting_wait  # count the wake-ups: a plain `await fut` would have none
    try:
        task = asyncio.create_task(wait_interruptibly(fut, lambda: interrupted.append(True)))
        await asyncio.sleep(4 * POLL_INTERVAL)
        assert not task.done() and wakeups >= 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        asyncio.wait = real_wait
    assert interrupted == [True]  # the work waited for was cancelled with the wait

    done = loop.create_future()
    loop.call_later(0.01, done.set_result, "value")
    await wait_interruptibly(done, lambda: interrupted.append(False))
    assert done.result() == "value" and interrupted == [True]  # a wait that ends normally cancels nothing


# -- context, drop, own thread, bad input, default runtime -----------------------------------------

def test_work_runs_in_the_calling_threads_context(rt, fake):
    cell = contextvars.ContextVar("cell", default="unset")
    seen: list[tuple[str, str, str]] = []

    def make_config(name: str) -> AgentConfig:
        def probe() -> str:
            """Report the cell."""
            seen.append((name, "tool", cell.get()))  # a worker thread, context copied
            return cell.get()

        def approve(request) -> bool:
            seen.append((name, "approval", cell.get()))  # on the runtime loop
            return True

        def pre_turn(parts) -> None:
            seen.append((name, "hook", cell.get()))  # on the runtime loop

        return AgentConfig(name=name, tools=[probe], approval_handler=approve, hooks=Hooks(pre_turn=[pre_turn]))

    def answer(request):
        answered = any("functionResponse" in p for c in request.contents for p in c.get("parts", []))
        return Reply.text("done") if answered else Reply.function_call("probe", {})

    fake.default = answer
    ids = {name: rt.create_agent(make_config(name)) for name in ("one", "two")}
    barrier = threading.Barrier(2)

    def cell_thread(name: str):
        cell.set(f"cell-{name}")
        barrier.wait()
        return rt.chat(ids[name], "probe it").result(5)

    calls = [Call(cell_thread, name) for name in ("one", "two")]
    results = [c.result(10) for c in calls]
    assert [r.tool_calls[0].result for r in results] == [{"result": "cell-one"}, {"result": "cell-two"}]
    assert sorted(seen) == sorted((name, where, f"cell-{name}") for name in ("one", "two")
                                  for where in ("tool", "approval", "hook"))
    assert cell.get() == "unset"  # nothing leaked into this thread


def test_dropping_a_runtime_without_shutdown_warns_and_stops_it(fake, caplog):
    runtime = Runtime(RuntimeConfig(shutdown_timeout=3), quota=QuotaRegistry())
    runtime.create_agent(AgentConfig(name="a"))
    thread = runtime.thread
    with caplog.at_level(logging.WARNING, logger="agy_jupyter.runtime.core"):
        del runtime
        gc.collect()
    assert "dropped without shutdown" in caplog.text
    thread.join(3)
    assert not thread.is_alive()


def test_sync_call_from_the_runtime_thread_raises_instead_of_deadlocking(rt):
    outcome: concurrent.futures.Future = concurrent.futures.Future()

    def on_loop():
        try:
            outcome.set_result(rt.agent_ids())
        except BaseException as exc:  # noqa: BLE001
            outcome.set_exception(exc)

    started = time.perf_counter()
    rt.loop.call_soon_threadsafe(on_loop)
    with pytest.raises(ConfigError, match="deadlock"):
        outcome.result(2)
    assert time.perf_counter() - started < 0.5
    for lifecycle in (rt.shutdown, rt.restart):  # they join the thread: refused there as well
        outcome = concurrent.futures.Future()
        rt.loop.call_soon_threadsafe(lambda fn=lifecycle: _settle_with(outcome, fn))
        with pytest.raises(ConfigError, match="own thread"):
            outcome.result(2)
    # the async form is the one to use there
    assert asyncio.run_coroutine_threadsafe(rt.aio.agent_ids(), rt.loop).result(2) == {}
    assert rt.is_alive and rt.agent_ids() == {}


def _settle_with(outcome: concurrent.futures.Future, fn) -> None:
    try:
        outcome.set_result(fn())
    except BaseException as exc:  # noqa: BLE001
        outcome.set_exception(exc)


def test_bad_input_raises_typed_errors_and_the_runtime_stays_alive(rt, mode, caplog):
    for ref in (999, "nobody"):
        with pytest.raises(UnknownAgent) as info:
            run(rt, mode, "history", ref)
        assert isinstance(info.value, ConfigError) and info.value.agent_id == ref
        assert run(rt, mode, "agent_ids") == {}
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert "never retrieved" not in caplog.text  # the error reached the caller and nowhere else
    with pytest.raises(UnknownAgent):
        run(rt, mode, "chat", 999, "hi")
    with pytest.raises(UnknownAgent):
        run(rt, mode, "send", "nobody", "hi", "me")
    aid = run(rt, mode, "create_agent", AgentConfig(name="same"))
    with pytest.raises(ConfigError, match="already exists"):
        run(rt, mode, "create_agent", AgentConfig(name="same"))
    for not_a_spec in (object(), "same", {"name": "x"}):
        with pytest.raises(ConfigError):
            run(rt, mode, "create_agent", not_a_spec)
    assert run(rt, mode, "agent_ids") == {"same": aid}
    assert rt.is_alive


def test_get_runtime_returns_one_default_until_shut_down(fake):
    first = get_runtime()
    try:
        assert get_runtime() is first and first.is_alive
    finally:
        first.shutdown()
    second = get_runtime()
    try:
        assert second is not first and second.is_alive and get_runtime() is second
    finally:
        second.shutdown()
