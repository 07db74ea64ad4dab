"""The JupyterLab extension's way into the kernel: the comm target `agy_jupyter.control`.

`%load_ext agy_jupyter` registers it. The extension's "Stop agents" command opens a comm with
``{"action": "stop"}``; the kernel cancels every running reply of the notebook's agents and answers
``{"stopped": N}``, then closes the comm. A page that (re)connects sends ``{"action": "reattach"}``: the
replies are shown again for it (reattach.py), answered by ``{"reattached": N}``. A comm, not an execute
request: a running `%%chat` cell holds the execute queue, while comm messages are handled whenever that
(async) cell awaits. A comm to a kernel without the extension loaded is closed at once by ipykernel
("No such comm target"), which the command reports as "not loaded". `register` also opens the status bar's
comm (lab_status.py).
"""
from __future__ import annotations

import logging
from typing import Any

TARGET = "agy_jupyter.control"
_log = logging.getLogger(__name__)


def _stop(shell: Any) -> dict[str, Any]:
    from .chat import current_directory

    return {"stopped": current_directory(shell).cancel_all()}


def _reattach(_shell: Any) -> dict[str, Any]:
    from .reattach import shown_replies

    return {"reattached": shown_replies.reattach()}


ACTIONS = {"stop": _stop, "reattach": _reattach}


def register(shell: Any) -> bool:
    """Register the comm target in this kernel; False outside a kernel (terminal IPython, scripts)."""
    kernel = getattr(shell, "kernel", None)
    manager = getattr(kernel, "comm_manager", None)
    if manager is None:
        return False

    def opened(comm: Any, message: dict[str, Any]) -> None:
        data = message.get("content", {}).get("data") or {}
        action = ACTIONS.get(data.get("action"))
        try:
            comm.send(action(shell) if action else {"error": f"unknown action {data.get('action')!r}"})
        except Exception as error:  # an answer, not a traceback in the kernel log only
            _log.exception("agy_jupyter.control %r failed", data.get("action"))
            comm.send({"error": f"{type(error).__name__}: {error}"})
        finally:
            comm.close()

    manager.register_target(TARGET, opened)
    from .lab_status import board

    board.open_comm()  # the status bar's comm (lab_status.py)
    return True
