"""What a `%%chat` cell does, in its three modes.

- attached (default, in a kernel with autoawait): the cell is rewritten to `await chat_cell_async(...)`
  so it stays running while the reply streams, Approve / Deny clicks are handled meanwhile, and the
  interrupt button cancels the turn;
- blocking fallback (autoawait off, or no kernel): the cell blocks; Ctrl-C / interrupt cancels the
  turn; approvals follow the non-interactive setting, never a UI nobody can answer;
- background (`--background`): the cell returns at once; the reply streams into it with a Stop button.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import shlex
import sys
from dataclasses import dataclass, replace
from typing import Any

from IPython import get_ipython
from IPython.core.error import UsageError

from ..agent.api import Agent
from ..agent.events import TextDelta
from ..runtime.errors import AgyError
from ..runtime.stream import ChatStream
from .approvals import CellApprover, NonInteractiveApprover
from .interpolate import interpolate
from .live_reply import DisplaySettings, LiveReply
from .transformer import in_kernel

FINISH_WAIT = 5.0  # the static copy follows the reply within milliseconds; this only bounds a wedged loop


class ReplyInterrupted(KeyboardInterrupt):
    """The interrupt button cancelled a reply. Still an error for the kernel (Run All stops), shown as one
    line: IPython formats a CancelledError traceback for ~100 ms before the cell can end."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31mInterrupted\x1b[0m: {self}"]


@dataclass(frozen=True)
class ChatOptions:
    agent: str | None
    output: str | None
    interpolate: bool
    background: bool
    show_thoughts: bool


def parse_chat_line(line: str) -> ChatOptions:
    """Parse `%%chat [NAME] [-o VAR] [-i] [--background] [--no-thoughts]`; UsageError on a bad line."""
    from .magics import chat_parser  # the parser lives with the magic's help text
    try:
        args = chat_parser().parse_args(shlex.split(line))
    except (SystemExit, ValueError) as exc:  # argparse exits; shlex raises on unbalanced quotes
        raise UsageError(f"bad %%chat line: {line.strip()!r} ({exc})\n{chat_parser().format_usage()}") from None
    if args.o is not None and not args.o.isidentifier():
        raise UsageError(f"-o needs a variable name, got {args.o!r}\n{chat_parser().format_usage().strip()}")
    return ChatOptions(args.name, args.o, args.interpolate, args.background, not args.no_thoughts)


def _magics(shell: Any) -> Any:
    """The AgyMagics instance registered on this shell (its settings and its agent directory)."""
    from .magics import AgyMagics
    magics = shell.magics_manager.registry.get("AgyMagics") if shell is not None else None
    if not isinstance(magics, AgyMagics):
        raise UsageError("agy_jupyter is not loaded: run %load_ext agy_jupyter first")
    return magics


def _prepare(line: str, cell: str) -> tuple[Any, ChatOptions, Agent, str, DisplaySettings]:
    shell = get_ipython()
    options = parse_chat_line(line)
    magics = _magics(shell)
    try:
        agent = magics.directory.get(options.agent)
    except AgyError as exc:
        from .magics import chat_parser
        raise UsageError(f"{exc}\n{chat_parser().format_usage().strip()}") from None
    prompt = interpolate(cell, shell.user_ns) if options.interpolate else cell
    if not prompt.strip():
        raise UsageError("the cell is empty: write the prompt in the cell body under %%chat")
    settings = magics.display_settings()
    if not options.show_thoughts:
        settings = replace(settings, show_thoughts=False)
    return shell, options, agent, prompt, settings


def _store_output(shell: Any, options: ChatOptions, response: Any) -> None:
    if options.output and response is not None and shell is not None:
        shell.user_ns[options.output] = response.text


def _start(agent: Agent, prompt: str, live: LiveReply, handler: Any) -> ChatStream:
    try:
        return agent.stream(prompt, approval_handler=handler)
    except AgyError:
        live.abandon()
        raise


async def chat_cell_async(line: str, cell: str) -> None:
    """The attached mode: awaited by the rewritten cell on the kernel's loop."""
    shell, options, agent, prompt, settings = _prepare(line, cell)
    if options.background:
        return chat_cell_background(shell, options, agent, prompt, settings)
    live = LiveReply(agent.name, agent.config.model, settings, agent.runtime.loop)
    stream = _start(agent, prompt, live, CellApprover(live, settings))
    live.follow(stream)
    try:  # an interrupt or a typed error propagates after the static copy is written
        response = await stream.aresult()
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise ReplyInterrupted(f"the reply of {agent.name!r} was cancelled; what arrived is kept") from None
    finally:
        await _until_finished(live)
    _store_output(shell, options, response)


async def _until_finished(live: LiveReply) -> None:
    try:
        await asyncio.wait_for(asyncio.wrap_future(live.finished), FINISH_WAIT)
    except (TimeoutError, asyncio.CancelledError):
        pass


def chat_cell_blocking(line: str, cell: str) -> None:
    """The fallback: block until the reply ends. Approvals never wait for a UI."""
    shell, options, agent, prompt, settings = _prepare(line, cell)
    if options.background:
        if not in_kernel(shell):
            raise UsageError("--background needs a Jupyter kernel (it streams into a widget with a Stop button)")
        return chat_cell_background(shell, options, agent, prompt, settings)
    approver = NonInteractiveApprover(settings)
    if not in_kernel(shell):
        stream = agent.stream(prompt, approval_handler=approver)
        _print_as_it_comes(stream)
        _store_output(shell, options, stream.result())
        return
    live = LiveReply(agent.name, agent.config.model, settings, agent.runtime.loop, widget=False)
    stream = _start(agent, prompt, live, approver)
    live.follow(stream)
    try:  # KeyboardInterrupt cancels the turn (ChatStream.result does that) and propagates
        response = stream.result()
    finally:
        concurrent.futures.wait([live.finished], FINISH_WAIT)
    _store_output(shell, options, response)


def chat_cell_background(shell: Any, options: ChatOptions, agent: Agent, prompt: str,
                         settings: DisplaySettings) -> None:
    """Return at once; the reply streams into this cell (pinned by its context) with a Stop button."""
    live = LiveReply(agent.name, agent.config.model, settings, agent.runtime.loop)
    live.on_finish = lambda response, error: _store_output(shell, options, response)
    live.follow(_start(agent, prompt, live, CellApprover(live, settings)))


def _print_as_it_comes(stream: ChatStream) -> None:
    """No kernel (terminal IPython): print the text as it streams."""
    try:
        for event in stream:
            if isinstance(event, TextDelta):
                sys.stdout.write(event.text)
                sys.stdout.flush()
    finally:
        sys.stdout.write("\n")
