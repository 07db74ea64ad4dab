"""Policies and hooks with the Antigravity SDK's semantics: ranking, when=, per-rule handlers, defaults
by tool effect, the wholesale-allow warning, "always" narrowed to the arguments, and each hook.

Agent-level tests go through the real google-genai client against the fake Gemini server.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import os
from types import SimpleNamespace

import pytest

import agy_jupyter as agy
from agy_jupyter.agent.history import contents_for_model, history_is_valid
from agy_jupyter.agent.policies import CallInfo, Decision, PolicySet
from agy_jupyter.agent.tools import as_tool
from agy_jupyter.testing import Reply

POLICY_LOG = "agy_jupyter.agent.policies"
HOOK_LOG = "agy_jupyter.agent.hooks"


def counting(effect=None, name="add"):
    ran = []

    def add(a: int, b: int) -> int:
        ran.append((a, b))
        return a + b

    tool = dataclasses.replace(as_tool(add), name=name, effect=effect)
    return tool, ran


def call_add(fake, *pairs, first_id=1):
    """Enqueue one turn per (a, b): a call of add, then a text reply."""
    for n, (a, b) in enumerate(pairs, start=first_id):
        fake.enqueue(Reply.function_call("add", {"a": a, "b": b}, id=f"c{n}"), Reply.text(f"done {n}"))


# --- ranking --------------------------------------------------------------------------------------

SPECIFIC = {Decision.DENY: agy.deny("t"), Decision.ASK: agy.ask_user("t"), Decision.ALLOW: agy.allow("t")}
WILDCARD = {Decision.DENY: agy.deny_all(), Decision.ASK: agy.ask_user("*"), Decision.ALLOW: agy.allow_all()}
STRICTEST_FIRST = [Decision.DENY, Decision.ASK, Decision.ALLOW]


def expected(rules):
    specific = [r.decision for r in rules if r.tool == "t"]
    pool = specific or [r.decision for r in rules]
    return next(d for d in STRICTEST_FIRST if d in pool)


@pytest.mark.parametrize("size", [2, 3, 4])
def test_ranking_is_specific_first_then_strictest_whatever_the_order(size):
    everything = [*SPECIFIC.values(), *WILDCARD.values()]
    for chosen in itertools.combinations(everything, size):
        want = expected(chosen)
        for order in itertools.permutations(chosen):
            got = PolicySet(list(order)).decide("t").decision
            assert got is want, (order, got)


def test_the_documented_table():
    assert PolicySet([agy.allow("t"), agy.deny_all()]).decide("t").decision is Decision.ALLOW  # specific beats wildcard
    assert PolicySet([agy.deny_all(), agy.allow("t")]).decide("other").decision is Decision.DENY
    assert PolicySet([agy.allow("t"), agy.ask_user("t")]).decide("t").decision is Decision.ASK
    assert PolicySet([agy.ask_user("t"), agy.deny("t")]).decide("t").decision is Decision.DENY
    assert PolicySet([agy.allow_all(), agy.deny("srv/*")]).decide("srv/rm").decision is Decision.DENY  # a glob is a wildcard
    assert PolicySet([agy.deny("srv/*"), agy.allow("srv/ls")]).decide("srv/ls").decision is Decision.ALLOW


def test_when_only_matches_the_calls_its_predicate_accepts():
    rules = PolicySet([agy.deny("t", "too big", when=lambda args: args["n"] > 10), agy.allow("t")])
    assert rules.decide("t", {"n": 1}).decision is Decision.ALLOW
    assert rules.decide("t", {"n": 11}).reason == "too big"
    seen = []
    two = PolicySet([agy.ask_user("*", when=lambda args, call: seen.append(call) or call.effect == "write")])
    assert two.decide("w", {}, CallInfo(tool="w", effect="write")).decision is Decision.ASK
    assert two.decide("r", {}, CallInfo(tool="r", effect="read")).decision is Decision.ALLOW  # the default
    assert [c.tool for c in seen] == ["w", "r"]


# --- defaults by effect ---------------------------------------------------------------------------


def test_defaults_by_effect():
    rules = PolicySet([])
    for effect, want in [("read", Decision.ALLOW), ("write", Decision.ASK), ("execute", Decision.ASK),
                         (None, Decision.ASK)]:
        assert rules.decide("t", {}, CallInfo(tool="t", effect=effect)).decision is want, effect
    assert rules.decide("srv/read", {}, CallInfo(tool="srv/read", effect="read")).decision is Decision.ASK  # MCP
    assert PolicySet([], Decision.DENY).decide("t", {}, CallInfo(tool="t", effect="read")).decision is Decision.DENY
    assert PolicySet([], Decision.ALLOW).decide("t", {}, CallInfo("t", "execute")).decision is Decision.ALLOW


def test_a_read_tool_runs_and_a_write_tool_is_denied_headless(fake, make_agent):
    reader, read_calls = counting("read", "peek")
    writer, write_calls = counting("write", "poke")
    agent = make_agent(tools=[reader, writer])  # no approval handler: nobody can answer
    fake.enqueue(Reply.function_calls([{"name": "peek", "args": {"a": 1, "b": 2}, "id": "r"},
                                       {"name": "poke", "args": {"a": 3, "b": 4}, "id": "w"}]), Reply.text("ok"))
    response = agent.chat("go")
    assert read_calls == [(1, 2)] and write_calls == []
    assert [c.status for c in response.tool_calls] == ["ok", "denied"]
    assert "needs the user's approval and nobody can answer here" in fake.requests[1].function_response("w")["error"]


# --- the wholesale-allow warning ------------------------------------------------------------------


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.name == POLICY_LOG and r.levelno == logging.WARNING]


def test_allowing_write_tools_wholesale_warns_once_naming_them(fake, make_agent, caplog):
    caplog.set_level(logging.WARNING, POLICY_LOG)
    writer, _ = counting("write", "poke")
    runner, _ = counting("execute", "shell")
    reader, _ = counting("read", "peek")
    make_agent("by_default", tools=[writer, runner, reader], default_policy="allow")
    make_agent("by_wildcard", tools=[writer, reader], policies=[agy.allow_all()])
    lines = warnings_of(caplog)
    assert len(lines) == 2
    assert "'by_default'" in lines[0] and "poke, shell" in lines[0] and "peek" not in lines[0]
    assert "'by_wildcard'" in lines[1] and "poke" in lines[1]
    assert all("\n" not in line for line in lines)


def test_no_warning_when_write_tools_are_named_or_absent(fake, make_agent, caplog):
    caplog.set_level(logging.WARNING, POLICY_LOG)
    writer, _ = counting("write", "poke")
    reader, _ = counting("read", "peek")
    make_agent("named", tools=[writer], policies=[agy.allow("poke")])
    make_agent("reads_only", tools=[reader], default_policy="allow")
    make_agent("asked", tools=[writer], policies=[agy.allow_all(), agy.ask_user("poke")])
    make_agent("default", tools=[writer])
    assert warnings_of(caplog) == []


def test_mcp_tools_count_as_wholesale_allowed():
    rules = PolicySet([agy.allow_all()])
    tools = [SimpleNamespace(name="srv/echo", effect=None), SimpleNamespace(name="mine", effect=None)]
    assert rules.allowed_wholesale(tools) == ["srv/echo"]


def test_safe_defaults_ask_for_writes_even_under_an_allow_default():
    rules = PolicySet(agy.safe_defaults(), Decision.ALLOW)
    assert rules.decide("w", {}, CallInfo("w", "write")).decision is Decision.ASK
    assert rules.decide("u", {}, CallInfo("u", None)).decision is Decision.ASK
    assert rules.decide("r", {}, CallInfo("r", "read")).decision is Decision.ALLOW
    assert rules.allowed_wholesale([SimpleNamespace(name="w", effect="write")]) == ["w"]  # ignores predicates: warns


# --- workspace_only -------------------------------------------------------------------------------


def test_workspace_only_denies_paths_that_leave_the_workspace(tmp_path):
    root = tmp_path / "ws"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "link")
    rules = PolicySet([agy.workspace_only()])
    info = CallInfo(tool="write_file", effect="write", workspace=root)

    def decision(**args):
        return rules.decide("write_file", args, info).decision

    assert decision(path="sub/new.txt") is Decision.ASK  # inside: the default for a write tool
    assert decision(path=str(root / "sub" / "x")) is Decision.ASK
    assert decision(path="../x") is Decision.DENY
    assert decision(path="/etc/passwd") is Decision.DENY
    assert decision(path="link/secret") is Decision.DENY  # a symlink that points out
    assert decision(file_path="sub/../../x") is Decision.DENY
    shell = CallInfo(tool="run_command", effect="execute", workspace=root)
    assert rules.decide("run_command", {"command": "cat sub/x"}, shell).decision is Decision.ASK
    assert rules.decide("run_command", {"command": "cat ../../etc/x"}, shell).decision is Decision.DENY
    assert rules.decide("run_command", {"command": "ls", "cwd": "/"}, shell).decision is Decision.DENY


def test_workspace_only_uses_the_agents_workspace(fake, make_agent, tmp_path):
    ran = []

    def peek(path: str) -> str:
        ran.append(path)
        return "content"

    reader = dataclasses.replace(as_tool(peek), effect="read")
    agent = make_agent(tools=[reader], policies=[agy.workspace_only()], workspace=str(tmp_path))
    fake.enqueue(Reply.function_calls([{"name": "peek", "args": {"path": "a.txt"}, "id": "in"},
                                       {"name": "peek", "args": {"path": "../a.txt"}, "id": "out"}]),
                 Reply.text("ok"))
    agent.chat("go")
    assert ran == ["a.txt"]
    assert "leaves the workspace" in fake.requests[1].function_response("out")["error"]


def test_a_saved_conditional_rule_never_comes_back_wider():
    config = agy.AgentConfig(policies=[agy.allow("t", when=lambda a: True), agy.deny("u", "no", when=lambda a: True)])
    loaded = agy.AgentConfig.from_json(config.to_json())
    assert [(r.tool, r.decision, r.when) for r in loaded.policies] == [("t", Decision.ASK, None),
                                                                       ("u", Decision.DENY, None)]
    vetoing = agy.AgentConfig(policies=[agy.allow("t", handler=print), agy.deny("u", handler=print)])
    loaded = agy.AgentConfig.from_json(vetoing.to_json())
    assert [(r.decision, r.handler) for r in loaded.policies] == [(Decision.ASK, None), (Decision.DENY, None)]


# --- when= and per-rule handlers through an agent -------------------------------------------------


def test_when_and_a_per_rule_handler_through_an_agent(fake, make_agent):
    tool, ran = counting()
    asked_rule, asked_agent = [], []
    agent = make_agent(tools=[tool], policies=[
        agy.allow("add", when=lambda args: args["a"] < 10),
        agy.ask_user("add", when=lambda args: args["a"] >= 10,
                     handler=lambda request: asked_rule.append(request.args) or request.args["b"] == 0)],
        approval_handler=lambda request: asked_agent.append(request.args) or True)
    call_add(fake, (1, 1), (20, 0), (30, 5))
    statuses = [agent.chat("go").tool_calls[0].status for _ in range(3)]
    assert statuses == ["ok", "ok", "denied"]
    assert ran == [(1, 1), (20, 0)]
    assert asked_rule == [{"a": 20, "b": 0}, {"a": 30, "b": 5}] and asked_agent == []


def test_an_allow_rules_handler_sees_each_call_and_may_veto_it(fake, make_agent):
    tool, ran = counting()
    seen, asked_agent = [], []

    async def audit(request):  # async handlers run on the loop, sync ones on a worker thread
        seen.append((request.tool, request.args))
        if request.args["a"] >= 10:
            return agy.Approval(approved=False, reason="a is capped at 10")
        return None if request.args["b"] else True  # None: no objection

    agent = make_agent(tools=[tool], policies=[agy.allow("add", handler=audit)],
                       hooks=agy.Hooks(pre_tool=[lambda r: {**r.args, "b": r.args["b"] * 10}]),
                       approval_handler=lambda request: asked_agent.append(request) or True)
    call_add(fake, (1, 1), (2, 0), (30, 1))
    records = [agent.chat("go").tool_calls[0] for _ in range(3)]
    assert [(r.status, r.decided_by) for r in records] == [("ok", "policy"), ("ok", "policy"), ("denied", "policy")]
    assert ran == [(1, 10), (2, 0)]
    assert seen == [("add", {"a": 1, "b": 10}), ("add", {"a": 2, "b": 0}), ("add", {"a": 30, "b": 10})]  # as rewritten
    assert fake.requests[5].function_response("c3")["error"] == "the call was denied: a is capped at 10"
    assert asked_agent == []  # a veto is not a question for the user


def test_an_allow_rules_handler_is_not_called_when_another_rule_or_a_hook_decides(fake, make_agent):
    tool, ran = counting()
    seen = []
    agent = make_agent(tools=[tool], policies=[agy.allow("add", handler=lambda r: seen.append(r.args) or False),
                                               agy.deny("add", "never with a=5", when=lambda args: args["a"] == 5)],
                       hooks=agy.Hooks(pre_tool=[lambda r: True if r.args["a"] == 7 else None]))
    call_add(fake, (5, 0), (7, 0), (1, 0))
    assert [agent.chat("go").tool_calls[0].status for _ in range(3)] == ["denied", "ok", "denied"]
    assert ran == [(7, 0)] and seen == [{"a": 1, "b": 0}]  # the deny rule won (5), the hook decided (7)


def test_a_deny_rules_handler_is_told_and_cannot_undo_the_deny(fake, make_agent):
    tool, ran = counting()
    told = []
    agent = make_agent(tools=[tool], policies=[agy.deny("add", "no adding", handler=lambda r: told.append(r) or True)],
                       approval_handler=lambda request: True)
    call_add(fake, (1, 2))
    record = agent.chat("go").tool_calls[0]
    assert (record.status, ran) == ("denied", [])
    assert [(r.agent, r.tool, r.args, r.call_id) for r in told] == [("agent", "add", {"a": 1, "b": 2}, "c1")]
    assert fake.requests[1].function_response("c1")["error"] == "the call was denied: no adding"


def test_a_hook_asking_never_undoes_a_deny_rule(fake, make_agent):
    tool, ran = counting()
    asked = []
    agent = make_agent(tools=[tool], policies=[agy.deny("add", "no")], hooks=agy.Hooks(pre_tool=[lambda r: "ask"]),
                       approval_handler=lambda request: asked.append(request) or True)
    call_add(fake, (1, 2))
    assert agent.chat("go").tool_calls[0].status == "denied" and ran == [] and asked == []


@pytest.mark.parametrize("make_rule", [
    lambda handler: agy.allow("add", handler=handler),
    lambda handler: agy.ask_user("add", handler=handler),
    lambda handler: agy.deny("add", "no", handler=handler),
], ids=["allow", "ask_user", "deny"])
def test_a_rule_handler_that_fails_denies_is_reported_once_and_the_turns_go_on(fake, make_agent, caplog, make_rule):
    caplog.set_level(logging.DEBUG, "agy_jupyter.agent.tool_calls")
    tool, ran = counting()

    def shaky(request):
        raise ValueError("audit log is full")

    agent = make_agent(tools=[tool], policies=[make_rule(shaky)], approval_handler=lambda request: True)
    call_add(fake, (1, 1), (2, 2))
    responses = [agent.chat("go") for _ in range(2)]
    assert [r.text for r in responses] == ["done 1", "done 2"] and ran == []
    assert all(r.tool_calls[0].status == "denied" for r in responses)
    errors = [fake.requests[i].function_response(f"c{n}")["error"] for i, n in [(1, 1), (3, 2)]]
    assert all(e.startswith("the call was denied: ") for e in errors)
    if make_rule(None).decision is not Decision.DENY:  # a deny keeps its own reason
        assert "shaky failed (ValueError: audit log is full)" in errors[0]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "shaky" in r.getMessage()]
    assert len(warnings) == 1 and "audit log is full" in warnings[0].getMessage()
    assert history_is_valid(contents_for_model(agent.history()))


def test_a_rule_handler_must_answer_with_an_approval_a_bool_or_none(fake, make_agent):
    tool, ran = counting()
    agent = make_agent(tools=[tool], policies=[agy.allow("add", handler=lambda request: "yes")])
    call_add(fake, (1, 1))
    assert agent.chat("go").tool_calls[0].status == "denied" and ran == []
    assert "returned str; return an Approval or a bool" in fake.requests[1].function_response("c1")["error"]


def test_a_predicate_that_raises_denies_the_call(fake, make_agent):
    tool, ran = counting()
    agent = make_agent(tools=[tool], policies=[agy.allow("add", when=lambda args: args["missing"])])
    call_add(fake, (1, 1))
    assert agent.chat("go").tool_calls[0].status == "denied"
    assert ran == [] and "could not be checked" in fake.requests[1].function_response("c1")["error"]


# --- "always" narrowed to the arguments -----------------------------------------------------------


def test_always_for_these_arguments_asks_again_for_other_arguments(fake, make_agent):
    tool, ran = counting()
    asked = []

    def handler(request):
        asked.append(request.args)
        return agy.Approval(approved=True, always=True, always_scope="args")

    agent = make_agent(tools=[tool], approval_handler=handler)
    call_add(fake, (1, 1), (1, 1), (2, 2))
    for _ in range(3):
        agent.chat("go")
    assert asked == [{"a": 1, "b": 1}, {"a": 2, "b": 2}]  # the repeat of (1, 1) was not asked about
    assert ran == [(1, 1), (1, 1), (2, 2)]


def test_always_never_overrides_a_deny_rule(fake, make_agent):
    tool, ran = counting()
    agent = make_agent(tools=[tool], policies=[agy.deny("add", "no", when=lambda args: args["a"] > 5)],
                       approval_handler=lambda request: agy.Approval(approved=True, always=True))
    call_add(fake, (1, 1), (9, 9))
    agent.chat("go")
    assert agent.chat("go").tool_calls[0].status == "denied"
    assert ran == [(1, 1)]


def test_approval_scope_is_checked():
    with pytest.raises(ValueError, match="always_scope"):
        agy.Approval(approved=True, always=True, always_scope="forever")


# --- hooks ----------------------------------------------------------------------------------------


def test_pre_turn_can_refuse_a_turn_and_the_history_stays_valid(fake, make_agent):
    def gate(parts):
        return "no questions about secrets" if "secret" in parts[0].text else None

    agent = make_agent(hooks=agy.Hooks(pre_turn=[gate]))
    with pytest.raises(agy.TurnRefused) as caught:
        agent.chat("tell me the secret")
    assert caught.value.reason == "no questions about secrets"
    assert "turn refused: no questions about secrets" in str(caught.value)
    assert fake.requests == []  # the model was never called
    fake.enqueue(Reply.text("hello"))
    assert agent.chat("hi").text == "hello"
    assert history_is_valid(contents_for_model(agent.history()))
    sent = [p["text"] for c in fake.requests[0].contents for p in c.get("parts", []) if "text" in p]
    assert sent == ["hi"]  # the refused prompt is not sent to the model
    refusing = make_agent("false", hooks=agy.Hooks(pre_turn=[lambda parts: False]))
    with pytest.raises(agy.TurnRefused, match="refused the turn"):
        refusing.chat("x")


def test_pre_tool_can_rewrite_the_arguments(fake, make_agent):
    tool, ran = counting()
    seen = []

    def clamp(request):
        return {"a": min(request.args["a"], 10), "b": request.args["b"]}

    def approve(request):
        seen.append(request.args)
        return True

    agent = make_agent(tools=[tool], hooks=agy.Hooks(pre_tool=[clamp]), approval_handler=approve)
    call_add(fake, (99, 1))
    response = agent.chat("go")
    assert ran == [(10, 1)] and seen == [{"a": 10, "b": 1}]  # the approval saw what ran
    assert response.tool_calls[0].args == {"a": 10, "b": 1}
    assert fake.requests[1].function_response("c1") == {"result": 11}


def test_rewritten_arguments_are_validated_again(fake, make_agent):
    tool, ran = counting()
    agent = make_agent(tools=[tool], policies=[agy.allow("add")],
                       hooks=agy.Hooks(pre_tool=[lambda request: {"a": "lots"}]))
    call_add(fake, (1, 1))
    assert agent.chat("go").tool_calls[0].status == "error"
    assert ran == [] and fake.requests[1].function_response("c1")["error"].startswith("invalid arguments")


def test_pre_tool_can_deny_with_a_reason(fake, make_agent):
    tool, ran = counting()
    agent = make_agent(tools=[tool], policies=[agy.allow("add")],
                       hooks=agy.Hooks(pre_tool=[lambda request: "not on Fridays"]))
    call_add(fake, (1, 1))
    record = agent.chat("go").tool_calls[0]
    assert (record.status, record.decided_by) == ("denied", "hook") and ran == []
    assert fake.requests[1].function_response("c1")["error"].endswith("not on Fridays")


def test_on_tool_error_can_replace_the_message_the_model_sees(fake, make_agent):
    def explode(x: int) -> int:
        raise RuntimeError("internal path /srv/secret/db")

    agent = make_agent(tools=[explode], policies=[agy.allow("explode")],
                       hooks=agy.Hooks(on_tool_error=[lambda record, exc: None,
                                                      lambda record, exc: f"{record.name} failed; try later"]))
    fake.enqueue(Reply.function_call("explode", {"x": 1}, id="c1"), Reply.text("ok"))
    agent.chat("go")
    assert fake.requests[1].function_response("c1") == {"error": "explode failed; try later"}


def test_session_start_and_end_hooks(fake, runtime):
    events = []
    hooks = agy.Hooks(on_session_start=[lambda info: events.append(("start", info))],
                      on_session_end=[lambda info: events.append(("end", info))])
    agent = agy.Agent("lifecycle", runtime=runtime, hooks=hooks, model="m1")
    assert events == [("start", {"agent": "lifecycle", "model": "m1"})]
    agent.shutdown()
    agent.shutdown()  # once only
    assert events == [("start", {"agent": "lifecycle", "model": "m1"}), ("end", {"agent": "lifecycle", "model": "m1"})]


def test_a_hook_that_raises_is_reported_once_and_the_turns_go_on(fake, make_agent, caplog):
    caplog.set_level(logging.DEBUG, HOOK_LOG)

    def broken(parts):
        raise ValueError("oops")

    agent = make_agent(hooks=agy.Hooks(pre_turn=[broken]))
    fake.enqueue(Reply.text("one"), Reply.text("two"))
    assert [agent.chat("a").text, agent.chat("b").text] == ["one", "two"]
    warnings = [r for r in caplog.records if r.name == HOOK_LOG and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "broken" in warnings[0].getMessage() and "oops" in warnings[0].getMessage()
