"""Batch jobs in the persistence store (runtime/store.py's `batch_jobs` table), so a job outlives its kernel.

A row holds the service's job name, the notebook and agent that submitted it, the agent's config
(AgentConfig.to_json(): no key, no callables), what joins each request back to its input row (the
request keys, the rows as JSON, where the requests went) and the last state seen. AGY_PERSIST=0 turns
the writes off, as for conversations: such a job can still be attached by name, without its rows.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import persistence

if TYPE_CHECKING:
    from ..runtime.store import Store


@dataclass(frozen=True)
class JobRecord:
    """A recorded batch job, as `Batch.jobs()` and `%agent jobs` list it."""

    name: str
    notebook: str
    agent: str
    config: str  # AgentConfig.to_json()
    join: dict[str, Any]  # {"keys": [...], "rows": [...], "input": "inline" | "files/…", "display_name": …}
    state: str
    created: float
    updated: float

    @property
    def model(self) -> str:
        return json.loads(self.config).get("model", "")

    @property
    def rows(self) -> int:
        return len(self.join.get("keys", []))


def _store() -> "Store":
    return persistence._store()  # one store per process, opened on first use


def jsonable(value: Any) -> Any:
    """A row as JSON can hold it: pandas/numpy values by their to_dict()/tolist(), anything else by repr."""
    for method in ("to_dict", "tolist"):
        if callable(getattr(value, method, None)):
            return getattr(value, method)()
    return repr(value)


def record(name: str, *, agent: str, config: str, join: dict[str, Any], state: str) -> None:
    if not persistence.enabled():
        return
    now = time.time()
    with _store().transaction() as db:
        db.execute("INSERT OR REPLACE INTO batch_jobs (name, notebook, agent, config, rows, state, created, updated) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (name, persistence.current_notebook(), agent, config,
                                                       json.dumps(join, default=jsonable), state, now, now))


def update_state(name: str, state: str) -> None:
    if not persistence.enabled():
        return
    with _store().transaction() as db:
        db.execute("UPDATE batch_jobs SET state = ?, updated = ? WHERE name = ? AND state != ?",
                   (state, time.time(), name, state))


def _select(where: str = "", args: tuple = ()) -> list[JobRecord]:
    with _store().transaction() as db:  # the store's one connection is shared: reads take its lock too
        rows = db.execute("SELECT name, notebook, agent, config, rows, state, created, updated FROM batch_jobs "
                          f"{where} ORDER BY created DESC", args).fetchall()
    return [JobRecord(name, notebook, agent, config, json.loads(join), state, created, updated)
            for name, notebook, agent, config, join, state, created, updated in rows]


def find(name: str) -> JobRecord | None:
    found = _select("WHERE name = ?", (name,))
    return found[0] if found else None


def all_jobs() -> list[JobRecord]:
    """Every recorded job, newest first (every notebook's: a job is the service's, not the notebook's)."""
    return _select()


def remove(name: str) -> None:
    with _store().transaction() as db:
        db.execute("DELETE FROM batch_jobs WHERE name = ?", (name,))
