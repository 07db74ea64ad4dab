"""LiveReply: renders one running reply into the cell that started it.

Threads: the widgets are created, displayed, extended (approval views) and closed on the kernel's
main thread (the cell, or later through `MainThread`); the runtime thread only sends the StreamView
its ops messages (sending is thread-safe) and updates the display. Widget state has one writer, the
main thread, as widgets have no locks. Front-end messages arrive on the main thread and only hand
work to the runtime loop.

Bytes: the kernel sends only deltas, coalesced to one message per `coalesce_interval` (the first one
at once, so the first token is not delayed). When the reply ends, the widget is replaced by a static
copy (sanitized HTML + plain text + JSON transcript) that a saved notebook shows without a kernel.

Parts: the output of code the agent runs in the kernel (run_python) lands in the cell between the
reply's paragraphs. The reply is one output until such code shows something; what the reply says after it
goes to a new output (a new part) below the code's output. Events that change a block keep going to the
part that shows it (a tool's result to the card above the code's output); new blocks go to the last part.
At the end each part is replaced by the static copy of its blocks; only the last carries the outcome and
the usage.

Reloads: every output of the reply carries metadata naming its cell, reply and part (reattach.py), and the
reply keeps what each part shows, to send it again when a reloaded page asks (`show_again`).

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
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import ipywidgets
from IPython.display import display

from ..agent.events import TurnFinished
from ..runtime.errors import AgyError
from ..runtime.stream import ChatStream
from .lab_status import board as status_board, current_cell_id
from .main_thread import MainThread
from .presence import RenderedBy, front_ends, sender_session
from .reattach import reply_tag, shown_replies
from .transcript import CONTINUED, Transcript
from .usage import usage_line
from .widgets import StreamView, ensure_assets

log = logging.getLogger(__name__)


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


@dataclass
class _Part:
    """One output of the reply: the blocks (and thoughts) from `blocks` / `thoughts` on, up to the next part."""

    handle: Any  # the DisplayHandle of this output
    number: int = 0  # its place among the reply's parts (0 first)
    blocks: int = 0
    thoughts: int = 0
    view: Any = None  # its StreamView (None in text mode)
    box: Any = None  # the VBox holding the view and the approvals shown under it
    pending: list[list[Any]] = field(default_factory=list)  # ops not yet sent to `view`
    shown: dict = field(default_factory=dict)  # the bundle it shows now (sent again to a reloaded page)
    final: bool = False  # `shown` is the static copy


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
        self._parts: list[_Part] = []  # appended on the runtime loop (see continue_below)
        self._last_flush = 0.0
        self._text_sent = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._widgets: list[Any] = []
        self._ctx = contextvars.copy_context()
        self._widget = widget
        self.cell_id = current_cell_id()
        self.number = shown_replies.add(self)  # a reloaded page can take the reply up again (reattach.py)
        self._part_count = 0
        if widget:
            ensure_assets()  # the Markdown / sanitizer / highlighting library, sent once per kernel
        self._parts.append(self._new_part())

    def _new_part(self) -> _Part:
        """Display one more output for the reply (main thread, in the cell's context)."""
        progress = self._plain_progress(self.transcript.part(slice(0, 0), slice(0, 0), last=True))
        number, self._part_count = self._part_count, self._part_count + 1
        view = box = None
        bundle = {"text/plain": progress}
        if self._widget and not self.text_mode:
            view = StreamView(agent=self.transcript.agent, model_name=self.transcript.model,
                              show_thoughts=self.settings.show_thoughts)
            box = ipywidgets.VBox([view])
            self._widgets += [view, box]
            view.set_handler(self._on_front_message)
            bundle = {**box._repr_mimebundle_(), "text/plain": progress}
        handle = display(bundle, raw=True, display_id=True, metadata=reply_tag(self.cell_id, self.number, number, False))
        return _Part(handle, number=number, view=view, box=box, shown=bundle)

    def _show(self, part: _Part, bundle: dict, final: bool = False) -> None:
        """Replace what `part`'s output shows (thread-safe: a display update)."""
        part.shown, part.final = bundle, final
        part.handle.update(bundle, raw=True, metadata=reply_tag(self.cell_id, self.number, part.number, final))

    def show_again(self) -> None:
        """Send every part's output once more, for a page that reloaded (reattach.py). Main thread."""
        self.loop.call_soon_threadsafe(self._show_again, context=self._ctx.copy())

    def _show_again(self) -> None:  # runtime loop: after or before _finish, never during it
        for part in self._parts:
            self._show(part, part.shown, part.final)

    # -- wiring (main thread) --------------------------------------------------------------------

    def follow(self, stream: ChatStream) -> None:
        """Render `stream`'s events as they come; finish when it ends. Call from the cell."""
        self.on_stop = stream.cancel
        stream.add_listener(self._on_event)
        stream.add_done_callback(self._finish)
        status_board.reply_started(self)  # the JupyterLab status bar counts it until `finished`
        if not self.text_mode:
            self.loop.call_soon_threadsafe(self._arm_headless_check, context=contextvars.copy_context())

    def abandon(self) -> None:
        """The turn never started (the caller shows why): leave an empty output, close the widgets."""
        self._show(self._parts[0], {"text/plain": ""}, final=True)
        shown_replies.end(self.number)
        for widget in self._widgets:
            widget.close()
        self.finished.set_result(None)

    def _on_front_message(self, widget: Any, content: dict, _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "rendered":
            self.rendered.mark(sender_session())
            self.loop.call_soon_threadsafe(self._replay, widget, context=self._ctx.copy())
        elif kind == "stop":
            self.on_stop()
        else:  # e.g. an approval decision sent to the reply's view: only the approval's own view decides
            log.warning("agy: ignored a message on the reply view of %r: %.200r", self.transcript.agent, content)

    def add_view(self, view: Any) -> None:
        """Show another widget (an approval) under the reply; main thread only (`self.main.call`)."""
        if self.finished.done():  # the reply ended meanwhile: nothing to show it under
            view.close()
            return
        self._widgets.insert(0, view)
        box = self._parts[-1].box
        box.children = (*box.children, view)

    def code_runner(self, runner: Any) -> CodeRunner:
        """`runner` (where run_python's code runs for this reply) with the reply continuing below its output."""
        return CodeRunner(runner, self)

    def continue_below(self) -> None:
        """Code run for this reply showed output under it: what the reply says next goes below that.

        Main thread, in the cell's context, right after the code ran and before its tool call returns, so
        the new part is registered on the runtime loop before the call's result (the loop runs callbacks in
        order) and before any text that follows it.
        """
        if self.finished.done():
            return
        part = self._new_part()
        self.loop.call_soon_threadsafe(self._add_part, part, context=self._ctx.copy())

    def _add_part(self, part: _Part) -> None:  # runtime loop
        if self.finished.done():
            self._show(part, {"text/plain": ""}, final=True)
            return
        self._flush()  # the parts above get what they are owed first
        part.blocks, part.thoughts = len(self.transcript.blocks), len(self.transcript.thoughts)
        above = self._parts[-1]
        self._parts.append(part)
        if not self.text_mode:  # the part above is finished: its header says the reply goes on below
            above.view.send({"type": "ops", "ops": [["status", {"status": CONTINUED, "detail": ""}]], "reset": False})
        else:
            self._show(above, {"text/plain": self._piece(above).to_plain()})

    def _after_finish(self, response: Any, error: BaseException | None) -> None:
        """The main thread's part of the end: close the widgets, then the caller's on_finish."""
        for widget in self._widgets:
            widget.close()
        self.on_finish(response, error)

    # -- runtime loop ----------------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        if isinstance(event, TurnFinished):
            return  # _finish renders the end, for errors too
        ops = self.transcript.apply(event)
        self._part_of(self.transcript.touched).pending.extend(ops)
        self._schedule_flush()

    def _part_of(self, block: int | None) -> _Part:
        """The part that shows block number `block`; the last part for new blocks, status and thoughts."""
        if block is not None:
            for part in reversed(self._parts):
                if part.blocks <= block:
                    return part
        return self._parts[-1]

    def _piece(self, part: _Part) -> Transcript:
        """The transcript of one part."""
        index = self._parts.index(part)
        after = self._parts[index + 1] if index + 1 < len(self._parts) else None
        return self.transcript.part(slice(part.blocks, after.blocks if after else None),
                                    slice(part.thoughts, after.thoughts if after else None), last=after is None)

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
        changed = [part for part in self._parts if part.pending]
        if not changed:
            return
        if self.text_mode:
            for part in changed:
                part.pending.clear()
            self._show_text()
            return
        for part in changed:
            ops, part.pending = part.pending, []
            part.view.send({"type": "ops", "ops": merge_ops(ops), "reset": False})
            self._text_sent = self._text_sent or any(op[0] == "text" for op in ops)

    def _replay(self, view: Any) -> None:
        part = next((p for p in self._parts if p.view is view), None)
        if self.finished.done() or part is None:
            return
        part.pending.clear()  # the transcript already holds them: the replay carries everything
        part.view.send({"type": "ops", "ops": merge_ops(self._piece(part).replay_ops()), "reset": True})

    def _arm_headless_check(self) -> None:
        if not front_ends.any_seen():  # a front end that rendered here before may just be slow this time
            self.loop.call_later(self.settings.render_grace, self._check_headless,
                                 context=contextvars.copy_context())

    def _check_headless(self) -> None:
        if self.rendered.is_set() or self.finished.done():
            return
        self.text_mode = True  # nobody rendered the widget: plain text in the same output instead
        self._last_flush = time.monotonic()
        for part in self._parts[:-1]:
            part.pending.clear()
            self._show(part, {"text/plain": self._piece(part).to_plain()})
        self._parts[-1].pending.clear()
        self._show_text()

    def _show_text(self) -> None:
        self._show(self._parts[-1], {"text/plain": self._plain_progress(self._piece(self._parts[-1]))})

    @staticmethod
    def _plain_progress(transcript: Transcript) -> str:
        return f"{transcript.text}\n[{transcript.agent}: {transcript.status}…]"

    def _finish(self, stream: ChatStream) -> None:
        """Flush, then replace the widget by the static copy. Runs on the runtime loop."""
        response, error = None, None
        try:
            response = stream.result(timeout=0)
        except BaseException as exc:  # the turn's typed error, shown as one clear message
            error = exc
        if not self.text_mode:
            self._flush()  # the views show the whole reply until the static copies replace them
        for part in self._parts:
            part.pending.clear()
        transcript = self.transcript
        if error is not None:
            message = error.message if isinstance(error, AgyError) else f"{type(error).__name__}: {error}"
            hint = error.hint if isinstance(error, AgyError) else None
            transcript.fail(message, hint)
        else:
            transcript.status = "cancelled" if response.cancelled else "done"
            transcript.usage_line = usage_line(response.usage, transcript.model, self.settings.prices)
        try:
            for part in self._parts:
                self._show(part, self._piece(part).static_bundle(), final=True)
        finally:
            shown_replies.end(self.number)
            self.finished.set_result(response)
            self.main.post(self._after_finish, response, error)


class CodeRunner:
    """Runs code for a reply through `runner` (a MainThread or BlockingJobs, on the kernel's main thread);
    when the code showed something in the cell (its `.shown`), the reply continues below that output."""

    def __init__(self, runner: Any, reply: LiveReply):
        self.runner = runner
        self.reply = reply

    def call(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        return self.runner.call(self._run, fn, *args)

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        outcome = fn(*args)
        if getattr(outcome, "shown", False):
            self.reply.continue_below()
        return outcome
