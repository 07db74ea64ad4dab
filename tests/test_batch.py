"""Batch API jobs through the real google-genai client against the fake server's batch and file endpoints.

The fake service's clock only moves when a test moves it: `wait(sleep=fake.batches.advance)` makes each
poll interval pass on that clock, so the jobs go PENDING -> RUNNING -> SUCCEEDED without a real sleep.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from agy_jupyter import BackendError, Batch, BatchRow, ConfigError, Timeout, build_config
from agy_jupyter.agent import batch as batch_module
from agy_jupyter.agent import batch_requests, batch_store
from agy_jupyter.agent.batch import Backoff
from agy_jupyter.testing import Reply
from agy_jupyter.testing.fake_batch import BATCH_METHOD


class Sentiment(BaseModel):
    label: str
    score: float


@pytest.fixture
def config(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))  # a store of this test's own jobs
    return build_config(name="tagger", system_instruction="Label the sentiment.", temperature=0.1)


def batch_requests_seen(fake) -> list:
    return [r for r in fake.requests if r.method == BATCH_METHOD]


def run_to_end(job: Batch, fake, **options) -> tuple[str, list[dict], list[float]]:
    """Wait for the job with the fake clock standing in for time; return (state, progress reports, sleeps)."""
    reports, sleeps = [], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        fake.batches.advance(seconds)

    state = job.wait(reports.append, sleep=sleep, **options)
    return state, reports, sleeps


def test_an_inlined_job_runs_at_the_service_and_joins_each_answer_to_its_row(fake, config):
    rows = [{"id": 1, "review": "great"}, {"id": 2, "review": "awful"}, {"id": 3, "review": "fine"}]
    fake.enqueue(Reply.text("positive"), Reply.error(500, "the model failed on this one"), Reply.text("neutral"))
    job = Batch.submit(config, [f"Review: {r['review']}" for r in rows], rows=rows, display_name="reviews")

    assert job.name.startswith("batches/") and job.state == "JOB_STATE_PENDING"
    assert fake.batches.jobs[job.name].input_file is None  # small: inlined in the create call
    assert fake.batches.jobs[job.name].display_name == "reviews"
    assert batch_requests_seen(fake) == []  # nothing answered until the service runs the job

    state, reports, sleeps = run_to_end(job, fake)
    assert state == "JOB_STATE_SUCCEEDED" and job.done
    seen_states = [r["state"] for r in reports]
    assert seen_states[0] == "JOB_STATE_PENDING" and "JOB_STATE_RUNNING" in seen_states
    assert seen_states[-1] == "JOB_STATE_SUCCEEDED" and reports[-1]["done"] and reports[-1]["rows"] == 3
    assert sleeps[:4] == [5.0, 7.5, 11.25, 16.875]  # the default backoff: 5 s, growing 1.5x
    assert max(sleeps) <= 60.0

    results = job.results()
    assert [r.row for r in results] == rows
    assert [r.text for r in results] == ["positive", None, "neutral"]
    assert results[1].error == "[500] the model failed on this one" and not results[1].ok
    assert results[0].ok and results[0].usage["output_tokens"] >= 1 and results[1].usage["total_tokens"] == 0

    sent = batch_requests_seen(fake)
    assert [r.last_user_text for r in sent] == [f"Review: {r['review']}" for r in rows]  # request order kept
    assert {r.system_instruction for r in sent} == {"Label the sentiment."}
    assert sent[0].generation_config["temperature"] == 0.1
    assert sent[0].tools == []  # a batch has no tool loop: no tools are offered
    assert not sent[0].generation_config.get("thinkingConfig", {}).get("includeThoughts")


def test_above_the_inline_limits_the_requests_go_as_an_uploaded_jsonl_file(fake, config, monkeypatch):
    prompts = ["I loved it", "It broke on day one"]
    inline = Batch.submit(config, prompts, output=Sentiment)  # the same requests, inline, for comparison
    monkeypatch.setattr(batch_requests, "INLINE_MAX_REQUESTS", 1)  # so that two prompts are "many"
    job = Batch.submit(config, prompts, output=Sentiment)

    held = fake.batches.jobs[job.name]
    assert fake.batches.jobs[inline.name].input_file is None and held.input_file is not None
    uploaded = fake.batches.files[held.input_file]
    assert uploaded.source == "UPLOADED" and uploaded.mime_type == "jsonl"
    lines = [json.loads(line) for line in uploaded.data.decode().splitlines()]
    assert [line["key"] for line in lines] == ["0", "1"]
    assert lines[1]["request"]["contents"] == [{"parts": [{"text": "It broke on day one"}], "role": "user"}]
    schema = lines[0]["request"]["generationConfig"]["responseSchema"]
    assert schema["properties"]["label"]["type"] == "STRING"  # the output model as the response schema
    assert lines[0]["request"]["generationConfig"]["responseMimeType"] == "application/json"
    # each line is exactly what the SDK sends for that request inline
    assert [line["request"] for line in lines] == [item["request"] for item in fake.batches.jobs[inline.name].requests]

    fake.enqueue(Reply.text("inline 1"), Reply.text("inline 2"),
                 Reply.text('{"label": "positive", "score": 0.9}'), Reply.text('{"label": "negative", "score": 0.1}'))
    state, _, _ = run_to_end(job, fake)
    assert state == "JOB_STATE_SUCCEEDED"
    assert fake.batches.files[fake.batches.jobs[job.name].output_file].source == "GENERATED"
    results = job.results()
    assert [r.row for r in results] == prompts  # without rows=, each row is its prompt
    # Batch returns text; the consumer (agent.map) parses the structured output, row by row
    assert [Sentiment.model_validate_json(r.text).label for r in results] == ["positive", "negative"]


def test_requests_over_19_mb_of_json_do_not_go_inline(fake, config):
    wire = batch_requests.wire_requests(fake.client()._api_client, config, ["x" * 1_000_000] * 19)
    assert len(wire) < batch_requests.INLINE_MAX_REQUESTS and not batch_requests.fits_inline(wire)
    assert batch_requests.fits_inline(wire[:18])


def test_a_job_the_service_fails_has_no_results_and_says_so(fake, config):
    job = Batch.submit(config, ["a", "b"])
    fake.batches.advance(40)  # running
    assert job.refresh() == "JOB_STATE_RUNNING"
    fake.batches.fail(job.name)
    state, reports, _ = run_to_end(job, fake)
    assert state == "JOB_STATE_FAILED" and reports[-1]["done"]
    with pytest.raises(ConfigError, match="is JOB_STATE_FAILED: it has no results"):
        job.results()
    assert batch_store.find(job.name).state == "JOB_STATE_FAILED"
    assert batch_requests_seen(fake) == []


def test_a_cancelled_job_ends_cancelled_and_its_requests_are_never_answered(fake, config):
    job = Batch.submit(config, ["a", "b", "c"])
    assert job.cancel() == "JOB_STATE_CANCELLED" and job.done
    fake.batches.finish_all()
    assert job.wait(sleep=fake.batches.advance) == "JOB_STATE_CANCELLED"
    assert batch_requests_seen(fake) == []
    assert batch_store.find(job.name).state == "JOB_STATE_CANCELLED"
    with pytest.raises(ConfigError, match="submit the rows again"):
        job.results()


def test_a_recorded_job_is_attached_from_the_store_by_a_fresh_process(fake, config):
    rows = [{"city": "Oslo"}, {"city": "Lima"}]
    job = Batch.submit(config, ["Oslo?", "Lima?"], rows=rows)
    batch_module._backends.clear()  # what a new kernel starts with: no client, no Batch object

    listed = {r.name: r for r in Batch.jobs()}[job.name]
    assert (listed.agent, listed.model, listed.rows, listed.state) == ("tagger", config.model, 2, "JOB_STATE_PENDING")

    fake.batches.finish_all()
    again = Batch.attach(job.name)
    assert again.state == "JOB_STATE_SUCCEEDED" and again.agent == "tagger"
    assert batch_store.find(job.name).state == "JOB_STATE_SUCCEEDED"  # attach recorded what it saw
    assert [(r.row, r.text) for r in again.results()] == [({"city": "Oslo"}, "You said: Oslo?"),
                                                         ({"city": "Lima"}, "You said: Lima?")]


def test_jobs_refresh_asks_the_service_and_delete_removes_the_job_everywhere(fake, config):
    job = Batch.submit(config, ["x"])
    lost = Batch.submit(config, ["y"])
    del fake.batches.jobs[lost.name]  # the service no longer has it (expired)
    fake.batches.advance(31)
    with pytest.warns(UserWarning, match=f"{lost.name}: .*404"):
        states = {r.name: r.state for r in Batch.jobs(refresh=True)}
    assert states == {job.name: "JOB_STATE_RUNNING", lost.name: "JOB_STATE_PENDING"}  # listed as last seen
    job.delete()
    assert job.name not in fake.batches.jobs
    assert batch_store.find(job.name) is None and job.name not in {r.name for r in Batch.jobs()}


def test_a_job_the_service_does_not_know_of_is_an_error_that_names_it(fake):
    with pytest.raises(Exception) as raised:
        Batch.attach("batches/nosuchjob")
    assert "batches/nosuchjob" in str(raised.value) and "404" in str(raised.value)
    with pytest.raises(ConfigError, match="not a batch job name"):
        Batch.attach("nosuchjob")


def test_wait_gives_up_after_its_timeout_and_says_how_to_pick_the_job_up(fake, config):
    job = Batch.submit(config, ["slow"])
    with pytest.raises(Timeout, match=r"still JOB_STATE_(PENDING|RUNNING).*Batch.attach"):
        run_to_end(job, fake, timeout=20, poll=Backoff(initial=5, factor=1, maximum=5))
    assert not job.done  # it runs on at the service
    assert run_to_end(job, fake)[0] == "JOB_STATE_SUCCEEDED"


def test_await_done_polls_from_async_code(fake, config):
    fake.enqueue(Reply.text("done"))
    job = Batch.submit(config, ["async?"])
    naps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        naps.append(seconds)
        fake.batches.advance(seconds)
        await asyncio.sleep(0)

    assert asyncio.run(job.await_done(sleep=fake_sleep, poll=Backoff(initial=20, maximum=40))) == "JOB_STATE_SUCCEEDED"
    assert naps[:3] == [20, 30, 40] and [r.text for r in job.results()] == ["done"]


def test_a_blocked_or_empty_answer_is_a_row_error(fake, config):
    fake.enqueue(Reply.blocked("SAFETY"), Reply.text("", finish_reason="MAX_TOKENS"))
    job = Batch.submit(config, ["bad", "long"])
    run_to_end(job, fake)
    blocked, empty = job.results()
    assert blocked.text is None and blocked.error == "the prompt was blocked (SAFETY)"
    assert empty.text is None and empty.error == "the answer has no text (finish reason MAX_TOKENS)"


def test_submitting_with_an_agent_uses_its_config(fake, make_agent):
    agent = make_agent("writer", system_instruction="Write haiku.", model="gemini-2.5-pro")
    job = Batch.submit(agent, ["autumn"])
    assert (job.agent, job.model) == ("writer", "gemini-2.5-pro")
    run_to_end(job, fake)
    sent = batch_requests_seen(fake)[0]
    assert sent.model == "gemini-2.5-pro" and sent.system_instruction == "Write haiku."
    assert isinstance(job.results()[0], BatchRow)


def test_what_cannot_be_batched_is_refused_before_anything_is_sent(fake, config, monkeypatch):
    with pytest.raises(ConfigError, match="at least one prompt"):
        Batch.submit(config, [])
    with pytest.raises(ConfigError, match="prompt 1 is int, not text"):
        Batch.submit(config, ["a", 3])
    with pytest.raises(ConfigError, match="1 rows for 2 prompts"):
        Batch.submit(config, ["a", "b"], rows=[1])
    with pytest.raises(ConfigError, match="runs Gemini models, not local"):
        Batch.submit(build_config(name="offline", model="local"), ["a"])
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    with pytest.raises(ConfigError, match="Vertex AI batch prediction"):
        Batch.submit(config, ["a"])
    assert fake.batches.jobs == {} and fake.requests == []


def test_dataframe_rows_are_recorded_as_json_and_come_back_after_attach(fake, config):
    import pandas as pd
    frame = pd.DataFrame({"city": ["Oslo", "Lima"], "people": [709_000, 10_000_000]})
    rows = [row for _, row in frame.iterrows()]
    job = Batch.submit(config, [f"{r.city}?" for r in rows], rows=rows)
    fake.batches.finish_all()
    assert job.results()[1].row is rows[1]  # this process keeps the rows it was given
    again = Batch.attach(job.name)  # another process gets them from the store, as JSON
    assert [r.row for r in again.results()] == [{"city": "Oslo", "people": 709_000},
                                               {"city": "Lima", "people": 10_000_000}]


def test_a_service_outage_while_waiting_skips_polls_until_it_lasts_too_long(fake, config):
    job = Batch.submit(config, ["x"])
    fake.batches.outage(3)
    state, reports, _ = run_to_end(job, fake)
    assert state == "JOB_STATE_SUCCEEDED"  # three failed polls in a row: skipped, and shown
    assert [r["poll_error"] is not None for r in reports[:3]] == [True, True, True]
    assert "503" in reports[0]["poll_error"] and reports[-1]["poll_error"] is None

    job = Batch.submit(config, ["y"])
    fake.batches.outage(batch_module.POLL_FAILURES)
    with pytest.raises(BackendError, match="503"):
        run_to_end(job, fake)
    assert fake.batches.state(job.name) in ("PENDING", "RUNNING", "SUCCEEDED")  # the job itself is untouched


def test_with_persistence_off_nothing_is_recorded_yet_the_job_can_be_attached_by_name(fake, config, monkeypatch):
    monkeypatch.setenv("AGY_PERSIST", "0")
    job = Batch.submit(config, ["a", "b"], rows=["row a", "row b"])
    assert batch_store.find(job.name) is None and job.name not in {r.name for r in Batch.jobs()}
    fake.batches.finish_all()
    assert [r.row for r in job.results()] == ["row a", "row b"]  # this process still has its rows
    again = Batch.attach(job.name)  # another process has only the keys to go by
    assert [(r.row, r.text) for r in again.results()] == [("0", "You said: a"), ("1", "You said: b")]
