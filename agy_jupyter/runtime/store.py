"""The persistence store: one SQLite file in the user's Jupyter data directory, shared by every kernel.

It holds saved conversations (a `conversations` row per agent conversation, a `messages` row per
finished message, its JSON as the agent layer wrote it), agent.map's finished rows and Batch API jobs;
a feature adds tables by appending a migration to SCHEMA. The schema version is SQLite's `PRAGMA user_version`: opening a file migrates it
forward in one transaction, and a file from a newer agy_jupyter is refused rather than misread.

Why these settings: WAL journal so readers (another kernel's `%agent list --saved`) never block the
writer; `synchronous=NORMAL`, which in WAL mode loses nothing when the process dies (SIGKILL) — only an
OS crash or power cut can lose the last commits; a busy timeout so two kernels writing at once wait for
each other instead of failing. One connection per store, guarded by a lock: the runtime thread writes,
the main thread lists, restores and forgets. The module knows nothing of Gemini: rows carry opaque JSON.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .errors import ConfigError

FILE_NAME = "agy_jupyter.sqlite3"
BUSY_TIMEOUT_MS = 5000
# One entry per schema version: SCHEMA[i] takes a file from version i to i + 1. Append, never edit.
SCHEMA: list[tuple[str, ...]] = [
    (  # 1: conversations, one row per finished message
        "CREATE TABLE conversations ("
        " id INTEGER PRIMARY KEY,"
        " notebook TEXT NOT NULL,"  # the notebook's path, or "(no notebook)"
        " agent TEXT NOT NULL,"  # the agent's name
        " config TEXT NOT NULL,"  # AgentConfig.to_json(): never a key or a callable
        " finished_turn INTEGER NOT NULL DEFAULT 0,"  # the last turn that ended: later ones were cut off
        " created REAL NOT NULL,"
        " updated REAL NOT NULL)",
        "CREATE INDEX conversations_by_name ON conversations (agent, notebook)",
        "CREATE TABLE messages ("
        " conversation INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,"
        " position INTEGER NOT NULL,"  # index in the agent's history
        " turn INTEGER NOT NULL,"
        " data TEXT NOT NULL,"  # the message as JSON
        " PRIMARY KEY (conversation, position)) WITHOUT ROWID",
    ),
    (  # 2: agent.map's finished rows, so a stopped or restarted map skips them when run again
        "CREATE TABLE map_rows ("
        " key TEXT PRIMARY KEY,"  # a hash of the prompt, the agent's config and the row's content
        " result TEXT NOT NULL,"  # the row's answer (or structured fields) and usage, as JSON
        " created REAL NOT NULL) WITHOUT ROWID",
    ),
    (  # 3: Batch API jobs, so a job outlives the kernel that submitted it
        "CREATE TABLE batch_jobs ("
        " name TEXT PRIMARY KEY,"  # the service's job name, e.g. "batches/123"
        " notebook TEXT NOT NULL,"
        " agent TEXT NOT NULL,"
        " config TEXT NOT NULL,"  # AgentConfig.to_json(): never a key or a callable
        " rows TEXT NOT NULL,"  # JSON: what joins each request back to its input row
        " state TEXT NOT NULL,"  # the last state seen, e.g. JOB_STATE_RUNNING
        " created REAL NOT NULL,"
        " updated REAL NOT NULL) WITHOUT ROWID",
    ),
]


@dataclass(frozen=True)
class ConversationRow:
    """A saved conversation as listed: what it is, how long, and when it was last written."""

    id: int
    notebook: str
    agent: str
    config: str
    finished_turn: int
    messages: int
    turns: int
    created: float
    updated: float


def default_path() -> Path:
    """The store's file in jupyter_core's data directory (JUPYTER_DATA_DIR moves it)."""
    from jupyter_core.paths import jupyter_data_dir  # imported on first use: a kernel has it loaded anyway
    return Path(jupyter_data_dir()) / FILE_NAME


class Store:
    """One SQLite file: schema migrations, and the conversation and message tables' reads and writes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                       timeout=BUSY_TIMEOUT_MS / 1000)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA secure_delete=ON")  # a forgotten message is overwritten, not just unlinked
            self._migrate()
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the conversation store {self.path}: {exc}",
                              hint="check the directory is writable, or set AGY_PERSIST=0") from None

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(SCHEMA):
                raise ConfigError(f"{self.path} was written by a newer agy_jupyter (schema {version}, "
                                  f"this one knows {len(SCHEMA)})", hint="upgrade agy_jupyter")
            for statements in SCHEMA[version:]:
                for statement in statements:
                    db.execute(statement)
            if version < len(SCHEMA):
                db.execute(f"PRAGMA user_version = {len(SCHEMA)}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, inside one write transaction (committed on exit, rolled back on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock upgrading later
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- conversations ---------------------------------------------------------------------------

    def create_conversation(self, notebook: str, agent: str, config: str) -> int:
        now = time.time()
        with self.transaction() as db:
            cursor = db.execute("INSERT INTO conversations (notebook, agent, config, created, updated) "
                                "VALUES (?, ?, ?, ?, ?)", (notebook, agent, config, now, now))
            return int(cursor.lastrowid)

    def save_messages(self, conversation: int, rows: Iterable[tuple[int, int, str]], *,
                      cut_from: int | None = None, config: str | None = None,
                      finished_turn: int | None = None) -> None:
        """In one transaction: drop messages at positions >= cut_from, write `rows` (position, turn,
        data) over whatever was there, and update the conversation's config and finished turn."""
        with self.transaction() as db:
            if cut_from is not None:
                db.execute("DELETE FROM messages WHERE conversation = ? AND position >= ?", (conversation, cut_from))
            db.executemany("INSERT OR REPLACE INTO messages (conversation, position, turn, data) VALUES (?, ?, ?, ?)",
                           [(conversation, *row) for row in rows])
            db.execute("UPDATE conversations SET updated = ?, config = coalesce(?, config), "
                       "finished_turn = coalesce(?, finished_turn) WHERE id = ?",
                       (time.time(), config, finished_turn, conversation))

    def conversations(self, *, agent: str | None = None, notebook: str | None = None) -> list[ConversationRow]:
        """Saved conversations, newest first, optionally only one agent name's or one notebook's."""
        query = ("SELECT c.id, c.notebook, c.agent, c.config, c.finished_turn, count(m.position), "
                 "coalesce(max(m.turn), 0), c.created, c.updated FROM conversations c "
                 "LEFT JOIN messages m ON m.conversation = c.id WHERE (? IS NULL OR c.agent = ?) "
                 "AND (? IS NULL OR c.notebook = ?) GROUP BY c.id ORDER BY c.updated DESC, c.id DESC")
        with self._lock:
            rows = self._db.execute(query, (agent, agent, notebook, notebook)).fetchall()
        return [ConversationRow(*row) for row in rows]

    def messages(self, conversation: int) -> list[str]:
        """The conversation's messages as the JSON they were saved as, in history order."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM messages WHERE conversation = ? ORDER BY position",
                                    (conversation,)).fetchall()
        return [data for (data,) in rows]

    def delete_conversations(self, ids: Iterable[int]) -> int:
        """Delete conversations and their messages; return how many conversations went.

        The pages they used are zeroed (secure_delete) and the WAL is checkpointed and truncated, so
        their text is left in neither file."""
        ids = list(ids)
        with self.transaction() as db:
            db.executemany("DELETE FROM messages WHERE conversation = ?", [(i,) for i in ids])
            count = sum(db.execute("DELETE FROM conversations WHERE id = ?", (i,)).rowcount for i in ids)
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return count


_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()


def open_store(path: str | os.PathLike | None = None) -> Store:
    """The process's Store for `path` (default: default_path()), opened once and shared."""
    target = Path(path) if path is not None else default_path()
    with _stores_lock:
        store = _stores.get(target)
        if store is None:
            store = _stores[target] = Store(target)
        return store
