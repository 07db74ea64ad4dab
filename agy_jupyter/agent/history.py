"""Typed conversation history: messages, token usage, tool-call records and a turn's response."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "model"]
MessageKind = Literal["prompt", "reply", "tool_results", "summary"]
MessageStatus = Literal["complete", "cancelled", "error"]


class Usage(BaseModel):
    """Token counts. Adding two Usage values sums every field."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    cached_tokens: int = 0
    tool_prompt_tokens: int = 0
    total_tokens: int = 0
    calls: int = 0  # model calls counted in this usage

    @classmethod
    def from_metadata(cls, metadata: types.GenerateContentResponseUsageMetadata | None) -> "Usage":
        if metadata is None:
            return cls()
        prompt = metadata.prompt_token_count or 0
        output = metadata.candidates_token_count or 0
        thinking = metadata.thoughts_token_count or 0
        tool_prompt = metadata.tool_use_prompt_token_count or 0
        return cls(prompt_tokens=prompt, output_tokens=output, thinking_tokens=thinking,
                   cached_tokens=metadata.cached_content_token_count or 0, tool_prompt_tokens=tool_prompt,
                   total_tokens=metadata.total_token_count or prompt + output + thinking + tool_prompt,
                   calls=1)

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(**{name: getattr(self, name) + getattr(other, name) for name in Usage.model_fields})


class Message(BaseModel):
    """One entry of the history: a user prompt, a model reply, tool results, or a summary."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    role: Role
    parts: list[types.Part]
    kind: MessageKind
    turn: int
    time: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    usage: Usage | None = None
    status: MessageStatus = "complete"
    excluded: bool = False  # kept in the transcript, not sent to the model (compacted or unanswered)
    grounding: types.GroundingMetadata | None = None  # a reply's search / URL sources (never sent back)

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if p.text and not p.thought)

    @property
    def thoughts(self) -> str:
        return "".join(p.text for p in self.parts if p.text and p.thought)

    @property
    def function_calls(self) -> list[types.FunctionCall]:
        return [p.function_call for p in self.parts if p.function_call is not None]

    @property
    def function_responses(self) -> list[types.FunctionResponse]:
        return [p.function_response for p in self.parts if p.function_response is not None]

    def to_content(self) -> types.Content:
        return types.Content(role=self.role, parts=self.parts)


class ToolCallRecord(BaseModel):
    """A tool call in a turn and what became of it."""

    id: str | None
    name: str
    args: dict[str, Any]
    status: Literal["pending", "ok", "error", "denied", "cancelled"] = "pending"
    result: dict[str, Any] | None = None
    decided_by: str | None = None  # "policy", "hook", "user", "no handler"
    duration: float | None = None


class ChatResponse(BaseModel):
    """What one turn produced: text, thoughts, tool calls, usage and why it stopped."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    agent: str
    turn: int
    text: str = ""
    thoughts: str = ""
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    citations: list[dict[str, str]] = Field(default_factory=list)  # [{title, uri}] the reply was grounded in
    code_runs: list[dict[str, str]] = Field(default_factory=list)  # Gemini's code_execution: code, outcome, output
    usage: Usage = Field(default_factory=Usage)
    stop_reason: str = "STOP"
    cancelled: bool = False
    parsed: Any = None  # the response_schema instance, when the agent has one
    parse_error: str | None = None

    def __str__(self) -> str:
        return self.text


def saved_form(message: Message) -> dict[str, Any]:
    """The message as JSON-ready data (bytes such as thought signatures in base64): what `%agent save` and
    the conversation store write, and `import_history` reads back."""
    return message.model_dump(mode="json", exclude_none=True)


def mark_unfinished_turn(messages: list[Message], turn: int, status: MessageStatus) -> None:
    """Mark what a turn that did not complete left: its replies and tool results get `status`; a prompt
    nothing answered stays in the transcript only (excluded), so the next turn's request is valid."""
    this_turn = [m for m in messages if m.turn == turn and m.kind != "summary"]
    model_output = any(m.role == "model" for m in this_turn)
    for message in this_turn:
        if message.role == "model" or message.kind == "tool_results":
            message.status = status
    if not model_output and this_turn:
        this_turn[0].status = status
        this_turn[0].excluded = True


def contents_for_model(messages: list[Message], *, tool_media: bool = True) -> list[types.Content]:
    """The history as request contents: excluded messages dropped, same-role neighbours merged.

    Merging keeps the request alternating user/model even when a cancelled turn left two user
    messages in a row (tool results followed by the next prompt). `tool_media=False` leaves out the
    images of tool results (FunctionResponse.parts) for models that refuse them; the history keeps them.
    """
    contents = [m.to_content() for m in messages if not m.excluded and m.parts]
    if not tool_media:
        contents = [types.Content(role=c.role, parts=[_without_media(p) for p in c.parts or []]) for c in contents]
    return merge_same_role(contents)


TOOL_MEDIA_LEFT_OUT = ("{count} image(s) or file(s) this tool returned were not sent: this model does not take "
                       "media in tool results (Gemini 3 models do)")


def _without_media(part: types.Part) -> types.Part:
    response = part.function_response
    if response is None or not response.parts:
        return part
    note = TOOL_MEDIA_LEFT_OUT.format(count=len(response.parts))
    lean = response.model_copy(update={"parts": None, "response": {**(response.response or {}), "media": note}})
    return part.model_copy(update={"function_response": lean})


def merge_same_role(contents: list[types.Content]) -> list[types.Content]:
    """Join neighbouring contents of the same role into one."""
    merged: list[types.Content] = []
    for content in contents:
        if merged and merged[-1].role == content.role:
            merged[-1] = types.Content(role=content.role, parts=[*merged[-1].parts, *content.parts])
        else:
            merged.append(content)
    return merged


def unanswered_calls(messages: list[Message]) -> list[types.FunctionCall]:
    """Function calls of the last model message that no later message answers."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "model" and not message.excluded:
            answered = {r.id or r.name for m in messages[index + 1:] for r in m.function_responses}
            return [c for c in message.function_calls if (c.id or c.name) not in answered]
    return []


def history_is_valid(contents: list[types.Content]) -> bool:
    """Every function call is answered by the next user content, and roles alternate."""
    for index, content in enumerate(contents):
        if index and content.role == contents[index - 1].role:
            return False
        calls = [p.function_call for p in content.parts or [] if p.function_call]
        if content.role == "model" and calls:
            following = contents[index + 1] if index + 1 < len(contents) else None
            answered = {p.function_response.id or p.function_response.name
                        for p in (following.parts or [] if following else []) if p.function_response}
            if any((c.id or c.name) not in answered for c in calls):
                return False
    return not contents or contents[0].role == "user"
