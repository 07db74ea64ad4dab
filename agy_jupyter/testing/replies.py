"""Reply scripting for :class:`~agy_jupyter.testing.FakeGemini`.

A :class:`Reply` describes what the fake server answers to one model request
(``streamGenerateContent`` or ``generateContent``): the chunks of a streamed
answer, their timing, the finish reason and usage, or an HTTP error, and
optionally a transport fault (drop / stall / malformed data) in the middle.

Builders return new ``Reply`` objects (the dataclass is frozen), so a Reply can
be reused as ``fake.default`` and chained freely::

    Reply.text("Hello world", chunks=5, delay=0.05, ttft=0.2)
    Reply(chunks=[Chunk.thought("hmm"), Chunk.text("a", thought_signature=b"sig"),
                  Chunk.function_call("add", {"a": 1}, id="call-1")],
          usage=Usage(prompt=10, output=5, thoughts=2))
    Reply.function_call("add", {"a": 1}, id="call-1")
    Reply.text("partial", finish_reason="MAX_TOKENS")
    Reply.text("nope", finish_reason="SAFETY")      # adds safetyRatings
    Reply.blocked(reason="SAFETY")                  # promptFeedback, no candidates
    Reply.error(429, retry_delay=2.0, quota_id="GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
    Reply.text("x" * 100, chunks=10).drop_after(3)  # 3 chunks, then TCP close mid-body
    Reply.text("x" * 100, chunks=10).stall_after(2) # 2 chunks, then silence until the client leaves
    Reply.text("x" * 100, chunks=10).malformed_after(2)  # 2 chunks, then ``data: {not json``
    Reply.echo(prefix="You said: ")
    Reply.code_execution("print(6 * 7)", "42\\n", text="It is 42.")   # Gemini's code_execution parts
    Reply.grounded("Paris is the capital.", sources=[("Wikipedia", "https://en.wikipedia.org/wiki/Paris")])

Rendering (:meth:`Reply.render`) turns a Reply into a :class:`Plan` for one
concrete request: echo text, estimated usage, ``modelVersion`` (the requested
model) and ``responseId`` depend on the request.

JSON script format (``Reply.from_dict``, used by ``python -m agy_jupyter.testing --script``)
------------------------------------------------------------------------------------------
A script file is a JSON list of replies, served in order (after that the CLI's
default reply answers), or an object ``{"replies": [...], "default": {...}}``.
Each reply is a string (plain text reply) or an object. Keys (all optional):

* ``"text": "..."`` with ``"chunks": N`` - a text reply split into N chunks.
* ``"echo": true`` (optionally ``"prefix": "You said: "``, ``"chunks": N``).
* ``"function_call": {"name": "add", "args": {...}, "id": "call-1"}``.
* ``"function_calls": [{"name": ..., "args": ..., "id": ...}, ...]`` - one chunk, several calls.
* ``"code_execution": {"code": "...", "output": "...", "outcome": "OUTCOME_OK", "text": "..."}``.
* ``"text"`` with ``"sources": [["title", "https://..."], ...]`` (and ``"queries"``) - a grounded reply.
* ``"chunks": [CHUNK, ...]`` - explicit chunks, each one of
  ``{"text": "..."}``, ``{"thought": "..."}``, ``{"function_call": {...}}``,
  ``{"function_calls": [...]}``, ``{"code": "...", "language": "PYTHON"}``,
  ``{"code_result": "...", "outcome": "OUTCOME_OK"}`` or ``{"parts": [raw API part dicts]}``; any chunk
  may add ``"thought_signature": "..."`` (a string is sent as its UTF-8 bytes, base64-encoded) and
  ``"metadata": {candidate fields}`` (e.g. ``groundingMetadata``).
* ``"blocked": "SAFETY"`` - the prompt is blocked (``true`` means ``"SAFETY"``).
* ``"error": 429`` with ``"message"``, ``"status"``, ``"retry_delay"`` (seconds),
  ``"quota_id"``, ``"quota_value"``, ``"quota_metric"``, ``"retry_after"``.
* Common: ``"finish_reason"`` (default ``"STOP"``), ``"usage": {"prompt", "output",
  "thoughts", "cached"}``, ``"delay"``, ``"ttft"`` (seconds), ``"safety_ratings"``,
  ``"drop_after": N``, ``"stall_after": N``, ``"malformed_after": N``.

Example::

    ["plain text reply",
     {"text": "Hello world", "chunks": 3, "delay": 0.1},
     {"chunks": [{"thought": "let me add"}, {"function_call": {"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}}]},
     {"error": 429, "retry_delay": 2, "quota_id": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quota_value": "15"},
     {"echo": true, "prefix": "Echo: "}]
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover - typing only, avoids an import cycle
    from .fake_gemini import RecordedRequest

__all__ = ["Chunk", "Usage", "Reply", "Plan", "text_chars", "estimate_tokens", "format_duration", "grounding_metadata"]

# google.rpc.Code names for the HTTP statuses the Gemini API returns.
STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# Messages close to what the real API says, so error rendering code sees realistic text.
DEFAULT_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    401: "API key not valid. Please pass a valid API key.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: ("You exceeded your current quota, please check your plan and billing details. "
          "For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."),
    500: "An internal error has occurred. Please retry or report in "
         "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}

_HARM_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)


def default_safety_ratings(category: str = "HARM_CATEGORY_DANGEROUS_CONTENT") -> list[dict[str, Any]]:
    """Ratings like the real API sends on a SAFETY stop: one category HIGH and blocked, others NEGLIGIBLE."""
    ratings: list[dict[str, Any]] = []
    for cat in _HARM_CATEGORIES:
        if cat == category:
            ratings.append({"category": cat, "probability": "HIGH", "blocked": True})
        else:
            ratings.append({"category": cat, "probability": "NEGLIGIBLE"})
    return ratings


def format_duration(seconds: float) -> str:
    """google.protobuf.Duration JSON: ``"2s"`` for whole seconds, ``"0.500s"`` for fractions."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.3f}s"


def text_chars(contents: Iterable[Mapping[str, Any]] | None) -> int:
    """Number of characters in all text parts of (camelCase-normalised) contents."""
    total = 0
    for content in contents or ():
        if not isinstance(content, Mapping):
            continue
        for part in content.get("parts") or ():
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                total += len(part["text"])
    return total


def estimate_tokens(contents: Iterable[Mapping[str, Any]] | None) -> int:
    """The fake's token "count": characters of text // 4 (as used by countTokens)."""
    return text_chars(contents) // 4


def _signature(sig: bytes | str | None) -> str | None:
    """Thought signatures are bytes in the SDK and base64 on the wire."""
    if sig is None:
        return None
    if isinstance(sig, str):
        sig = sig.encode("utf-8")
    return base64.b64encode(sig).decode("ascii")


def _split_text(text: str, chunks: int) -> list[str]:
    """Split `text` into `chunks` contiguous pieces of near-equal length (fewer if text is short)."""
    n = max(1, min(int(chunks), len(text))) if text else 1
    return [text[i * len(text) // n:(i + 1) * len(text) // n] for i in range(n)]


def _function_call_part(name: str, args: Mapping[str, Any] | None, id: str | None,
                        thought_signature: bytes | str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": dict(args or {})}
    if id is not None:
        call["id"] = id
    part: dict[str, Any] = {"functionCall": call}
    sig = _signature(thought_signature)
    if sig is not None:
        part["thoughtSignature"] = sig
    return part


def _call_tuple(call: Any) -> tuple[str, Mapping[str, Any] | None, str | None]:
    """Accept (name, args), (name, args, id) or {"name", "args", "id"}."""
    if isinstance(call, Mapping):
        return call["name"], call.get("args"), call.get("id")
    call = tuple(call)
    return call[0], (call[1] if len(call) > 1 else None), (call[2] if len(call) > 2 else None)


@dataclass(frozen=True)
class Usage:
    """Token usage reported on the final chunk (``usageMetadata``)."""

    prompt: int = 0
    output: int = 0
    thoughts: int = 0
    cached: int = 0

    @property
    def total(self) -> int:
        # Like the real API: cached tokens are part of the prompt count, thoughts are extra.
        return self.prompt + self.output + self.thoughts

    def to_json(self) -> dict[str, int]:
        data = {"promptTokenCount": self.prompt, "candidatesTokenCount": self.output}
        if self.thoughts > 0:
            data["thoughtsTokenCount"] = self.thoughts
        if self.cached > 0:
            data["cachedContentTokenCount"] = self.cached
        data["totalTokenCount"] = self.total
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Usage":
        return cls(prompt=int(data.get("prompt", 0)), output=int(data.get("output", 0)),
                   thoughts=int(data.get("thoughts", 0)), cached=int(data.get("cached", 0)))


@dataclass(frozen=True)
class Chunk:
    """One streamed event: the parts of one ``GenerateContentResponse`` candidate.

    ``parts`` are API wire dicts (camelCase), e.g. ``{"text": "hi"}``.
    """

    parts: tuple[dict[str, Any], ...] = ()
    metadata: Mapping[str, Any] | None = None  # candidate fields sent with the parts (groundingMetadata, …)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(dict(p) for p in self.parts))
        object.__setattr__(self, "metadata", dict(self.metadata) if self.metadata else None)

    @classmethod
    def text(cls, text: str, *, thought_signature: bytes | str | None = None) -> "Chunk":
        part: dict[str, Any] = {"text": text}
        sig = _signature(thought_signature)
        if sig is not None:
            part["thoughtSignature"] = sig
        return cls((part,))

    @classmethod
    def thought(cls, text: str, *, thought_signature: bytes | str | None = None) -> "Chunk":
        part: dict[str, Any] = {"text": text, "thought": True}
        sig = _signature(thought_signature)
        if sig is not None:
            part["thoughtSignature"] = sig
        return cls((part,))

    @classmethod
    def function_call(cls, name: str, args: Mapping[str, Any] | None = None, *, id: str | None = None,
                      thought_signature: bytes | str | None = None) -> "Chunk":
        return cls((_function_call_part(name, args, id, thought_signature),))

    @classmethod
    def function_calls(cls, calls: Iterable[Any]) -> "Chunk":
        """Several function calls in one chunk: ``[(name, args, id), ...]`` or dicts."""
        return cls(tuple(_function_call_part(*_call_tuple(c)) for c in calls))

    @classmethod
    def code(cls, code: str, language: str = "PYTHON", *, id: str | None = None) -> "Chunk":
        """An ``executableCode`` part: Gemini's code_execution tool runs this code."""
        from google.genai import types
        return cls((_wire(types.Part(executable_code=types.ExecutableCode(code=code, language=language, id=id))),))

    @classmethod
    def code_result(cls, output: str, outcome: str = "OUTCOME_OK", *, id: str | None = None) -> "Chunk":
        """A ``codeExecutionResult`` part: what the server's run of the code printed."""
        from google.genai import types
        result = types.CodeExecutionResult(outcome=outcome, output=output, id=id)
        return cls((_wire(types.Part(code_execution_result=result)),))

    def with_metadata(self, **fields: Any) -> "Chunk":
        """This chunk with candidate fields added, e.g. ``groundingMetadata={...}`` (wire names)."""
        return replace(self, metadata={**(self.metadata or {}), **fields})

    @classmethod
    def raw(cls, *parts: Mapping[str, Any]) -> "Chunk":
        """Arbitrary API part dicts, sent as given."""
        return cls(tuple(dict(p) for p in parts))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> "Chunk":
        if isinstance(data, str):
            return cls.text(data)
        if data.get("metadata"):
            return cls.from_dict({k: v for k, v in data.items() if k != "metadata"}).with_metadata(**data["metadata"])
        sig = data.get("thought_signature")
        if "text" in data:
            return cls.text(data["text"], thought_signature=sig)
        if "thought" in data:
            return cls.thought(data["thought"], thought_signature=sig)
        if "function_call" in data:
            name, args, id_ = _call_tuple(data["function_call"])
            return cls.function_call(name, args, id=id_, thought_signature=sig)
        if "function_calls" in data:
            return cls.function_calls(data["function_calls"])
        if "code" in data:
            return cls.code(data["code"], data.get("language", "PYTHON"))
        if "code_result" in data:
            return cls.code_result(data["code_result"], data.get("outcome", "OUTCOME_OK"))
        if "parts" in data:
            return cls.raw(*data["parts"])
        raise ValueError(f"unrecognised chunk: {data!r}")

    def _chars(self, thought: bool) -> int:
        return sum(len(p["text"]) for p in self.parts
                   if isinstance(p.get("text"), str) and bool(p.get("thought")) == thought)


@dataclass(frozen=True)
class ErrorSpec:
    """An HTTP error answer; rendered per request because QuotaFailure names the model."""

    code: int
    message: str | None = None
    status: str | None = None
    retry_delay: float | None = None
    quota_id: str | None = None
    quota_value: str | None = None
    quota_metric: str | None = None
    retry_after: float | None = None
    details: tuple[dict[str, Any], ...] = ()

    def body(self, model: str) -> dict[str, Any]:
        details: list[dict[str, Any]] = []
        if self.quota_id is not None:
            violation: dict[str, Any] = {
                "quotaMetric": self.quota_metric or _quota_metric(self.quota_id),
                "quotaId": self.quota_id,
                "quotaDimensions": {"model": model, "location": "global"},
            }
            if self.quota_value is not None:
                violation["quotaValue"] = str(self.quota_value)
            details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]})
            details.append({"@type": "type.googleapis.com/google.rpc.Help", "links": [
                {"description": "Learn more about Gemini API quotas",
                 "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]})
        if self.retry_delay is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": format_duration(self.retry_delay)})
        details.extend(dict(d) for d in self.details)
        return {"error": {
            "code": self.code,
            "message": self.message if self.message is not None
            else DEFAULT_MESSAGES.get(self.code, f"Fake error {self.code}."),
            "status": self.status or STATUS_NAMES.get(self.code, "UNKNOWN"),
            "details": details,
        }}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        value = self.retry_after
        return {"Retry-After": str(int(value)) if float(value).is_integer() else str(value)}


def _quota_metric(quota_id: str) -> str:
    """A plausible quotaMetric for a quotaId (the real API pairs them like this)."""
    kind = "input_token_count" if "InputTokens" in quota_id else "requests"
    tier = "_free_tier" if "FreeTier" in quota_id else ""
    return f"generativelanguage.googleapis.com/generate_content{tier}_{kind}"


@dataclass
class Plan:
    """What the server does for one request (a rendered Reply)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # SSE payloads (streaming)
    merged: dict[str, Any] | None = None                       # single JSON body (non-stream / error)
    is_error: bool = False
    ttft: float = 0.0
    delay: float = 0.0
    drop_at: int | None = None
    stall_at: int | None = None
    malformed_at: int | None = None
    reset: bool = False
    raw: tuple[bytes, ...] | None = None  # the streamed body as these exact pieces (Reply.raw_sse)
    delays: list[float] | None = None  # per-event pauses (a replayed cassette); replaces `delay` where given

    def pause_before(self, slot: int) -> float:
        """Seconds to wait before streamed event `slot` (slot 0 follows `ttft` directly)."""
        if slot == 0:
            return 0.0
        if self.delays is not None and slot < len(self.delays):
            return self.delays[slot]
        return self.delay


@dataclass(frozen=True)
class Reply:
    """A scripted answer to one generate request. See the module docstring."""

    chunks: Sequence[Chunk] = ()
    finish_reason: str | None = "STOP"
    usage: Usage | None = None
    delay: float = 0.0
    ttft: float = 0.0
    safety_ratings: Sequence[Mapping[str, Any]] | None = None
    error_spec: ErrorSpec | None = None
    block_reason: str | None = None
    echo_prefix: str | None = None   # not None: the text is echo_prefix + request.last_user_text
    echo_chunks: int = 1
    drop_at: int | None = None       # set by drop_after()
    stall_at: int | None = None      # set by stall_after()
    malformed_at: int | None = None  # set by malformed_after()
    reset: bool = False              # set by connection_reset()
    raw: tuple[bytes, ...] | None = None  # set by raw_sse()

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunks", tuple(self.chunks))

    # ----------------------------------------------------------------- builders
    @classmethod
    def text(cls, text: str, chunks: int = 1, delay: float = 0.0, ttft: float = 0.0, *,
             finish_reason: str | None = "STOP", usage: Usage | None = None,
             safety_ratings: Sequence[Mapping[str, Any]] | None = None) -> "Reply":
        return cls(chunks=[Chunk.text(t) for t in _split_text(text, chunks)], finish_reason=finish_reason,
                   usage=usage, delay=delay, ttft=ttft, safety_ratings=safety_ratings)

    @classmethod
    def echo(cls, prefix: str = "You said: ", chunks: int = 1, delay: float = 0.0, ttft: float = 0.0) -> "Reply":
        return cls(echo_prefix=prefix, echo_chunks=chunks, delay=delay, ttft=ttft)

    @classmethod
    def function_call(cls, name: str, args: Mapping[str, Any] | None = None, id: str | None = None, *,
                      thought_signature: bytes | str | None = None, **kwargs: Any) -> "Reply":
        return cls(chunks=[Chunk.function_call(name, args, id=id, thought_signature=thought_signature)], **kwargs)

    @classmethod
    def function_calls(cls, calls: Iterable[Any], **kwargs: Any) -> "Reply":
        return cls(chunks=[Chunk.function_calls(calls)], **kwargs)

    @classmethod
    def code_execution(cls, code: str, output: str, *, outcome: str = "OUTCOME_OK", text: str | None = None,
                       language: str = "PYTHON", **kwargs: Any) -> "Reply":
        """Gemini ran `code` with its code_execution tool: the code part, its result, then `text` if given."""
        chunks = [Chunk.code(code, language), Chunk.code_result(output, outcome)]
        return cls(chunks=[*chunks, *([Chunk.text(text)] if text else [])], **kwargs)

    @classmethod
    def grounded(cls, text: str, sources: Iterable[tuple[str, str]], *, supports: Iterable[Any] | None = None,
                 queries: Iterable[str] = (), chunks: int = 1, **kwargs: Any) -> "Reply":
        """A reply grounded by google_search: `text`, and groundingMetadata on its last chunk.

        sources: (title, uri) pairs; supports: (segment text, [source indices]) pairs, by default the
        whole text supported by every source.
        """
        sources = [tuple(s) for s in sources]
        if supports is None:
            supports = [(text, list(range(len(sources))))] if sources else []
        pieces = [Chunk.text(t) for t in _split_text(text, chunks)]
        pieces[-1] = pieces[-1].with_metadata(groundingMetadata=grounding_metadata(text, sources, supports, queries))
        return cls(chunks=pieces, **kwargs)

    @classmethod
    def blocked(cls, reason: str = "SAFETY", *, safety_ratings: Sequence[Mapping[str, Any]] | None = None,
                ttft: float = 0.0) -> "Reply":
        return cls(block_reason=reason, safety_ratings=safety_ratings, finish_reason=None, ttft=ttft)

    @classmethod
    def error(cls, code: int, message: str | None = None, *, status: str | None = None,
              retry_delay: float | None = None, quota_id: str | None = None, quota_value: str | int | None = None,
              quota_metric: str | None = None, retry_after: float | None = None,
              details: Iterable[Mapping[str, Any]] = (), ttft: float = 0.0) -> "Reply":
        spec = ErrorSpec(code=int(code), message=message, status=status, retry_delay=retry_delay,
                         quota_id=quota_id, quota_value=None if quota_value is None else str(quota_value),
                         quota_metric=quota_metric, retry_after=retry_after,
                         details=tuple(dict(d) for d in details))
        return cls(error_spec=spec, ttft=ttft)

    # ------------------------------------------------------------------ faults
    def drop_after(self, n: int) -> "Reply":
        """Send `n` chunks, then close the TCP connection without ending the chunked body."""
        return replace(self, drop_at=int(n))

    def stall_after(self, n: int) -> "Reply":
        """Send `n` chunks, then nothing until the client disconnects or the server stops."""
        return replace(self, stall_at=int(n))

    def malformed_after(self, n: int) -> "Reply":
        """Send `n` chunks, then the event ``data: {not json`` and end the response."""
        return replace(self, malformed_at=int(n))

    @classmethod
    def raw_sse(cls, body: bytes | str, split_at: Iterable[int] = ()) -> "Reply":
        """Stream `body` exactly as given (anything: broken JSON, unknown fields, no candidates), written in
        pieces cut at the offsets `split_at`, each its own HTTP chunk: for fuzzing what a client reads."""
        data = body.encode() if isinstance(body, str) else bytes(body)
        cuts = sorted({c for c in split_at if 0 < c < len(data)})
        return cls(raw=tuple(data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])))

    @classmethod
    def connection_reset(cls) -> "Reply":
        """Reset the TCP connection before any byte of the reply (a server restarting, a full listen backlog):
        the request had no effect, so a client may retry it."""
        return cls(reset=True)

    def with_(self, **changes: Any) -> "Reply":
        """A copy with fields changed, e.g. ``reply.with_(delay=0.1, ttft=0.5)``."""
        return replace(self, **changes)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> "Reply":
        """Build a Reply from the JSON script format described in the module docstring."""
        if isinstance(data, str):
            return cls.text(data)
        d = dict(data)
        common: dict[str, Any] = {}
        for key in ("delay", "ttft"):
            if key in d:
                common[key] = float(d[key])
        if "finish_reason" in d:
            common["finish_reason"] = d["finish_reason"]
        if "usage" in d:
            common["usage"] = Usage.from_dict(d["usage"])
        if "safety_ratings" in d:
            common["safety_ratings"] = d["safety_ratings"]

        if "error" in d:
            reply = cls.error(int(d["error"]), d.get("message"), status=d.get("status"),
                              retry_delay=d.get("retry_delay"), quota_id=d.get("quota_id"),
                              quota_value=d.get("quota_value"), quota_metric=d.get("quota_metric"),
                              retry_after=d.get("retry_after"), details=d.get("details", ()),
                              ttft=float(d.get("ttft", 0.0)))
        elif "blocked" in d:
            reason = d["blocked"] if isinstance(d["blocked"], str) else "SAFETY"
            reply = cls.blocked(reason, safety_ratings=d.get("safety_ratings"), ttft=float(d.get("ttft", 0.0)))
        elif d.get("echo"):
            prefix = d["echo"] if isinstance(d["echo"], str) else d.get("prefix", "You said: ")
            reply = cls(echo_prefix=prefix, echo_chunks=int(d.get("chunks", 1)), **common)
        elif "code_execution" in d:
            spec = dict(d["code_execution"])
            reply = cls.code_execution(spec["code"], spec.get("output", ""), outcome=spec.get("outcome", "OUTCOME_OK"),
                                       text=spec.get("text"), **common)
        elif "text" in d and "sources" in d:
            reply = cls.grounded(d["text"], d["sources"], queries=d.get("queries", ()),
                                 chunks=int(d.get("chunks", 1)), **common)
        elif "text" in d:
            reply = cls.text(d["text"], int(d.get("chunks", 1)), **common)
        elif "function_call" in d:
            name, args, id_ = _call_tuple(d["function_call"])
            reply = cls.function_call(name, args, id_, **common)
        elif "function_calls" in d:
            reply = cls.function_calls(d["function_calls"], **common)
        elif isinstance(d.get("chunks"), list):
            reply = cls(chunks=[Chunk.from_dict(c) for c in d["chunks"]], **common)
        else:
            raise ValueError(f"unrecognised reply: {data!r}")

        for key, method in (("drop_after", cls.drop_after), ("stall_after", cls.stall_after),
                            ("malformed_after", cls.malformed_after)):
            if d.get(key) is not None:
                reply = method(reply, int(d[key]))
        return reply

    # ---------------------------------------------------------------- rendering
    def render(self, request: "RecordedRequest") -> Plan:
        """Turn this reply into concrete response bodies for `request`."""
        plan = Plan(ttft=max(0.0, float(self.ttft)), delay=max(0.0, float(self.delay)),
                    drop_at=self.drop_at, stall_at=self.stall_at, malformed_at=self.malformed_at, reset=self.reset,
                    raw=self.raw)
        if self.error_spec is not None:
            plan.status = self.error_spec.code
            plan.is_error = True
            plan.merged = self.error_spec.body(request.model)
            plan.headers = self.error_spec.headers()
            return plan

        meta = {"modelVersion": request.model or "gemini-fake",
                "responseId": f"fake-{request.index}-{secrets.token_hex(6)}"}
        prompt_tokens = max(1, text_chars(request.contents) // 4)

        if self.block_reason is not None:
            ratings = list(self.safety_ratings) if self.safety_ratings is not None else default_safety_ratings()
            event = {"promptFeedback": {"blockReason": self.block_reason, "safetyRatings": ratings},
                     "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
                     **meta}
            plan.events = [event]
            plan.merged = event
            return plan

        chunks = list(self.chunks)
        if self.echo_prefix is not None:
            chunks = [Chunk.text(t) for t in _split_text(self.echo_prefix + request.last_user_text,
                                                          self.echo_chunks)]
        if not chunks:
            chunks = [Chunk()]
        usage = self.usage
        if usage is None:
            output_chars = sum(c._chars(thought=False) for c in chunks)
            thought_chars = sum(c._chars(thought=True) for c in chunks)
            usage = Usage(prompt=prompt_tokens, output=max(1, output_chars // 4), thoughts=thought_chars // 4)
        ratings = self.safety_ratings
        if ratings is None and self.finish_reason == "SAFETY":
            ratings = default_safety_ratings()

        def candidate(parts: list[dict[str, Any]], last: bool, metadata: Mapping[str, Any] | None = None
                      ) -> dict[str, Any]:
            cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0, **(metadata or {})}
            if last:
                if self.finish_reason is not None:
                    cand["finishReason"] = self.finish_reason
                if ratings is not None:
                    cand["safetyRatings"] = [dict(r) for r in ratings]
            return cand

        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            event: dict[str, Any] = {"candidates": [candidate([dict(p) for p in chunk.parts], last, chunk.metadata)]}
            if last:
                event["usageMetadata"] = usage.to_json()
            event.update(meta)
            plan.events.append(event)

        merged_metadata = {k: v for c in chunks for k, v in (c.metadata or {}).items()}
        plan.merged = {"candidates": [candidate(_merge_parts(chunks), True, merged_metadata)],
                       "usageMetadata": usage.to_json(), **meta}
        return plan


def _merge_parts(chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """All parts of all chunks in one list, joining adjacent text parts of the same kind.

    That is what a non-streamed answer looks like: one candidate with whole text parts.
    """
    merged: list[dict[str, Any]] = []
    for chunk in chunks:
        for part in chunk.parts:
            part = dict(part)
            prev = merged[-1] if merged else None
            if (prev is not None and isinstance(prev.get("text"), str) and isinstance(part.get("text"), str)
                    and bool(prev.get("thought")) == bool(part.get("thought"))
                    and set(part) <= {"text", "thought"}):
                prev["text"] += part["text"]
            else:
                merged.append(part)
    return merged



def _wire(model: Any) -> dict[str, Any]:
    """A google-genai object as the API sends it (camelCase keys, no empty fields)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def grounding_metadata(text: str, sources: Sequence[tuple[str, str]], supports: Iterable[Any],
                       queries: Iterable[str] = ()) -> dict[str, Any]:
    """groundingMetadata (wire form) built from google-genai's types: web chunks, and the segments of
    `text` they support (offsets in UTF-8 bytes, as the API gives them)."""
    from google.genai import types

    encoded = text.encode("utf-8")
    found: list[types.GroundingSupport] = []
    for segment_text, indices in supports:
        indices = list(indices)
        start = encoded.find(segment_text.encode("utf-8"))
        start = max(start, 0)
        found.append(types.GroundingSupport(
            segment=types.Segment(start_index=start, end_index=start + len(segment_text.encode("utf-8")),
                                  text=segment_text),
            grounding_chunk_indices=indices, confidence_scores=[0.9] * len(indices)))
    metadata = types.GroundingMetadata(
        grounding_chunks=[types.GroundingChunk(web=types.GroundingChunkWeb(uri=uri, title=title))
                          for title, uri in sources],
        grounding_supports=found or None, web_search_queries=list(queries) or None)
    return _wire(metadata)
