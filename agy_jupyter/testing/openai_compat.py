"""The fake server's OpenAI-compatible face: ``POST /v1/chat/completions`` serving the same scripted Reply.

Why: tools built on the ``openai`` client (chatlab, jupyter-ai's ``openai-chat`` provider through
langchain-openai) can then stream the very same reply, with the same chunking, delays and stalls, from
the same :class:`~agy_jupyter.testing.FakeGemini` as agy_jupyter does, so they can be measured side by
side (benchmarks/peers). Point them at ``fake.openai_url`` (``base_url`` / ``OPENAI_BASE_URL``).

The handler renders the queued :class:`~agy_jupyter.testing.Reply` into a Gemini :class:`Plan` as usual
and this module rewrites that plan's bodies into chat-completion ones:

* ``"stream": true`` -> one ``data: {"object": "chat.completion.chunk", "choices": [{"delta": ...}]}``
  event per Gemini event (text parts become ``delta.content``, function calls ``delta.tool_calls``),
  the finish reason on the last one, a usage-only chunk if ``stream_options.include_usage``, then
  ``data: [DONE]``. Timing faults (``ttft``, ``delay``, ``stall_after``, ``drop_after``) act as on the
  Gemini route.
* otherwise one ``chat.completion`` JSON body; an error Reply becomes ``{"error": {"message", "type",
  "code"}}`` with the same HTTP status.

Requests are recorded with ``method="chatCompletions"``; ``messages`` are turned into Gemini-style
``contents`` (role ``assistant`` -> ``model``, ``system`` -> ``system_instruction``) so
``last_user_text`` and echo replies work unchanged. Thoughts are not sent (chat completions have no
such field); a cassette replay does not answer this route.
"""
from __future__ import annotations

import json
import time
from typing import Any

from .replies import Plan

__all__ = ["CHAT_COMPLETIONS", "DONE_EVENT", "gemini_view", "openai_plan"]

CHAT_COMPLETIONS = "chatCompletions"
DONE_EVENT = b"data: [DONE]\r\n\r\n"

_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
           "PROHIBITED_CONTENT": "content_filter", "BLOCKLIST": "content_filter", "SPII": "content_filter"}


def _message_text(content: Any) -> str:
    """A chat message's content: a string, or a list of parts of which the text ones count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def gemini_view(body: Any) -> dict[str, Any]:
    """The request's fields as a Gemini body (contents, systemInstruction), for RecordedRequest."""
    messages = body.get("messages") if isinstance(body, dict) else None
    contents, system = [], []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        role, text = message.get("role"), _message_text(message.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        else:
            contents.append({"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]})
    view: dict[str, Any] = {"contents": contents}
    if system:
        view["systemInstruction"] = {"parts": [{"text": "\n".join(system)}]}
    return view


def _delta(parts: list[dict[str, Any]], first: bool) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant"} if first else {}
    text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
    if text or first:
        delta["content"] = text
    calls = [p["functionCall"] for p in parts if "functionCall" in p]
    if calls:
        delta["tool_calls"] = [{"index": i, "id": call.get("id") or f"call_{i}", "type": "function",
                                "function": {"name": call["name"], "arguments": json.dumps(call.get("args", {}))}}
                               for i, call in enumerate(calls)]
    return delta


def _usage(event: dict[str, Any]) -> dict[str, int] | None:
    meta = event.get("usageMetadata")
    if not meta:
        return None
    prompt = meta.get("promptTokenCount", 0)
    output = meta.get("candidatesTokenCount", 0) + meta.get("thoughtsTokenCount", 0)
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}


def _finish(candidate: dict[str, Any]) -> str | None:
    reason = candidate.get("finishReason")
    if reason is None:
        return None
    if any("functionCall" in p for p in candidate.get("content", {}).get("parts", [])):
        return "tool_calls"
    return _FINISH.get(reason, "stop")


def openai_plan(plan: Plan, model: str, include_usage: bool) -> Plan:
    """The same plan (timing and faults kept) with chat-completion bodies instead of Gemini ones."""
    if plan.is_error:
        error = (plan.merged or {}).get("error", {})
        plan.merged = {"error": {"message": error.get("message", ""), "type": error.get("status", "error"),
                                 "code": plan.status}}
        return plan
    ident, created = f"chatcmpl-{(plan.merged or {}).get('responseId', 'fake')}", int(time.time())
    head = {"id": ident, "created": created, "model": model}
    events = []
    for index, event in enumerate(plan.events):
        candidate = (event.get("candidates") or [{}])[0]
        parts = candidate.get("content", {}).get("parts", [])
        events.append({**head, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": _delta(parts, index == 0), "finish_reason": _finish(candidate)}]})
    usage = _usage(plan.merged or {})
    if include_usage and usage is not None:
        events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    candidate = ((plan.merged or {}).get("candidates") or [{}])[0]
    message = _delta(candidate.get("content", {}).get("parts", []), first=True)
    plan.merged = {**head, "object": "chat.completion", "usage": usage,
                   "choices": [{"index": 0, "message": message, "finish_reason": _finish(candidate) or "stop"}]}
    plan.events = events
    return plan
