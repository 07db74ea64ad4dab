"""`%%chat NAME --map DF [-o VAR] [--concurrency N] [--batch | --auto]`: the cell body is agent.map's
template over DF's rows.

Thin over `agent.amap` (awaited, so the widget's Stop button and the interrupt button work while it runs)
and `agent.map` (the blocking fallback). `-o VAR` stores the result frame; without it the frame is shown.
"""
from __future__ import annotations

import asyncio
from typing import Any

from IPython import get_ipython
from IPython.core.error import UsageError
from IPython.display import display

from ..runtime.errors import AgyError
from .cell import ChatOptions, ReplyInterrupted, _magics, parse_chat_line


def _prepare(line: str, cell: str) -> tuple[ChatOptions, Any, Any, dict[str, Any]]:
    shell = get_ipython()
    options = parse_chat_line(line)
    magics = _magics(shell)
    usage = type(magics).chat.parser.format_usage().strip()
    if options.interpolate or options.background:
        raise UsageError(f"--map fills {{column}} from each row and waits for the map: leave out -i and "
                         f"--background\n{usage}")
    if options.map not in shell.user_ns:
        raise UsageError(f"--map: no variable {options.map!r} in the namespace\n{usage}")
    if not cell.strip():
        raise UsageError("the cell is empty: write the prompt template in the cell body, e.g. "
                         "'Classify this ticket: {text}'")
    try:
        agent = magics.directory.get(options.agent)
    except AgyError as exc:
        raise UsageError(f"{exc}\n{usage}") from None
    return options, agent, shell.user_ns[options.map], {"concurrency": options.concurrency, "mode": options.mode}


def _deliver(options: ChatOptions, result: Any) -> None:
    if options.output:
        get_ipython().user_ns[options.output] = result
    else:
        display(result)


async def map_cell_async(line: str, cell: str) -> None:
    options, agent, rows, settings = _prepare(line, cell)
    try:
        result = await agent.amap(rows, cell.strip(), **settings)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise ReplyInterrupted(f"the map of {agent.name!r} was stopped; its finished rows are kept: run the "
                               "cell again to finish the others") from None
    except AgyError as exc:
        raise UsageError(str(exc)) from None
    _deliver(options, result)


def map_cell_blocking(line: str, cell: str) -> None:
    options, agent, rows, settings = _prepare(line, cell)
    try:
        result = agent.map(rows, cell.strip(), **settings)
    except AgyError as exc:
        raise UsageError(str(exc)) from None
    _deliver(options, result)
