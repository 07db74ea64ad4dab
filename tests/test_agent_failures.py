"""Quota, server failures, safety, max tokens, structural classification and bad input."""
from __future__ import annotations

import sys
import threading
import time

import pytest
from google.genai import errors as genai_errors

import agy_jupyter as agy
from agy_jupyter.agent.classify import classify_exception
from agy_jupyter.agent.history import contents_for_model, history_is_valid
from agy_jupyter.testing import Chunk, Reply

PER_MINUTE = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
PER_DAY = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"


# -- quota ------------------------------------------------------------------------------------------

def test_429_retry_delay_is_honoured(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.error(429, retry_delay=1.0, quota_id=PER_MINUTE, quota_value=15), Reply.text("finally"))
    stream = agent.stream("hi")
    response = stream.result()
    first, second = fake.requests
    assert response.text == "finally"
    assert 0.9 <= second.time - first.time <= 1.1 + 0.15  # within 10% (plus request overhead)
    assert [e.seconds for e in stream.events if isinstance(e, agy.QuotaWait)] == [1.0]


def test_two_agents_on_one_key_share_the_wait(fake, make_agent):
    first, second = make_agent("first"), make_agent("second")
    fake.enqueue(Reply.error(429, retry_delay=1.0, quota_id=PER_MINUTE), Reply.text("a"), Reply.text("b"))
    stream = first.stream("go")
    assert fake.wait_for_requests(1, timeout=5)
    time.sleep(0.1)  # the 429 has been recorded by now
    assert second.chat("me too").text in ("a", "b")
    assert stream.result().text in ("a", "b")
    limited_at = fake.requests[0].time
    assert all(r.time - limited_at >= 0.9 for r in fake.requests[1:]), [r.time - limited_at for r in fake.requests]


def test_retry_after_header_is_used_without_retry_info(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.error(429, retry_after=0.5), Reply.text("ok"))
    agent.chat("hi")
    assert fake.requests[1].time - fake.requests[0].time >= 0.45


def test_daily_quota_is_exhausted_at_once(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.error(429, retry_delay=30, quota_id=PER_DAY, quota_value=50))
    started = time.perf_counter()
    with pytest.raises(agy.QuotaExhausted, match="PerDay") as caught:
        agent.chat("hi")
    assert time.perf_counter() - started < 2
    assert len(fake.requests) == 1 and caught.value.violations[0]["quotaId"] == PER_DAY
    assert "wait for the quota to reset" in str(caught.value)
    assert history_is_valid(contents_for_model(agent.history()))


def test_zero_free_tier_limit_is_exhausted(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.error(429, retry_delay=5, quota_id=PER_MINUTE, quota_value=0))
    with pytest.raises(agy.QuotaExhausted):
        agent.chat("hi")
    assert len(fake.requests) == 1


def test_503_then_success(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.error(503), Reply.text("recovered"))
    assert agent.chat("hi").text == "recovered"
    assert len(fake.requests) == 2


def test_persistent_500_gives_up_with_a_backend_error(fake, make_agent):
    agent = make_agent()
    fake.enqueue(*[Reply.error(500)] * 4)
    with pytest.raises(agy.BackendError) as caught:
        agent.chat("hi")
    assert caught.value.status == 500 and len(fake.requests) == 4  # first try + 3 bounded retries


def test_a_connection_reset_before_any_answer_is_retried(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.connection_reset(), Reply.connection_reset(), Reply.text("through"))
    assert agent.chat("hi").text == "through"  # the request had no effect: retried with backoff
    assert len(fake.requests) == 3


def test_connection_resets_give_up_with_a_backend_error(fake, make_agent):
    agent = make_agent()
    fake.enqueue(*[Reply.connection_reset()] * 4)
    with pytest.raises(agy.BackendError, match="before the reply"):
        agent.chat("hi")
    assert len(fake.requests) == 4  # first try + 3 bounded retries
    fake.enqueue(Reply.text("fine"))
    assert agent.chat("again").text == "fine"


def test_a_drop_after_the_answer_began_is_not_retried(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("Hello").drop_after(0))  # headers sent: the request may have had its effect
    with pytest.raises(agy.BackendError):
        agent.chat("hi")
    assert len(fake.requests) == 1


def test_400_is_not_retried(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.error(400, message="model not found"))
    with pytest.raises(agy.BackendError, match="model not found") as caught:
        agent.chat("hi")
    assert caught.value.status == 400 and len(fake.requests) == 1


# -- broken streams ---------------------------------------------------------------------------------

def test_drop_mid_stream_is_typed_and_keeps_the_partial_text(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply(chunks=[Chunk.text("Hello "), Chunk.text("wor"), Chunk.text("ld")]).drop_after(2))
    with pytest.raises(agy.BackendError, match="mid-stream") as caught:
        agent.chat("hi")
    assert caught.value.partial_text == "Hello wor"
    reply = agent.history()[-1]
    assert (reply.role, reply.status, reply.text) == ("model", "error", "Hello wor")
    fake.enqueue(Reply.text("again"))
    assert agent.chat("retry").text == "again"


def test_malformed_chunk_is_a_backend_error(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("abc", chunks=3).malformed_after(1))
    with pytest.raises(agy.BackendError):
        agent.chat("hi")
    fake.enqueue(Reply.text("fine"))
    assert agent.chat("again").text == "fine"


def test_blocked_prompt(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.blocked("SAFETY"))
    with pytest.raises(agy.SafetyBlocked, match="prompt was blocked") as caught:
        agent.chat("something bad")
    assert caught.value.reason == "SAFETY" and caught.value.ratings
    assert history_is_valid(contents_for_model(agent.history()))


def test_a_blocked_prompt_counts_its_usage_and_closes_the_stream(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.blocked("SAFETY").stall_after(1))  # left open, the server would keep the stream open
    with pytest.raises(agy.SafetyBlocked):
        agent.chat("something bad")
    billed = agent.last_turn_usage()
    assert billed.prompt_tokens > 0 and billed.calls == 1  # the API billed the prompt: so do we
    assert agent.usage().prompt_tokens == billed.prompt_tokens
    assert fake.wait_for_disconnect(2.0) is not None  # closed when the error surfaced, not at the server's end


def test_an_error_mid_stream_counts_the_usage_already_received(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply(chunks=[Chunk.text("Hello "), Chunk.text("world")]).drop_after(2))  # usage came, then a drop
    with pytest.raises(agy.BackendError, match="mid-stream"):
        agent.chat("hi")
    assert agent.last_turn_usage().output_tokens > 0 and agent.usage().output_tokens > 0


def test_safety_finish_reason_keeps_partial_and_ratings(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("Here is how to", chunks=2, finish_reason="SAFETY"))
    with pytest.raises(agy.SafetyBlocked, match="safety filter") as caught:
        agent.chat("hi")
    assert caught.value.partial_text == "Here is how to"
    fired = [r["category"] for r in caught.value.ratings if r.get("blocked")]
    assert fired == ["HARM_CATEGORY_DANGEROUS_CONTENT"]


def test_max_tokens_keeps_the_partial_text(fake, make_agent):
    agent = make_agent(max_output_tokens=5)
    fake.enqueue(Reply.text("This answer is cut", chunks=3, finish_reason="MAX_TOKENS"))
    with pytest.raises(agy.MaxTokens) as caught:
        agent.chat("hi")
    assert caught.value.partial_text == "This answer is cut"
    assert agent.history()[-1].text == "This answer is cut"
    assert fake.requests[0].generation_config["maxOutputTokens"] == 5


# -- classification is structural -------------------------------------------------------------------

class StopCandidateException(Exception):
    pass


class MaxTokensException(Exception):
    pass


def test_exception_class_names_never_decide_the_error_type():
    for exc in (StopCandidateException("dummy"), MaxTokensException("dummy")):
        mapped = classify_exception(exc)
        assert not isinstance(mapped, (agy.SafetyBlocked, agy.MaxTokens))
        assert isinstance(mapped, agy.BackendError)


def test_http_codes_decide_the_error_type():
    assert isinstance(classify_exception(genai_errors.ClientError(429, {"error": {"message": "x"}})),
                      agy.QuotaExhausted)
    server = classify_exception(genai_errors.ServerError(503, {"error": {"message": "busy"}}))
    assert isinstance(server, agy.BackendError) and server.status == 503
    assert isinstance(classify_exception(TimeoutError()), agy.Timeout)


def test_a_tool_raising_a_lookalike_exception_is_just_a_tool_error(fake, make_agent):
    def sneaky() -> str:
        raise MaxTokensException("not really")

    agent = make_agent(tools=[sneaky], policies=[agy.allow_all()])
    fake.enqueue(Reply.function_call("sneaky", {}, id="c1"), Reply.text("survived"))
    response = agent.chat("go")
    assert response.text == "survived"
    assert response.tool_calls[0].result == {"error": "MaxTokensException: not really"}


# -- bad input --------------------------------------------------------------------------------------

def test_bad_config_says_what_to_fix(runtime):
    with pytest.raises(agy.ConfigError, match="temperature") as caught:
        agy.Agent("x", runtime=runtime, temperature=7)
    assert "less than or equal to 2" in str(caught.value)
    with pytest.raises(agy.ConfigError, match="name"):
        agy.Agent("bad name!", runtime=runtime)
    with pytest.raises(agy.ConfigError, match="not both"):
        agy.Agent("x", runtime=runtime, enabled_tools=[], disabled_tools=[])
    with pytest.raises(agy.ConfigError, match="unknown_setting"):
        agy.Agent("x", runtime=runtime, unknown_setting=1)
    assert runtime.agent_ids() == {}


def test_missing_credentials_say_how_to_set_a_key(runtime, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # with it, the embedded model stands in (test_local_model.py)
    with pytest.raises(agy.ConfigError, match="GEMINI_API_KEY"):
        agy.Agent("nokey", runtime=runtime)
    monkeypatch.setenv("GOOGLE_API_KEY", "another-key")
    assert agy.Agent("withkey", runtime=runtime).name == "withkey"


def test_empty_prompt_unknown_agent_and_the_runtime_stays_alive(fake, make_agent, runtime):
    agent = make_agent()
    with pytest.raises(agy.ConfigError, match="empty"):
        agent.chat("   ")
    with pytest.raises(agy.UnknownAgent):
        runtime.history(12345)
    with pytest.raises(agy.UnknownAgent):
        runtime.chat("ghost", "hi")
    fake.enqueue(Reply.text("still here"))
    assert agent.chat("hi").text == "still here"
    assert runtime.thread.is_alive() and agent.turn_count() == 1


def test_unsupported_prompt_content(fake, make_agent):
    agent = make_agent()
    with pytest.raises(agy.ConfigError, match="unsupported prompt content"):
        agent.chat(threading.Lock())


def test_api_key_never_appears_in_reprs_or_saved_json(fake, make_agent, runtime):
    secret = "sk-very-secret-123"
    agent = make_agent("keyed", api_key=secret)
    fake.enqueue(Reply.text("ok"))
    agent.chat("hi")
    assert fake.requests[0].api_key == secret
    session = runtime._sessions[agent.id]
    for text in (repr(agent.config), agent.config.to_json(), repr(session.credentials), repr(session.backend),
                 repr(runtime.quota), session.credentials.describe()):
        assert secret not in text
