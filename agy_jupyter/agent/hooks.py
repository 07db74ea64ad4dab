"""Hooks: user callables (sync or async) the agent calls at fixed points of a turn.

- pre_turn(prompt_parts) / post_turn(response)
- pre_tool(request) -> Decision | bool | None: the first non-None answer decides the call, before policies
- post_tool(record) / on_tool_error(record, error)
- on_compaction(info)
A hook that raises is logged and skipped: a broken hook must not break the conversation.
post_turn is part of the turn: it runs for a turn that completed, before the reply is delivered and
the agent is idle, so it never overlaps the next turn and cancelling the turn stops it.
Sync hooks run on a worker thread (`offload`), so a slow one never stalls the runtime loop; a thread
cannot be stopped, so a sync hook cut short by a cancel finishes on its thread unobserved.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field

from .policies import Decision
from .worker_threads import call_inline

log = logging.getLogger(__name__)

Hook = Callable[..., Any]
Offload = Callable[..., Awaitable[Any]]  # WorkerThreads.call: sync callables on a thread, async on the loop


class Hooks(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    pre_turn: list[Hook] = Field(default_factory=list)
    post_turn: list[Hook] = Field(default_factory=list)
    pre_tool: list[Hook] = Field(default_factory=list)
    post_tool: list[Hook] = Field(default_factory=list)
    on_tool_error: list[Hook] = Field(default_factory=list)
    on_compaction: list[Hook] = Field(default_factory=list)

    async def run(self, point: str, *args: Any, offload: Offload = call_inline) -> list[Any]:
        """Call every hook of `point` in order; return their answers (None for one that failed)."""
        answers = []
        for hook in getattr(self, point):
            try:
                answer = await offload(hook, *args)
            except Exception as exc:
                log.warning("agy hook %s %r failed: %r", point, getattr(hook, "__name__", hook), exc)
                answer = None
            answers.append(answer)
        return answers

    async def decide_tool(self, request: Any, offload: Offload = call_inline) -> Decision | None:
        """The first pre_tool hook that answers decides; None lets the policies decide."""
        for answer in await self.run("pre_tool", request, offload=offload):
            if answer is None:
                continue
            if isinstance(answer, bool):
                return Decision.ALLOW if answer else Decision.DENY
            return Decision(answer)
        return None
