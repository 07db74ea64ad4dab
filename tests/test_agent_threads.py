"""Blocking user code (sync tools, hooks, approval handlers, heavy prompt content) stays off the runtime loop.

Through the real google-genai client against the fake Gemini server, on a real runtime thread.
"""
from __future__ import annotations

import threading
import time

import pandas as pd
import pydantic
import pytest

import agy_jupyter as agy
from agy_jupyter import Runtime, RuntimeConfig
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import Reply

WAIT = 10.0  # upper bound for anything a test waits on; the happy path never gets near it


@pytest.fixture
def two_thread_runtime(fake):
    rt = Runtime(RuntimeConfig(chat_timeout=20, shutdown_timeout=5, tool_threads=2), quota=QuotaRegistry())
    yield rt
    rt.shutdown()


def wait_until(predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_tool_threads_setting_is_validated_and_round_trips():
    assert RuntimeConfig().tool_threads == 8
    config = RuntimeConfig(tool_threads=3)
    assert RuntimeConfig.model_validate_json(config.model_dump_json()) == config
    for bad in (0, -1, 100_000, 2.5):
        with pytest.raises(pydantic.ValidationError, match="tool_threads"):
            RuntimeConfig(tool_threads=bad)
    assert "sync tools" in RuntimeConfig.model_fields["tool_threads"].description


def test_sync_tools_run_on_the_tool_pool_not_the_loops_default_executor(fake, make_agent, runtime):
    seen = []

    def where() -> str:
        seen.append(threading.current_thread())
        return "ok"

    agent = make_agent(tools=[where], policies=[agy.allow_all()])
    fake.enqueue(Reply.function_call("where", {}, id="c1"), Reply.text("done"))
    agent.chat("go")
    [thread] = seen
    assert thread.name.startswith("agy-tool") and thread is not runtime.thread


def test_when_every_tool_thread_is_stuck_a_new_call_fails_at_once_and_the_model_still_answers(
        fake, two_thread_runtime):
    release = threading.Event()
    started = []

    def hang(n: int) -> str:
        started.append(n)
        release.wait(WAIT)
        return "late"

    agent = agy.Agent("stuck", runtime=two_thread_runtime, tools=[hang], policies=[agy.allow_all()],
                      tool_timeout=0.3)
    try:
        fake.enqueue(Reply.function_calls([("hang", {"n": 1}, "c1"), ("hang", {"n": 2}, "c2"),
                                           ("hang", {"n": 3}, "c3")]),
                     Reply.text("the model still answers"))
        response = agent.chat("go")
        errors = [fake.requests[1].function_response(f"c{i}")["error"] for i in (1, 2, 3)]
        assert errors[0] == errors[1] == "tool 'hang': timed out after 0.3 s"
        assert "2 earlier calls timed out or were cancelled and are still running ('hang' x2)" in errors[2]
        assert "holding all 2 tool threads" in errors[2] and "free up when those functions return" in errors[2]
        assert started == [1, 2]  # the third call never took a thread
        assert response.text == "the model still answers"
        stuck = agent.runtime.describe(agent.id)["stuck_calls"]
        assert [call["tool"] for call in stuck] == ["hang", "hang"]
        assert all(isinstance(call["seconds"], float) and call["seconds"] > 0 for call in stuck)
    finally:
        release.set()
    # once the functions return, their threads are free again
    assert wait_until(lambda: agent.runtime.describe(agent.id)["stuck_calls"] == [])
    fake.enqueue(Reply.function_call("hang", {"n": 4}, id="c4"), Reply.text("fine"))
    agent.chat("again")
    assert fake.requests[3].function_response("c4") == {"result": "late"}


def test_stuck_calls_are_listed_for_their_own_agent_only(fake, two_thread_runtime):
    release = threading.Event()

    def hang() -> str:
        release.wait(WAIT)
        return "late"

    slow = agy.Agent("slow", runtime=two_thread_runtime, tools=[hang], policies=[agy.allow_all()],
                     tool_timeout=0.2)
    other = agy.Agent("other", runtime=two_thread_runtime)
    try:
        fake.enqueue(Reply.function_call("hang", {}, id="c1"), Reply.text("gave up"))
        slow.chat("go")
        assert [c["tool"] for c in slow.runtime.describe(slow.id)["stuck_calls"]] == ["hang"]
        assert other.runtime.describe(other.id)["stuck_calls"] == []
    finally:
        release.set()


def test_a_slow_sync_hook_does_not_stall_another_agents_stream(fake, make_agent):
    in_hook, release, hook_done = threading.Event(), threading.Event(), threading.Event()

    def slow_hook(parts):
        in_hook.set()
        release.wait(WAIT)  # a hook that sleeps until the test has seen the other agent's reply
        hook_done.set()

    hooked = make_agent("hooked", hooks=agy.Hooks(pre_turn=[slow_hook]))
    other = make_agent("other")
    fake.enqueue(Reply.text("one two three four", chunks=4, delay=0.02), Reply.text("hooked reply"))
    try:
        hooked_stream = hooked.stream("first")
        assert in_hook.wait(WAIT)
        deltas = [e.text for e in other.stream("second") if isinstance(e, agy.TextDelta)]
        hook_still_sleeping = not hook_done.is_set()
    finally:
        release.set()
    assert len(deltas) == 4 and "".join(deltas) == "one two three four" and hook_still_sleeping
    assert hooked_stream.result(WAIT).text == "hooked reply"


def test_sync_hooks_and_approval_handlers_run_off_the_runtime_thread(fake, make_agent, runtime):
    threads = {}

    def add(a: int, b: int) -> int:
        return a + b

    def approve(request):
        threads["approval"] = threading.current_thread()
        return True

    hooks = agy.Hooks(post_tool=[lambda record: threads.setdefault("post_tool", threading.current_thread())],
                      post_turn=[lambda response: threads.setdefault("post_turn", threading.current_thread())])
    agent = make_agent(tools=[add], hooks=hooks, approval_handler=approve)
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 2}, id="c1"), Reply.text("3"))
    agent.chat("1+2")
    assert set(threads) == {"approval", "post_tool", "post_turn"}
    assert all(t.name.startswith("agy-callback") for t in threads.values()), threads


class SpyFrame(pd.DataFrame):
    """A DataFrame that notes which thread summarises it (head() is called by the summary)."""

    @property
    def _constructor(self):
        return SpyFrame

    def head(self, n=5):
        SUMMARISED_ON.append(threading.current_thread())
        return super().head(n)


SUMMARISED_ON: list[threading.Thread] = []


def test_dataframe_prompts_and_results_are_summarised_off_the_runtime_thread(fake, make_agent, runtime):
    SUMMARISED_ON.clear()

    async def table() -> pd.DataFrame:
        return SpyFrame({"x": range(100)})

    agent = make_agent(tools=[table], policies=[agy.allow_all()])
    fake.enqueue(Reply.function_call("table", {}, id="c1"), Reply.text("seen"))
    agent.chat(["look at this", SpyFrame({"y": range(50)})])
    assert "50 rows" in fake.requests[0].contents[0]["parts"][1]["text"]
    assert "100 rows" in fake.requests[1].function_response("c1")["result"]
    assert len(SUMMARISED_ON) == 2 and runtime.thread not in SUMMARISED_ON


def test_a_call_that_times_out_waiting_for_a_busy_thread_says_so(fake):
    runtime = Runtime(RuntimeConfig(chat_timeout=20, shutdown_timeout=5, tool_threads=1), quota=QuotaRegistry())
    release, started = threading.Event(), threading.Event()

    def busy() -> str:
        started.set()
        release.wait(WAIT)
        return "done"

    def quick() -> str:
        return "never ran"

    try:
        holder = agy.Agent("holder", runtime=runtime, tools=[busy], policies=[agy.allow_all()], tool_timeout=WAIT)
        waiter = agy.Agent("waiter", runtime=runtime, tools=[quick], policies=[agy.allow_all()], tool_timeout=0.2)
        fake.enqueue(Reply.function_call("busy", {}, id="c1"))
        holding = holder.stream("hold the thread")
        assert started.wait(WAIT)
        fake.enqueue(Reply.function_call("quick", {}, id="c2"), Reply.text("waited"), Reply.text("held"))
        waiter.chat("go")
        error = fake.requests[2].function_response("c2")["error"]
        assert error == ("tool 'quick': timed out after 0.2 s waiting for a free tool thread "
                         "(1 of 1 busy, 0 of them stuck)")
        assert waiter.runtime.describe(waiter.id)["stuck_calls"] == []  # it never ran, so it holds nothing
        release.set()
        assert holding.result(WAIT).text == "held"
    finally:
        release.set()
        runtime.shutdown()
