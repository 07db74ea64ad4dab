"""`local_replies()`: FakeGemini replies written by the embedded local model, to record a cassette without a key.

    from agy_jupyter.testing import FakeGemini, local_replies, record, replay

    os.environ.setdefault("GEMINI_API_KEY", "fake-key")      # see below
    with FakeGemini(default=local_replies()) as fake, record("x.json", upstream=fake):
        agy.Agent("demo", temperature=0, max_output_tokens=64).chat("Say hi")   # answered by SmolLM2
    with replay("x.json"):                                    # no llama_cpp needed from here on
        agy.Agent("demo", temperature=0, max_output_tokens=64).chat("Say hi")

The agent must talk to the fake as to Gemini, so some Gemini key must be set (any value; it is not written):
with none, an agent on a Gemini model runs the embedded model in its own process and nothing is recorded.
From a shell: ``python -m agy_jupyter.testing --local`` serves it, ``--record F --local`` records it.

Each generate request's body (camelCase wire JSON) is read back into google-genai types, which accept the
wire names as aliases, and answered by the same EmbeddedBackend that ``model="local"`` uses: the reply holds
the model's whole answer (text in a few chunks, function calls), its finish reason, and the usage counted
by the model's tokenizer. The server calls this on its request threads; one lock makes requests take turns
(the model runs one generation at a time anyway), each on its own short-lived event loop.
"""
from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from google.genai import types

from .fake_gemini import RecordedRequest, normalize_keys, to_camel
from .replies import Chunk, Reply, Usage, _split_text

__all__ = ["LocalReplies", "local_replies"]

_CONFIG_FIELDS = frozenset(to_camel(name) for name in types.GenerateContentConfig.model_fields)


def request_to_genai(body: dict[str, Any]) -> tuple[list[types.Content], types.GenerateContentConfig]:
    """A generate request's wire body as the (contents, config) that a backend's `generate` takes."""
    body = normalize_keys(body)
    contents = [types.Content.model_validate(c) for c in body.get("contents") or []]
    fields = {**{k: v for k, v in body.items() if k not in ("contents", "generationConfig", "model")},
              **(body.get("generationConfig") or {})}
    # Fields google-genai's config does not know (newer API additions) mean nothing to a local model.
    config = types.GenerateContentConfig.model_validate({k: v for k, v in fields.items() if k in _CONFIG_FIELDS})
    return contents, config


def response_to_reply(response: types.GenerateContentResponse, chunks: int = 3) -> Reply:
    """A whole (merged) response as a Reply: its text in `chunks` pieces, then its function calls."""
    candidate = (response.candidates or [types.Candidate()])[0]
    parts = (candidate.content.parts if candidate.content else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    pieces = [Chunk.text(t) for t in _split_text(text, chunks)] if text else []
    pieces += [Chunk.function_call(p.function_call.name or "", p.function_call.args, id=p.function_call.id)
               for p in parts if p.function_call]
    metadata = response.usage_metadata
    usage = Usage(prompt=metadata.prompt_token_count or 0, output=metadata.candidates_token_count or 0) \
        if metadata else None
    finish = candidate.finish_reason.value if candidate.finish_reason else "STOP"
    return Reply(chunks=pieces, finish_reason=finish, usage=usage)


class LocalReplies:
    """A reply callable for FakeGemini answering with a GGUF run in this process (see the module docstring)."""

    def __init__(self, path: str | os.PathLike | None = None, *, chunks: int = 3):
        from ..agent.local.credentials import local_credentials
        # Checked now, without loading the model: a missing llama_cpp or GGUF is a ConfigError saying what to do.
        self._credentials = local_credentials("local" if path is None else f"local:{os.fspath(path)}")
        self.chunks = chunks
        self._backend: Any = None
        self._lock = threading.Lock()

    def __call__(self, rec: RecordedRequest) -> Reply:
        if not isinstance(rec.body, dict) or rec.method not in ("generateContent", "streamGenerateContent"):
            raise ValueError(f"local_replies answers Gemini generate requests, not {rec.method}")
        contents, config = request_to_genai(rec.body)
        with self._lock:
            response = asyncio.run(self._open().generate(rec.model, contents, config))
        return response_to_reply(response, self.chunks)

    def _open(self) -> Any:
        """The backend, opened on first use; the model loads on its first generation (~0.2 s) and stays."""
        if self._backend is None:
            from ..agent.local import open_backend
            self._backend = open_backend(self._credentials)
        return self._backend

    def close(self) -> None:
        """Free the model (after a generation still running)."""
        with self._lock:
            if self._backend is not None:
                asyncio.run(self._backend.aclose())
                self._backend = None

    def __enter__(self) -> "LocalReplies":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def local_replies(path: str | os.PathLike | None = None, *, chunks: int = 3) -> LocalReplies:
    """Replies from the embedded model (or the GGUF at `path`): ``FakeGemini(default=local_replies())``."""
    return LocalReplies(path, chunks=chunks)
