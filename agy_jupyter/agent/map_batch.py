"""agent.map's batch mode: the pending rows as one Batch API job instead of interactive turns.

The Batch API (agent/batch.py: `Batch.submit(agent, prompts, output=, rows=)`, `job.wait(on_progress)`,
`job.results()` as BatchRow(row, text, error, usage), `job.cancel()`) runs at half the price and takes
minutes to hours; it cannot run function tools (a row gets one reply, no tool round trips). So:

- `mode="batch"` sends every pending row to it (ConfigError if this install has no Batch API support);
- `mode="auto"` sends a map of AUTO_BATCH_ROWS pending rows or more to it when the agent has no function
  tools and the support is there, and runs everything else interactively.

Rows come back joined by their position; the finished ones go to the store like interactive rows, so a
map interrupted while waiting for its job is resumed the same way.
"""
from __future__ import annotations

import importlib
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from ..runtime.errors import ConfigError
from .map_store import MapStore

if TYPE_CHECKING:
    from .api import Agent
    from .map import MapPlan

log = logging.getLogger(__name__)

AUTO_BATCH_ROWS = 5000
BATCH_MODULE = "agy_jupyter.agent.batch"


def _batch_class() -> Any | None:
    try:
        return importlib.import_module(BATCH_MODULE).Batch
    except (ImportError, AttributeError):
        return None


def choose_mode(mode: str, agent: "Agent", pending: int) -> str:
    """"interactive" or "batch" for this map (see the module docstring)."""
    if mode == "batch":
        if _batch_class() is None:
            raise ConfigError("mode='batch' needs the Batch API support (agy_jupyter.agent.batch), which this "
                              "installation does not have", hint="use mode='interactive'")
        return "batch"
    if mode == "auto" and pending >= AUTO_BATCH_ROWS and not agent.config.all_tools():
        if _batch_class() is not None:
            return "batch"
        log.info("agy map: %d rows would go to the Batch API, which is not available here: running them "
                 "interactively", pending)
    return "interactive"


def run_batch(agent: "Agent", plan: "MapPlan", on_progress: Callable[[dict], None] | None = None) -> list:
    """Submit the plan's pending rows as one job, wait for it, and return the plan's outcomes completed."""
    from .map import Outcome, OutputInvalid, error_text, fill  # map.py imports this module
    pending = plan.pending
    job = _batch_class().submit(agent, [fill(plan.template, plan.rows[i]) for i in pending], output=plan.output,
                                rows=pending)
    try:
        job.wait(on_progress=on_progress)
    except BaseException:  # Ctrl-C while waiting: the job would go on costing money for nobody
        job.cancel()
        raise
    store = MapStore()
    outcomes = list(plan.outcomes)
    for row in job.results():
        tokens = int((row.usage or {}).get("total_token_count", (row.usage or {}).get("totalTokenCount", 0)) or 0)
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
