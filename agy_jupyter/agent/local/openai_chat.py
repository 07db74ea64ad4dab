"""Gemini requests to OpenAI chat-completions requests, and the chat-completions stream back to Gemini responses.

Both local backends speak this shape: llama-cpp-python's completions (the embedded model) and any
OpenAI-compatible server (Ollama, LM Studio, vLLM, llama.cpp's server). What comes back is made of
real google-genai types, so the agent loop reads a local reply exactly as it reads Gemini's.

`flat=True` writes tool calls and tool results as plain text turns ("functions.NAME:" + JSON, the
notation of llama-cpp-python's chatml-function-calling format): a GGUF chat template knows only
system/user/assistant text, and that format's own template drops the `tool` role.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.genai import types

FINISH_REASONS = {"stop": "STOP", "tool_calls": "STOP", "function_call": "STOP", "length": "MAX_TOKENS",
                  "content_filter": "SAFETY"}
MEDIA_LEFT_OUT = "[{mime} content left out: this local model reads text only]"


@dataclass
class ChatRequest:
    """One chat-completions request: messages, tools and sampling options (OpenAI names)."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # temperature, top_p, max_tokens, stop
    json_schema: dict[str, Any] | None = None  # the reply must be JSON matching this


def to_chat_request(contents: list[types.Content], config: types.GenerateContentConfig, *,
                    flat: bool = False) -> ChatRequest:
    """The chat-completions equivalent of a google-genai request."""
    messages: list[dict[str, Any]] = []
    system = _system_text(config.system_instruction)
    if system:
        messages.append({"role": "system", "content": system})
    names: dict[str, str] = {}  # call id -> tool name, for tool results that only carry the id
    for content in contents:
        messages.extend(_messages(content, names, flat))
    calling = config.tool_config.function_calling_config if config.tool_config else None
    tools_off = calling is not None and calling.mode == types.FunctionCallingConfigMode.NONE
    tools = [] if tools_off else [_tool(d) for tool in config.tools or [] for d in tool.function_declarations or []]
    options = {"temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.max_output_tokens,
               "stop": config.stop_sequences or None}
    schema = None
    if config.response_schema is not None:
        schema = (config.response_schema.model_json_schema() if hasattr(config.response_schema, "model_json_schema")
                  else config.response_schema)
    elif config.response_json_schema is not None:
        schema = config.response_json_schema
    return ChatRequest(messages, tools, {k: v for k, v in options.items() if v is not None}, schema)


def _system_text(instruction: Any) -> str:
    if instruction is None:
        return ""
    if isinstance(instruction, str):
        return instruction
    if isinstance(instruction, types.Content):
        return "".join(p.text or "" for p in instruction.parts or [])
    if isinstance(instruction, types.Part):
        return instruction.text or ""
    return "\n".join(_system_text(item) for item in instruction)


def _messages(content: types.Content, names: dict[str, str], flat: bool) -> list[dict[str, Any]]:
    role = "assistant" if content.role == "model" else "user"
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for part in content.parts or []:
        if part.thought:
            continue  # a model's thoughts are its own; they are not sent back
        if part.text:
            texts.append(part.text)
        elif part.function_call is not None:
            call = part.function_call
            call_id = call.id or f"call_{len(names)}"
            names[call_id] = call.name or ""
            calls.append({"id": call_id, "type": "function",
                          "function": {"name": call.name, "arguments": json.dumps(call.args or {})}})
        elif part.function_response is not None:
            response = part.function_response
            name = response.name or names.get(response.id or "", "")
            results.append({"role": "tool", "tool_call_id": response.id or "", "name": name,
                            "content": json.dumps(response.response or {}, default=str)})
        elif part.inline_data is not None or part.file_data is not None:
            data = part.inline_data or part.file_data
            texts.append(MEDIA_LEFT_OUT.format(mime=data.mime_type or "media"))
    if flat:
        texts += [f"functions.{c['function']['name']}:\n{c['function']['arguments']}" for c in calls]
        texts += [f"functions.{r['name']} returned:\n{r['content']}" for r in results]
        return [{"role": role, "content": "\n".join(texts)}] if texts else []
    out: list[dict[str, Any]] = [{k: v for k, v in r.items() if k != "name"} for r in results]
    if texts or calls:
        # "" rather than null beside tool calls: OpenAI takes both, llama-cpp-python's server only a string
        message: dict[str, Any] = {"role": role, "content": "\n".join(texts)}
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out


def _tool(declaration: types.FunctionDeclaration) -> dict[str, Any]:
    if declaration.parameters_json_schema is not None:
        parameters = declaration.parameters_json_schema
    elif declaration.parameters is not None:
        parameters = declaration.parameters.json_schema.model_dump(mode="json", exclude_none=True)
    else:
        parameters = {"type": "object", "properties": {}}
    function = {"name": declaration.name, "parameters": parameters}
    if declaration.description:
        function["description"] = declaration.description
    return {"type": "function", "function": function}


class StreamReader:
    """Reads chat-completions stream chunks (dicts) and gives google-genai responses.

    Text and reasoning deltas come out at once, one response per chunk; tool calls arrive in pieces
    (ids and names first, arguments in fragments) and come out whole in `final()`, with the finish
    reason and the usage.
    """

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, int] | None = None
        self.text: list[str] = []

    def feed(self, chunk: dict[str, Any]) -> types.GenerateContentResponse | None:
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choice = (chunk.get("choices") or [None])[0]
        if not choice:
            return None
        delta = choice.get("delta") or choice.get("message") or {}
        for call in delta.get("tool_calls") or []:
            slot = self.calls.setdefault(call.get("index", len(self.calls)), {"id": "", "name": "", "arguments": ""})
            function = call.get("function") or {}
            slot["id"] = call.get("id") or slot["id"]
            slot["name"] += function.get("name") or ""
            slot["arguments"] += function.get("arguments") or ""
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        parts = []
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if thought:
            parts.append(types.Part(text=thought, thought=True))
        if delta.get("content"):
            self.text.append(delta["content"])
            parts.append(types.Part(text=delta["content"]))
        return _response(parts) if parts else None

    def final(self, usage: dict[str, int] | None = None) -> types.GenerateContentResponse:
        """The closing response: whole tool calls, the finish reason, the usage (given, else the stream's)."""
        parts = [types.Part(function_call=types.FunctionCall(id=call["id"] or None, name=call["name"],
                                                             args=_arguments(call["arguments"])))
                 for _, call in sorted(self.calls.items())]
        usage = usage or self.usage or {}
        metadata = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=usage.get("prompt_tokens", 0), candidates_token_count=usage.get("completion_tokens", 0),
            total_token_count=usage.get("total_tokens") or usage.get("prompt_tokens", 0) + usage.get(
                "completion_tokens", 0))
        finish = FINISH_REASONS.get(self.finish_reason or "stop", "OTHER")
        return _response(parts, finish, metadata)


def _arguments(text: str) -> dict[str, Any]:
    """A call's arguments; text that is not a JSON object is handed on as is, for the tool to refuse."""
    try:
        args = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"unparsed_arguments": text}
    return args if isinstance(args, dict) else {"unparsed_arguments": text}


def _response(parts: list[types.Part], finish: str | None = None,
              usage: types.GenerateContentResponseUsageMetadata | None = None) -> types.GenerateContentResponse:
    candidate = types.Candidate(content=types.Content(role="model", parts=parts),
                                finish_reason=types.FinishReason(finish) if finish else None)
    return types.GenerateContentResponse(candidates=[candidate], usage_metadata=usage)


def merge(responses: list[types.GenerateContentResponse]) -> types.GenerateContentResponse:
    """One response holding a whole stream (for non-streaming calls such as compaction's summary)."""
    texts = "".join(p.text for r in responses for c in r.candidates or [] for p in (c.content.parts or [])
                    if p.text and not p.thought)
    last = responses[-1] if responses else _response([], "STOP")
    calls = [p for p in (last.candidates[0].content.parts or []) if p.function_call]
    parts = ([types.Part(text=texts)] if texts else []) + calls
    return _response(parts, last.candidates[0].finish_reason, last.usage_metadata)
