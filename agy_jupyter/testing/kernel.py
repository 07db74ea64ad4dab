"""A real ipykernel driven over ZMQ, spoken to as a browser front end does (execute, comm, interrupt).

Tests and benchmarks use it to check the magics and widgets without a browser:

>>> kernel = Kernel(env=fake.env()); frontend = FrontEnd(kernel)
>>> execution = kernel.run("%load_ext agy_jupyter")
"""
from __future__ import annotations

import os
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from jupyter_client import KernelManager


@dataclass
class Execution:
    """The iopub traffic of one execute_request."""

    msg_id: str
    messages: list[dict] = field(default_factory=list)
    reply: dict | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def outputs(self) -> list[dict]:
        return [m for m in self.messages if m["msg_type"] in ("stream", "display_data", "update_display_data",
                                                               "execute_result", "error")]

    def cell_outputs(self) -> list[dict]:
        """The cell's outputs as a front end ends up with them: displays in order, each replaced by its
        updates (by display_id), neighbouring stream text of one stream joined. Each is {"output_type", ...}."""
        cell: list[dict] = []
        for message in self.messages:
            kind, content = message["msg_type"], message["content"]
            display_id = content.get("transient", {}).get("display_id")
            if kind == "update_display_data":
                for output in cell:
                    if output.get("display_id") == display_id:
                        output["data"] = content["data"]
            elif kind == "stream":
                if cell and cell[-1]["output_type"] == "stream" and cell[-1]["name"] == content["name"]:
                    cell[-1]["text"] += content["text"]
                else:
                    cell.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("display_data", "execute_result", "error"):
                cell.append({"output_type": kind, "display_id": display_id, **content})
        return cell

    def text(self) -> str:
        return "".join(m["content"].get("text", "") for m in self.messages if m["msg_type"] == "stream")

    def stream_view(self) -> str | None:
        """The comm id of the first reply view (StreamView) this execution opened, or None."""
        return next((m["content"]["comm_id"] for m in list(self.messages) if m["msg_type"] == "comm_open"
                     and str(m["content"]["data"]["state"].get("_anywidget_id", "")).endswith("StreamView")), None)

    def view_text(self, comm_id: str | None = None) -> str:
        """The reply text a front end shows after applying the view's ops messages (default: the first view)."""
        comm_id, text = comm_id or self.stream_view(), ""
        for message in list(self.messages):
            if message["msg_type"] == "comm_msg" and message["content"]["comm_id"] == comm_id:
                content = message["content"]["data"].get("content") or {}
                if content.get("reset"):
                    text = ""
                text += "".join(op[1] for op in content.get("ops", ()) if op[0] == "text")
        return text

    def errors(self) -> list[dict]:
        return [m["content"] for m in self.messages if m["msg_type"] == "error"]


class Kernel:
    """Start a kernel with extra environment, run cells, watch every iopub message with its size."""

    def __init__(self, env: dict[str, str] | None = None, extra_arguments: list[str] | None = None):
        self.km = KernelManager(kernel_name="python3")
        kernel_env = {**os.environ, **(env or {}), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        self.km.start_kernel(env=kernel_env, extra_arguments=["--HistoryManager.enabled=False", *(extra_arguments or [])])
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.iopub_log: list[tuple[float, int, dict]] = []  # (arrival time, wire bytes, message)
        self._executions: dict[str, Execution] = {}
        self._listeners: list[Callable[[dict], None]] = []
        self._stop = threading.Event()
        self._shell_lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        self._replies = threading.Thread(target=self._pump_replies, daemon=True)
        self._replies.start()

    def _pump(self) -> None:
        socket = self.kc.iopub_channel.socket
        session = self.kc.session
        while not self._stop.is_set():
            if not socket.poll(50):
                continue
            frames = socket.recv_multipart(copy=True)
            arrived = time.perf_counter()
            size = sum(len(f) for f in frames)
            _, frames = session.feed_identities(frames)
            msg = session.deserialize(frames)
            self.iopub_log.append((arrived, size, msg))
            parent = msg.get("parent_header", {}).get("msg_id")
            execution = self._executions.get(parent)
            if execution is not None:
                execution.messages.append(msg)
            for listener in list(self._listeners):
                listener(msg)

    def on_iopub(self, listener: Callable[[dict], None]) -> None:
        self._listeners.append(listener)

    def execute(self, code: str, timeout: float = 60.0, wait: bool = True, metadata: dict | None = None) -> Execution:
        """Run `code`; `metadata` goes with the request (JupyterLab sends {"cellId": ...})."""
        # Registered before it is sent: a fast kernel's first iopub messages and reply must find it.
        msg = self.kc.session.msg("execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True}, metadata=metadata)
        execution = Execution(msg["header"]["msg_id"])
        self._executions[execution.msg_id] = execution
        self._send_shell(msg)
        if wait:
            self.wait(execution, timeout)
        return execution

    def _send_shell(self, msg: dict) -> None:
        # A ZMQ socket is not thread-safe: the test thread, the iopub pump (the FrontEnd's "rendered") and
        # the reply pump all use the shell socket. Unguarded, a frame now and then reached the kernel mangled
        # ("Invalid Signature", "DELIM not in msg_list") and a click was lost.
        with self._shell_lock:
            self.kc.shell_channel.send(msg)

    def _pump_replies(self) -> None:
        socket = self.kc.shell_channel.socket
        session = self.kc.session
        while not self._stop.is_set():
            try:
                with self._shell_lock:  # never blocks inside: poll(0), and recv only what has arrived
                    frames = socket.recv_multipart(copy=True) if socket.poll(0) else None
            except Exception:  # channels closed during shutdown
                return
            if frames is None:
                time.sleep(0.002)
                continue
            _, frames = session.feed_identities(frames)
            reply = session.deserialize(frames)
            execution = self._executions.get(reply["parent_header"].get("msg_id"))
            if execution is not None:
                execution.reply = reply
                execution.done.set()

    def wait(self, execution: Execution, timeout: float = 60.0) -> Execution:
        if not execution.done.wait(timeout):
            raise AssertionError(f"cell did not finish in {timeout}s; outputs: {execution.outputs}")
        # the reply can overtake the last iopub messages: wait for the idle status of this request
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                   for m in execution.messages):
                break
            time.sleep(0.01)
        return execution

    def run(self, code: str, timeout: float = 60.0) -> Execution:
        """Execute and assert the cell did not raise."""
        execution = self.execute(code, timeout)
        assert execution.reply["content"]["status"] == "ok", (execution.errors(), execution.text())
        return execution

    def comm_opens(self, since: int = 0) -> list[dict]:
        return [m for _, _, m in self.iopub_log[since:] if m["msg_type"] == "comm_open"]

    def widget_comm(self, esm_marker: str, timeout: float = 10.0, since: int = 0) -> str:
        """The comm id of the first widget opened whose state mentions `esm_marker` (e.g. "StreamView")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.comm_opens(since):
                state = msg["content"].get("data", {}).get("state", {})
                if esm_marker in str(state.get("_anywidget_id", "")):
                    return msg["content"]["comm_id"]
            time.sleep(0.01)
        raise AssertionError(f"no {esm_marker} widget opened")

    def send_comm(self, comm_id: str, content: dict) -> None:
        """What anywidget's `model.send(content)` in the browser puts on the shell channel."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}})
        self._send_shell(msg)

    def custom_messages(self, comm_id: str) -> list[dict]:
        return [m["content"]["data"]["content"] for _, _, m in self.iopub_log
                if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id
                and m["content"]["data"].get("method") == "custom"]

    def bytes_for(self, execution: Execution, comm_ids: set[str] | None = None) -> int:
        """Wire bytes of every iopub message caused by this execution (its own and its widgets')."""
        return sum(size for _, size, m in self.iopub_log
                   if m.get("parent_header", {}).get("msg_id") == execution.msg_id)

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._replies.join(2)
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


class FrontEnd:
    """Plays the browser's part for our widgets: each view that opens answers "rendered", as it does
    when JupyterLab renders it. Off (`kernel` only) is what nbclient / papermill look like."""

    VIEWS = ("StreamView", "ApprovalView")

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.opened: dict[str, list[str]] = {view: [] for view in self.VIEWS}
        self.seen = threading.Event()
        self.closed = False
        kernel.on_iopub(self._on_message)

    def close(self) -> None:
        """The tab was closed: views that open from now on are never rendered."""
        self.closed = True

    def _on_message(self, msg: dict) -> None:
        if msg["msg_type"] != "comm_open" or self.closed:
            return
        state = msg["content"].get("data", {}).get("state", {})
        for view in self.VIEWS:
            if str(state.get("_anywidget_id", "")).endswith(view):
                comm_id = msg["content"]["comm_id"]
                self.opened[view].append(comm_id)
                self.kernel.send_comm(comm_id, {"type": "rendered"})
                self.seen.set()

    def wait_for(self, view: str, count: int = 1, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.opened[view]) >= count:
                return self.opened[view][count - 1]
            time.sleep(0.005)
        raise AssertionError(f"no {view} #{count} opened within {timeout}s")


@contextlib.contextmanager
def loaded_kernel(env: dict[str, str], *, chat_timeout: float = 30, render_grace: float = 3.0) -> Iterator[Kernel]:
    """A kernel with agy_jupyter loaded and a FrontEnd rendering its views (`kernel.frontend`), shut down after.

    `render_grace` is generous: on a loaded machine a late "rendered" would turn a reply into text.
    """
    kernel = Kernel(env={**env, "AGY_CHAT_TIMEOUT_SECS": f"{chat_timeout:g}"})
    try:
        kernel.frontend = FrontEnd(kernel)
        kernel.run(f"%load_ext agy_jupyter\n%config AgyMagics.render_grace = {render_grace:g}")
        yield kernel
    finally:
        kernel.shutdown()
