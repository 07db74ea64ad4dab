"""agent.map's batch mode: the pending rows as one Batch API job instead of interactive turns.

The Batch API (agent/batch.py: `Batch.submit(agent, prompts, output=, rows=)`, `job.wait(on_progress)`,
`job.results()` as BatchRow(row, text, error, usage), `job.cancel()`) runs at half the price and takes
minutes to hours; it cannot run function tools (a row gets one reply, no tool round trips). So:

- `mode="batch"` sends every pending row to it;
- `mode="auto"` sends a map of AUTO_BATCH_ROWS (batch.py) pending rows or more to it when the agent has no
  function tools, and runs everything else interactively.

Rows come back joined by their position; the finished ones go to the store like interactive rows, so a
map interrupted while waiting for its job is resumed the same way.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from .batch import AUTO_BATCH_ROWS, Backoff, Batch
from .map_store import MapStore

if TYPE_CHECKING:
    from .api import Agent
    from .map import MapPlan

POLL = Backoff()  # how often the job's state is read while the map waits for it
sleep: Callable[[float], None] = time.sleep  # between two reads; tests put the fake service's clock here


def choose_mode(mode: str, agent: "Agent", pending: int) -> str:
    """"interactive" or "batch" for this map (see the module docstring)."""
    if mode == "batch":
        return "batch"
    if mode == "auto" and pending >= AUTO_BATCH_ROWS and not agent.config.all_tools():
        return "batch"
    return "interactive"


def batch_progress(progress: Any) -> Callable[[dict], None] | None:
    """What a map's `progress=` becomes while its job waits: a callable gets each of the job's reports
    (Batch.progress(): name, state, rows, elapsed, polls, next_poll); True prints a line when the state
    changes (a batch's rows all finish at once, so a row count would say nothing until the end)."""
    if callable(progress):
        return progress
    if not progress:
        return None
    seen: list[str] = []

    def show(report: dict) -> None:
        if report["state"] not in seen:
            seen.append(report["state"])
            state = report["state"].removeprefix("JOB_STATE_").lower()
            hint = "" if report.get("next_poll") is None else " (`%agent jobs` lists it; Batch.attach picks it up)"
            print(f"batch {report['name']}: {report['rows']} rows, {state} after {report['elapsed']:.0f} s{hint}",
                  flush=True)
    return show


def run_batch(agent: "Agent", plan: "MapPlan", on_progress: Callable[[dict], None] | None = None) -> list:
    """Submit the plan's pending rows as one job, wait for it, and return the plan's outcomes completed."""
    from .map import Outcome, OutputInvalid, error_text, fill  # map.py imports this module
    pending = plan.pending
    job = Batch.submit(agent, [fill(plan.template, plan.rows[i]) for i in pending], output=plan.output,
                       rows=pending)
    try:
        job.wait(on_progress=on_progress, poll=POLL, sleep=lambda seconds: sleep(seconds))
    except BaseException:  # Ctrl-C while waiting: the job would go on costing money for nobody
        job.cancel()
        raise
    store = MapStore()
    outcomes = list(plan.outcomes)
    for row in job.results():
        tokens = int(row.usage.get("total_tokens", 0))
        if row.error is not None:
            outcomes[row.row] = Outcome(None, row.error, tokens)
            continue
        value: Any = row.text
        if plan.output is not None:
            try:
                value = plan.output.model_validate_json(row.text or "").model_dump(mode="json")
            except ValueError as exc:
                outcomes[row.row] = Outcome(None, error_text(OutputInvalid(
                    f"the reply is not a valid {plan.output.__name__}: {str(exc).strip().splitlines()[0]}")), tokens)
                continue
        outcomes[row.row] = Outcome(value, None, tokens)
        store.add(plan.key(row.row), {"value": value, "tokens": tokens}, time.time())
    store.flush()
    return [o if o is not None else Outcome(None, "BatchError: the batch job returned no result for this row")
            for o in outcomes]
