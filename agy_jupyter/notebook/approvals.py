"""Approval handlers for notebook cells: a live Approve / Deny view, or the non-interactive setting.

The view shows the call's preview (the code, the command or the diff that will run) when the tool
gives one, else its arguments; "always allow" comes back narrowed to these arguments or for the tool.

The handler runs on the runtime loop (the agent awaits it). The ApprovalView is created, shown and
updated on the kernel's main thread (widgets have no locks); clicks arrive there too and are handed
over with call_soon_threadsafe. Nothing waits for a click that cannot come: unless a front end
renders this very view within `render_grace` (a tab that showed an earlier reply may be closed by
now), or if nobody answers within `approval_timeout`, the call is decided without the user and the
reason goes back to the model.

Only this view's comm message decides, and only once: a decision whose `approved` is not a JSON boolean, one
that arrives after the call was settled (answered, timed out, cancelled) and any message of another type
are ignored and logged. Model output never reaches this path: text or a tool result claiming approval is
just text (tests/test_forged_approvals.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from ..agent.policies import Approval, ApprovalRequest
from .lab_status import board as status_board
from .live_reply import DisplaySettings, LiveReply
from .presence import RenderedBy, front_ends, sender_session
from .widgets import ApprovalView

log = logging.getLogger(__name__)
HEADLESS = "AgyMagics.headless_approval"  # decided_by of an answer nobody could give: the setting gave it


def non_interactive(request: ApprovalRequest, settings: DisplaySettings,
                    why: str = "no live notebook front end") -> Approval:
    """The decision when no one can click: the `headless_approval` setting."""
    if settings.headless_approval == "allow":
        return Approval(approved=True, reason="allowed by AgyMagics.headless_approval", decided_by=HEADLESS)
    return Approval(approved=False, decided_by=HEADLESS, reason=(
        f"nobody can approve {request.tool!r} here ({why}). To let it run, create the "
        f"agent with `--policy allow`, or set %config AgyMagics.headless_approval = 'allow'"))


class NonInteractiveApprover:
    """For the blocking fallback and scripts: decide by the setting, never by a UI."""

    def __init__(self, settings: DisplaySettings):
        self.settings = settings

    def __call__(self, request: ApprovalRequest) -> Approval:
        return non_interactive(request, self.settings)


class CellApprover:
    """Asks with an ApprovalView shown under the cell's live reply."""

    def __init__(self, live: LiveReply, settings: DisplaySettings):
        self.live = live
        self.settings = settings

    async def __call__(self, request: ApprovalRequest) -> Approval:
        loop = asyncio.get_running_loop()
        decided: asyncio.Future[Approval] = loop.create_future()
        rendered = RenderedBy()

        def on_message(_widget: Any, content: Any, _buffers: Any) -> None:  # main thread: hand over only
            kind = content.get("type") if isinstance(content, dict) else None
            if kind == "rendered":
                rendered.mark(sender_session())
            elif kind == "decision" and isinstance(content.get("approved"), bool):
                answer = Approval(approved=content["approved"], reason=str(content.get("reason") or "") or None,
                                  always=content.get("always") is True,
                                  always_scope="args" if content.get("scope") == "args" else "tool")
                loop.call_soon_threadsafe(_settle_once, decided, answer, request.tool)
            else:  # a decision must say approved: true or false, nothing that merely looks like it
                log.warning("agy: ignored a message on the approval view of %r: %.200r", request.tool, content)

        def show() -> ApprovalView:  # main thread
            view = ApprovalView(agent=request.agent, tool=request.tool, state="pending",
                                args_json=json.dumps(request.args, indent=2, ensure_ascii=False, default=str),
                                preview=_preview_trait(request.preview),
                                timeout_seconds=self.settings.approval_timeout)
            view.set_handler(on_message)
            self.live.add_view(view)
            status_board.approval_shown(self.live, view)  # the JupyterLab status bar lists it while pending
            return view

        shown: list[ApprovalView] = []  # for the cancel path
        try:
            try:  # the main thread is busy while a plain cell runs: the view appears when it ends
                async with asyncio.timeout(self.settings.approval_timeout):
                    view = await asyncio.wrap_future(self.live.main.call(show))
            except TimeoutError:
                return non_interactive(request, self.settings, f"the kernel ran other code for "
                                                               f"{self.settings.approval_timeout:g} s")
            except RuntimeError as exc:  # the kernel's loop is closed: it is shutting down
                return non_interactive(request, self.settings, f"the kernel is shutting down: {exc}")
            shown.append(view)
            if not await rendered.wait(self.settings.render_grace):
                why = (f"no front end showed the approval within {self.settings.render_grace:g} s; the notebook "
                       f"tab may be closed" if front_ends.any_seen() else "no live notebook front end")
                return self._settle(view, non_interactive(request, self.settings, why))
            try:
                async with asyncio.timeout(self.settings.approval_timeout):
                    answer = await decided
            except TimeoutError:
                self._show(view, "timeout", f"no answer within {self.settings.approval_timeout:g} s")
                return Approval(approved=False, decided_by="timeout", reason=f"the user did not answer within "
                                                                             f"{self.settings.approval_timeout:g} s")
            return self._settle(view, answer)
        except asyncio.CancelledError:
            for view in shown:
                self._show(view, "cancelled", "")
            raise

    def _settle(self, view: ApprovalView, answer: Approval) -> Approval:
        self._show(view, "approved" if answer.approved else "denied", answer.reason or "")
        return answer

    def _show(self, view: ApprovalView, state: str, reason: str) -> None:
        def write() -> None:  # main thread: the view's only writer
            view.state, view.reason = state, reason
        self.live.main.post(write)


def _preview_trait(preview: dict[str, Any] | None) -> dict[str, str]:
    """The view's preview: text fields only (a tool's preview is ours, but its text is the model's)."""
    if not isinstance(preview, dict) or not preview.get("kind"):
        return {}
    return {key: str(preview.get(key) or "") for key in ("kind", "text", "language")}


def _settle_once(decided: asyncio.Future, answer: Approval, tool: str) -> None:
    if decided.done():  # a second click (two front ends), or a call already settled: changes nothing
        log.warning("agy: ignored a decision for %r: the call is no longer pending", tool)
        return
    decided.set_result(answer)
