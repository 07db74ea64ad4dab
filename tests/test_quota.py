"""The quota layer's pure logic: per-credential state, backoff, and reading a 429's RetryInfo / QuotaFailure."""
from __future__ import annotations

import asyncio
import email.utils
import threading
import time

import pytest
from google.genai import errors

from agy_jupyter.agent.classify import response_headers
from agy_jupyter.runtime.quota import (BACKOFF_MAX, QUOTA_FAILURE_TYPE, RETRY_INFO_TYPE, QuotaRegistry, QuotaState,
                                       backoff_delay, classify_quota_error, credential_id, parse_duration,
                                       parse_retry_after_header)
from agy_jupyter.testing import FakeGemini, Reply


def retry_info(delay) -> dict:
    return {"@type": RETRY_INFO_TYPE, "retryDelay": delay}


def quota_failure(*violations: dict) -> dict:
    return {"@type": QUOTA_FAILURE_TYPE, "violations": list(violations)}


def error_json(*details: dict) -> dict:
    """The body google-genai hands over as ClientError.details."""
    return {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED",
                      "details": list(details)}}


PER_MINUTE = {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
              "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaValue": "10"}
PER_DAY = {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
           "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "250"}


# -- credentials and the registry ------------------------------------------------------------------

def test_credential_id_is_short_stable_and_hides_the_key():
    key = "AIzaSy-very-secret-key"
    assert credential_id(key) == credential_id(key)
    assert len(credential_id(key)) == 12 and int(credential_id(key), 16) >= 0
    assert credential_id(key) != credential_id(key + "x")
    assert credential_id(None) == credential_id("")
    assert key not in credential_id(key)


def test_registry_shares_one_state_per_credential():
    registry = QuotaRegistry()
    first = registry.state_for_key("key-a")
    assert registry.state_for_key("key-a") is first
    assert registry.state_for_key("key-b") is not first
    assert first.key_id == credential_id("key-a")
    assert "key-a" not in repr(registry) and "key-a" not in repr(first)


def test_registry_is_thread_safe():
    registry = QuotaRegistry()
    barrier = threading.Barrier(8)
    states = []

    def grab():
        barrier.wait()
        states.append(registry.state_for_key("shared"))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(s) for s in states}) == 1


# -- QuotaState ------------------------------------------------------------------------------------

def test_fresh_state_does_not_wait():
    state = QuotaState("k")
    assert state.remaining() == 0
    started = time.perf_counter()
    assert asyncio.run(state.wait_for_quota()) == 0
    assert time.perf_counter() - started < 0.05


def test_hit_blocks_calls_for_retry_after_and_never_shortens():
    state = QuotaState("k")
    assert state.record_quota_hit(0.5) == 0.5
    assert 0.4 < state.remaining() <= 0.5
    state.record_quota_hit(0.05)  # a shorter hint does not cut the longer wait short
    assert state.remaining() > 0.4
    assert state.consecutive_hits == 2 and state.total_hits == 2
    state.record_success()
    assert state.consecutive_hits == 0 and state.total_hits == 2
    assert state.remaining() > 0.3  # success resets the count, not the wait already promised


def test_wait_for_quota_sleeps_until_resume_and_reports_it():
    state = QuotaState("k")
    state.record_quota_hit(0.2)
    notices = []
    started = time.perf_counter()
    waited = asyncio.run(state.wait_for_quota(on_wait=notices.append))
    elapsed = time.perf_counter() - started
    assert 0.18 <= elapsed < 0.5 and 0.15 <= waited <= 0.21
    assert notices and 0.15 < notices[0] <= 0.2
    assert state.remaining() == 0


def test_hit_without_retry_after_backs_off_exponentially():
    state = QuotaState("k")
    delays = [state.record_quota_hit(None) for _ in range(4)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = 2 ** (attempt - 1)
        assert ceiling * 0.5 <= delay <= ceiling
    assert state.remaining() > 0


def test_hits_from_many_threads_are_all_counted():
    state = QuotaState("k")

    def hammer():
        for _ in range(200):
            state.record_quota_hit(0.0)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state.total_hits == state.consecutive_hits == 800


@pytest.mark.parametrize("attempt, low, high", [(0, 0.5, 1), (1, 0.5, 1), (2, 1, 2), (4, 4, 8),
                                                (7, 30, 60), (100, 30, 60), (5000, 30, 60)])
def test_backoff_delay_is_bounded_with_jitter(attempt, low, high):
    values = {backoff_delay(attempt) for _ in range(50)}
    assert all(low <= v <= high for v in values)
    assert len(values) > 1  # jittered
    assert max(values) <= BACKOFF_MAX


def test_backoff_delay_custom_base_and_cap():
    assert all(0.25 <= backoff_delay(1, base=0.5, cap=8) <= 0.5 for _ in range(20))
    assert all(4 <= backoff_delay(10, base=0.5, cap=8) <= 8 for _ in range(20))


# -- parsing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, seconds", [
    ("30s", 30.0), ("1.5s", 1.5), (".25s", 0.25), (" 2 s ", 2.0), ("0.000001s", 0.000001),
    ({"seconds": 1, "nanos": 500_000_000}, 1.5), ({"seconds": "3"}, 3.0), ({"nanos": 250_000_000}, 0.25),
    (2, 2.0), (0.5, 0.5),
])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "soon", "1.5", "1.5ms", "-1s", [], {"seconds": "x"},
                                   {"seconds": None}, float("nan"), float("inf")])
def test_parse_duration_rejects_garbage(value):
    assert parse_duration(value) is None


def test_parse_retry_after_header():
    assert parse_retry_after_header("7") == 7.0
    assert parse_retry_after_header(" 1.5 ") == 1.5
    assert parse_retry_after_header("-5") == 0.0
    for garbage in (None, "", "later", "inf", "nan", "Thu, 99 Foo 2020"):
        assert parse_retry_after_header(garbage) is None, garbage
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= parse_retry_after_header(future) <= 31
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert parse_retry_after_header(past) == 0.0


# -- classifying a 429 -----------------------------------------------------------------------------

def test_retry_info_gives_the_wait():
    verdict = classify_quota_error(error_json(quota_failure(PER_MINUTE), retry_info("25s")))
    assert verdict.retry_after == 25.0 and not verdict.exhausted
    assert verdict.violations == [PER_MINUTE] and verdict.reason == ""


def test_per_day_quota_is_exhausted():
    verdict = classify_quota_error(error_json(quota_failure(PER_DAY), retry_info("40s")))
    assert verdict.exhausted and verdict.retry_after == 40.0
    assert "PerDay" in verdict.reason


@pytest.mark.parametrize("limit", ["0", 0])
def test_zero_limit_means_no_free_tier(limit):
    violation = {**PER_MINUTE, "quotaValue": limit}
    verdict = classify_quota_error(error_json(quota_failure(violation)))
    assert verdict.exhausted and verdict.retry_after is None


def test_snake_case_and_a_bare_details_list_are_read():
    details = [{"@type": QUOTA_FAILURE_TYPE, "violations": [{"quota_id": "RequestsPerDay", "quota_value": "5"}]},
               {"@type": RETRY_INFO_TYPE, "retry_delay": {"seconds": 2}}]
    verdict = classify_quota_error(details)
    assert verdict.retry_after == 2.0 and verdict.exhausted


def test_retry_after_header_is_the_fallback():
    assert classify_quota_error(error_json(), {"Retry-After": "12"}).retry_after == 12.0
    assert classify_quota_error(error_json(), {"retry-after": "3"}).retry_after == 3.0
    # RetryInfo wins over the header
    assert classify_quota_error(error_json(retry_info("5s")), {"Retry-After": "12"}).retry_after == 5.0
    assert classify_quota_error(error_json()).retry_after is None


@pytest.mark.parametrize("details", [None, "oops", 42, {}, {"error": "text"}, {"error": {"details": "x"}},
                                     [None, "x", 3, {"@type": RETRY_INFO_TYPE, "retryDelay": "bad"}],
                                     [{"@type": RETRY_INFO_TYPE, "retryDelay": {"seconds": "x"}}],
                                     error_json(quota_failure("not a dict", PER_MINUTE))])
def test_malformed_details_never_raise(details):
    verdict = classify_quota_error(details)
    assert verdict.retry_after is None and not verdict.exhausted


def test_classifies_the_sdk_error_from_the_wire(monkeypatch):
    """The shapes above are what google-genai really hands over for a 429 (via the fake server)."""
    with FakeGemini() as fake:
        client = fake.client(retry_options={"attempts": 1})
        fake.enqueue(Reply.error(429, retry_delay=1.5, quota_id="GenerateRequestsPerMinutePerProjectPerModel",
                                 quota_value="60"),
                     Reply.error(429, quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                                 quota_value="250", retry_after=9),
                     Reply.error(429, retry_after=4))
        verdicts = []
        for _ in range(3):
            with pytest.raises(errors.ClientError) as info:
                client.models.generate_content(model="gemini-2.5-flash", contents="hi")
            assert info.value.code == 429
            verdicts.append(classify_quota_error(info.value.details, response_headers(info.value)))
    assert (verdicts[0].retry_after, verdicts[0].exhausted) == (1.5, False)
    assert verdicts[0].violations[0]["quotaValue"] == "60"
    assert (verdicts[1].retry_after, verdicts[1].exhausted) == (9.0, True)
    assert (verdicts[2].retry_after, verdicts[2].exhausted) == (4.0, False)
