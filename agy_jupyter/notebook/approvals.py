"""Approval handlers for notebook cells: a live Approve / Deny view, or the non-interactive setting.

The handler runs on the runtime loop (the agent awaits it). Clicks arrive on the kernel's main
thread and are handed over with call_soon_threadsafe. Nothing waits for a click that cannot come:
if no front end renders the view within the grace period, or nobody answers within the approval
timeout, the call is decided without the user and the reason goes back to the model.
"""
from __future__ import annotations

import asyncio
import json

from ..agent.policies import Approval, ApprovalRequest
from .live_reply import DisplaySettings, FrontendPresence, LiveReply
from .widgets import ApprovalView

_RENDER_POLL = 0.02


def non_interactive(request: ApprovalRequest, settings: DisplaySettings) -> Approval:
    """The decision when no one can click: the `headless_approval` setting."""
    if settings.headless_approval == "allow":
        return Approval(approved=True, reason="allowed by AgyMagics.headless_approval")
    return Approval(approved=False, reason=(
        f"nobody can approve {request.tool!r} here (no live notebook front end). To let it run, create the "
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
        rendered = asyncio.Event()
        view = ApprovalView(agent=request.agent, tool=request.tool, state="pending",
                            args_json=json.dumps(request.args, indent=2, ensure_ascii=False, default=str),
                            timeout_seconds=self.settings.approval_timeout)

        def on_message(_widget, content, _buffers) -> None:  # main thread: hand over, touch nothing
            if not isinstance(content, dict):
                return
            if content.get("type") == "rendered":
                FrontendPresence.seen = True
                loop.call_soon_threadsafe(rendered.set)
            elif content.get("type") == "decision":
                answer = Approval(approved=bool(content.get("approved")), reason=str(content.get("reason") or "") or None,
                                  always=bool(content.get("always")))
                loop.call_soon_threadsafe(lambda: decided.done() or decided.set_result(answer))

        view.set_handler(on_message)
        self.live.add_view(view)
        try:
            if not await self._front_end_present(rendered):
                answer = non_interactive(request, self.settings)
                view.state, view.reason = ("approved" if answer.approved else "denied"), answer.reason or ""
                return answer
            try:
                async with asyncio.timeout(self.settings.approval_timeout):
                    answer = await decided
            except TimeoutError:
                view.state, view.reason = "timeout", f"no answer within {self.settings.approval_timeout:g} s"
                return Approval(approved=False, reason=f"the user did not answer within "
                                                       f"{self.settings.approval_timeout:g} s")
            view.state, view.reason = ("approved" if answer.approved else "denied"), answer.reason or ""
            return answer
        except asyncio.CancelledError:
            view.state = "cancelled"
            raise

    async def _front_end_present(self, rendered: asyncio.Event) -> bool:
        """True once this view or the reply rendered; False after the grace period with no front end."""
        if FrontendPresence.seen or self.live.rendered.is_set():
            return True
        deadline = asyncio.get_running_loop().time() + self.settings.render_grace
        while asyncio.get_running_loop().time() < deadline:
            if rendered.is_set() or self.live.rendered.is_set():
                return True
            await asyncio.sleep(_RENDER_POLL)
        return False
