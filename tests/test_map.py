"""agent.map against the fake Gemini server: rows as stateless turns, order and index kept, typed errors per row,
structured output into columns, stop and resume, tools under the agent's policies, the quota shared on the key."""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import time

import pandas as pd
import pytest
from pydantic import BaseModel

from agy_jupyter import Agent, ConfigError, Runtime, RuntimeConfig, allow
from agy_jupyter.agent import map as agent_map
from agy_jupyter.agent.map import STOPPED
from agy_jupyter.agent.map_progress import MapProgress, use_progress_display
from agy_jupyter.agent.policies import ask_user
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import Reply
from agy_jupyter.testing.fault_load import EXPECTED, RETRY_DELAY, FaultPlan, _HitTimes, work
from agy_jupyter.testing.replies import Chunk

ROW = re.compile(r"row (\d+)\b")


def row_of(rec) -> int | None:
    for content in rec.contents:
        for part in content.get("parts", []):
            match = ROW.search(str(part.get("text", "")))
            if match:
                return int(match[1])
    return None


@pytest.fixture
def store_dir(monkeypatch, tmp_path):
    """A store of its own per test: finished rows of one test are not another's."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AGY_PERSIST", raising=False)
    return tmp_path


def frame(n: int, start: int = 100) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"row {i}" for i in range(n)], "stars": [float(i % 5) for i in range(n)]},
                        index=pd.RangeIndex(start, start + n, name="ticket"))


def test_each_row_is_its_own_turn_and_the_result_keeps_order_and_index(make_agent, fake, store_dir):
    agent = make_agent("classifier", system_instruction="Classify.")
    agent.chat("an earlier question")
    df = frame(30).sample(frac=1, random_state=3)  # a shuffled index: the result must keep it as given
    result = agent.map(df, 'Ticket: {text} ({stars} stars). Answer as {"label": ...}', concurrency=4,
                       progress=False)
    assert list(result.index) == list(df.index) and list(result.columns) == ["text", "stars", "answer", "error"]
    assert result["error"].isna().all()
    for (_, row), answer in zip(df.iterrows(), result["answer"]):
        # filled from the row by name; the JSON braces stay as written; a float shows as a number
        assert answer == f'You said: Ticket: {row.text} ({row.stars} stars). Answer as {{"label": ...}}'
    rows = [r for r in fake.requests if row_of(r) is not None]
    assert len(rows) == 30
    for rec in rows:  # stateless: one user message, the agent's system instruction, never the earlier chat
        assert len(rec.contents) == 1 and rec.system_instruction == "Classify."
    assert [m.text for m in agent.history() if m.role == "user"] == ["an earlier question"]
    assert agent.turn_count() == 1


def test_a_list_of_dicts_gives_a_list_of_dicts_and_bad_input_a_clear_error(make_agent, fake, store_dir):
    agent = make_agent()
    result = agent.map([{"q": "one"}, {"q": "two"}], "Say {q}", progress=False)
    assert [r["answer"] for r in result] == ["You said: Say one", "You said: Say two"]
    assert [r["error"] for r in result] == [None, None]
    with pytest.raises(ConfigError, match="names no column"):
        agent.map([{"q": "one"}], "Say {nothing}", progress=False)
    with pytest.raises(ConfigError, match="already have the column"):
        agent.map([{"q": "one", "answer": 1}], "Say {q}", progress=False)
    with pytest.raises(ConfigError, match="not a dict"):
        agent.map(["just text"], "Say {q}", progress=False)
    with pytest.raises(ConfigError, match="concurrency"):
        agent.map([{"q": "one"}], "Say {q}", concurrency=0, progress=False)
    assert agent.runtime.is_alive


class Review(BaseModel):
    sentiment: str
    score: int


def test_structured_output_fills_columns_and_a_bad_json_reply_is_that_rows_error(make_agent, fake, store_dir):
    def reply(rec) -> Reply:
        n = row_of(rec)
        if n == 3:
            return Reply.text('{"sentiment": "good", "score": ')  # cut off: not valid JSON
        return Reply.text(json.dumps({"sentiment": "good" if n % 2 else "bad", "score": n}))
    fake.default = reply
    agent = make_agent("scorer")
    result = agent.map(frame(8, start=0), "Score {text}", output=Review, concurrency=3, progress=False)
    assert list(result.columns) == ["text", "stars", "sentiment", "score", "error"]
    assert result.loc[3, "error"].startswith("OutputInvalid: the reply is not a valid Review")
    assert pd.isna(result.loc[3, "sentiment"]) and pd.isna(result.loc[3, "score"])
    good = result.drop(index=3)
    assert good["error"].isna().all()
    assert list(good["score"]) == [0, 1, 2, 4, 5, 6, 7]
    assert list(good["sentiment"]) == ["bad", "good", "bad", "bad", "good", "bad", "good"]
    schema = fake.requests[0].generation_config
    assert schema.get("responseMimeType") == "application/json" and "responseSchema" in schema

    # retry_failed asks row 3 alone again; the others are kept as they were
    fake.default = lambda rec: Reply.text(json.dumps({"sentiment": "fixed", "score": 33}))
    before = len(fake.requests)
    retried = result.retry_failed()
    assert [row_of(r) for r in fake.requests[before:]] == [3]
    assert retried["error"].isna().all() and retried.loc[3, "score"] == 33
    assert list(retried["score"]) == [0, 1, 2, 33, 4, 5, 6, 7]


def test_500_rows_with_ten_percent_faults(fake, store_dir):
    """Every row ends with an answer or the typed error of its last request's fault, in order, and no row asks
    again within a 429's retryDelay; a 429 read by the client pauses every row on the key."""
    plan = FaultPlan(0.10, seed=11)
    fake.default = plan
    quota = QuotaRegistry(state=_HitTimes)
    # a stall lasts the chat timeout; shorter than ~10 s, a row that waits out several shared 429 pauses on a
    # loaded machine can time out too
    runtime = Runtime(RuntimeConfig(chat_timeout=10, shutdown_timeout=5), quota=quota)
    try:
        agent = Agent("loader", runtime=runtime, tools=[work], policies=[allow("work")], tool_timeout=0.2)
        df = frame(500, start=0)
        started = time.monotonic()
        result = agent.map(df, "Handle {text}", concurrency=16, progress=False)
        wall = time.monotonic() - started
        assert runtime.is_alive
    finally:
        runtime.shutdown()
    assert list(result.index) == list(range(500)) and list(result["text"]) == list(df["text"])
    by_row = collections.defaultdict(list)
    for rec in fake.requests:
        by_row[row_of(rec)].append(rec)
    assert set(by_row) == set(range(500))
    for i in range(500):
        answer, error = result.loc[i, "answer"], result.loc[i, "error"]
        assert pd.isna(answer) != pd.isna(error), (i, answer, error)
        last_fault = plan.fault_of.get(by_row[i][-1].index)
        expected = EXPECTED[last_fault].__name__ if last_fault in EXPECTED else None
        if expected is None:
            assert answer == "All fine.", (i, answer, error)
        else:
            assert error.startswith(expected + ":"), (i, error, [plan.fault_of.get(r.index) for r in by_row[i]])
    # a row that got a 429 asked again only after its retryDelay (server times)
    for i, recs in by_row.items():
        for before, after in zip(recs, recs[1:]):
            if plan.fault_of.get(before.index) == "rate_limit":
                assert after.time - before.time >= RETRY_DELAY - 0.02, (i, after.time - before.time)
    hits = [hit for state in quota.states() for hit in state.hits]
    assert hits, "the load had 429s"
    faults = collections.Counter(k for k in plan.fault_of.values() if k)
    assert 0.06 < sum(faults.values()) / len(fake.requests) < 0.14
    assert result["error"].notna().sum() < 60  # the retried kinds recovered
    print(f"\n500 rows, {len(fake.requests)} requests, faults {dict(faults)}, "
          f"{result['error'].notna().sum()} failed, {wall:.1f} s")


def test_stop_then_rerun_asks_only_the_unfinished_rows(make_agent, fake, store_dir):
    fake.default = Reply.echo(ttft=0.05)
    agent = make_agent("stopper")
    df = frame(40, start=0)
    handles = []
    use_progress_display(lambda stream, first, config: handles.append(stream))
    try:
        async def stop_after_some():
            task = asyncio.ensure_future(agent.amap(df, "Echo {text}", concurrency=4))
            while sum(1 for r in fake.requests if r.completed_time) < 12:
                await asyncio.sleep(0.01)
            handles[0].cancel()  # what the widget's Stop button does
            return await task
        stopped = asyncio.run(stop_after_some())
    finally:
        use_progress_display(None)
    finished = stopped["error"].isna()
    assert 4 <= finished.sum() < 40  # some of the 12 answers the server sent were still being read
    assert (stopped.loc[~finished, "error"] == STOPPED).all()
    first_run = len(fake.requests)

    again = agent.map(df, "Echo {text}", concurrency=4, progress=False)
    asked = [row_of(r) for r in fake.requests[first_run:]]
    assert sorted(asked) == sorted(stopped.index[~finished])  # the finished rows are not requested again
    assert again["error"].isna().all()
    assert list(again["answer"]) == [f"You said: Echo row {i}" for i in range(40)]

    # cancelling the await (Ctrl-C in an async cell) stops it too; a later run resumes the same way
    fake.default = Reply.echo(ttft=0.05)
    other = frame(20, start=0).assign(text=lambda d: d["text"] + " b")

    async def cancel_the_await():
        task = asyncio.ensure_future(agent.amap(other, "Echo {text}", concurrency=2, progress=False))
        while sum(1 for r in fake.requests[first_run + len(asked):] if r.completed_time) < 4:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(cancel_the_await())
    time.sleep(0.2)  # the map's task flushes its finished rows as it ends on the runtime loop
    plan = agent_map.plan_map(agent, other, "Echo {text}", output=None, concurrency=2, column="answer", resume=True)
    kept = {i for i, outcome in enumerate(plan.outcomes) if outcome is not None}
    assert 2 <= len(kept) < 20
    mark = len(fake.requests)
    agent.map(other, "Echo {text}", concurrency=2, progress=False)
    assert sorted(row_of(r) for r in fake.requests[mark:]) == sorted(set(range(20)) - kept)


def test_a_changed_template_or_config_asks_again(make_agent, fake, store_dir):
    agent = make_agent("keyed")
    rows = [{"text": "row 1"}, {"text": "row 2"}]
    agent.map(rows, "Echo {text}", progress=False)
    assert len(fake.requests) == 2
    agent.map(rows, "Echo {text}", progress=False)
    assert len(fake.requests) == 2  # all finished: nothing asked
    agent.map(rows, "Echo: {text}", progress=False)
    assert len(fake.requests) == 4
    make_agent("other", temperature=0.5).map(rows, "Echo {text}", progress=False)
    assert len(fake.requests) == 6
    agent.map(rows, "Echo {text}", progress=False, resume=False)
    assert len(fake.requests) == 8


def test_tools_that_need_approval_are_refused_once_for_the_whole_map(make_agent, fake, store_dir, caplog):
    asked = []

    def delete_ticket(ticket: str) -> str:
        """Delete a ticket."""
        raise AssertionError("a refused tool must not run")

    def reply(rec) -> Reply:
        if rec.contents[-1]["parts"][0].get("functionResponse"):
            return Reply.text("could not delete")
        return Reply.function_call("delete_ticket", {"ticket": str(row_of(rec))})
    fake.default = reply
    agent = make_agent("cleaner", tools=[delete_ticket, work], policies=[ask_user("delete_ticket"), allow("work")],
                       approval_handler=lambda request: asked.append(request) or True)
    events: list[MapProgress] = []
    with caplog.at_level(logging.WARNING, logger="agy_jupyter.agent.map"):
        result = agent.map(frame(12, start=0), "Clean {text}", concurrency=4, progress=events.append)
    assert asked == []  # the agent's approval handler was never asked, not once per row
    assert (result["answer"] == "could not delete").all()
    assert [r.message for r in caplog.records].count(
        "agy map: 'delete_ticket' needs approval; it is refused for every row of the map") == 1
    assert events[-1].finished and events[-1].refused_tools == ("delete_ticket",)
    denied = [r.contents[-1]["parts"][0]["functionResponse"]["response"] for r in fake.requests
              if r.contents[-1]["parts"][0].get("functionResponse")]
    assert len(denied) == 12 and all("cannot run in a map" in d["error"] for d in denied)
    assert "refused for every row" in events[-1].text()


def test_progress_events_count_rows_and_tokens(make_agent, fake, store_dir):
    fake.default = Reply(chunks=[Chunk.text("ok")], ttft=0.02)
    agent = make_agent("counter")
    events: list[MapProgress] = []
    agent.map(frame(30, start=0), "Go {text}", concurrency=5, progress=events.append)
    last = events[-1]
    assert last.finished and not last.stopped and (last.done, last.failed, last.in_flight) == (30, 0, 0)
    assert last.usage.total_tokens > 0 and last.rows_per_second > 0
    assert all(0 <= e.in_flight <= 5 for e in events)
    assert "30/30 done" in last.text() and "rows/s" in last.text()
    dones = [e.done for e in events]
    assert dones == sorted(dones)
    # a rerun resumes everything: it reports the rows as done by an earlier run
    events.clear()
    agent.map(frame(30, start=0), "Go {text}", concurrency=5, progress=events.append)
    assert events == []  # nothing ran: no progress to show


# -- batch mode: the real Batch API client against the fake server's batch routes, on its clock -------------

@pytest.fixture
def batch_clock(fake, monkeypatch):
    """The map waits for its job on the fake service's clock: each sleep moves it on, no real time passes."""
    from agy_jupyter.agent import map_batch
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake.batches.advance(seconds)
    monkeypatch.setattr(map_batch, "sleep", sleep)
    return slept


def batch_answers(fake) -> list:
    return [r for r in fake.requests if r.method == "batchGenerateContent"]


def test_batch_mode_sends_the_pending_rows_as_one_job_and_joins_them_back(make_agent, fake, store_dir,
                                                                          batch_clock, capsys):
    agent = make_agent("batcher")
    # answered in request order when the service runs the job: row 2 fails, row 4 is cut-off JSON
    fake.enqueue(*[Reply.error(500, "the model failed on this row") if n == 2 else
                   Reply.text('{"sentiment": "ok", "score": ' if n == 4 else
                              json.dumps({"sentiment": "ok", "score": n})) for n in range(6)])
    result = agent.map(frame(6, start=10), "Score {text}", output=Review, mode="batch")
    assert [r.last_user_text for r in batch_answers(fake)] == [f"Score row {n}" for n in range(6)]
    assert len(fake.batches.jobs) == 1 and batch_clock  # one job, waited for on the fake clock
    assert len(fake.requests) == 6  # no interactive turn
    assert list(result.index) == list(range(10, 16))
    assert list(result["score"].fillna(-1)) == [0, 1, -1, 3, -1, 5]
    assert result.loc[12, "error"] == "[500] the model failed on this row"
    assert result.loc[14, "error"].startswith("OutputInvalid: the reply is not a valid Review")
    printed = capsys.readouterr().out  # progress=True outside a notebook: a line per state of the job
    assert "6 rows, pending" in printed and "6 rows, succeeded" in printed
    # the finished rows were stored: the same map again (here interactive) asks only rows 2 and 4
    fake.default = lambda rec: Reply.text(json.dumps({"sentiment": "ok", "score": 100 + row_of(rec)}))
    again = agent.map(frame(6, start=10), "Score {text}", output=Review, progress=False)
    assert sorted(row_of(r) for r in fake.requests[6:]) == [2, 4]
    assert list(again["score"]) == [0, 1, 102, 3, 104, 5]


def test_batch_mode_passes_the_jobs_reports_to_a_progress_callable(make_agent, fake, store_dir, batch_clock):
    reports = []
    fake.default = lambda rec: Reply.text(f"answer {row_of(rec)}")
    agent = make_agent("reporter")
    result = agent.map(frame(3, start=0), "Say {text}", mode="batch", progress=reports.append)
    assert list(result["answer"]) == ["answer 0", "answer 1", "answer 2"] and result["error"].isna().all()
    states = [r["state"] for r in reports]
    assert states[0] == "JOB_STATE_PENDING" and states[-1] == "JOB_STATE_SUCCEEDED" and reports[-1]["rows"] == 3



def test_the_last_batch_report_has_the_rows_usage_and_the_text_line_says_it(make_agent, fake, store_dir,
                                                                             batch_clock, capsys):
    reports = []
    fake.enqueue(Reply.text("fine"), Reply.error(500, "no"), Reply.text("fine"))
    agent = make_agent("summed")
    agent.map(frame(3, start=0), "Say {text}", mode="batch", progress=reports.append)
    last = reports[-1]
    assert last["finished"] and last["failed"] == 1 and last["state"] == "JOB_STATE_SUCCEEDED"
    assert last["usage"].calls == 2 and last["usage"].total_tokens > 0  # summed over the two answered rows
    fake.enqueue(Reply.text("fine"))
    agent.map(frame(1, start=7), "Tell {text}", mode="batch")  # progress=True: text lines outside a notebook
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"batch batches/\S+: 1 rows, pending after 0 s, next check in 5 s \(`%agent jobs` "
                        r"lists it; Batch.attach picks it up\)", printed[0]), printed
    assert re.fullmatch(r"batch batches/\S+: 1 rows, succeeded after \d+ s, [1-9][\d,]* tokens", printed[-1]), printed


def test_cancelling_an_awaited_batch_map_cancels_its_job(make_agent, fake, store_dir, monkeypatch):
    from agy_jupyter.agent import map_batch
    monkeypatch.setattr(map_batch, "sleep", time.sleep)  # real time: the fake job stays pending
    agent = make_agent("cancelled")

    async def cancel_while_pending() -> None:
        task = asyncio.ensure_future(agent.amap(frame(3, start=0), "Say {text}", mode="batch", progress=False))
        while not fake.batches.jobs:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    started = time.monotonic()
    asyncio.run(cancel_while_pending())  # waits for the worker thread, whose next check is 5 s away
    (name,) = fake.batches.jobs
    assert fake.batches.state(name) == "CANCELLED" and time.monotonic() - started < 4


def test_auto_mode_batches_large_tool_free_maps_only(make_agent, fake, store_dir, batch_clock, monkeypatch):
    from agy_jupyter.agent import map_batch
    monkeypatch.setattr(map_batch, "AUTO_BATCH_ROWS", 4)
    agent = make_agent("auto")
    agent.map(frame(3, start=0), "Say {text}", mode="auto", progress=False)  # small: interactive
    assert len(fake.requests) == 3 and fake.batches.jobs == {}
    agent.map(frame(5, start=0), "Tell {text}", mode="auto", progress=False)  # large: one job
    assert len(fake.requests) == 8 and len(batch_answers(fake)) == 5 and len(fake.batches.jobs) == 1
    tooled = make_agent("tooled", tools=[work], policies=[allow("work")])
    tooled.map(frame(5, start=0), "Tell {text}", mode="auto", progress=False)  # tools need turns: interactive
    assert len(batch_answers(fake)) == 5 and len(fake.batches.jobs) == 1 and len(fake.requests) == 13


def test_an_unknown_mode_is_a_clear_error(make_agent, fake, store_dir):
    agent = make_agent("nomode")
    with pytest.raises(ConfigError, match="mode must be one of"):
        agent.map(frame(3, start=0), "Say {text}", mode="fast", progress=False)
    assert len(fake.requests) == 0


def test_outside_a_notebook_progress_is_a_text_line(make_agent, fake, store_dir, capsys):
    make_agent("texter").map([{"q": f"row {i}"} for i in range(5)], "Say {q}")
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"map \[#{24}\] 5/5 done, [\d.]+ rows/s, [\d,]+ tokens", lines[-1]), lines


def test_a_429_storm_pauses_every_row_instead_of_multiplying_retries(make_agent, fake, store_dir):
    """A quota of 5 requests per 0.5 s window (over it: 429 with the rest of the window as retryDelay), 30 rows at
    concurrency 10. Every row ends well; each window costs at most the rows that were in flight when the first
    429 of it was read (one 429 each), because the 429 pauses every row on the key until the window ends."""
    import threading
    lock, window = threading.Lock(), {"start": None, "used": 0}
    refusals: list[float] = []

    def quota(rec) -> Reply:
        with lock:
            now = time.monotonic()
            if window["start"] is None or now - window["start"] >= 0.5:
                window.update(start=now, used=0)
            if window["used"] >= 5:
                refusals.append(now)
                return Reply.error(429, retry_delay=round(0.5 - (now - window["start"]), 3) + 0.001,
                                   quota_id="RequestsPerWindow", quota_value=5)
            window["used"] += 1
        return Reply.echo()
    fake.default = quota
    started = time.monotonic()
    result = make_agent("stormy").map(frame(30, start=0), "Go {text}", concurrency=10, progress=False)
    elapsed = time.monotonic() - started
    assert result["error"].isna().all()
    windows = elapsed / 0.5 + 1
    assert len(refusals) <= 10 * windows, (len(refusals), elapsed)
    assert len(fake.requests) == 30 + len(refusals)
    assert elapsed >= 2.0  # 30 rows at 5 per 0.5 s cannot take less than 5 more windows
