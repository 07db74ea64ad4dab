"""Batch: an agent's prompts as one Gemini Batch API job, run by Google at half the interactive price.

    job = Batch.submit(agent, prompts, rows=rows)     # inline, or a JSONL upload above the size limit
    job.wait(on_progress=print)                        # polls with backoff until the job has ended
    for r in job.results(): ...                        # BatchRow(row, text, error, usage), in prompt order

- The requests: batch_requests.py (the agent's config as google-genai's GenerateContentRequest; inline up
  to 100 requests and 19 MB, under the Gemini docs' 20 MB, a JSONL file upload above either).
- The job lives on: it is recorded in the persistence store (batch_store.py) with what joins each answer
  to its row. After a kernel restart `Batch.attach(name)` picks it up again and `Batch.jobs()` (`%agent
  jobs`) lists the recorded jobs.
- Calls: the synchronous google-genai client, on the calling thread, not the runtime's loop. A job is a
  handful of short REST calls minutes apart, with no stream to cancel; a wait of hours must not hold a
  slot of the runtime's bounded command queue nor run into its operation timeout (chat timeout + 2 min).
  `await job.await_done()` makes the same calls in a worker thread (asyncio.to_thread) and sleeps on the
  caller's loop in short naps, so an async cell stays interruptible. One client per credential, kept for
  the process (google-genai closes a client when it is collected).
- Polling: Backoff(initial=5 s, factor=1.5, maximum=60 s). Google targets 24 hours and says most jobs
  finish much sooner; the SDK's own operation polling starts at 1 s and grows 1.5x to 20 s. From 5 s up
  to one call a minute, a job of an hour costs about 65 get calls. `sleep` is injectable (tests drive the
  fake server's clock with it).
- Vertex AI batch prediction reads its requests from Cloud Storage or BigQuery and writes there, which
  agy_jupyter does not handle: submitting with Vertex credentials is refused with a ConfigError. Untested.
"""
from __future__ import annotations

import asyncio
import io
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from google.genai import types
from pydantic import BaseModel

from ..runtime.errors import AgyError, BackendError, ConfigError, Timeout
from . import batch_requests as requests
from . import batch_store
from .backend import KEY_HELP, Credentials, GeminiBackend, resolve_credentials
from .config import AgentConfig
from .local.credentials import is_local_model, no_gemini_credential
from .classify import classify_exception

# mode="auto" (agent.map) submits a batch from this many rows on: below it an interactive map ends in
# minutes and saves cents, while a batch job answers nothing until the whole job has run (README: Batch API).
AUTO_BATCH_ROWS = 1_000
BATCH_PRICE_FACTOR = 0.5  # Google bills Batch API tokens at 50 % of the interactive price
SUCCEEDED = "JOB_STATE_SUCCEEDED"
FINAL_STATES = frozenset({SUCCEEDED, "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})
POLL_FAILURES = 5  # failed polls in a row (5xx, dropped connection) before a wait gives up; the job runs on
NAP = 0.1  # longest sleep of await_done between checks for a cancel (ipykernel's interrupt does not wake a sleeping loop)


@dataclass(frozen=True)
class Backoff:
    """Poll intervals: `initial` seconds, then each `factor` times longer, never over `maximum`."""

    initial: float = 5.0
    factor: float = 1.5
    maximum: float = 60.0

    def after(self, interval: float) -> float:
        return min(self.maximum, interval * self.factor)


@dataclass
class BatchRow:
    """One request's outcome: its input row, the answer's text or why there is none, and its token usage."""

    row: Any
    text: str | None
    error: str | None
    usage: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.error is None


_backends: dict[tuple, GeminiBackend] = {}
_backends_lock = threading.Lock()


def _backend(credentials: Credentials) -> GeminiBackend:
    with _backends_lock:
        backend = _backends.get(credentials.cache_key)
        if backend is None:
            backend = _backends[credentials.cache_key] = GeminiBackend(credentials)
        return backend


def _credentials(model: str, api_key: str | None) -> Credentials:
    """The Gemini API credentials a batch job runs on; ConfigError for a local model or Vertex AI."""
    if is_local_model(model):
        raise ConfigError(f"the Batch API runs Gemini models, not {model}", hint="use a gemini-… model")
    if no_gemini_credential(api_key):
        raise ConfigError("the Batch API needs a Gemini API key", hint=KEY_HELP)
    credentials = resolve_credentials(api_key=api_key)
    if credentials.kind == "vertex":
        raise ConfigError("Vertex AI batch prediction reads its requests from Cloud Storage or BigQuery, which "
                          "agy_jupyter does not handle", hint="use a Gemini API key (GEMINI_API_KEY) for batches")
    return credentials


class Batch:
    """A Gemini Batch API job and the rows its requests came from. See the module docstring."""

    def __init__(self, name: str, *, agent: str, model: str, rows: list[Any], keys: list[str], state: str,
                 credentials: Credentials, created: float | None = None):
        self.name = name
        self.agent = agent
        self.model = model
        self.rows = rows
        self.keys = keys
        self.state = state
        self.created = created if created is not None else time.time()
        self._credentials = credentials
        self._poll_failures = 0
        self._poll_error: str | None = None  # why the last poll failed, while polls fail

    def __repr__(self) -> str:
        return f"<Batch {self.name} {self.state} agent={self.agent!r} rows={len(self.rows)}>"

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def _client(self) -> Any:
        return _backend(self._credentials).client

    # -- submitting and finding jobs -------------------------------------------------------------

    @classmethod
    def submit(cls, agent: Any, prompts: list[str], *, output: type[BaseModel] | None = None,
               rows: list[Any] | None = None, display_name: str | None = None) -> "Batch":
        """Submit one request per prompt with the agent's config (an Agent or an AgentConfig); `rows` (default:
        the prompts) are what `results()` joins each answer to. Returns once the service has the job."""
        config: AgentConfig = getattr(agent, "config", agent)
        prompts = list(prompts)
        rows = list(rows) if rows is not None else prompts
        if not prompts:
            raise ConfigError("a batch needs at least one prompt")
        wrong = next((i for i, p in enumerate(prompts) if not isinstance(p, str)), None)
        if wrong is not None:
            raise ConfigError(f"prompt {wrong} is {type(prompts[wrong]).__name__}, not text", hint="give str prompts")
        if len(rows) != len(prompts):
            raise ConfigError(f"{len(rows)} rows for {len(prompts)} prompts", hint="give one row per prompt")
        credentials = _credentials(config.model, config.api_key.get_secret_value() if config.api_key else None)
        client = _backend(credentials).client
        wire = requests.wire_requests(client._api_client, config, prompts, output)
        name = display_name or f"agy-{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            if requests.fits_inline(wire):
                source: Any = types.BatchJobSource(inlined_requests=requests.build_requests(config, prompts, output))
                where = "inline"
            else:
                uploaded = client.files.upload(file=io.BytesIO(requests.jsonl_lines(wire)),
                                               config={"mime_type": requests.JSONL_MIME_TYPE,
                                                       "display_name": f"{name}-requests"})
                source = where = uploaded.name
            job = client.batches.create(model=config.model, src=source, config={"display_name": name})
        except Exception as exc:
            raise classify_exception(exc).with_operation("submitting the batch") from None
        keys = [str(i) for i in range(len(prompts))]
        batch = cls(job.name, agent=config.name, model=config.model, rows=rows, keys=keys,
                    state=_state(job), credentials=credentials)
        batch_store.record(batch.name, agent=config.name, config=config.to_json(), state=batch.state,
                           join={"keys": keys, "rows": rows, "input": where, "display_name": name})
        return batch

    @classmethod
    def attach(cls, name: str, *, api_key: str | None = None) -> "Batch":
        """The job `name` again (e.g. after a kernel restart): its rows from the store, its state from the service.
        A job the store does not hold is attached too, its rows being the request keys."""
        if not name.startswith("batches/"):
            raise ConfigError(f"{name!r} is not a batch job name", hint="names look like 'batches/…' (see Batch.jobs())")
        found = batch_store.find(name)
        model = found.model if found is not None else ""
        batch = cls(name, agent=found.agent if found else "", model=model,
                    rows=list(found.join.get("rows", [])) if found else [],
                    keys=list(found.join.get("keys", [])) if found else [],
                    state=found.state if found else "", credentials=_credentials(model, api_key),
                    created=found.created if found else None)
        batch.refresh()
        return batch

    @staticmethod
    def jobs(*, refresh: bool = False) -> list[batch_store.JobRecord]:
        """The recorded jobs, newest first, with the last state seen (`%agent jobs`); `refresh` asks the
        service first for the state of each job that had not ended (one that cannot be asked is named in a
        warning and listed as it was)."""
        if refresh:
            for record in batch_store.all_jobs():
                if record.state not in FINAL_STATES:
                    try:
                        Batch.attach(record.name)
                    except AgyError as exc:
                        warnings.warn(f"{record.name}: {exc}", stacklevel=2)
        return batch_store.all_jobs()

    # -- the job's life --------------------------------------------------------------------------

    def _call(self, operation: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            error = classify_exception(exc).with_operation(f"{operation} {self.name}")
            if getattr(error, "status", None) == 404:
                error.hint = "the service does not know this job: deleted, expired, or another key's"
            raise error from None

    def _get(self) -> types.BatchJob:
        job = self._call("getting batch", lambda: self._client.batches.get(name=self.name))
        self._set_state(_state(job))
        return job

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            batch_store.update_state(self.name, state)

    def refresh(self) -> str:
        """Ask the service for the job's state (e.g. "JOB_STATE_RUNNING"), record and return it."""
        self._get()
        return self.state

    def cancel(self) -> str:
        """Ask the service to cancel the job; returns the state after it."""
        self._call("cancelling batch", lambda: self._client.batches.cancel(name=self.name))
        return self.refresh()

    def delete(self) -> None:
        """Delete the job at the service and from the store (its results go with it)."""
        self._call("deleting batch", lambda: self._client.batches.delete(name=self.name))
        batch_store.remove(self.name)

    def progress(self, **extra: Any) -> dict[str, Any]:
        """What a progress display shows: name, state, done, rows and elapsed (seconds since submitted); the
        reports of wait/await_done add polls, next_poll (seconds, None once done) and poll_error."""
        return {"name": self.name, "state": self.state, "done": self.done, "rows": len(self.keys),
                "elapsed": max(0.0, time.time() - self.created), **extra}

    def wait(self, on_progress: Callable[[dict], None] | None = None, *, poll: Backoff = Backoff(),
             timeout: float | None = None, sleep: Callable[[float], None] = time.sleep) -> str:
        """Poll until the job has ended; return its final state. `on_progress` gets progress() at each poll, on
        this thread; after `timeout` seconds of waiting a Timeout says how to pick the job up again."""
        interval, waited, polls = poll.initial, 0.0, 1
        self._poll()
        while not self.done:
            self._report(on_progress, polls, interval)
            self._check_timeout(timeout, waited)
            sleep(interval)
            waited, interval, polls = waited + interval, poll.after(interval), polls + 1
            self._poll()
        self._report(on_progress, polls, None)
        return self.state

    async def await_done(self, on_progress: Callable[[dict], None] | None = None, *, poll: Backoff = Backoff(),
                         timeout: float | None = None, sleep: Callable[[float], Awaitable[None]] | None = None) -> str:
        """`wait` for async code: the service calls run in a worker thread; the sleeps, and `on_progress`, on
        this loop's thread (a widget's one writer)."""
        sleep = sleep or _nap
        interval, waited, polls = poll.initial, 0.0, 1
        await asyncio.to_thread(self._poll)
        while not self.done:
            self._report(on_progress, polls, interval)
            self._check_timeout(timeout, waited)
            await sleep(interval)
            waited, interval, polls = waited + interval, poll.after(interval), polls + 1
            await asyncio.to_thread(self._poll)
        self._report(on_progress, polls, None)
        return self.state

    def _poll(self) -> None:
        """refresh(), where a passing failure (a 5xx, a dropped connection) only skips this poll, up to
        POLL_FAILURES in a row: the job runs on at the service regardless."""
        try:
            self.refresh()
        except BackendError as exc:
            self._poll_failures += 1
            if (isinstance(exc.status, int) and exc.status < 500) or self._poll_failures >= POLL_FAILURES:
                raise
            self._poll_error = str(exc)
        else:
            self._poll_failures, self._poll_error = 0, None

    def _report(self, on_progress: Callable[[dict], None] | None, polls: int, next_poll: float | None) -> None:
        if on_progress is not None:
            on_progress(self.progress(polls=polls, next_poll=next_poll, poll_error=self._poll_error))

    def _check_timeout(self, timeout: float | None, waited: float) -> None:
        if timeout is not None and waited >= timeout:
            raise Timeout("waiting for batch", timeout,
                          f"batch {self.name} is still {self.state} after {waited:g} s; it runs on at the service: "
                          f"wait again, or Batch.attach({self.name!r}) later")

    def results(self) -> list[BatchRow]:
        """Each request's outcome joined to its row, in prompt order; failed requests have `error` set."""
        job = self._get()
        if self.state != SUCCEEDED:
            hint = "wait for it with job.wait()" if not self.done else "submit the rows again"
            raise ConfigError(f"batch {self.name} is {self.state}: it has no results", hint=hint)
        dest = job.dest
        if dest is not None and dest.inlined_responses is not None:
            answers = requests.inlined_answers(dest.inlined_responses)
        elif dest is not None and dest.file_name:
            data = self._call("downloading the results of",
                              lambda: self._client.files.download(file=dest.file_name))
            answers = requests.file_answers(data)
        else:
            raise AgyError(f"batch {self.name} succeeded but names no results", hint="attach it again later")
        keys = self.keys or sorted(answers, key=lambda k: int(k) if k.isdigit() else 0)
        rows = self.rows if len(self.rows) == len(keys) else keys
        missing = (None, "the service returned no answer for this request", {})
        return [BatchRow(row, *answers.get(key, missing)) for row, key in zip(rows, keys)]


def _state(job: types.BatchJob) -> str:
    state = job.state
    return getattr(state, "value", None) or str(state or "JOB_STATE_UNSPECIFIED")


async def _nap(seconds: float) -> None:
    """asyncio.sleep in short pieces: a cancel arriving meanwhile is seen within NAP seconds."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(NAP, left))
