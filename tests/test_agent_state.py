"""An agent's derived state survives a runtime restart, and is derived again from an imported history.

Through the real google-genai client against the fake Gemini server.
"""
from __future__ import annotations

import agy_jupyter as agy
from agy_jupyter.testing import Reply, Usage


def saved(agent) -> list[dict]:
    """The history as %agent save writes it."""
    return [m.model_dump(mode="json", exclude_none=True) for m in agent.history()]


def test_restart_keeps_the_last_turn_and_the_last_error(fake, make_agent, runtime):
    agent = make_agent()
    fake.enqueue(Reply.text("kept", usage=Usage(prompt=5, output=2)), Reply.error(400, "bad request"))
    agent.chat("one")
    try:
        agent.chat("two")
    except agy.BackendError:
        pass
    before = (agent.last_turn(), agent.runtime.describe(agent.id)["last_error"], agent.last_turn_usage())
    assert before[0] is not None and "bad request" in before[1]
    runtime.restart()
    after = (agent.last_turn(), agent.runtime.describe(agent.id)["last_error"], agent.last_turn_usage())
    assert after == before
    assert agent.last_response() == "kept" and agent.turn_count() == 2


def test_import_history_derives_compactions_usage_and_last_turn_from_the_messages(fake, make_agent, runtime):
    source = make_agent("source", compaction_threshold=100, compaction_keep_turns=1)
    fake.enqueue(Reply.text("a1", usage=Usage(prompt=40, output=10)),
                 Reply.text("a2", usage=Usage(prompt=20, output=5)),
                 Reply.text("a3", usage=Usage(prompt=90, output=30)),
                 Reply.text("SUMMARY", usage=Usage(prompt=60, output=6)),  # the summarisation call
                 Reply.text("a4", usage=Usage(prompt=20, output=5)))
    for prompt in ("q1", "q2", "q3", "q4"):
        source.chat(prompt)
    assert source.compaction_indices() == [4]

    target = make_agent("target", compaction_threshold=50, compaction_keep_turns=1)
    fake.enqueue(Reply.text("b1", usage=Usage(prompt=7, output=1)),
                 Reply.text("b2", usage=Usage(prompt=70, output=9)),
                 Reply.text("B-SUMMARY", usage=Usage(prompt=3, output=3)),
                 Reply.error(400, "bad request"))
    target.chat("p1")
    target.chat("p2")
    try:
        target.chat("p3")
    except agy.BackendError:
        pass
    assert target.compaction_indices() == [2] and target.runtime.describe(target.id)["last_error"]

    runtime.import_history(target.id, saved(source))
    assert target.compaction_indices() == source.compaction_indices()
    assert target.usage() == source.usage()
    assert target.last_turn_usage() == source.last_turn_usage()
    last, expected = target.last_turn(), source.last_turn()
    assert (last.turn, last.text, last.usage, last.cancelled) == (expected.turn, "a4", expected.usage, False)
    assert target.turn_count() == 4 and target.last_response() == "a4"
    assert target.runtime.describe(target.id)["last_error"] is None
    fake.enqueue(Reply.text("a5"))
    assert target.chat("q5").text == "a5"  # the imported history is a valid conversation to go on with
