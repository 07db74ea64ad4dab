"""LiveReply: renders one running reply into the cell that started it.

Threads: the widgets are created, displayed, extended (approval views) and closed on the kernel's
main thread (the cell, or later through `MainThread`); the runtime thread only sends the StreamView
its ops messages (sending is thread-safe) and updates the display. Widget state has one writer, the
main thread, as widgets have no locks. Front-end messages arrive on the main thread and only hand
work to the runtime loop.

Bytes: the kernel sends only deltas, coalesced to one message per `coalesce_interval` (the first one
at once, so the first token is not delayed). When the reply ends, the widget is replaced by a static
copy (sanitized HTML + plain text + JSON transcript) that a saved notebook shows without a kernel.

Headless runs (nbclient, papermill): no front end ever answers "rendered" in this kernel. After
`render_grace` seconds the reply degrades to coalesced plain text in the same output. Approvals follow
the non-interactive setting unless a front end renders the approval view itself (a closed tab does
not), instead of waiting for a click nobody can give. Every output has a readable text/plain, so a
text-only front end (jupyter console) shows progress, not a widget repr.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import ipywidgets
from IPython.display import display

from ..agent.events import TurnFinished
from ..runtime.errors import AgyError
from ..runtime.stream import ChatStream
from .main_thread import MainThread
from .presence import RenderedBy, front_ends, sender_session
from .transcript import Transcript
from .usage import usage_line
from .widgets import StreamView, ensure_assets


@dataclass(frozen=True)
class DisplaySettings:
    """The notebook settings one reply needs (a snapshot of AgyMagics' traits)."""

    coalesce_interval: float = 0.05
    text_interval: float = 1.0
    render_grace: float = 2.0
    approval_timeout: float = 300.0
    headless_approval: str = "deny"
    show_thoughts: bool = True
    prices: dict = field(default_factory=dict)


def merge_ops(ops: list[list[Any]]) -> list[list[Any]]:
    """Join neighbouring text (and thought) deltas: fewer, larger ops in one message."""
    merged: list[list[Any]] = []
    for op in ops:
        if merged and op[0] in ("text", "thought") and merged[-1][0] == op[0]:
            merged[-1] = [op[0], merged[-1][1] + op[1]]
        else:
            merged.append(list(op))
    return merged


class LiveReply:
    """The widget for one reply, fed by the turn's events on the runtime loop. Create it in the cell."""

    def __init__(self, agent: str, model: str, settings: DisplaySettings, loop: asyncio.AbstractEventLoop,
                 *, widget: bool = True):
        self.settings = settings
        self.transcript = Transcript(agent=agent, model=model)
        self.loop = loop
        self.main = MainThread()  # where widgets and the namespace are written
        self.rendered = RenderedBy()
        self.finished: concurrent.futures.Future = concurrent.futures.Future()
        self.text_mode = not widget  # without a widget (blocking fallback): coalesced text from the start
        self.on_stop: Callable[[], None] = lambda: None
        self.on_finish: Callable[[Any, BaseException | None], None] = lambda response, error: None
        self._pending: list[list[Any]] = []
        self._last_flush = 0.0
        self._text_sent = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._widgets: list[Any] = []
        self._ctx = contextvars.copy_context()
        if widget:
            ensure_assets()  # the Markdown / sanitizer / highlighting library, sent once per kernel
            self.view = StreamView(agent=agent, model_name=model, show_thoughts=settings.show_thoughts)
            self.box = ipywidgets.VBox([self.view])
            self._widgets += [self.view, self.box]
            self.view.set_handler(self._on_front_message)
            bundle = {**self.box._repr_mimebundle_(), "text/plain": self._plain_progress()}
            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle = display({"text/plain": self._plain_progress()}, raw=True, display_id=True)

    # -- wiring (main thread) --------------------------------------------------------------------

    def follow(self, stream: ChatStream) -> None:
        """Render `stream`'s events as they come; finish when it ends. Call from the cell."""
        self.on_stop = stream.cancel
        stream.add_listener(self._on_event)
        stream.add_done_callback(self._finish)
        if not self.text_mode:
            self.loop.call_soon_threadsafe(self._arm_headless_check, context=contextvars.copy_context())

    def abandon(self) -> None:
        """The turn never started (the caller shows why): leave an empty output, close the widgets."""
        self.handle.update({"text/plain": ""}, raw=True)
        for widget in self._widgets:
            widget.close()
        self.finished.set_result(None)

    def _on_front_message(self, _widget: Any, content: dict, _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "rendered":
            self.rendered.mark(sender_session())
            self.loop.call_soon_threadsafe(self._replay, context=self._ctx.copy())
        elif kind == "stop":
            self.on_stop()

    def add_view(self, view: Any) -> None:
        """Show another widget (an approval) under the reply; main thread only (`self.main.call`)."""
        if self.finished.done():  # the reply ended meanwhile: nothing to show it under
            view.close()
            return
        self._widgets.insert(0, view)
        self.box.children = (*self.box.children, view)

    def _after_finish(self, response: Any, error: BaseException | None) -> None:
        """The main thread's part of the end: close the widgets, then the caller's on_finish."""
        for widget in self._widgets:
            widget.close()
        self.on_finish(response, error)

    # -- runtime loop ----------------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        if isinstance(event, TurnFinished):
            return  # _finish renders the end, for errors too
        self._pending.extend(self.transcript.apply(event))
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        wait = self._last_flush + self._interval() - time.monotonic()
        if wait <= 0 or not self._text_sent:  # until the first text is out, nothing waits (first token fast)
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self.loop.call_later(wait, self._flush, context=contextvars.copy_context())

    def _interval(self) -> float:
        return self.settings.text_interval if self.text_mode else self.settings.coalesce_interval

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._last_flush = time.monotonic()
        ops, self._pending = self._pending, []
        if not ops:
            return
        if self.text_mode:
            self._show_text()
        else:
            self.view.send({"type": "ops", "ops": merge_ops(ops), "reset": False})
            self._text_sent = self._text_sent or any(op[0] == "text" for op in ops)

    def _replay(self) -> None:
        if self.finished.done():
            return
        self._pending.clear()  # the transcript already holds them: the replay carries everything
        self.view.send({"type": "ops", "ops": merge_ops(self.transcript.replay_ops()), "reset": True})

    def _arm_headless_check(self) -> None:
        if not front_ends.any_seen():  # a front end that rendered here before may just be slow this time
            self.loop.call_later(self.settings.render_grace, self._check_headless,
                                 context=contextvars.copy_context())

    def _check_headless(self) -> None:
        if self.rendered.is_set() or self.finished.done():
            return
        self.text_mode = True  # nobody rendered the widget: plain text in the same output instead
        self._pending.clear()
        self._last_flush = time.monotonic()
        self._show_text()

    def _show_text(self) -> None:
        self.handle.update({"text/plain": self._plain_progress()}, raw=True)

    def _plain_progress(self) -> str:
        transcript = self.transcript
        return f"{transcript.text}\n[{transcript.agent}: {transcript.status}…]"

    def _finish(self, stream: ChatStream) -> None:
        """Flush, then replace the widget by the static copy. Runs on the runtime loop."""
        response, error = None, None
        try:
            response = stream.result(timeout=0)
        except BaseException as exc:  # the turn's typed error, shown as one clear message
            error = exc
        if not self.text_mode:
            self._flush()  # the view shows the whole reply until the static copy replaces it
        self._pending.clear()
        transcript = self.transcript
        if error is not None:
            message = error.message if isinstance(error, AgyError) else f"{type(error).__name__}: {error}"
            hint = error.hint if isinstance(error, AgyError) else None
            transcript.fail(message, hint)
        else:
            transcript.status = "cancelled" if response.cancelled else "done"
            transcript.usage_line = usage_line(response.usage, transcript.model, self.settings.prices)
        try:
            self.handle.update(transcript.static_bundle(), raw=True)
        finally:
            self.finished.set_result(response)
            self.main.post(self._after_finish, response, error)
