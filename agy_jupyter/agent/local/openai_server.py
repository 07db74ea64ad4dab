"""An OpenAI-compatible server (Ollama, LM Studio, vLLM, llama.cpp's server) behind GeminiBackend's calls.

`POST {base_url}/chat/completions` with `stream: true`, read as server-sent events through httpx (the
client google-genai itself uses). Cancelling the turn closes the response, hence the connection;
servers stop generating when their client goes away (llama-cpp-python's server checks between chunks).
HTTP errors become google-genai's own error types, so rate limits and server errors take the same
retry and classification path as Gemini's. Usage is the server's (`stream_options.include_usage`:
Ollama, vLLM, LM Studio and llama.cpp's server send it; llama-cpp-python's 0.3.36 server does not, so
its streamed replies count no tokens). A server that cannot stream a tool call (llama-cpp-python's fails
the request with "Automatic streaming tool choice is not supported") is asked again with `stream: false`.
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
        if request.tools:  # "auto" is OpenAI's default, but llama-cpp-python's server offers no tools without it
            body.update(tools=request.tools, tool_choice="auto")
        if request.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "reply", "schema": request.json_schema}}
        try:
            response = await self._post(body)
        except errors.ServerError:
            if not request.tools:
                raise
            return self._whole(body)  # some servers drop a tool call they cannot stream (see the docstring)
        return self._read(response, body)

    async def _whole(self, body: dict[str, Any]) -> AsyncIterator[types.GenerateContentResponse]:
        yield await self._once(body)

    async def _post(self, body: dict[str, Any], attempts: int = 2) -> httpx.Response:
        request = self.client.build_request("POST", "/chat/completions", json=body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.RemoteProtocolError as exc:
            if attempts > 1:  # a kept-alive connection the server had dropped (as it does after a failed stream)
                return await self._post(body, attempts - 1)
            raise _unavailable(f"{self.base_url} dropped the request: {exc!r}") from None
        except httpx.TransportError as exc:
            raise _unavailable(f"cannot reach {self.base_url}: {exc!r}") from None
        if response.status_code >= 400:  # (a 5xx before any reply may also be a tool call it cannot stream)
            text = (await response.aread()).decode("utf-8", "replace")
            await response.aclose()
            raise _http_error(response.status_code, text)
        return response

    async def _read(self, response: httpx.Response, body: dict[str, Any]
                    ) -> AsyncIterator[types.GenerateContentResponse]:
        reader = StreamReader()
        finished = False
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    raise _http_error(500, json.dumps(chunk))
                out = reader.feed(chunk)
                if out is not None:
                    yield out
        except httpx.TransportError:
            pass  # judged below, like a stream that ended without [DONE]
        finally:
            await response.aclose()  # closing the connection is what stops the server's generation
        if not finished and body.get("tools") and not (reader.text or reader.calls):
            # Some servers cannot stream a tool call the model chose (llama-cpp-python 0.3.36 fails with
            # "Automatic streaming tool choice is not supported"): ask again, not streaming.
            async for whole in self._whole(body):
                yield whole
            return
        if not finished:
            raise _unavailable(f"{self.base_url} closed the stream before it finished")
        yield reader.final()

    async def _once(self, body: dict[str, Any]) -> types.GenerateContentResponse:
        """The same request answered whole (`stream: false`), as one response."""
        single = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        response = await self._post(single)
        try:
            reply = json.loads(await response.aread())
        finally:
            await response.aclose()
        reader = StreamReader()
        choice = (reply.get("choices") or [{}])[0]
        texts = reader.feed({"choices": [{"delta": choice.get("message") or {},
                                          "finish_reason": choice.get("finish_reason")}]})
        final = reader.final(reply.get("usage"))
        parts = [*(texts.candidates[0].content.parts if texts else []), *final.candidates[0].content.parts]
        final.candidates[0].content.parts = parts
        return final

    async def generate(self, model: str, contents: list[types.Content],
                       config: types.GenerateContentConfig) -> types.GenerateContentResponse:
        return merge([r async for r in await self.stream(model, contents, config)])

    async def aclose(self) -> None:
        await self.client.aclose()


def _unavailable(message: str) -> errors.APIError:
    return errors.ServerError(503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": message}})


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
