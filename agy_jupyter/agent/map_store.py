"""agent.map's finished rows in the persistence store (table `map_rows`), so a map that was stopped, or
whose kernel restarted, skips them when it runs again.

A row's key is a SHA-256 over the agent's config (AgentConfig.to_json() without the name: neither a key
nor a callable is in it), the prompt template, the output model's schema and the row's content, so a
changed prompt, model, system instruction, tool list or row is asked again. Only finished rows are kept:
a failed row is asked again on the next run. AGY_PERSIST=0 turns it off, as for conversations.

Writes are batched: `MapStore.add` buffers, `flush` writes one transaction (the engine flushes at most
every FLUSH_INTERVAL s and at the end), so a map does not pay a commit per row; a kernel killed between
flushes asks those few rows again.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
from typing import Any, Iterable

from .config import AgentConfig
from .persistence import _store, enabled

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.5  # seconds between two writes of finished rows
_LOOKUP_CHUNK = 500  # keys per SELECT (SQLite's default limit of bound variables is far above)


def key_prefix(config: AgentConfig, template: str, output: type | None) -> bytes:
    """What every row's key of one map starts with: the config, the template and the output schema."""
    settings = json.loads(config.to_json())
    settings.pop("name", None)  # the same question from an agent with another name is the same question
    schema = output.model_json_schema() if output is not None else None
    return json.dumps([settings, template, schema], sort_keys=True, default=str).encode()


def row_key(prefix: bytes, row: dict[str, Any]) -> str:
    digest = hashlib.sha256(prefix)
    digest.update(json.dumps(row, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class MapStore:
    """The finished rows of maps: look them up by key, add new ones in batches."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, str, float]] = []
        self._warned = False
        self.available = enabled()

    def finished(self, keyed: Iterable[tuple[int, str]]) -> dict[int, Any]:
        """Of the (position, key) pairs, the saved results (as they were added) of the rows that finished
        before, by position. The pairs are read a chunk at a time: a map's keys are never all held."""
        if not self.available:
            return {}
        found: dict[int, Any] = {}
        pairs = iter(keyed)
        try:
            with _store().transaction() as db:  # the one public way in; held once per map
                while chunk := dict((key, index) for index, key in itertools.islice(pairs, _LOOKUP_CHUNK)):
                    marks = ",".join("?" * len(chunk))
                    for key, result in db.execute(f"SELECT key, result FROM map_rows WHERE key IN ({marks})",
                                                  list(chunk)):
                        found[chunk[key]] = json.loads(result)
        except Exception as exc:  # an unreadable store only costs the resume: every row is asked
            self._warn(f"finished rows could not be read ({exc}); every row is asked")
            return {}
        return found

    def add(self, key: str, result: Any, when: float) -> None:
        if self.available:
            self._pending.append((key, json.dumps(result, default=str), when))

    def flush(self) -> None:
        """Write the buffered rows in one transaction; a failure is logged once and the map goes on."""
        rows, self._pending = self._pending, []
        if not rows or not self.available:
            return
        try:
            with _store().transaction() as db:
                db.executemany("INSERT OR REPLACE INTO map_rows (key, result, created) VALUES (?, ?, ?)", rows)
        except Exception as exc:
            self._warn(f"finished rows are not being saved ({exc}); a rerun asks them again")

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("agy map: %s", message)
