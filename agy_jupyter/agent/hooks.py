"""Hooks: user callables (sync or async) the agent calls at fixed points of a turn.

- pre_turn(prompt_parts) / post_turn(response)
- pre_tool(request) -> Decision | bool | None: the first non-None answer decides the call, before policies
- post_tool(record) / on_tool_error(record, error)
- on_compaction(info)
A hook that raises is logged and skipped: a broken hook must not break the conversation.
"""
from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from .policies import Decision

log = logging.getLogger(__name__)

Hook = Callable[..., Any]


class Hooks(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    pre_turn: list[Hook] = Field(default_factory=list)
    post_turn: list[Hook] = Field(default_factory=list)
    pre_tool: list[Hook] = Field(default_factory=list)
    post_tool: list[Hook] = Field(default_factory=list)
    on_tool_error: list[Hook] = Field(default_factory=list)
    on_compaction: list[Hook] = Field(default_factory=list)

    async def run(self, point: str, *args: Any) -> list[Any]:
        """Call every hook of `point`; return their answers (None for one that failed)."""
        answers = []
        for hook in getattr(self, point):
            try:
                answer = hook(*args)
                if inspect.isawaitable(answer):
                    answer = await answer
            except Exception as exc:
                log.warning("agy hook %s %r failed: %r", point, getattr(hook, "__name__", hook), exc)
                answer = None
            answers.append(answer)
        return answers

    async def decide_tool(self, request: Any) -> Decision | None:
        """The first pre_tool hook that answers decides; None lets the policies decide."""
        for answer in await self.run("pre_tool", request):
            if answer is None:
                continue
            if isinstance(answer, bool):
                return Decision.ALLOW if answer else Decision.DENY
            return Decision(answer)
        return None
