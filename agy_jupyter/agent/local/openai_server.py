"""An OpenAI-compatible server (Ollama, LM Studio, vLLM, llama.cpp's server) behind GeminiBackend's calls.

`POST {base_url}/chat/completions` with `stream: true`, read as server-sent events through httpx (the
client google-genai itself uses). Cancelling the turn closes the response, hence the connection;
servers stop generating when their client goes away (llama-cpp-python's server checks between chunks).
HTTP errors become google-genai's own error types, so rate limits and server errors take the same
retry and classification path as Gemini's. Usage is the server's (`stream_options.include_usage`);
a server that sends none gets no usage counted.
"""
from __future__ import annotations

import json
from typing import Any, AsyncIterator

import httpx
from google.genai import errors, types

from .openai_chat import StreamReader, merge, to_chat_request

CONNECT_TIMEOUT = 10.0


class OpenAIServerBackend:
    """One httpx client per server and key, shared by the runtime's agents."""

    def __init__(self, base_url: str, api_key: str | None = None):
        self.base_url = base_url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # no read timeout: a local model may think for long; the runtime's chat timeout bounds a turn
        self.client = httpx.AsyncClient(base_url=base_url, headers=headers,
                                        timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT))

    def __repr__(self) -> str:
        return f"<OpenAIServerBackend {self.base_url}>"

    async def stream(self, model: str, contents: list[types.Content],
                     config: types.GenerateContentConfig) -> AsyncIterator[types.GenerateContentResponse]:
        request = to_chat_request(contents, config)
        body: dict[str, Any] = {"model": model.split(":", 1)[-1], "messages": request.messages, "stream": True,
                                "stream_options": {"include_usage": True}, **request.options}
        if request.tools:
            body["tools"] = request.tools
        if request.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "reply", "schema": request.json_schema}}
        try:
            response = await self.client.send(self.client.build_request("POST", "/chat/completions", json=body),
                                              stream=True)
        except httpx.TransportError as exc:
            raise errors.ServerError(503, {"error": {"code": 503, "status": "UNAVAILABLE",
                                                     "message": f"cannot reach {self.base_url}: {exc!r}"}}) from None
        if response.status_code >= 400:
            text = (await response.aread()).decode("utf-8", "replace")
            await response.aclose()
            raise _http_error(response.status_code, text)
        return self._read(response)

    async def _read(self, response: httpx.Response) -> AsyncIterator[types.GenerateContentResponse]:
        reader = StreamReader()
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    raise _http_error(500, json.dumps(chunk))
                out = reader.feed(chunk)
                if out is not None:
                    yield out
            yield reader.final()
        finally:
            await response.aclose()  # closing the connection is what stops the server's generation

    async def generate(self, model: str, contents: list[types.Content],
                       config: types.GenerateContentConfig) -> types.GenerateContentResponse:
        return merge([r async for r in await self.stream(model, contents, config)])

    async def aclose(self) -> None:
        await self.client.aclose()


def _http_error(code: int, text: str) -> errors.APIError:
    """google-genai's error type for an HTTP status, with the server's message."""
    try:
        detail = json.loads(text)
    except ValueError:
        detail = {}
    error = detail.get("error") if isinstance(detail, dict) else None
    message = (error.get("message") if isinstance(error, dict) else error) or (detail.get("detail") if isinstance(
        detail, dict) else None) or text[:300] or "no message"
    body = {"error": {"code": code, "message": str(message), "status": "OPENAI_SERVER_ERROR"}}
    return errors.ClientError(code, body) if code < 500 else errors.ServerError(code, body)
