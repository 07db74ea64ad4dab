"""What the JupyterLab extension's status-bar item shows: replies streaming, approvals waiting, session usage.

One comm per kernel, target `agy_jupyter.status`, opened by the kernel at `%load_ext agy_jupyter`
(lab_control.register calls `open_comm`); the extension registers that target on every kernel it
talks to. A kernel restart ends the comm (and the item); loading the extension again opens a new one. A page loaded later (a reload) finds the open comm with a
comm_info request, and any message on the comm asks for the state again.

The state is small: ``{"streaming": n, "approvals": [{"agent", "tool", "cell"}], "tokens": n, "cost": usd
or None}``, where "cell" is the id of the cell whose reply asks (JupyterLab sends it with the execute
request as ``metadata.cellId``). It is sent when a reply starts or ends, an approval appears or settles,
and a finished turn's usage is added; changes within `COALESCE` seconds go out as one message, and a
state equal to the last one sent is not sent again. Never per token.

Threads: replies start and approvals change on the kernel's main thread, replies end on the runtime
loop; a lock guards the state and a timer thread sends (a comm's send is thread-safe).
"""
from __future__ import annotations

import logging
import threading
from typing import Any

TARGET = "agy_jupyter.status"
COALESCE = 0.05  # seconds
_log = logging.getLogger(__name__)


class StatusBoard:
    """The kernel's status for the extension, and the comm that carries it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._comm: Any = None
        self._streaming = 0
        self._approvals: dict[int, tuple[int, dict[str, Any]]] = {}  # id(view) -> (id(reply), what the item lists)
        self._tokens = 0
        self._cost: float | None = None
        self._sent: dict[str, Any] | None = None
        self._timer: threading.Timer | None = None

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"streaming": self._streaming, "approvals": [shown for _, shown in self._approvals.values()],
                    "tokens": self._tokens, "cost": None if self._cost is None else round(self._cost, 6)}

    def open_comm(self) -> None:
        """Open (or, on a second %load_ext, reopen) the comm; the front ends get the state with it."""
        from comm import create_comm

        if self._comm is not None:
            self._comm.close()
        self._comm = create_comm(target_name=TARGET, data=self.state())
        self._comm.on_msg(lambda _message: self._send(force=True))
        self._sent = self.state()

    # -- the hooks (live_reply.py, approvals.py) -------------------------------------------------

    def reply_started(self, live: Any) -> None:
        """A reply streams until `live.finished`; its usage is added then. Main thread, in the cell."""
        live.status_cell = current_cell_id()
        with self._lock:
            self._streaming += 1
        self._changed()
        live.finished.add_done_callback(lambda future: self._reply_ended(live, future))

    def _reply_ended(self, live: Any, future: Any) -> None:
        response = None if future.cancelled() or future.exception() else future.result()
        usage = getattr(response, "usage", None)
        with self._lock:
            self._streaming -= 1
            self._approvals = {key: entry for key, entry in self._approvals.items() if entry[0] != id(live)}
            if usage is not None:
                self._tokens += usage.prompt_tokens + usage.output_tokens + usage.thinking_tokens
                from .usage import estimate_cost  # the agent layer: not imported at %load_ext

                cost = estimate_cost(usage, live.transcript.model, live.settings.prices)
                if cost is not None:
                    self._cost = (self._cost or 0.0) + cost
        self._changed()

    def approval_shown(self, live: Any, view: Any) -> None:
        """`view` waits for the user until its state leaves "pending". Main thread."""
        key = id(view)
        if live.finished.done():  # the reply ended meanwhile: add_view closed the view
            return

        def settled(change: dict[str, Any]) -> None:
            if change["new"] != "pending":
                view.unobserve(settled, "state")
                with self._lock:
                    self._approvals.pop(key, None)
                self._changed()

        with self._lock:
            self._approvals[key] = (id(live), {"agent": view.agent, "tool": view.tool,
                                               "cell": getattr(live, "status_cell", None)})
        view.observe(settled, "state")
        self._changed()

    # -- sending ---------------------------------------------------------------------------------

    def _changed(self) -> None:
        with self._lock:
            if self._comm is None or self._timer is not None:
                return
            self._timer = threading.Timer(COALESCE, self._send)
            self._timer.daemon = True
            self._timer.start()

    def _send(self, force: bool = False) -> None:
        with self._lock:
            self._timer = None
        state = self.state()
        if (state == self._sent and not force) or self._comm is None:
            return
        self._sent = state
        try:
            self._comm.send(state)
        except Exception:  # the status is a convenience: never let it break a reply
            _log.exception("agy_jupyter.status: could not send the state")


def current_cell_id() -> str | None:
    """The id of the cell being executed (JupyterLab and Notebook 7 send it as metadata.cellId)."""
    try:
        from ipykernel.kernelbase import Kernel

        if not Kernel.initialized():
            return None
        parent = Kernel.instance().get_parent("shell") or {}
        return (parent.get("metadata") or {}).get("cellId")
    except Exception:
        return None


board = StatusBoard()
