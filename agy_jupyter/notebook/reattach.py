"""Replies a reloaded page takes up again: the running ones, and those that ended a moment ago.

A reloaded page (or a second tab) re-attaches to the same kernel session, but JupyterLab and Notebook 7
route a cell's outputs only to the page that ran the cell: what the kernel sends for a reply started from
the old page reaches no cell. So every output of a reply names its cell (output metadata ``agy_reply``:
the cell id JupyterLab sends with the execute request, this kernel run, the reply's number, the part, and
whether it is the final static copy). The extension (labextension/lab/reattach.ts), on connecting to a
kernel where agy_jupyter is loaded, asks for the replies through the control comm
(``{"action": "reattach"}``, lab_control.py): each part's current output is sent once more, in the reply's
own cell context. The page puts outputs meant for a cell it did not run into that cell: the live widget
renders, asks for a replay (the text so far) and goes on streaming, and the static copy replaces it at the end.

A reply that ended is kept for `KEEP_ENDED` seconds, so a page that was still loading when it ended gets
its static copy too.
"""
from __future__ import annotations

import itertools
import threading
import time
import uuid
from typing import Any

KEEP_ENDED = 120.0  # seconds
clock = time.monotonic  # when replies end; a test moves it
RUN_ID = uuid.uuid4().hex[:12]  # this kernel process: reply numbers compare only within one run


def reply_tag(cell: str | None, reply: int, part: int, final: bool) -> dict[str, Any]:
    """The output metadata that tells a page which cell, reply and part an output belongs to."""
    return {"agy_reply": {"cell": cell, "run": RUN_ID, "reply": reply, "part": part, "final": final}}


class ShownReplies:
    """The replies shown in this kernel that a page can take up again. Replies call `add` and `end`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._replies: dict[int, Any] = {}  # number -> the reply (it has `show_again()`)
        self._ended: dict[int, float] = {}  # number -> when it ended (clock())

    def add(self, reply: Any) -> int:
        """Register `reply`; its number (ascending: a later run of a cell replaces an earlier one)."""
        with self._lock:
            self._forget_old()
            number = next(self._numbers)
            self._replies[number] = reply
            return number

    def end(self, number: int) -> None:
        with self._lock:
            if number in self._replies:
                self._ended[number] = clock()
            self._forget_old()

    def reattach(self) -> int:
        """Show every kept reply again (each in its own cell's context); how many. Main thread."""
        with self._lock:
            self._forget_old()
            replies = list(self._replies.values())
        for reply in replies:
            reply.show_again()
        return len(replies)

    def _forget_old(self) -> None:
        """Drop replies that ended over KEEP_ENDED s ago (with the lock held). Called on every add and end
        too, not only on a reattach: a session that never reloads must not keep every reply it showed."""
        too_old = clock() - KEEP_ENDED
        for number in [n for n, ended in self._ended.items() if ended < too_old]:
            del self._replies[number], self._ended[number]

    def __len__(self) -> int:
        with self._lock:
            return len(self._replies)


shown_replies = ShownReplies()
