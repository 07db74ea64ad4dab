"""The fake server's Batch API and Files API, mounted into :class:`~agy_jupyter.testing.FakeGemini`.

What google-genai 3.x sends and reads here (the Gemini Developer API path, read from its batches.py,
files.py and _api_client.py):

* ``POST /{ver}/models/{model}:batchGenerateContent`` with ``{"batch": {"displayName", "inputConfig":
  {"requests": {"requests": [{"request": GenerateContentRequest, "metadata": {...}}]}} | {"fileName":
  "files/…"}}}`` -> a long-running Operation ``{"name": "batches/…", "metadata": GenerateContentBatch,
  "done"}``; the SDK reads the job out of ``metadata`` (state ``BATCH_STATE_*``, ``output``).
* ``GET /{ver}/batches/{id}`` (get), ``GET /{ver}/batches`` (list: ``{"operations", "nextPageToken"}``),
  ``POST /{ver}/batches/{id}:cancel``, ``DELETE /{ver}/batches/{id}``.
* The resumable upload: ``POST /upload/{ver}/files`` with ``X-Goog-Upload-Command: start`` answers with an
  ``X-Goog-Upload-URL`` header; the bytes go to that URL in ``upload`` / ``upload, finalize`` commands,
  the last answered with ``X-Goog-Upload-Status: final`` and ``{"file": File}``.
* The result file: ``GET /{ver}/files/{id}:download?alt=media`` -> the JSONL bytes, one line per
  request, ``{"key", "response"}`` or ``{"key", "error"}``. A job's input file holds ``{"key",
  "request"}`` lines.
* Keys come camelCase or snake_case (the SDK sends the upload's File as ``display_name``, ``size_bytes``);
  both are accepted, as by the real API.

Jobs move through PENDING, RUNNING and SUCCEEDED on a clock the test drives: ``fake.batches.advance(s)``
(a job waits ``pending_seconds``, then runs ``running_seconds``); ``fail(name)`` ends a job FAILED,
cancel ends it CANCELLED; ``outage(n)`` fails the next n job reads with a 503. When a job succeeds each of its requests is answered by the fake's usual
scripted replies, in order (``fake.enqueue(...)``, else ``fake.default``), and recorded in
``fake.requests`` with ``method="batchGenerateContent"``; an error Reply (``Reply.error(...)``) fails
that one request. Timing faults (delays, drops, stalls) do not apply to batch answers.

Vertex AI batch prediction (``batchPredictionJobs`` reading Cloud Storage or BigQuery) is not served.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qs

if TYPE_CHECKING:
    from .fake_gemini import FakeGemini

__all__ = ["FakeBatches", "FakeBatchJob", "BATCH_METHOD"]

BATCH_METHOD = "batchGenerateContent"  # RecordedRequest.method of a request answered inside a batch
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"})
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta."
_NOT_FOUND = {"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}


@dataclass
class FakeBatchJob:
    """One batch job as the fake service holds it."""

    name: str                      # "batches/…"
    model: str
    display_name: str
    requests: list[dict[str, Any]]  # {"request": GenerateContentRequest, "metadata"?: {...}, "key"?: str}
    input_file: str | None         # "files/…" when the requests came in a file
    created: float                 # on the fake clock
    pending_seconds: float
    running_seconds: float
    api_key: str | None = None
    state: str = "PENDING"
    ended: float | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)  # {"response": …} or {"error": …}
    output_file: str | None = None
    error: dict[str, Any] | None = None


@dataclass
class _File:
    name: str
    data: bytearray
    mime_type: str
    display_name: str
    size: int
    source: str  # "UPLOADED" or "GENERATED"
    complete: bool = False


class FakeBatches:
    """The batch jobs and files of one FakeGemini, and the clock their states follow."""

    def __init__(self, fake: "FakeGemini", *, pending_seconds: float = 30.0, running_seconds: float = 60.0):
        self.fake = fake
        self.pending_seconds = pending_seconds
        self.running_seconds = running_seconds
        self.now = 0.0  # the fake clock, in seconds; only advance() moves it
        self._epoch = time.time()  # wall time of clock 0, for the timestamps the API reports
        self._lock = threading.RLock()
        self.jobs: dict[str, FakeBatchJob] = {}
        self.files: dict[str, _File] = {}
        self._outages: list[int] = []  # HTTP codes the next job reads (get, list) answer with

    # -- what tests drive ------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock on; jobs change state as their times pass (a job that succeeds is answered now)."""
        with self._lock:
            self.now += seconds
            for job in list(self.jobs.values()):
                self._step(job)

    def finish_all(self) -> None:
        """Advance the clock until every job has ended."""
        self.advance(self.pending_seconds + self.running_seconds)

    def fail(self, name: str, message: str = "the batch failed (fake)") -> None:
        """End a job FAILED now, with an error in its operation."""
        with self._lock:
            self._end(self.jobs[name], "FAILED")
            self.jobs[name].error = {"code": 13, "message": message}

    def outage(self, reads: int, code: int = 503) -> None:
        """The next `reads` job reads (get or list) fail with HTTP `code`, as a service having a bad minute."""
        with self._lock:
            self._outages.extend([code] * reads)

    def state(self, name: str) -> str:
        with self._lock:
            return self.jobs[name].state

    # -- the clock -------------------------------------------------------------------------------

    def _step(self, job: FakeBatchJob) -> None:
        if job.state in FINAL_STATES:
            return
        elapsed = self.now - job.created
        if elapsed >= job.pending_seconds + job.running_seconds:
            self._answer(job)
            self._end(job, "SUCCEEDED")
        elif elapsed >= job.pending_seconds:
            job.state = "RUNNING"

    def _end(self, job: FakeBatchJob, state: str) -> None:
        job.state, job.ended = state, self.now

    def _answer(self, job: FakeBatchJob) -> None:
        """Answer every request with the fake's scripted replies; a file job's answers go into a result file."""
        for item in job.requests:
            body = item.get("request") or {}
            rec = self.fake._record(arrival=time.perf_counter(), method=BATCH_METHOD, model=job.model,
                                    path=f"/{job.name}", headers={}, api_key=job.api_key, body=body,
                                    api_version="v1beta", connection=0)
            try:
                plan = self.fake._next_reply(rec).render(rec)
            except Exception as exc:  # a broken reply callable fails its request visibly
                job.answers.append({"error": {"code": 500, "message": f"FakeGemini reply failed: {exc!r}",
                                              "status": "INTERNAL"}})
                continue
            rec.completed_time = time.perf_counter()
            if plan.reset or plan.merged is None:
                job.answers.append({"error": {"code": 500, "message": "Internal error.", "status": "INTERNAL"}})
            elif plan.is_error:
                job.answers.append({"error": plan.merged.get("error", plan.merged)})
            else:
                job.answers.append({"response": plan.merged})
        if job.input_file is not None:
            lines = [json.dumps({"key": item.get("key", str(i)), **answer})
                     for i, (item, answer) in enumerate(zip(job.requests, job.answers))]
            data = ("\n".join(lines) + "\n").encode()
            job.output_file = self._new_file(f"batch-{job.name.split('/')[-1]}", "application/jsonl",
                                             "batch results", len(data), "GENERATED", bytearray(data)).name

    # -- JSON forms ------------------------------------------------------------------------------

    def _time(self, clock: float | None) -> str | None:
        if clock is None:
            return None
        moment = datetime.fromtimestamp(self._epoch + clock, tz=timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _operation(self, job: FakeBatchJob) -> dict[str, Any]:
        failed = sum(1 for a in job.answers if "error" in a)
        count = len(job.requests)
        done = len(job.answers)
        metadata: dict[str, Any] = {
            "@type": _TYPE + "GenerateContentBatch", "name": job.name, "model": f"models/{job.model}",
            "displayName": job.display_name, "state": f"BATCH_STATE_{job.state}",
            "createTime": self._time(job.created), "updateTime": self._time(job.ended or self.now),
            "batchStats": {"requestCount": str(count), "successfulRequestCount": str(done - failed),
                           "failedRequestCount": str(failed), "pendingRequestCount": str(count - done)},
            "inputConfig": {"fileName": job.input_file} if job.input_file else {"requests": {}},
        }
        if job.ended is not None:
            metadata["endTime"] = self._time(job.ended)
        operation: dict[str, Any] = {"name": job.name, "metadata": metadata, "done": job.state in FINAL_STATES}
        if job.state == "SUCCEEDED":
            if job.output_file is not None:
                output: dict[str, Any] = {"responsesFile": job.output_file}
            else:
                output = {"inlinedResponses": {"inlinedResponses": [
                    {**answer, **({"metadata": item["metadata"]} if "metadata" in item else {})}
                    for item, answer in zip(job.requests, job.answers)]}}
            metadata["output"] = output
            operation["response"] = {"@type": _TYPE + "GenerateContentBatchOutput", **output}
        elif job.error is not None:
            operation["error"] = job.error
        return operation

    def _file_json(self, file: _File) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": file.name, "displayName": file.display_name, "mimeType": file.mime_type,
            "sizeBytes": str(file.size), "createTime": self._time(self.now), "updateTime": self._time(self.now),
            "uri": f"{self.fake.url}/v1beta/{file.name}", "state": "ACTIVE", "source": file.source}
        if file.source == "GENERATED":
            data["downloadUri"] = f"{self.fake.url}/v1beta/{file.name}:download?alt=media"
        return data

    def _new_file(self, stem: str, mime_type: str, display_name: str, size: int, source: str,
                  data: bytearray | None = None) -> _File:
        file = _File(f"files/{stem}", data if data is not None else bytearray(), mime_type, display_name, size,
                     source, complete=data is not None)
        self.files[file.name] = file
        return file

    # -- routes ----------------------------------------------------------------------------------

    def route(self, handler: Any, method: str, url: SplitResult, raw: bytes) -> bool:
        """Answer the request if it is a batch or file call; False leaves it to the model routes."""
        path = url.path.rstrip("/")
        parts = path.strip("/").split("/")
        with self._lock:
            if method == "POST" and path.endswith(":batchGenerateContent") and parts[1:2] == ["models"]:
                self._create(handler, parts[2].split(":")[0], raw)
            elif parts[:1] == ["upload"] and method == "POST":
                self._upload(handler, url, raw)
            elif len(parts) >= 2 and parts[1] == "batches":
                self._batches(handler, method, parts[2:], url)
            elif len(parts) >= 2 and parts[1] == "files":
                self._files(handler, method, parts[2:])
            else:
                return False
        return True

    def _create(self, handler: Any, model: str, raw: bytes) -> None:
        from .fake_gemini import to_camel  # fake_gemini imports this module
        try:  # the envelope's keys in either spelling; the requests are kept as sent
            batch = {to_camel(k): v for k, v in (json.loads(raw or b"{}").get("batch") or {}).items()}
        except (ValueError, AttributeError):
            handler._send_json(400, {"error": {"code": 400, "message": "Invalid JSON payload received.",
                                               "status": "INVALID_ARGUMENT"}})
            return
        source = {to_camel(k): v for k, v in (batch.get("inputConfig") or {}).items()}
        if "fileName" in source:
            file = self.files.get(source["fileName"])
            if file is None or not file.complete:
                handler._send_json(400, {"error": {"code": 400, "message": f"File {source['fileName']} not found.",
                                                   "status": "INVALID_ARGUMENT"}})
                return
            requests = [json.loads(line) for line in file.data.decode().splitlines() if line.strip()]
        else:
            requests = (source.get("requests") or {}).get("requests") or []
        if not requests:
            handler._send_json(400, {"error": {"code": 400, "message": "The batch has no requests.",
                                               "status": "INVALID_ARGUMENT"}})
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        job = FakeBatchJob(name=f"batches/{secrets.token_hex(8)}", model=model,
                           display_name=batch.get("displayName") or "", requests=requests,
                           input_file=source.get("fileName"), created=self.now,
                           pending_seconds=self.pending_seconds, running_seconds=self.running_seconds,
                           api_key=headers.get("x-goog-api-key"))
        self.jobs[job.name] = job
        handler._send_json(200, self._operation(job))

    def _batches(self, handler: Any, method: str, rest: list[str], url: SplitResult) -> None:
        if method == "GET" and self._outages:
            code = self._outages.pop(0)
            handler._send_json(code, {"error": {"code": code, "message": "The service is currently unavailable.",
                                                "status": "UNAVAILABLE" if code == 503 else "INTERNAL"}})
            return
        if not rest and method == "GET":
            query = parse_qs(url.query)
            size = int((query.get("pageSize") or ["50"])[0])
            start = int((query.get("pageToken") or ["0"])[0])
            jobs = sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)
            page: dict[str, Any] = {"operations": [self._operation(j) for j in jobs[start:start + size]]}
            if start + size < len(jobs):
                page["nextPageToken"] = str(start + size)
            handler._send_json(200, page)
            return
        ident, _, verb = (rest[0] if rest else "").partition(":")
        job = self.jobs.get(f"batches/{ident}")
        if job is None:
            handler._send_json(404, _NOT_FOUND)
        elif method == "GET" and not verb:
            handler._send_json(200, self._operation(job))
        elif method == "POST" and verb == "cancel":
            if job.state not in FINAL_STATES:
                self._end(job, "CANCELLED")
            handler._send_json(200, {})
        elif method == "DELETE" and not verb:
            del self.jobs[job.name]
            handler._send_json(200, {})
        else:
            handler._send_json(404, _NOT_FOUND)

    def _files(self, handler: Any, method: str, rest: list[str]) -> None:
        ident, _, verb = (rest[0] if rest else "").partition(":")
        file = self.files.get(f"files/{ident}")
        if file is None or not file.complete:
            handler._send_json(404, _NOT_FOUND)
        elif method == "GET" and verb == "download":
            handler._send_bytes(200, bytes(file.data), file.mime_type)
        elif method == "GET" and not verb:
            handler._send_json(200, self._file_json(file))
        elif method == "DELETE" and not verb:
            del self.files[file.name]
            handler._send_json(200, {})
        else:
            handler._send_json(404, _NOT_FOUND)

    def _upload(self, handler: Any, url: SplitResult, raw: bytes) -> None:
        """The resumable upload protocol: start (metadata) -> upload chunks -> finalize."""
        command = (handler.headers.get("X-Goog-Upload-Command") or "").lower()
        if command == "start":
            from .fake_gemini import normalize_keys  # fake_gemini imports this module
            meta = normalize_keys(json.loads(raw or b"{}").get("file") or {})  # the SDK sends display_name
            size = int(handler.headers.get("X-Goog-Upload-Header-Content-Length") or meta.get("sizeBytes") or 0)
            mime = handler.headers.get("X-Goog-Upload-Header-Content-Type") or meta.get("mimeType") or ""
            stem = (meta.get("name") or "").removeprefix("files/") or secrets.token_hex(8)
            file = self._new_file(stem, mime, meta.get("displayName") or "", size, "UPLOADED")
            upload_url = f"{self.fake.url}{url.path}?upload_id={stem}&upload_protocol=resumable"
            handler._send_json(200, {}, {"X-Goog-Upload-URL": upload_url, "X-Goog-Upload-Status": "active"})
            return
        stem = (parse_qs(url.query).get("upload_id") or [""])[0]
        file = self.files.get(f"files/{stem}")
        if file is None or file.complete:
            handler._send_json(404, _NOT_FOUND)
            return
        offset = int(handler.headers.get("X-Goog-Upload-Offset") or 0)
        if offset != len(file.data):
            handler._send_json(400, {"error": {"code": 400, "message": f"offset {offset} != {len(file.data)}",
                                               "status": "INVALID_ARGUMENT"}})
            return
        file.data += raw
        if "finalize" in command:
            file.complete = True
            file.size = len(file.data)
            handler._send_json(200, {"file": self._file_json(file)}, {"X-Goog-Upload-Status": "final"})
        else:
            handler._send_json(200, {}, {"X-Goog-Upload-Status": "active"})
