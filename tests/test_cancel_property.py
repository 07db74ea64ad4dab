"""Cancel at every point, in random sequences (hypothesis stateful testing).

Steps: a chat that completes, or one cancelled before the first token, mid-stream, while awaiting approval,
inside a sync tool or inside an async tool (by the stream's handle or by the agent's cancel command); a message
sent to the other agent (a turn from its inbox); clearing the history; turns of an agent that compacts its
history; shutting the runtime down and starting it again. After every step: the histories are valid, the
usage totals equal the sum of the turns' usage, `is_idle` and `wait_for_idle` agree, and no task or thread
is left behind (they are counted). Cancelling inside run_python is covered in a real kernel
(test_run_python_kernel.py: the interrupt button).
"""
from __future__ import annotations

import asyncio
import os
import threading
import time

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import agy_jupyter as agy
from agy_jupyter.agent.history import Usage, contents_for_model, history_is_valid
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import Chunk, FakeGemini, Reply

POINTS = [None, "before_first_token", "mid_stream", "awaiting_approval", "in_sync_tool", "in_async_tool"]
WAIT = 5.0
BASE_THREADS = 8  # threads of the runtime besides tool workers (loop thread, server threads, ...) allowed


class CancelAnywhere(RuleBasedStateMachine):
    fake: FakeGemini  # set by the test

    @initialize()
    def start(self):
        self.runtime = agy.Runtime(agy.RuntimeConfig(chat_timeout=20, shutdown_timeout=5, inter_agent_delay=0.01),
                                   quota=QuotaRegistry())
        self.started, self.release = threading.Event(), threading.Event()
        self.async_started = threading.Event()
        never = asyncio.Event()

        def slow_sync(key: str) -> str:
            """Look up a key slowly."""
            self.started.set()
            self.release.wait(WAIT)
            return "value"

        async def slow_async(key: str) -> str:
            """Look up a key slowly, asynchronously."""
            self.async_started.set()
            await asyncio.sleep(WAIT)
            return "value"

        def guarded(key: str) -> str:
            """A tool that needs approval."""
            return "value"

        async def never_answer(request):
            await never.wait()

        self.a = agy.Agent("a", runtime=self.runtime, tools=[slow_sync, slow_async, guarded],
                           policies=[agy.allow("slow_sync"), agy.allow("slow_async"), agy.ask_user("guarded")],
                           approval_handler=never_answer)
        self.b = agy.Agent("b", runtime=self.runtime, compaction_threshold=60, compaction_keep_turns=1)
        self.expected = {"a": Usage(), "b": Usage()}
        self.threads_at_start = threading.active_count()

    def _turn_done(self, name: str, response) -> None:
        self.expected[name] = self.expected[name] + response.usage

    @rule(point=st.sampled_from(POINTS), by_agent=st.booleans())
    def chat(self, point, by_agent):
        self.fake.reset()
        self.started.clear(), self.async_started.clear(), self.release.clear()
        reply, wait_for = {
            None: (Reply.text("all good", chunks=3), None),
            "before_first_token": (Reply.text("late", ttft=WAIT), "request"),
            "mid_stream": (Reply(chunks=[Chunk.text("Once "), Chunk.text("upon")]).stall_after(1), "text"),
            "awaiting_approval": (Reply.function_call("guarded", {"key": "k"}), "approval"),
            "in_sync_tool": (Reply.function_call("slow_sync", {"key": "k"}), self.started),
            "in_async_tool": (Reply.function_call("slow_async", {"key": "k"}), self.async_started),
        }[point]
        self.fake.enqueue(reply, Reply.text("after the tool"))
        stream = self.a.stream("go")
        if wait_for is not None:
            if wait_for == "request":
                assert self.fake.wait_for_requests(1, timeout=WAIT)
            elif isinstance(wait_for, str):
                deadline = time.monotonic() + WAIT
                while not any(e.kind == wait_for for e in stream.events):
                    assert time.monotonic() < deadline, (wait_for, stream.events)
                    time.sleep(0.005)
            else:
                assert wait_for.wait(WAIT)
            self.a.cancel() if by_agent else stream.cancel()
        response = stream.result(timeout=WAIT)
        self.release.set()
        assert response.cancelled == (point is not None)
        self._turn_done("a", response)

    @rule()
    def send(self):
        self.fake.reset()  # the default reply (an echo) answers
        turns = self.b.turn_count()
        self.a.send(self.b, "a note for you")
        self.b.wait_for_idle()
        assert self.b.turn_count() == turns + 1
        self._turn_done("b", self.b.last_turn())

    @rule()
    def chat_b(self):  # b compacts once its context passes 60 tokens
        self.fake.reset()
        self._turn_done("b", self.b.chat("tell me more " * 5))

    @rule()
    def clear(self):
        self.a.clear()
        assert self.a.history() == []

    @rule()
    def restart(self):
        before = {agent.name: agent.history() for agent in (self.a, self.b)}
        self.runtime.restart()
        assert {agent.name: agent.history() for agent in (self.a, self.b)} == before

    @invariant()
    def consistent(self):
        if not hasattr(self, "a"):
            return
        for name, agent in (("a", self.a), ("b", self.b)):
            assert history_is_valid(contents_for_model(agent.history())), name
            assert agent.is_idle(), name
            started = time.monotonic()
            agent.wait_for_idle()
            assert time.monotonic() - started < 1.0, name  # idle means wait_for_idle returns at once
            assert agent.usage() == self.expected[name], name
        tasks = asyncio.run_coroutine_threadsafe(_task_count(), self.runtime.loop).result(WAIT)
        assert tasks == 0, f"{tasks} tasks left on the runtime loop"
        assert threading.active_count() <= self.threads_at_start + BASE_THREADS, threading.enumerate()

    def teardown(self):
        if hasattr(self, "runtime"):
            self.release.set()
            self.runtime.shutdown()


async def _task_count() -> int:
    return len(asyncio.all_tasks()) - 1  # this coroutine's own task


def test_cancel_at_any_point_in_any_sequence(monkeypatch):
    with FakeGemini() as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        CancelAnywhere.fake = fake
        runner = CancelAnywhere.TestCase
        runner.settings = settings(max_examples=int(os.environ.get("AGY_FUZZ_EXAMPLES", "12")), stateful_step_count=8,
                                   deadline=None)
        runner("runTest").runTest()
