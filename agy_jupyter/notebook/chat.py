"""`display_chat`: what a `%%chat` cell does, as a call scripts and `await` cells can make.

>>> response = await agy.display_chat(agent, "Summarise df")          # in a notebook cell
>>> response = agy.display_chat_blocking(agent, "Summarise df")       # anywhere, blocking

Where it runs decides what it shows:
- awaited in a Jupyter kernel: a live widget in this cell, Approve / Deny by click (the cell stays
  running, so clicks are handled while it awaits), and a static copy in its place at the end;
- `display_chat_blocking` in a kernel: a blocking call cannot take clicks (they would run after it),
  so the reply shows as coalesced text and approvals follow the non-interactive setting;
- no kernel (a script, terminal IPython): the text is printed as it streams; approvals follow the
  non-interactive setting (`AgyMagics.headless_approval`), never a UI nobody can answer;
- `background=True` (kernel only): returns the ChatStream at once; the reply streams into this cell
  with a Stop button and `output` is assigned on the main thread when it ends.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from dataclasses import replace
from typing import Any

from IPython import get_ipython

from ..agent.api import Agent
from ..agent.directory import AgentDirectory, agents
from ..agent.events import TextDelta, ToolCallStarted, ToolFinished
from ..agent.history import ChatResponse
from ..runtime.errors import AgyError, ConfigError
from ..runtime.stream import ChatStream
from .approvals import CellApprover, NonInteractiveApprover
from .live_reply import DisplaySettings, LiveReply
from .run_python import BlockingJobs, jobs_run_by
from .transformer import in_kernel

FINISH_WAIT = 5.0  # the static copy follows the reply within milliseconds; this only bounds a wedged loop


async def display_chat(agent: Agent | str | None, prompt: Any, *, output: str | None = None,
                       background: bool = False, show_thoughts: bool | None = None,
                       settings: DisplaySettings | None = None) -> ChatResponse | ChatStream:
    """Ask `agent` and show the reply in this cell as %%chat does; return the ChatResponse.

    agent: an Agent, a name from `%agent list`, or None for the default agent.
    output: a variable of the user namespace to store the reply text in (as `%%chat -o VAR`).
    background: return the running ChatStream at once (await it for the response); kernel only.
    show_thoughts: show the model's thoughts (None: `AgyMagics.show_thoughts`).
    settings: the display settings (None: the `AgyMagics` settings of this shell, else the defaults).
    An error of the turn is raised after the static copy shows it.
    """
    agent, settings, shell = _resolve(agent, show_thoughts, settings)
    if background:
        return _start_background(shell, agent, prompt, settings, output)
    if not in_kernel(shell):
        stream = agent.stream(prompt, approval_handler=NonInteractiveApprover(settings))
        response = await _print_async(stream)
        return _store(shell, output, response)
    live = LiveReply(agent.name, agent.config.model, settings, agent.runtime.loop)
    stream = _start(agent, prompt, live, CellApprover(live, settings))
    live.follow(stream)
    try:  # an interrupt or a typed error propagates after the static copy is written
        response = await stream.aresult()
    finally:
        await until_finished(live)
    return _store(shell, output, response)


def display_chat_blocking(agent: Agent | str | None, prompt: Any, *, output: str | None = None,
                          background: bool = False, show_thoughts: bool | None = None,
                          settings: DisplaySettings | None = None) -> ChatResponse | ChatStream:
    """`display_chat` for code that cannot await. Ctrl-C / the interrupt button cancels the turn.

    In a kernel a blocking call cannot receive clicks, so approvals follow the non-interactive setting
    and the reply shows as text; `await display_chat(...)` gives the widget and the buttons.
    """
    agent, settings, shell = _resolve(agent, show_thoughts, settings)
    if background:
        return _start_background(shell, agent, prompt, settings, output)
    approver = NonInteractiveApprover(settings)
    if not in_kernel(shell):
        stream = agent.stream(prompt, approval_handler=approver)
        return _store(shell, output, _print_blocking(stream))
    live = LiveReply(agent.name, agent.config.model, settings, agent.runtime.loop, widget=False)
    jobs = BlockingJobs()  # the kernel's loop is blocked under this call: run_python's code runs here
    stream = _start(agent, prompt, live, approver, jobs)
    live.follow(stream)
    try:  # KeyboardInterrupt cancels the turn and propagates
        try:
            jobs.serve_until(stream.done)
        except KeyboardInterrupt:
            stream.cancel()
            raise
        response = stream.result()
    finally:
        concurrent.futures.wait([live.finished], FINISH_WAIT)
    return _store(shell, output, response)


def current_settings(shell: Any = None) -> DisplaySettings:
    """The display settings of `%config AgyMagics` when the extension is loaded, else the defaults."""
    magics = _registered_magics(shell if shell is not None else get_ipython())
    return magics.display_settings() if magics is not None else DisplaySettings()


def current_directory(shell: Any = None) -> AgentDirectory:
    """The agents `%agent` manages on this shell (the process-wide `agents` without the extension)."""
    magics = _registered_magics(shell if shell is not None else get_ipython())
    return magics.directory if magics is not None else agents


def _registered_magics(shell: Any) -> Any:
    from . import registered_magics

    return registered_magics(shell)


def _resolve(agent: Agent | str | None, show_thoughts: bool | None,
             settings: DisplaySettings | None) -> tuple[Agent, DisplaySettings, Any]:
    shell = get_ipython()
    if not isinstance(agent, Agent):
        agent = current_directory(shell).get(agent)
    settings = settings if settings is not None else current_settings(shell)
    if show_thoughts is not None:
        settings = replace(settings, show_thoughts=show_thoughts)
    return agent, settings, shell


def _start(agent: Agent, prompt: Any, live: LiveReply, handler: Any, jobs: Any = None) -> ChatStream:
    try:  # run_python's code runs for this cell on the kernel's main thread: its loop, or `jobs`
        with jobs_run_by(live.code_runner(jobs or live.main)):
            return agent.stream(prompt, approval_handler=handler)
    except AgyError:
        live.abandon()
        raise


def _start_background(shell: Any, agent: Agent, prompt: Any, settings: DisplaySettings,
                      output: str | None) -> ChatStream:
    """Return at once; the reply streams into this cell (pinned by its context) with a Stop button."""
    if not in_kernel(shell):
        raise ConfigError("a background reply needs a Jupyter kernel (it streams into a widget with a Stop button)",
                          hint="leave out background=True / --background here")
    live = LiveReply(agent.name, agent.config.model, settings, agent.runtime.loop)
    live.on_finish = lambda response, error: _store(shell, output, response)  # on the main thread
    stream = _start(agent, prompt, live, CellApprover(live, settings))
    live.follow(stream)
    return stream


def _store(shell: Any, output: str | None, response: Any) -> Any:
    """`output = response.text` in the user namespace; call it on the main thread only."""
    if output and response is not None and shell is not None:
        shell.user_ns[output] = response.text
    return response


async def until_finished(live: LiveReply) -> None:
    """Wait until the static copy is written, at most FINISH_WAIT. A cancel while waiting propagates."""
    finished = asyncio.wrap_future(live.finished)
    # asyncio.wait, not wait_for: a timeout must not cancel `finished` (the reply still sets it later)
    await asyncio.wait({finished}, timeout=FINISH_WAIT)


def _terminal_line(event: Any) -> str:
    """What a terminal shows for one event: the text, and a line per tool call."""
    if isinstance(event, TextDelta):
        return event.text
    if isinstance(event, ToolCallStarted):
        return f"\n[tool {event.name}({_short_args(event.args)})]\n"
    if isinstance(event, ToolFinished):
        why = event.result.get("error") if event.status != "ok" and isinstance(event.result, dict) else None
        return f"[tool {event.name} → {event.status}]{f' {_shorten(str(why), 240)}' if why else ''}\n"
    return ""


def _short_args(args: dict[str, Any]) -> str:
    return _shorten(", ".join(f"{key}={value!r}" for key, value in args.items()), 80)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _write(text: str) -> None:
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()


def _print_blocking(stream: ChatStream) -> ChatResponse:
    try:
        for event in stream:
            _write(_terminal_line(event))
    finally:
        _write("\n")
    return stream.result()


async def _print_async(stream: ChatStream) -> ChatResponse:
    try:
        async for event in stream:
            _write(_terminal_line(event))
    finally:
        _write("\n")
    return await stream.aresult()
