"""The agent loop through the real google-genai client against the fake Gemini server."""
from __future__ import annotations

import asyncio
import base64
import threading
import time

import pandas as pd
import pydantic
import pytest

import agy_jupyter as agy
from agy_jupyter.agent.history import contents_for_model, history_is_valid
from agy_jupyter.testing import Chunk, Reply, Usage


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


def assert_valid(agent):
    contents = contents_for_model(agent.history())
    assert history_is_valid(contents), contents


# -- streaming -------------------------------------------------------------------------------------

def test_streams_text_deltas_in_order_and_returns_the_whole_reply(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("The quick brown fox jumps over the lazy dog", chunks=6, delay=0.01))
    stream = agent.stream("tell me")
    deltas = [e.text for e in stream if isinstance(e, agy.TextDelta)]
    response = stream.result()
    assert len(deltas) == 6
    assert "".join(deltas) == response.text == "The quick brown fox jumps over the lazy dog"
    assert response.stop_reason == "STOP" and not response.cancelled
    assert fake.requests[0].last_user_text == "tell me"


async def test_async_iteration_from_another_loop(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("one two three", chunks=3))
    stream = await agent.astream("count")
    kinds = [event.kind async for event in stream]
    assert kinds.count("text") == 3
    assert kinds[-1] == "finished"
    assert (await stream).text == "one two three"


def test_thoughts_stream_separately_and_signatures_go_back_unchanged(fake, make_agent):
    agent = make_agent(thinking_budget=256)
    fake.enqueue(Reply(chunks=[Chunk.thought("Let me think. "), Chunk.thought("Done.", thought_signature=b"sig-1"),
                               Chunk.text("Answer: "), Chunk.text("42")]))
    stream = agent.stream("question")
    events = list(stream)
    response = stream.result()
    assert [e.text for e in events if isinstance(e, agy.ThoughtDelta)] == ["Let me think. ", "Done."]
    assert response.thoughts == "Let me think. Done." and response.text == "Answer: 42"
    config = fake.requests[0].generation_config
    assert config["thinkingConfig"] == {"thinkingBudget": 256, "includeThoughts": True}
    # the streamed reply is one model turn: thoughts merged (signature kept), then the text merged
    reply = agent.history()[-1]
    assert [(p.thought, p.text) for p in reply.parts] == [(True, "Let me think. Done."), (None, "Answer: 42")]
    assert reply.parts[0].thought_signature == b"sig-1"
    fake.enqueue(Reply.text("ok"))
    agent.chat("next")
    sent = fake.requests[1].contents[1]["parts"][0]
    assert sent["thought"] is True and base64.b64decode(sent["thoughtSignature"]) == b"sig-1"


def test_status_events_cover_the_turn(fake, make_agent):
    agent = make_agent(tools=[add], policies=[agy.allow("add")])
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 2}, id="c1"), Reply.text("3"))
    statuses = [e.status for e in agent.stream("1+2") if isinstance(e, agy.StatusChanged)]
    assert statuses[0] == "thinking" and statuses[-1] == "done"
    assert "calling tool" in statuses and "streaming" in statuses


# -- tools and policies ----------------------------------------------------------------------------

def test_allowed_tool_runs_and_its_result_goes_back_with_the_call_id(fake, make_agent):
    agent = make_agent(tools=[add], policies=[agy.allow("add")])
    fake.enqueue(Reply.function_call("add", {"a": 2, "b": 40}, id="call-7"), Reply.text("It is 42."))
    response = agent.chat("What is 2 + 40?")
    assert response.text == "It is 42."
    assert [(c.name, c.status, c.result) for c in response.tool_calls] == [("add", "ok", {"result": 42})]
    assert fake.requests[1].function_response("call-7") == {"result": 42}
    declared = fake.requests[0].tools[0]["functionDeclarations"][0]
    assert declared["name"] == "add" and declared["parametersJsonSchema"]["required"] == ["a", "b"]
    assert fake.requests[0].generation_config.get("automaticFunctionCalling") is None  # AFC is client-side
    assert_valid(agent)


def test_ask_user_approved_by_the_handler(fake, make_agent):
    seen = []

    async def approve(request):
        seen.append((request.tool, request.args))
        return agy.Approval(approved=True)

    agent = make_agent(tools=[add], policies=[agy.ask_user("add")])
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("2"))
    stream = agent.stream("1+1", approval_handler=approve)
    kinds = [e.kind for e in stream]
    assert seen == [("add", {"a": 1, "b": 1})]
    assert kinds.index("approval") < kinds.index("tool_result")
    assert stream.result().tool_calls[0].decided_by == "user"
    assert fake.requests[1].function_response("c1") == {"result": 2}


def test_denied_with_a_reason_the_model_sees(fake, make_agent):
    calls = []

    def counted_add(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    agent = make_agent(tools=[counted_add],
                       approval_handler=lambda r: agy.Approval(approved=False, reason="not on Fridays"))
    fake.enqueue(Reply.function_call("counted_add", {"a": 1, "b": 1}, id="c1"), Reply.text("ok"))
    response = agent.chat("1+1")
    assert calls == []
    assert response.tool_calls[0].status == "denied"
    assert "not on Fridays" in fake.requests[1].function_response("c1")["error"]


def test_always_allow_stops_asking_for_that_tool(fake, make_agent):
    asked = []
    agent = make_agent(tools=[add], approval_handler=lambda r: asked.append(r) or agy.Approval(True, always=True))
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("2"),
                 Reply.function_call("add", {"a": 2, "b": 2}, id="c2"), Reply.text("4"))
    agent.chat("1+1")
    second = agent.chat("2+2")
    assert len(asked) == 1
    assert [(c.id, c.status, c.decided_by) for c in second.tool_calls] == [("c2", "ok", "policy")]
    assert fake.requests[3].function_response("c2") == {"result": 4}  # the second call ran


def test_ask_without_a_handler_denies_and_says_how_to_allow(fake, make_agent):
    agent = make_agent(tools=[add])  # default policy: ask
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("cannot"))
    response = agent.chat("1+1")
    error = fake.requests[1].function_response("c1")["error"]
    assert response.tool_calls[0].status == "denied"
    assert "approval" in error and "allow('add')" in error


def test_deny_policy_and_pre_tool_hook(fake, make_agent):
    agent = make_agent(tools=[add], policies=[agy.deny("add", "read-only session")])
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("no"))
    agent.chat("1+1")
    assert "read-only session" in fake.requests[1].function_response("c1")["error"]

    hooked = make_agent("hooked", tools=[add], policies=[agy.allow_all()],
                        hooks=agy.Hooks(pre_tool=[lambda request: request.args["a"] < 10]))
    fake.enqueue(Reply.function_call("add", {"a": 99, "b": 1}, id="c2"), Reply.text("no"))
    response = hooked.chat("99+1")
    assert response.tool_calls[0].status == "denied" and response.tool_calls[0].decided_by == "hook"


def test_bad_arguments_go_back_to_the_model_as_an_error(fake, make_agent):
    agent = make_agent(tools=[add], policies=[agy.allow_all()])
    fake.enqueue(Reply.function_call("add", {"a": "lots", "b": 1}, id="c1"), Reply.text("sorry"))
    response = agent.chat("add")
    error = fake.requests[1].function_response("c1")["error"]
    assert error.startswith("invalid arguments") and "'a'" in error
    assert response.tool_calls[0].status == "error"


def test_raising_tool_reports_the_error_and_calls_the_hook(fake, make_agent):
    failures = []

    def explode(x: int) -> int:
        raise RuntimeError(f"boom {x}")

    agent = make_agent(tools=[explode], policies=[agy.allow_all()],
                       hooks=agy.Hooks(on_tool_error=[lambda record, exc: failures.append((record.name, exc))]))
    fake.enqueue(Reply.function_call("explode", {"x": 3}, id="c1"), Reply.text("it failed"))
    response = agent.chat("go")
    assert fake.requests[1].function_response("c1") == {"error": "RuntimeError: boom 3"}
    assert failures[0][0] == "explode" and isinstance(failures[0][1], RuntimeError)
    assert response.text == "it failed"


def test_tool_timeout(fake, make_agent):
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "late"

    agent = make_agent(tools=[slow], policies=[agy.allow_all()], tool_timeout=0.2)
    fake.enqueue(Reply.function_call("slow", {}, id="c1"), Reply.text("gave up"))
    started = time.perf_counter()
    response = agent.chat("go")
    release.set()
    assert time.perf_counter() - started < 3
    assert "timed out after 0.2 s" in fake.requests[1].function_response("c1")["error"]
    assert response.tool_calls[0].status == "error"


def test_async_tool_runs_on_the_loop_and_unknown_tools_are_reported(fake, make_agent):
    async def fetch(key: str) -> dict:
        await asyncio.sleep(0.01)
        return {"key": key, "value": 1}

    agent = make_agent(tools=[fetch], policies=[agy.allow_all()])
    fake.enqueue(Reply.function_calls([("fetch", {"key": "k"}, "c1"), ("nope", {}, "c2")]), Reply.text("done"))
    agent.chat("go")
    assert fake.requests[1].function_response("c1") == {"key": "k", "value": 1}
    assert "unknown tool 'nope'" in fake.requests[1].function_response("c2")["error"]
    assert_valid(agent)


def test_tool_call_limit_answers_extra_calls_and_turns_tools_off(fake, make_agent):
    agent = make_agent(tools=[add], policies=[agy.allow_all()], max_tool_calls=2)
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"),
                 Reply.function_calls([("add", {"a": 2, "b": 2}, "c2"), ("add", {"a": 3, "b": 3}, "c3")]),
                 Reply.text("enough"))
    response = agent.chat("keep adding")
    assert [c.status for c in response.tool_calls] == ["ok", "ok", "error"]
    assert "limit of 2" in fake.requests[2].function_response("c3")["error"]
    last = fake.requests[2].normalized_body
    assert last["toolConfig"]["functionCallingConfig"]["mode"] == "NONE"
    assert response.text == "enough"
    assert_valid(agent)


# -- usage, history, compaction --------------------------------------------------------------------

def test_usage_per_call_per_turn_and_total(fake, make_agent):
    agent = make_agent(tools=[add], policies=[agy.allow_all()])
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1", usage=Usage(prompt=10, output=2, thoughts=3)),
                 Reply.text("2", usage=Usage(prompt=20, output=1, cached=5)),
                 Reply.text("again", usage=Usage(prompt=30, output=4)))
    first = agent.chat("1+1")
    assert (first.usage.prompt_tokens, first.usage.output_tokens, first.usage.thinking_tokens,
            first.usage.cached_tokens, first.usage.calls) == (30, 3, 3, 5, 2)
    agent.chat("again")
    last = agent.last_turn_usage()
    total = agent.usage()
    assert (last.prompt_tokens, last.output_tokens) == (30, 4)
    assert (total.prompt_tokens, total.output_tokens, total.calls) == (60, 7, 3)
    per_call = [m.usage.prompt_tokens for m in agent.history() if m.role == "model"]
    assert per_call == [10, 20, 30]


def test_history_turn_count_last_response_and_clear(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("first"), Reply.text("second"))
    agent.chat("one")
    agent.chat("two")
    history = agent.history()
    assert [(m.role, m.kind, m.turn) for m in history] == [
        ("user", "prompt", 1), ("model", "reply", 1), ("user", "prompt", 2), ("model", "reply", 2)]
    assert history[1].text == "first" and history[0].time <= history[3].time
    assert agent.turn_count() == 2 and agent.last_response() == "second"
    assert [c["role"] for c in fake.requests[1].contents] == ["user", "model", "user"]
    agent.clear()
    assert agent.history() == [] and agent.turn_count() == 0 and agent.last_response() is None
    fake.enqueue(Reply.text("fresh"))
    agent.chat("three")
    assert len(fake.requests[2].contents) == 1


def test_compaction_summarises_older_turns(fake, make_agent):
    events = []
    agent = make_agent(compaction_threshold=100, compaction_keep_turns=1,
                       hooks=agy.Hooks(on_compaction=[events.append]))
    fake.enqueue(Reply.text("a1", usage=Usage(prompt=40, output=10)),
                 Reply.text("a2", usage=Usage(prompt=90, output=30)),
                 Reply.text("SUMMARY: user asked q1 and q2"),  # the summarisation call
                 Reply.text("a3", usage=Usage(prompt=20, output=5)))
    agent.chat("q1")
    assert agent.compaction_indices() == []
    agent.chat("q2")  # 120 tokens > 100: turn 1 is summarised, turn 2 kept
    assert [r.method for r in fake.requests] == ["streamGenerateContent"] * 2 + ["generateContent"]
    assert fake.requests[2].last_user_text.startswith("Summarise the conversation")
    [index] = agent.compaction_indices()
    history = agent.history()
    assert history[index].kind == "summary" and "SUMMARY: user asked q1" in history[index].text
    assert all(m.excluded for m in history[:index]) and len(history) == 5  # the transcript keeps turn 1
    assert events and events[0]["messages_summarised"] == 2
    agent.chat("q3")
    sent = fake.requests[3].contents
    assert "SUMMARY" in sent[0]["parts"][0]["text"] and "q1" not in str(sent[0]["parts"][1:])
    assert [c["role"] for c in sent] == ["user", "model", "user"]


# -- content and structured output ------------------------------------------------------------------

def test_images_files_and_dataframes_in_a_prompt(fake, make_agent):
    agent = make_agent()
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    frame = pd.DataFrame({"x": range(1000), "y": ["a"] * 1000})
    fake.enqueue(Reply.text("seen"))
    agent.chat(["Describe these", agy.image(png), frame])
    parts = fake.requests[0].contents[0]["parts"]
    assert parts[0]["text"] == "Describe these"
    assert parts[1]["inlineData"]["mimeType"] == "image/png"
    assert base64.b64decode(parts[1]["inlineData"]["data"]) == png
    assert "1000 rows" in parts[2]["text"] and "999" not in parts[2]["text"]


def test_response_schema_gives_a_parsed_object(fake, make_agent):
    class City(pydantic.BaseModel):
        name: str
        population: int

    agent = make_agent(response_schema=City)
    fake.enqueue(Reply.text('{"name": "Oslo", "population": 709000}', chunks=3))
    response = agent.chat("largest city in Norway")
    assert response.parsed == City(name="Oslo", population=709000)
    assert fake.requests[0].generation_config["responseMimeType"] == "application/json"


def test_hooks_see_each_turn(fake, make_agent):
    seen = []
    agent = make_agent(hooks=agy.Hooks(pre_turn=[lambda parts: seen.append(("pre", parts[0].text))],
                                       post_turn=[lambda response: seen.append(("post", response.text))]))
    fake.enqueue(Reply.text("hello"))
    agent.chat("hi")  # post_turn is part of the turn: it has run when the reply is delivered
    assert seen == [("pre", "hi"), ("post", "hello")]


def test_post_turn_runs_before_idle_and_the_next_turn_waits_for_it(fake, make_agent):
    in_hook, release = threading.Event(), threading.Event()
    finished = []

    def post_turn(response):
        in_hook.set()
        release.wait(10)
        finished.append(response.text)

    agent = make_agent(hooks=agy.Hooks(post_turn=[post_turn]))
    fake.enqueue(Reply.text("hello"), Reply.text("next"))
    stream = agent.stream("hi")
    try:
        assert in_hook.wait(10)
        assert not agent.is_idle() and not stream.done()
        with pytest.raises(agy.AgentBusy):  # no overlap with the next turn
            agent.stream("too soon")
    finally:
        release.set()
    agent.wait_for_idle()
    assert finished == ["hello"] and stream.done()
    assert agent.chat("later").text == "next"


def test_cancelling_the_turn_stops_its_post_turn_hook(fake, make_agent):
    entered = threading.Event()
    outcome = []

    async def post_turn(response):
        entered.set()
        try:
            await asyncio.sleep(30)
            outcome.append("slept")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    agent = make_agent(hooks=agy.Hooks(post_turn=[post_turn]))
    fake.enqueue(Reply.text("done"))
    stream = agent.stream("hi")
    assert entered.wait(10)
    agent.cancel()
    assert outcome == ["cancelled"] and agent.is_idle()
    assert stream.result(5).text == "done"  # the reply itself was complete


def test_a_second_chat_while_busy_is_refused_clearly(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("slow", chunks=2, ttft=0.5))
    stream = agent.stream("first")
    with pytest.raises(agy.AgentBusy, match="already answering"):
        agent.stream("second")
    assert stream.result().text == "slow"
