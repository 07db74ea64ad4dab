"""Approvals from a Python handler: "always" only widens an approval, per agent; PolicyDenied on request.

Through the real google-genai client against the fake Gemini server. The widget's comm path is in
test_approvals_kernel.py.
"""
from __future__ import annotations

import pytest

import agy_jupyter as agy
from agy_jupyter.testing import Reply


def two_turns_of_add(fake):
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("first"),
                 Reply.function_call("add", {"a": 2, "b": 2}, id="c2"), Reply.text("second"))


def counting_add():
    ran = []

    def add(a: int, b: int) -> int:
        ran.append((a, b))
        return a + b

    return add, ran


def test_deny_with_always_denies_this_call_and_asks_again_next_time(fake, make_agent):
    add, ran = counting_add()
    asked = []

    def handler(request):
        asked.append(request.call_id)
        return agy.Approval(approved=False, reason="not now", always=True)

    agent = make_agent(tools=[add], approval_handler=handler)
    two_turns_of_add(fake)
    first, second = agent.chat("1+1"), agent.chat("2+2")
    assert asked == ["c1", "c2"]  # the second call was asked about, not waved through
    assert ran == []
    assert [first.tool_calls[0].status, second.tool_calls[0].status] == ["denied", "denied"]
    assert "not now" in fake.requests[3].function_response("c2")["error"]


def test_approve_with_always_allows_later_calls_of_that_agent_only(fake, make_agent):
    add, ran = counting_add()
    asked = []

    def handler(request):
        asked.append((request.agent, request.call_id))
        return agy.Approval(approved=True, always=True)

    rules = [agy.ask_user("add")]  # one list of rules, two agents built from it
    config = agy.AgentConfig(name="first", tools=[add], policies=rules, approval_handler=handler)
    first = make_agent(config=config)
    second = make_agent(config=config.model_copy(update={"name": "second"}))
    two_turns_of_add(fake)
    first.chat("1+1")
    first.chat("2+2")
    assert asked == [("first", "c1")]  # widened for `first`: its second call was not asked about
    fake.enqueue(Reply.function_call("add", {"a": 3, "b": 3}, id="c3"), Reply.text("third"))
    second.chat("3+3")
    assert asked == [("first", "c1"), ("second", "c3")]  # `second` still asks
    assert ran == [(1, 1), (2, 2), (3, 3)]
    assert rules == [agy.ask_user("add")] and config.policies == rules  # the shared rules are untouched


def test_raise_on_deny_ends_the_turn_with_policy_denied_and_keeps_the_history_valid(fake, make_agent):
    add, ran = counting_add()
    agent = make_agent(tools=[add], policies=[agy.deny("add", "read-only session")])
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"))
    with pytest.raises(agy.PolicyDenied) as caught:
        agent.chat("1+1", raise_on_deny=True)
    assert caught.value.tool == "add" and caught.value.reason == "read-only session"
    assert str(caught.value).startswith("tool 'add' denied: read-only session")
    assert ran == [] and len(fake.requests) == 1  # the model was not asked to go on
    fake.enqueue(Reply.text("fine"))
    assert agent.chat("never mind").text == "fine"  # the denied call was answered in the history
    assert "read-only session" in fake.requests[1].function_response("c1")["error"]


def test_without_raise_on_deny_the_model_hears_of_the_deny(fake, make_agent):
    add, _ = counting_add()
    agent = make_agent(tools=[add], policies=[agy.deny("add")])
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("cannot"))
    assert agent.chat("1+1").text == "cannot"


def test_an_answer_from_the_headless_setting_is_not_recorded_as_the_users(fake, make_agent):
    from agy_jupyter.notebook.approvals import HEADLESS, NonInteractiveApprover
    from agy_jupyter.notebook.live_reply import DisplaySettings

    add, ran = counting_add()
    agent = make_agent(tools=[add], approval_handler=NonInteractiveApprover(DisplaySettings(headless_approval="allow")))
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("2"))
    record = agent.chat("1+1").tool_calls[0]
    assert (record.status, record.decided_by) == ("ok", HEADLESS) and ran == [(1, 1)]
