"""AgentDirectory (what `%agent` manages) reports each agent from the agent's own runtime."""
from __future__ import annotations

import pytest

from agy_jupyter import Agent, Runtime, RuntimeConfig
from agy_jupyter.agent.directory import AgentDirectory, AgentInfo
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import Reply


@pytest.fixture
def two_runtimes(fake):
    made = [Runtime(RuntimeConfig(chat_timeout=10, shutdown_timeout=3), quota=QuotaRegistry()) for _ in range(2)]
    yield made
    for runtime in made:
        runtime.shutdown()


def test_info_asks_the_agents_own_runtime_also_after_a_restart(two_runtimes, fake):
    first, second = two_runtimes
    directory = AgentDirectory(runtime=second)
    other = directory.create("other", model="model-of-other")
    fake.enqueue(Reply.text("a"), Reply.text("b"))
    other.chat("one")
    other.chat("two")
    mine = directory.add(Agent("mine", runtime=first, model="model-of-mine"))
    assert mine.id == other.id  # ids count per runtime: the same number names two agents
    fake.enqueue(Reply.text("hello"))
    mine.chat("hi")

    info = directory.info("mine")
    assert (info.name, info.model, info.turns, info.state) == ("mine", "model-of-mine", 1, "idle")
    assert info.tokens == mine.usage().total_tokens > 0
    assert directory.info("other").turns == 2

    first.shutdown()
    first.restart()  # the agent comes back on its own runtime, history and usage included
    again = directory.info("mine")
    assert (again.turns, again.tokens) == (1, info.tokens)
    assert [row.turns for row in directory.list()] == [2, 1]


def test_info_lists_stuck_calls_and_defaults_to_none(two_runtimes, fake):
    directory = AgentDirectory(runtime=two_runtimes[0])
    directory.create("calm")
    assert directory.info("calm").stuck_calls == []
    assert AgentInfo("x", "m", 0, 0, "idle", False).stuck_calls == []
