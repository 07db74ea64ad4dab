"""A batch job's requests and answers in google-genai's own types: what goes to the Batch API and what comes back.

- Requests: one `types.InlinedRequest` per prompt, its config from `AgentConfig.generate_config` (the
  agent's model, system instruction, generation settings and, for structured output, response schema)
  without tools, as a batch has no tool loop to answer a call, and without thoughts, which no one reads.
  Each carries `metadata={"key": str(index)}`, the key its answer comes back with.
- Inline or file: the Gemini docs keep inlined requests "under 20MB" in total, so above INLINE_LIMIT_BYTES
  of request JSON the requests go as a JSONL file of `{"key", "request"}` lines, uploaded with
  `client.files.upload`. So do more than INLINE_MAX_REQUESTS: the SDK converts every inlined request's
  config anew (benchmarks/bench_batch.py: ~1.9 ms a request with a response schema, 9.5 s for 5,000
  requests before the create call), while the file's lines are one request converted by the SDK's own
  converter (its private `_InlinedRequest_to_mldev`) and copied with each prompt as its contents: the
  same JSON the SDK sends inline (a test compares the two), at ~30 µs a request.
- Answers: an inlined response or a result-file line becomes (text, error, usage). A request the service
  failed, or an answer with no text (blocked, cut off before any text), has its error set and text None.
  The text is returned as is: structured output is parsed by whoever asked for it (agent.map does
  `output.model_validate_json(row.text)`), so one bad row never fails the whole job's results.
"""
from __future__ import annotations

import json
from typing import Any

from google.genai import _common, types
from google.genai import batches as genai_batches
from pydantic import BaseModel

from .config import AgentConfig
from .history import Usage

INLINE_LIMIT_BYTES = 19_000_000  # the docs' 20 MB for the whole create request, less room for its envelope
INLINE_MAX_REQUESTS = 100  # more go in a file: the SDK's conversion of 100 inlined requests takes ~0.2 s
JSONL_MIME_TYPE = "jsonl"  # what the Batch API docs pass to files.upload for an input file


def request_config(config: AgentConfig, output: type[BaseModel] | None) -> types.GenerateContentConfig:
    """The per-request config: the agent's, no tools, no thoughts, `output` as the response schema if given."""
    changes: dict[str, Any] = {"include_thoughts": False}
    if output is not None:
        changes["response_schema"] = output
    return config.model_copy(update=changes).generate_config(with_tools=False)


def build_requests(config: AgentConfig, prompts: list[str],
                   output: type[BaseModel] | None = None) -> list[types.InlinedRequest]:
    """The requests as google-genai objects, for `client.batches.create` to send inline."""
    generation = request_config(config, output)
    return [types.InlinedRequest(model=config.model, contents=[_user_content(p)], config=generation,
                                 metadata={"key": str(i)}) for i, p in enumerate(prompts)]


def wire_requests(api_client: Any, config: AgentConfig, prompts: list[str],
                  output: type[BaseModel] | None = None) -> list[dict[str, Any]]:
    """The JSON the SDK sends for each request inline ({"request", "metadata"}), converted once and copied."""
    template = types.InlinedRequest(model=config.model, contents=[_user_content("")],
                                    config=request_config(config, output))
    converted = genai_batches._InlinedRequest_to_mldev(api_client, template)
    request = _common.encode_unserializable_types(_common.convert_to_dict(converted))["request"]
    return [{"request": {**request, "contents": [{"parts": [{"text": p}], "role": "user"}]},
             "metadata": {"key": str(i)}} for i, p in enumerate(prompts)]


def fits_inline(wire: list[dict[str, Any]]) -> bool:
    return len(wire) <= INLINE_MAX_REQUESTS and sum(len(json.dumps(w)) for w in wire) <= INLINE_LIMIT_BYTES


def _user_content(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def jsonl_lines(wire: list[dict[str, Any]]) -> bytes:
    """The input file: one {"key", "request"} line per request."""
    return "".join(json.dumps({"key": w["metadata"]["key"], "request": w["request"]}) + "\n" for w in wire).encode()


def answer(response: types.GenerateContentResponse | None, error: Any) -> tuple[str | None, str | None, dict]:
    """(text, error, usage) of one answer."""
    if error is not None:
        return None, _error_text(error), Usage().model_dump()
    if response is None:
        return None, "the service returned neither a response nor an error", Usage().model_dump()
    usage = Usage.from_metadata(response.usage_metadata).model_dump()
    text = _text(response)
    if text:
        return text, None, usage
    return None, _why_no_text(response), usage


def inlined_answers(responses: list[types.InlinedResponse]) -> dict[str, tuple]:
    """Answers by request key (the metadata key; the position if the service dropped the metadata)."""
    return {str((r.metadata or {}).get("key", i)): answer(r.response, r.error) for i, r in enumerate(responses)}


def file_answers(data: bytes) -> dict[str, tuple]:
    """Answers by key from a result file: `{"key", "response"}` or `{"key", "error" | "status"}` lines."""
    found = {}
    for i, line in enumerate(data.decode("utf-8").splitlines()):
        if not line.strip():
            continue
        item = json.loads(line)
        response = item.get("response")
        parsed = types.GenerateContentResponse.model_validate(response) if response is not None else None
        found[str(item.get("key", i))] = answer(parsed, item.get("error") or item.get("status"))
    return found


def _text(response: types.GenerateContentResponse) -> str | None:
    """The answer's text parts, thoughts left out (what `response.text` gives, without its warnings)."""
    candidates = response.candidates or []
    parts = (candidates[0].content.parts or []) if candidates and candidates[0].content else []
    texts = [p.text for p in parts if p.text is not None and not p.thought]
    return "".join(texts) if texts else None


def _why_no_text(response: types.GenerateContentResponse) -> str:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        return f"the prompt was blocked ({_name(feedback.block_reason)})"
    candidates = response.candidates or []
    reason = _name(candidates[0].finish_reason) if candidates and candidates[0].finish_reason else "none"
    return f"the answer has no text (finish reason {reason})"


def _error_text(error: Any) -> str:
    if isinstance(error, BaseModel):
        error = error.model_dump(exclude_none=True)
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message") or json.dumps(error)[:300]
        return f"[{code}] {message}" if code is not None else message
    return str(error)


def _name(value: Any) -> str:
    return getattr(value, "name", None) or str(value)
