"""`%%chat`: parse the line, build the prompt, call `display_chat` (notebook/chat.py).

- attached (default, in a kernel with autoawait): the cell is rewritten to `await chat_cell_async(...)`
  so it stays running while the reply streams, Approve / Deny clicks are handled meanwhile, and the
  interrupt button cancels the turn;
- blocking fallback (autoawait off, or no kernel): `display_chat_blocking`;
- background (`--background`): the cell returns at once; the reply streams into it with a Stop button.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from IPython import get_ipython
from IPython.core.error import UsageError

from ..agent.api import Agent
from ..runtime.errors import AgyError
from .chat import display_chat, display_chat_blocking
from .interpolate import interpolate
from .transformer import in_kernel


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
    map: str | None = None  # --map DF: the cell is agent.map's template over DF's rows (notebook/map_cell.py)
    concurrency: int = 8
    mode: str = "interactive"  # --batch / --auto with --map


def parse_chat_line(line: str) -> ChatOptions:
    """Parse `%%chat [NAME] [-o VAR] [-i] [--background] [--no-thoughts]`; UsageError on a bad line."""
    from .magics import AgyMagics, parse_magic_line  # the parser lives with the magic's help text
    args = parse_magic_line(AgyMagics.chat, line)
    if args.o is not None and not args.o.isidentifier():
        raise UsageError(f"-o needs a variable name, got {args.o!r}\n{AgyMagics.chat.parser.format_usage().strip()}")
    if args.mode != "interactive" and args.map is None:
        raise UsageError(f"--{args.mode} goes with --map DF\n{AgyMagics.chat.parser.format_usage().strip()}")
    return ChatOptions(args.name, args.o, args.interpolate, args.background, not args.no_thoughts, args.map,
                       args.concurrency, args.mode)


def _magics(shell: Any) -> Any:
    """The AgyMagics instance registered on this shell (its settings and its agent directory)."""
    from . import registered_magics

    magics = registered_magics(shell) if shell is not None else None
    if magics is None:
        raise UsageError("agy_jupyter is not loaded: run %load_ext agy_jupyter first")
    return magics


def _help_requested(line: str) -> bool:
    from .magics import HELP_FLAGS, AgyMagics
    if HELP_FLAGS & set(line.split()):
        print(AgyMagics.chat.__doc__)
        return True
    return False


def _prepare(line: str, cell: str) -> tuple[ChatOptions, Agent, str, dict[str, Any]]:
    shell = get_ipython()
    options = parse_chat_line(line)
    magics = _magics(shell)
    try:
        agent = magics.directory.get(options.agent)
    except AgyError as exc:
        raise UsageError(f"{exc}\n{type(magics).chat.parser.format_usage().strip()}") from None
    prompt = interpolate(cell, shell.user_ns) if options.interpolate else cell
    if not prompt.strip():
        raise UsageError("the cell is empty: write the prompt in the cell body under %%chat")
    if options.background and not in_kernel(shell):
        raise UsageError("--background needs a Jupyter kernel (it streams into a widget with a Stop button)")
    settings = magics.display_settings()
    call = {"output": options.output, "background": options.background,
            "show_thoughts": settings.show_thoughts and options.show_thoughts, "settings": settings}
    return options, agent, prompt, call


async def chat_cell_async(line: str, cell: str) -> None:
    """The attached mode: awaited by the rewritten cell on the kernel's loop. Returns None (no Out[])."""
    if _help_requested(line):
        return
    if parse_chat_line(line).map is not None:
        from .map_cell import map_cell_async
        return await map_cell_async(line, cell)
    _, agent, prompt, call = _prepare(line, cell)
    try:
        await display_chat(agent, prompt, **call)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise ReplyInterrupted(f"the reply of {agent.name!r} was cancelled; what arrived is kept") from None


def chat_cell_blocking(line: str, cell: str) -> None:
    """The fallback (autoawait off, terminal IPython): block until the reply ends."""
    if _help_requested(line):
        return
    if parse_chat_line(line).map is not None:
        from .map_cell import map_cell_blocking
        return map_cell_blocking(line, cell)
    _, agent, prompt, call = _prepare(line, cell)
    display_chat_blocking(agent, prompt, **call)
