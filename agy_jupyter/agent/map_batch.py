"""agent.map's batch mode: the pending rows as one Batch API job instead of interactive turns.

The Batch API (agent/batch.py: `Batch.submit(agent, prompts, output=, rows=)`, `job.wait(on_progress)`,
`job.results()` as BatchRow(row, text, error, usage), `job.cancel()`) runs at half the price and takes
minutes to hours; it cannot run function tools (a row gets one reply, no tool round trips). So:

- `mode="batch"` sends every pending row to it;
- `mode="auto"` sends a map of AUTO_BATCH_ROWS (batch.py) pending rows or more to it when the agent has no
  function tools, and runs everything else interactively.

Rows come back joined by their position; the finished ones go to the store like interactive rows, so a
map interrupted while waiting for its job is resumed the same way.

While the job waits, `progress=True` shows its reports in the notebook's widget (registered at %load_ext,
map_progress.use_batch_display) or as a text line per state. A Stop click (any thread) sets an event; the
wait sleeps in pieces of batch.NAP (0.1 s), so the waiting thread sees it within that, cancels the job and
marks its rows stopped (rows finished in earlier runs stay in the store). Ctrl-C and a cancelled amap await
cancel the job too.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from .batch import AUTO_BATCH_ROWS, NAP, SUCCEEDED, Backoff, Batch
from .history import Usage
from .map_progress import _duration, batch_display
from .map_store import MapStore

if TYPE_CHECKING:
    from .api import Agent
    from .map import MapPlan

log = logging.getLogger(__name__)
POLL = Backoff()  # how often the job's state is read while the map waits for it
sleep: Callable[[float], None] = time.sleep  # between two reads; tests put the fake service's clock here


def choose_mode(mode: str, agent: "Agent", pending: int) -> str:
    """"interactive" or "batch" for this map (see the module docstring)."""
    if mode == "batch":
        return "batch"
    if mode == "auto" and pending >= AUTO_BATCH_ROWS and not agent.config.all_tools():
        return "batch"
    return "interactive"


class Stopped(Exception):
    """The map's Stop button (or a cancelled await) asked the wait for the job to end."""


def batch_line(report: dict, cost: float | None = None) -> str:
    """One line about the job from one of its reports: while it waits, its state, the next check (the backoff)
    and a failed check; at the end (`finished`), the failed rows, tokens and `cost` (at the batch price)."""
    if not report.get("name"):
        return f"batch: {'not submitted' if report.get('finished') else 'submitting'} {report['rows']} rows"
    state = report["state"].removeprefix("JOB_STATE_").lower()
    parts = [f"batch {report['name']}: {report['rows']} rows, {state} after {_duration(report['elapsed'])}"]
    if report.get("stopped"):
        return (f"{parts[0]} (stopped: the job was cancelled; rows finished in earlier runs are kept, "
                f"run the same map again to ask the rest)")
    if report.get("next_poll") is not None:
        parts.append(f"next check in {_duration(report['next_poll'])}")
    elif report["state"] == SUCCEEDED and not report.get("finished"):
        parts.append("fetching the results")
    if report.get("poll_error"):
        parts.append(f"the last check failed ({report['poll_error']})")
    if report.get("finished"):
        if report.get("failed"):
            parts.append(f"{report['failed']} failed")
        parts.append(f"{report['usage'].total_tokens:,} tokens")
        if cost is not None:
            parts.append(f"~${cost:.4f} at the batch price")
    return ", ".join(parts)


def batch_lines() -> Callable[[dict], None]:
    """The text display of a job: a line when its state changes (a batch's rows all finish at once, so a row
    count would say nothing until the end), and the last line."""
    seen: list[str] = []

    def show(report: dict) -> None:
        if report.get("finished") or report["state"] not in seen:
            seen.append(report["state"])
            hint = "" if report.get("next_poll") is None else " (`%agent jobs` lists it; Batch.attach picks it up)"
            print(batch_line(report) + hint, flush=True)
    return show


def batch_progress(progress: Any, rows: int) -> tuple[Callable[[dict], None] | None, threading.Event]:
    """What a map's `progress=` becomes while its job waits, on the caller's thread, and the event that stops
    the wait: a callable gets each of the job's reports (Batch.progress(): name, state, rows, elapsed, polls,
    next_poll, poll_error; the last one `finished`); True shows them in the notebook's widget when one is
    registered (map_progress.use_batch_display), else as text lines."""
    stop = threading.Event()
    if callable(progress) or not progress:
        return progress or None, stop
    display = batch_display()
    return (display(rows, stop.set) if display is not None else batch_lines()), stop


def _pauses(stop: threading.Event) -> Callable[[float], None]:
    """The wait's sleep, in pieces of at most NAP s: a Stop is seen within NAP s, not at the next check."""
    def pause(seconds: float) -> None:
        while seconds > 0 and not stop.is_set():
            sleep(min(NAP, seconds))
            seconds -= NAP
        if stop.is_set():
            raise Stopped
    return pause


def run_batch(agent: "Agent", plan: "MapPlan", on_progress: Callable[[dict], None] | None = None,
              stop: threading.Event | None = None) -> list:
    """Submit the plan's pending rows as one job, wait for it (until `stop` is set: the job is cancelled and
    its rows are marked stopped), and return the plan's outcomes completed."""
    from .map import STOPPED, Outcome, fill  # map.py imports this module
    pending = plan.pending
    try:
        job = Batch.submit(agent, [fill(plan.template, plan.rows[i]) for i in pending], output=plan.output,
                           rows=pending)
    except BaseException:
        if on_progress is not None:
            on_progress({"name": "", "rows": len(pending), "finished": True})
        raise
    try:
        job.wait(on_progress=on_progress, poll=POLL, sleep=_pauses(stop or threading.Event()))
    except BaseException as exc:  # Stop, Ctrl-C or a cancelled await: the job would go on costing money for nobody
        try:
            job.cancel()
        except Exception as cancel_error:  # the service is out of reach: say so, keep the original exception
            log.warning("agy map: could not cancel batch %s (%s); cancel it with agy.Batch.attach(%r).cancel()",
                        job.name, cancel_error, job.name)
        if on_progress is not None:
            on_progress(job.progress(finished=True, stopped=True))
        if not isinstance(exc, Stopped):
            raise
        return [o if o is not None else Outcome(None, STOPPED) for o in plan.outcomes]
    usage, outcomes = Usage(), list(plan.outcomes)
    try:
        usage = _join(plan, job.results(), outcomes)
    finally:
        if on_progress is not None:
            failed = sum(1 for i in pending if outcomes[i] is None or outcomes[i].error is not None)
            on_progress(job.progress(finished=True, failed=failed, usage=usage, model=plan.config.model))
    return [o if o is not None else Outcome(None, "BatchError: the batch job returned no result for this row")
            for o in outcomes]


def _join(plan: "MapPlan", results: list, outcomes: list) -> Usage:
    """Put the job's rows into `outcomes` (and the finished ones into the store); return their usage."""
    from .map import Outcome, invalid_output
    store, usage = MapStore(), Usage()
    for row in results:
        usage += Usage(**row.usage)
        tokens = int(row.usage.get("total_tokens", 0))
        if row.error is not None:
            outcomes[row.row] = Outcome(None, row.error, tokens)
            continue
        value: Any = row.text
        if plan.output is not None:
            try:
                value = plan.output.model_validate_json(row.text or "").model_dump(mode="json")
            except ValueError as exc:
                outcomes[row.row] = Outcome(None, invalid_output(plan.output, str(exc)), tokens)
                continue
        outcomes[row.row] = Outcome(value, None, tokens)
        store.add(plan.key(row.row), {"value": value, "tokens": tokens}, time.time())
    store.flush()
    return usage
