"""Error classification: timeouts carry the real limit, unreadable headers are reported, not swallowed."""
from __future__ import annotations

import logging

import pytest
from google.genai import errors as genai_errors

import agy_jupyter as agy
from agy_jupyter import Runtime, RuntimeConfig
from agy_jupyter.agent.classify import classify_exception, response_headers
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import Reply


def test_a_timeout_says_the_limit_it_was_given():
    error = classify_exception(TimeoutError(), operation="chat", timeout=7.5)
    assert isinstance(error, agy.Timeout) and error.duration == 7.5
    assert str(error).startswith("chat timed out after 7.5 s")


def test_a_timeout_of_unknown_length_gives_no_made_up_number():
    error = classify_exception(TimeoutError("read took too long"))
    assert isinstance(error, agy.Timeout)
    assert str(error).startswith("model call timed out: read took too long")
    assert "0 s" not in str(error)


def test_a_chat_that_runs_out_of_time_names_its_limit(fake):
    runtime = Runtime(RuntimeConfig(chat_timeout=0.5, shutdown_timeout=5), quota=QuotaRegistry())
    try:
        agent = agy.Agent("slow", runtime=runtime)
        fake.enqueue(Reply.text("too late", ttft=5))
        with pytest.raises(agy.Timeout) as caught:
            agent.chat("hi")
        assert "chat timed out after 0.5 s" in str(caught.value) and caught.value.duration == 0.5
        assert "chat timed out after 0.5 s" in runtime.describe(agent.id)["last_error"]
    finally:
        runtime.shutdown()


class _Response:
    def __init__(self, headers):
        self.headers = headers


def _error_with_headers(headers) -> genai_errors.APIError:
    return genai_errors.ClientError(429, {"error": {"message": "slow down"}}, _Response(headers))


def test_response_headers_are_read_from_the_response():
    assert response_headers(_error_with_headers({"Retry-After": "3"})) == {"Retry-After": "3"}
    assert response_headers(genai_errors.ClientError(429, {"error": {"message": "x"}})) == {}


def test_unreadable_headers_are_reported_not_swallowed(caplog):
    class Broken:
        def items(self):
            raise TypeError("not iterable today")

    with caplog.at_level(logging.WARNING, logger="agy_jupyter.agent.classify"):
        assert response_headers(_error_with_headers(Broken())) == {}
    assert "cannot read the headers of a 429 response" in caplog.text and "not iterable today" in caplog.text


def test_an_unexpected_failure_reading_headers_is_not_hidden():
    class Exploding:
        def items(self):
            raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        response_headers(_error_with_headers(Exploding()))
