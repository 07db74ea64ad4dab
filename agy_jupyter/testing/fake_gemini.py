"""A fake Gemini API server for tests: real HTTP/1.1 + SSE on 127.0.0.1, stdlib only.

The real ``google.genai.Client`` (sync and ``client.aio``) talks to it when its
base URL points here (``HttpOptions(base_url=fake.url)`` or the environment
variable ``GOOGLE_GEMINI_BASE_URL``)::

    from agy_jupyter.testing import FakeGemini, Reply

    with FakeGemini() as fake:
        fake.enqueue(Reply.text("Hello world", chunks=3, delay=0.05))
        client = fake.client()
        for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
            print(chunk.text)
        assert fake.requests[0].last_user_text == "hi"

Protocol (what google-genai 3.x sends; its default API version is ``v1``, ``v1beta``
when asked, so every ``/v1*/`` prefix is accepted):

* ``POST /{ver}/models/{model}:streamGenerateContent?alt=sse`` -> ``text/event-stream``,
  one ``data: {json}\\r\\n\\r\\n`` event per chunk, ``Transfer-Encoding: chunked`` so the
  connection can be kept alive (the SDK's httpx pool reuses it).
* ``POST /{ver}/models/{model}:generateContent`` -> one JSON response (all chunks merged).
* ``POST /{ver}/models/{model}:countTokens`` -> ``{"totalTokens": chars // 4}``; it does not
  consume a scripted reply.
* The API key comes in the ``x-goog-api-key`` header (or ``?key=``) and is recorded.
* The Batch API (``:batchGenerateContent``, ``batches/{id}`` get, list, cancel, delete) and the Files API's
  resumable upload and download, on a clock the test moves (``fake.batches``): see :mod:`.fake_batch`.
* ``POST /v1/chat/completions`` (OpenAI-compatible, ``fake.openai_url`` as base URL) serves the same
  queued replies as chat completions, streamed (``data: [DONE]`` last) or not; see :mod:`.openai_compat`.

Each generate request pops the next queued reply (FIFO) or uses ``fake.default``
(echo: ``"You said: <last user text>"``). A queued item may be a :class:`Reply` or a
callable ``(RecordedRequest) -> Reply``.

Replay: ``FakeGemini(cassette="session.json", speed="fast")`` answers every model request
(countTokens too) from a recorded cassette instead of the queue; a request the cassette does not
hold gets an HTTP 400 naming the first differing field, is kept in ``fake.cassette_mismatches``,
and makes ``verify_cassette()`` and the ``with`` block's exit raise. See :mod:`.cassette`.

Disconnects: while the server waits (``ttft``, ``delay``, a stall) it ``select``s on
the client socket and a wake-up socket instead of sleeping, so a client that goes
away is noticed within milliseconds and ``stop()`` interrupts any wait at once.
"""
from __future__ import annotations

import copy
import json
import re
import select
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union
from urllib.parse import parse_qs, urlsplit

from .fake_batch import FakeBatches
from .openai_compat import CHAT_COMPLETIONS, DONE_EVENT, gemini_view, openai_plan
from .replies import Plan, Reply, estimate_tokens

if TYPE_CHECKING:  # pragma: no cover - cassette.py imports this module
    from .cassette import Cassette, CassetteMismatch, CassettePlayer

__all__ = ["FakeGemini", "RecordedRequest", "Disconnect", "ReplyLike", "normalize_keys", "to_camel"]

ReplyLike = Union[Reply, Callable[["RecordedRequest"], Reply]]

DEFAULT_API_KEY = "fake-key"

_PATH_RE = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/(?P<collection>models|tunedModels)/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
_MODEL_METHODS = ("streamGenerateContent", "generateContent", "countTokens")


# --------------------------------------------------------------------------- key normalisation
def to_camel(key: str) -> str:
    """``include_thoughts`` -> ``includeThoughts``; camelCase keys are returned unchanged."""
    if "_" not in key or key.startswith("_"):
        return key
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


# Values under these keys are user data (function arguments, raw JSON schemas, labels):
# their keys must not be rewritten, e.g. a tool parameter named ``file_path``.
_OPAQUE_KEYS = frozenset({"args", "response", "parametersJsonSchema", "responseJsonSchema", "labels",
                          "example", "default", "enum", "partialArgs"})
# Maps from user-chosen names to schemas: keep the names, normalise the schemas.
_NAMED_SCHEMA_KEYS = frozenset({"properties", "patternProperties", "$defs", "defs", "definitions"})


def normalize_keys(obj: Any) -> Any:
    """A deep copy of a request body with snake_case keys turned into camelCase.

    The SDK (and hand-written requests) may send either spelling; the API accepts both.
    User data (function-call args, JSON schemas, property names) is left untouched.
    """
    if isinstance(obj, list):
        return [normalize_keys(item) for item in obj]
    if not isinstance(obj, dict):
        return obj
    out: dict[Any, Any] = {}
    for key, value in obj.items():
        ckey = to_camel(key) if isinstance(key, str) else key
        if ckey in _OPAQUE_KEYS:
            out[ckey] = copy.deepcopy(value)
        elif ckey in _NAMED_SCHEMA_KEYS and isinstance(value, dict):
            out[ckey] = {name: normalize_keys(schema) for name, schema in value.items()}
        else:
            out[ckey] = normalize_keys(value)
    return out


def _as_contents(raw: Any) -> list[dict[str, Any]]:
    """The API's ``contents``: usually a list of Content dicts; be lenient with hand-made bodies."""
    if raw is None:
        return []
    if isinstance(raw, (str, dict)):
        raw = [raw]
    contents = []
    for item in raw:
        if isinstance(item, str):
            item = {"role": "user", "parts": [{"text": item}]}
        if isinstance(item, dict):
            contents.append(normalize_keys(item))
    return contents


def _texts(content: Any) -> list[str]:
    """Non-thought text parts of one Content (or a bare string / list of parts)."""
    if isinstance(content, str):
        return [content]
    parts = content.get("parts", []) if isinstance(content, dict) else content
    return [p["text"] for p in parts or []
            if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")]


def _last_user_text(contents: list[dict[str, Any]]) -> str:
    """Text of the latest user turn that has text (tool-result turns have none, so they are skipped)."""
    for content in reversed(contents):
        if content.get("role", "user") == "user":
            texts = _texts(content)
            if texts:
                return "".join(texts)
    return ""


_SERVER_TOOLS = ("googleSearch", "urlContext", "codeExecution", "googleSearchRetrieval", "googleMaps")
_NO_TOOL_MIX = re.compile(r"^gemini-(?:1|2)(?:\.|-|$)")
TOOL_MIX_UNSUPPORTED = "Tool use with function calling is unsupported by the model."
TOOL_MIX_NEEDS_FLAG = ("Please enable tool_config.include_server_side_tool_invocations to use Built-in tools "
                       "with Function calling.")


def _tool_mix_refusal(rec: "RecordedRequest") -> str | None:
    """The real API's 400 message for server tools next to function declarations, if it would refuse."""
    server = any(key in tool for tool in rec.tools if isinstance(tool, dict) for key in _SERVER_TOOLS)
    functions = any(tool.get("functionDeclarations") for tool in rec.tools if isinstance(tool, dict))
    if not (server and functions):
        return None
    if _NO_TOOL_MIX.match(rec.model):
        return TOOL_MIX_UNSUPPORTED
    config = normalize_keys((rec.body or {}).get("toolConfig") or (rec.body or {}).get("tool_config") or {})
    return None if config.get("includeServerSideToolInvocations") else TOOL_MIX_NEEDS_FLAG


# --------------------------------------------------------------------------- records
@dataclass
class RecordedRequest:
    """One request to a model method, as the server received it."""

    index: int
    time: float                    # time.perf_counter() at arrival
    method: str                    # "streamGenerateContent" | "generateContent" | "countTokens" | "chatCompletions"
    model: str                     # e.g. "gemini-2.5-flash"
    path: str                      # including the query string
    headers: dict[str, str]        # lower-case keys
    api_key: str | None
    body: Any                      # parsed JSON exactly as sent (None if it was not JSON)
    contents: list[dict[str, Any]]
    last_user_text: str
    tools: list[dict[str, Any]]
    generation_config: dict[str, Any]
    system_instruction: str | None
    api_version: str = ""          # "v1", "v1beta", ...
    connection: int = 0            # serial number of the TCP connection (equal => keep-alive reuse)
    completed_time: float | None = None  # when the response finished or the client went away
    disconnected: bool = False
    reply: Reply | None = field(default=None, repr=False)  # the reply used (None for countTokens)
    _generation: int = field(default=0, repr=False, compare=False)  # FakeGemini.reset() count at arrival

    @property
    def stream(self) -> bool:
        if self.method == CHAT_COMPLETIONS:  # the OpenAI-compatible route streams when the body asks
            return isinstance(self.body, dict) and bool(self.body.get("stream"))
        return self.method == "streamGenerateContent"

    def function_response(self, call_id: str) -> Any:
        """The `response` of the functionResponse with this call id that the client sent back."""
        return self.function_response_part(call_id).get("response")

    def function_response_part(self, call_id: str) -> dict:
        """The whole functionResponse with this call id (name, response, and media `parts` if any)."""
        for content in self.contents:
            for part in content.get("parts", []):
                response = part.get("functionResponse")
                if response is not None and response.get("id") == call_id:
                    return response
        raise KeyError(f"request {self.index} answers no call {call_id!r}")

    @property
    def normalized_body(self) -> Any:
        """The whole body with camelCase keys."""
        return normalize_keys(self.body)


@dataclass
class Disconnect:
    """The client went away before its response was complete."""

    request_index: int
    time: float          # time.perf_counter() when the server noticed
    chunks_sent: int


# --------------------------------------------------------------------------- HTTP plumbing
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # FakeGemini.stop() joins handler threads itself, with a deadline
    allow_reuse_address = True
    request_queue_size = 128  # the listen backlog: socketserver's 5 reset clients that open 32 connections at once

    def __init__(self, address: tuple[str, int], fake: "FakeGemini"):
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can block on DNS; skip it.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping idle keep-alive connections is normal; don't print tracebacks for it.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)) or self.fake._stopping.is_set():
            return
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name="FakeGemini-conn", daemon=True)
        self.fake._threads = [t for t in self.fake._threads if t.is_alive()] + [thread]
        thread.start()


def _chunk(data: bytes) -> bytes:
    """One piece of a ``Transfer-Encoding: chunked`` body."""
    return b"%X\r\n%s\r\n" % (len(data), data)


class _Gone(Exception):
    """The reply cannot go on: the client closed the connection, or the server is stopping."""

    def __init__(self, by_client: bool):
        super().__init__("client went away" if by_client else "server stopping")
        self.by_client = by_client


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response has Content-Length or is chunked
    disable_nagle_algorithm = True  # else the first chunk after the headers waits ~40 ms for a delayed ACK
    server_version = "FakeGemini/1.0"
    sys_version = ""
    server: _Server
    _rec: RecordedRequest | None = None  # the request being answered (set by _respond)
    _chunks_sent = 0

    # -- connection lifecycle
    def setup(self) -> None:
        super().setup()
        self.fake = self.server.fake
        self.conn_id = self.fake._register_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._unregister_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        if self.fake.log:
            sys.stderr.write(f"[fake-gemini] {self.address_string()} {format % args}\n")

    # -- routes
    def do_GET(self) -> None:
        if self.fake.batches.route(self, "GET", urlsplit(self.path), self._read_body()):
            return
        self._send_json(404, {"error": {"code": 404, "message": f"{self.path} not found", "status": "NOT_FOUND"}})

    def do_DELETE(self) -> None:
        if not self.fake.batches.route(self, "DELETE", urlsplit(self.path), self._read_body()):
            self._send_json(404, {"error": {"code": 404, "message": f"{self.path} not found", "status": "NOT_FOUND"}})

    def do_POST(self) -> None:
        arrival = time.perf_counter()
        raw = self._read_body()
        url = urlsplit(self.path)
        if self.fake.batches.route(self, "POST", url, raw):  # the Batch and Files APIs (fake_batch.py)
            return
        if url.path.rstrip("/").endswith("/chat/completions"):
            self._chat_completions(arrival, raw)
            return
        match = _PATH_RE.match(url.path)
        if not match or match["method"] not in _MODEL_METHODS:
            self._send_json(404, {"error": {"code": 404, "message": f"{url.path} is not a Gemini model method "
                                            "(fake server)", "status": "NOT_FOUND"}})
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        api_key = headers.get("x-goog-api-key") or (parse_qs(url.query).get("key") or [None])[0]
        rec = self.fake._record(arrival=arrival, method=match["method"], model=match["model"], path=self.path,
                                headers=headers, api_key=api_key, body=body, api_version=match["version"],
                                connection=self.conn_id)
        if body is None:
            self._respond(rec, lambda: self._send_json(400, {"error": {
                "code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}))
            return
        player = self.fake._player
        if player is not None:  # replaying a cassette: it answers everything, countTokens included
            self._serve_plan(rec, player.plan_for(action=rec.method, model=rec.model, body=body, index=rec.index,
                                                  secrets=[api_key] if api_key else []))
            self.fake._report_mismatches()
            return
        if rec.method == "countTokens":
            tokens = estimate_tokens(rec.contents)
            self._respond(rec, lambda: self._send_json(200, {
                "totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}))
            return
        refusal = _tool_mix_refusal(rec)
        if refusal is not None:  # the real API refuses such a request before any reply: none is used up
            self._respond(rec, lambda: self._send_json(400, {"error": {
                "code": 400, "message": refusal, "status": "INVALID_ARGUMENT"}}))
            return
        try:
            reply = self.fake._next_reply(rec)
            plan = reply.render(rec)
        except Exception as exc:  # a broken reply callable should fail the test visibly, not hang it
            message = f"FakeGemini reply failed: {exc!r}"
            self._respond(rec, lambda: self._send_json(500, {"error": {
                "code": 500, "message": message, "status": "INTERNAL"}}))
            return
        self._serve_plan(rec, plan)

    def _chat_completions(self, arrival: float, raw: bytes) -> None:
        """The OpenAI-compatible route (see openai_compat): the next queued Reply, in chat-completion form."""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        bearer = headers.get("authorization", "")
        data = body if isinstance(body, dict) else {}
        rec = self.fake._record(arrival=arrival, method=CHAT_COMPLETIONS, model=str(data.get("model", "")),
                                path=self.path, headers=headers, api_key=bearer.removeprefix("Bearer ") or None,
                                body=body, api_version="v1", connection=self.conn_id, view=gemini_view(data))
        if body is None:
            self._respond(rec, lambda: self._send_json(400, {"error": {
                "message": "We could not parse the JSON body of your request.", "type": "invalid_request_error",
                "code": 400}}))
            return
        include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        try:
            plan = openai_plan(self.fake._next_reply(rec).render(rec), rec.model, include_usage)
        except Exception as exc:  # a broken reply callable should fail the test visibly, not hang it
            message = f"FakeGemini reply failed: {exc!r}"
            self._respond(rec, lambda: self._send_json(500, {"error": {"message": message, "type": "server_error",
                                                                       "code": 500}}))
            return
        self._serve_plan(rec, plan)

    def _serve_plan(self, rec: RecordedRequest, plan: Plan) -> None:
        if plan.reset:
            self._reset_connection()
        elif plan.is_error:
            self._respond(rec, lambda: self._serve_error(plan))
        elif rec.stream:
            self._respond(rec, lambda: self._serve_stream(plan))
        else:
            self._respond(rec, lambda: self._serve_single(plan))

    # -- serving a plan
    def _respond(self, rec: RecordedRequest, serve: Callable[[], None]) -> None:
        """Run `serve`; record completion, or a Disconnect if the client went away meanwhile."""
        self._chunks_sent = 0
        self._rec = rec
        try:
            serve()
        except _Gone as gone:
            self.close_connection = True
            if gone.by_client:
                self.fake._record_disconnect(rec, self._chunks_sent)
                return
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
            self.fake._record_disconnect(rec, self._chunks_sent)
            return
        finally:
            self._rec = None
        if rec.completed_time is None:
            rec.completed_time = time.perf_counter()

    def _serve_error(self, plan: Plan) -> None:
        self._wait(plan.ttft)
        self._send_json(plan.status, plan.merged, plan.headers)

    def _serve_single(self, plan: Plan) -> None:
        # A non-streamed answer arrives after the whole "generation" time.
        self._wait(plan.ttft + plan.delay * max(0, len(plan.events) - 1))
        if plan.stall_at is not None:
            self._wait(None)
        payload = json.dumps(plan.merged).encode()
        if plan.malformed_at is not None:
            payload = b"{not json"
        if plan.drop_at is not None:
            # Promise the full body, deliver half, then hang up.
            self._send_headers(200, {"Content-Type": "application/json; charset=UTF-8",
                                     "Content-Length": str(len(payload))})
            self._write(payload[: len(payload) // 2])
            self._hang_up()
            return
        self._send_bytes(200, payload, "application/json; charset=UTF-8")

    def _serve_stream(self, plan: Plan) -> None:
        # Headers go out with the first chunk, as with the real API (errors can still be a status).
        self._wait(plan.ttft)
        self._send_headers(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked",
                                 "Cache-Control": "no-cache"})
        if plan.raw is not None:
            for piece in filter(None, plan.raw):  # an empty HTTP chunk would end the body
                self._write_chunk(piece)
                self._wait(0.001)  # apart, so the client reads them apart
            self._write(b"0\r\n\r\n", final=True)
            return
        events = plan.events
        for slot in range(len(events) + 1):  # slot len(events) = after the last event
            at_end = slot == len(events)

            def fires(at: int | None) -> bool:  # does this fault take the place of event `slot`?
                return at is not None and (at == slot or (at_end and at > slot))

            if fires(plan.stall_at):
                self._wait(None)  # only ends by raising _Gone
            if at_end and not (fires(plan.drop_at) or fires(plan.malformed_at)):
                break
            # The pause before this event (or before the fault replacing it); slot 0 already had ttft.
            # _wait(0) still notices a client that has left.
            self._wait(plan.pause_before(slot))
            if fires(plan.drop_at):
                self._hang_up()
                return
            if fires(plan.malformed_at):
                # Bad event and end-of-body in one write, so the body is complete when the SDK chokes.
                self._write(_chunk(b"data: {not json\r\n\r\n") + b"0\r\n\r\n", final=True)
                return
            self._write_chunk(b"data: " + json.dumps(events[slot]).encode() + b"\r\n\r\n")
            self._chunks_sent += 1
        if self._rec is not None and self._rec.method == CHAT_COMPLETIONS:
            self._write_chunk(DONE_EVENT)  # an OpenAI stream ends with this sentinel event
        self._write(b"0\r\n\r\n", final=True)  # end of the chunked body: the connection stays usable

    # -- waiting without missing a disconnect
    def _wait(self, seconds: float | None) -> None:
        """Wait `seconds` (None: forever), raising _Gone as soon as the client leaves or the server stops.

        ``select`` on the client socket wakes up when the peer closes (FIN/RST make it readable);
        a MSG_PEEK of 0 bytes confirms it. The server's wake-up socket ends the wait on stop().
        """
        deadline = None if seconds is None else time.perf_counter() + max(0.0, seconds)
        wake = self.fake._wake_r
        watch = [self.connection, wake]
        while True:
            if self.fake._stopping.is_set():
                raise _Gone(by_client=False)
            timeout = None if deadline is None else max(0.0, deadline - time.perf_counter())
            try:
                readable, _, _ = select.select(watch, [], [], timeout)
            except (OSError, ValueError):
                raise _Gone(by_client=not self.fake._stopping.is_set()) from None
            if wake in readable:
                raise _Gone(by_client=False)
            if self.connection in readable:
                state = self._peek()
                if state == "gone":
                    raise _Gone(by_client=True)
                if state == "data":
                    # The client sent more bytes (pipelining); peeking can no longer tell a close,
                    # so stop watching the socket; write errors still catch a vanished client.
                    watch = [wake]
            if deadline is not None and time.perf_counter() >= deadline:
                return

    def _peek(self) -> str:
        try:
            data = self.connection.recv(1, socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0))
        except BlockingIOError:
            return "idle"
        except OSError:
            return "gone"
        return "gone" if data == b"" else "data"

    # -- low-level writes
    def _send_headers(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_bytes(self, status: int, payload: bytes, content_type: str,
                    headers: Mapping[str, str] | None = None) -> None:
        self._send_headers(status, {"Content-Type": content_type, "Content-Length": str(len(payload)),
                                    **(headers or {})})
        self._write(payload, final=True)

    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(obj).encode(), "application/json; charset=UTF-8", headers)

    def _write(self, data: bytes, final: bool = False) -> None:
        if final and self._rec is not None:
            # Stamp completion *before* the last bytes leave, so a client that has the whole
            # response always sees completed_time set (a failed write overwrites it as a disconnect).
            self._rec.completed_time = time.perf_counter()
        self.wfile.write(data)  # unbuffered socket writer: sendall, raises BrokenPipe/ConnectionReset

    def _write_chunk(self, data: bytes) -> None:
        self._write(_chunk(data))

    def _reset_connection(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) before sending anything."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _hang_up(self) -> None:
        """Close the TCP connection mid-response (FIN, so bytes already sent are still delivered)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_body(self) -> bytes:
        return read_request_body(self.headers, self.rfile)


def read_request_body(headers: Any, rfile: Any) -> bytes:
    """An HTTP request's body, sent with Content-Length or chunked (also used by the recording proxy)."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        data = bytearray()
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(data)
            data += rfile.read(size)
            rfile.readline()
    length = int(headers.get("Content-Length") or 0)
    return rfile.read(length) if length else b""


# --------------------------------------------------------------------------- the public object
class FakeGemini:
    """A fake Gemini API server running in a background thread. See the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, default: ReplyLike | None = None,
                 api_key: str = DEFAULT_API_KEY, log: bool = False, cassette: Any = None,
                 speed: str | float = "fast"):
        """`cassette`: a path (or a loaded Cassette) to replay; `speed`: "fast", "realtime" or N times faster."""
        self.host = host
        self.port = port
        self.api_key = api_key
        self.log = log
        self.default: ReplyLike = default if default is not None else Reply.echo()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[ReplyLike] = deque()
        self._requests: list[RecordedRequest] = []
        self._disconnects: list[Disconnect] = []
        self._disconnect_cursor = 0
        self._generation = 0  # bumped by reset(): late events from older requests are ignored
        self._connections: dict[socket.socket, int] = {}
        self._connection_serial = 0
        self._threads: list[threading.Thread] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._player: CassettePlayer | None = None
        self._mismatches_reported = 0
        self.batches = FakeBatches(self)  # the Batch API's jobs and files, on a clock tests advance
        if cassette is not None:
            from .cassette import CassettePlayer  # imported here: cassette.py imports this module
            self._player = CassettePlayer(cassette, speed)

    # -- lifecycle
    def start(self) -> "FakeGemini":
        if self._server is not None:
            return self
        self._stopping.clear()
        self._wake_r, self._wake_w = socket.socketpair()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="FakeGemini", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop serving; interrupts stalled replies and closes open connections. Returns within ~`timeout`."""
        server = self._server
        if server is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        assert self._wake_w is not None
        try:
            self._wake_w.send(b"x")  # never drained: every select() on _wake_r returns from now on
        except OSError:
            pass
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # unblock handler threads waiting for the next keep-alive request
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in [self._thread, *self._threads]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        if not self._threads:  # handler threads may still select() on the wake socket otherwise
            self._wake_r.close()
            self._wake_w.close()
        self._server = None
        self._thread = None

    def __enter__(self) -> "FakeGemini":
        return self.start()

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.stop()
        if exc_type is None and self._player is not None:
            self.verify_cassette()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for OpenAI clients (``base_url=`` / ``OPENAI_BASE_URL``): POST {openai_url}/chat/completions."""
        return f"{self.url}/v1"

    def env(self) -> dict[str, str]:
        """Environment variables that point google-genai (and agy_jupyter) at this server."""
        return {"GOOGLE_GEMINI_BASE_URL": self.url, "GEMINI_API_KEY": self.api_key}

    def client(self, api_key: str | None = None, **http_options: Any) -> Any:
        """A ``google.genai.Client`` for this server; extra kwargs go to ``HttpOptions``."""
        from google import genai
        from google.genai import types

        return genai.Client(api_key=api_key or self.api_key,
                            http_options=types.HttpOptions(base_url=self.url, **http_options))

    # -- scripting
    def enqueue(self, *replies: ReplyLike) -> "FakeGemini":
        """Queue replies; each generate request (stream or not) pops the next one."""
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """Number of queued replies not yet used."""
        with self._lock:
            return len(self._queue)

    # -- inspection
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> list[Disconnect]:
        with self._lock:
            return list(self._disconnects)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least `n` requests have arrived; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._requests) >= n, timeout)

    def wait_for_disconnect(self, timeout: float = 5.0) -> Disconnect | None:
        """The next Disconnect not yet returned by this method, waiting up to `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._disconnects) > self._disconnect_cursor, timeout):
                return None
            self._disconnect_cursor += 1
            return self._disconnects[self._disconnect_cursor - 1]

    def reset(self) -> None:
        """Forget queued replies, recorded requests and disconnects (request indices restart at 0)."""
        with self._changed:
            self._queue.clear()
            self._requests.clear()
            self._disconnects.clear()
            self._disconnect_cursor = 0
            self._generation += 1
            self._changed.notify_all()

    # -- replay
    @property
    def cassette(self) -> Cassette | None:
        """The cassette being replayed (None when replies come from the queue)."""
        return self._player.cassette if self._player is not None else None

    @property
    def cassette_mismatches(self) -> list[CassetteMismatch]:
        """Requests the replayed cassette held no recording for (each was answered with HTTP 400)."""
        return list(self._player.mismatches) if self._player is not None else []

    def verify_cassette(self, complete: bool = False) -> None:
        """Raise CassetteMismatchError if a request did not match; with `complete`, also if a recording
        was never requested."""
        if self._player is None:
            raise RuntimeError("this FakeGemini is not replaying a cassette (pass cassette=...)")
        from .cassette import CassetteMismatchError

        unused = self._player.unused if complete else []
        if self._player.mismatches or unused:
            raise CassetteMismatchError(self._player.mismatches, unused)

    def _report_mismatches(self) -> None:
        """Say each new mismatch on stderr at once: a notebook's error cell may hide it."""
        with self._lock:
            new = self._player.mismatches[self._mismatches_reported:] if self._player is not None else []
            self._mismatches_reported += len(new)
        for mismatch in new:
            sys.stderr.write(f"[fake-gemini] {mismatch}\n")

    # -- called by handler threads
    def _register_connection(self, conn: socket.socket) -> int:
        with self._lock:
            self._connection_serial += 1
            self._connections[conn] = self._connection_serial
            return self._connection_serial

    def _unregister_connection(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.pop(conn, None)

    def _record(self, *, arrival: float, method: str, model: str, path: str, headers: dict[str, str],
                api_key: str | None, body: Any, api_version: str, connection: int,
                view: dict[str, Any] | None = None) -> RecordedRequest:
        """`view`: the body's fields in Gemini form, when the body is in another API's (chat completions)."""
        data = view if view is not None else body if isinstance(body, dict) else {}
        contents = _as_contents(data.get("contents"))
        tools = normalize_keys(data.get("tools", []))
        config = normalize_keys(data.get("generationConfig", data.get("generation_config"))) or {}
        system = data.get("systemInstruction", data.get("system_instruction"))
        with self._changed:
            rec = RecordedRequest(
                index=len(self._requests), time=arrival, method=method, model=model, path=path,
                headers=headers, api_key=api_key, body=body, contents=contents,
                last_user_text=_last_user_text(contents),
                tools=[tools] if isinstance(tools, dict) else list(tools or []),
                generation_config=config if isinstance(config, dict) else {},
                system_instruction="".join(_texts(system)) if system is not None else None,
                api_version=api_version, connection=connection, _generation=self._generation)
            self._requests.append(rec)
            self._changed.notify_all()
        return rec

    def _next_reply(self, rec: RecordedRequest) -> Reply:
        with self._lock:
            item = self._queue.popleft() if self._queue else self.default
        reply = item if isinstance(item, Reply) else item(rec)
        if not isinstance(reply, Reply):
            raise TypeError(f"reply callable returned {type(reply).__name__}, not Reply")
        rec.reply = reply
        return reply

    def _record_disconnect(self, rec: RecordedRequest, chunks_sent: int) -> None:
        now = time.perf_counter()
        rec.disconnected = True
        rec.completed_time = now
        with self._changed:
            if rec._generation != self._generation:
                return  # the request predates reset()
            self._disconnects.append(Disconnect(request_index=rec.index, time=now, chunks_sent=chunks_sent))
            self._changed.notify_all()
        if self.log:
            sys.stderr.write(f"[fake-gemini] client disconnected from request {rec.index} "
                             f"after {chunks_sent} chunk(s)\n")
