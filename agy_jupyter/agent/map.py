"""agent.map: one prompt template over many rows, each row its own stateless turn on the agent's config.

- Rows: a pandas DataFrame (pandas is imported only if the caller passed one) or a list of dicts. The
  template's `{column}` placeholders are filled from the row, like `%%chat -i`: only a brace around a
  plain name that is a column is replaced; other braces (JSON, code) stay as written.
- A row is a turn of a `RowSession`: a GeminiSession on the agent's config (model, system instruction,
  tools, policies, hooks) whose history is emptied for each row and is never saved, so rows neither see
  each other nor pile up in the agent's history. `concurrency` sessions work through the rows on the
  runtime loop; they share the key's quota state with every agent, so a 429 pauses them all until its
  retryDelay and each row keeps the session's bounded retries (a storm slows the map, it does not multiply
  the retries).
- Tools follow the agent's policies. A call that would ask the user is refused (nobody can approve 20,000
  rows), and the map reports it once in its progress (`refused_tools`) rather than once per row.
- A failed row gets its typed error ("QuotaExhausted: ...") in the `error` column and the map goes on;
  `result.retry_failed()` asks only those rows again. With `output=` a pydantic model the reply is
  structured output, and the model's fields become columns; a reply that does not validate is the row's
  `OutputInvalid` error.
- Finished rows go to the persistence store (map_store.py) keyed by the config, the template and the row,
  so the same map run again after a Stop or a kernel restart skips them. Results keep the input's order
  and index.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from ..runtime.errors import AgyError, ConfigError
from ..runtime.stream import ChatStream
from .content import is_dataframe
from .history import Usage
from .map_progress import PROGRESS_INTERVAL, MapProgress, progress_display, text_progress
from .map_batch import batch_progress, choose_mode, run_batch
from .map_store import FLUSH_INTERVAL, MapStore, key_prefix, row_key
from .policies import Approval, ApprovalRequest
from .session import GeminiSession  # this module loads with the first map, not with agy_jupyter

if TYPE_CHECKING:
    from .api import Agent
    from .config import AgentConfig

log = logging.getLogger(__name__)

ERROR_COLUMN = "error"
MODES = ("interactive", "batch", "auto")  # see map_batch.py for batch and auto
STOPPED = "Stopped: the map was stopped before this row finished"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class OutputInvalid(AgyError):
    """A row's reply is not valid JSON for the map's output model."""

    hint = "describe the fields in the prompt, or make the model's fields optional"


# -- rows --------------------------------------------------------------------------------------------

class Rows:
    """The input rows by position, as dicts of plain Python values; a DataFrame is read column-wise once."""

    def __init__(self, data: Any):
        self.data = data
        self.frame = is_dataframe(data)
        if self.frame:
            if getattr(data, "ndim", 2) != 2:
                raise ConfigError("agent.map takes a DataFrame or a list of dicts, got a Series",
                                  hint="pass series.to_frame()")
            self.columns = [str(c) for c in data.columns]
            self._values = [data[c].tolist() for c in data.columns]  # plain Python values (no np.float64 repr)
            self._count = len(data)
        elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
            bad = next((i for i, row in enumerate(data) if not isinstance(row, Mapping)), None)
            if bad is not None:
                raise ConfigError(f"agent.map: row {bad} is a {type(data[bad]).__name__}, not a dict",
                                  hint="pass a DataFrame or a list of dicts (column -> value)")
            self.columns = list(dict.fromkeys(str(k) for row in data for k in row))
            self._count = len(data)
        else:
            raise ConfigError(f"agent.map takes a DataFrame or a list of dicts, got {type(data).__name__}")

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.frame:
            return {name: values[index] for name, values in zip(self.columns, self._values)}
        return {str(k): v for k, v in self.data[index].items()}


def placeholders(template: str) -> list[str]:
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def fill(template: str, row: Mapping[str, Any]) -> str:
    """The row's prompt: `{column}` replaced by the row's value; any other brace left as written."""
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in row:
            return match.group(0)
        value = row[name]
        if isinstance(value, str):
            return value
        if isinstance(value, (dict, list)):  # a nested record reads as JSON, not as a Python repr
            return json.dumps(value, default=str)
        return str(value)
    return _PLACEHOLDER.sub(replace, template)


# -- the plan (caller's thread) and the run (runtime loop) ---------------------------------------------

@dataclass(slots=True)
class Outcome:
    """One row's result: the answer (text, or the output model's fields as a dict) or its typed error."""

    value: Any = None
    error: str | None = None
    tokens: int = 0


@dataclass
class MapPlan:
    template: str
    rows: Rows
    config: "AgentConfig"
    output: type | None
    concurrency: int
    prefix: bytes  # what every row's store key starts with (map_store.key_prefix)
    outcomes: list[Outcome | None]  # known before the run (resumed); the run fills the rest
    resumed: int = 0

    def key(self, index: int) -> str:
        """The row's key in the store: computed when needed (a 100,000-row map's keys would be 11 MB)."""
        return row_key(self.prefix, self.rows[index])

    @property
    def pending(self) -> list[int]:
        return [i for i, outcome in enumerate(self.outcomes) if outcome is None]


def plan_map(agent: "Agent", data: Any, template: str, *, output: type | None, concurrency: int, column: str,
             resume: bool, known: Mapping[int, Outcome] | None = None) -> MapPlan:
    """Check the arguments, read the rows and find the ones finished before; ConfigError says what to fix."""
    if not isinstance(template, str) or not template.strip():
        raise ConfigError("agent.map needs a prompt template, e.g. 'Classify this ticket: {text}'")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
    if output is not None and not (isinstance(output, type) and hasattr(output, "model_json_schema")):
        raise ConfigError(f"output= takes a pydantic model class, got {output!r}")
    rows = Rows(data)
    names = placeholders(template)
    if rows.columns and not set(names) & set(rows.columns):
        raise ConfigError(f"the template names no column of the rows ({', '.join(rows.columns[:10])})",
                          hint="put {column} where each row's value goes")
    unknown = [n for n in names if n not in rows.columns]
    if unknown and rows.columns:
        log.warning("agy map: {%s} is not a column; it stays as written in every prompt", "}, {".join(unknown))
    added = list(output.model_fields) if output is not None else [column]
    clash = [c for c in [*added, ERROR_COLUMN] if c in rows.columns]
    if clash:
        raise ConfigError(f"the rows already have the column(s) {', '.join(clash)} the map would write",
                          hint="rename them, or pass column='...' for the answers")
    config = agent.config if output is None else agent.config.model_copy(update={"response_schema": output})
    prefix = key_prefix(config, template, output)
    outcomes: list[Outcome | None] = [None] * len(rows)
    for i, outcome in (known or {}).items():
        outcomes[i] = outcome
    resumed = len(known or {})
    if resume:
        saved = MapStore().finished((i, row_key(prefix, rows[i])) for i in range(len(rows)) if outcomes[i] is None)
        for i, result in saved.items():
            outcomes[i] = Outcome(result["value"], None, 0)
        resumed += len(saved)
    return MapPlan(template, rows, config, output, concurrency, prefix, outcomes, resumed)


class MapRun:
    """The map on the runtime loop: `concurrency` row sessions working through the pending rows."""

    def __init__(self, plan: MapPlan, store: MapStore):
        self.plan = plan
        self.store = store
        self.progress = MapProgress(total=len(plan.outcomes), done=plan.resumed, resumed=plan.resumed,
                                    model=plan.config.model)
        self._refused: list[str] = []
        self._started = 0.0
        self._last_flush = 0.0

    def start(self, session: "GeminiSession") -> ChatStream:
        """Start on the runtime loop (GeminiSession.start_rows calls this); return the map's handle at once."""
        loop = session.loop
        stream = ChatStream(loop, label=f"map of {session.name}")
        self._started = self._last_flush = time.monotonic()
        task = loop.create_task(self._run(session, stream), name=f"agy-map-{session.name}")
        stream.attach_task(task)
        return stream

    async def _run(self, session: "GeminiSession", stream: ChatStream) -> None:
        pending = iter(self.plan.pending)
        workers = [asyncio.ensure_future(self._work(RowSession(session, self.plan.config, self._refuse), pending))
                   for _ in range(min(self.plan.concurrency, max(1, len(self.plan.pending))))]
        ticker = asyncio.ensure_future(self._tick(stream))
        stopped = False
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            stopped = True
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        except Exception as exc:  # a bug of ours: fail the map, not leave it hanging
            for worker in workers:
                worker.cancel()
            ticker.cancel()
            self.store.flush()
            stream.fail(exc)
            return
        finally:
            ticker.cancel()
        self.store.flush()
        if stopped:
            self.plan.outcomes = [o if o is not None else Outcome(None, STOPPED) for o in self.plan.outcomes]
        self.progress = self._snapshot(finished=True, stopped=stopped, in_flight=0)
        stream.emit(self.progress)
        stream.finish(self.plan.outcomes)

    async def _work(self, rows: "RowSession", pending: Iterator[int]) -> None:
        plan = self.plan
        for index in pending:
            self.progress = replace(self.progress, in_flight=self.progress.in_flight + 1)
            try:
                outcome = await rows.answer(fill(plan.template, plan.rows[index]), plan.output)
            finally:
                self.progress = replace(self.progress, in_flight=self.progress.in_flight - 1)
            plan.outcomes[index] = outcome
            ok = outcome.error is None
            self.progress = replace(self.progress, done=self.progress.done + ok, failed=self.progress.failed + (not ok),
                                    usage=self.progress.usage + rows.last_usage)
            if ok:
                self.store.add(plan.key(index), {"value": outcome.value, "tokens": outcome.tokens}, time.time())
                now = time.monotonic()
                if now - self._last_flush >= FLUSH_INTERVAL:
                    self._last_flush = now
                    self.store.flush()

    async def _tick(self, stream: ChatStream) -> None:
        while True:
            stream.emit(self._snapshot())
            await asyncio.sleep(PROGRESS_INTERVAL)

    def _snapshot(self, **changes: Any) -> MapProgress:
        return replace(self.progress, elapsed=time.monotonic() - self._started,
                       refused_tools=tuple(self._refused), **changes)

    async def _refuse(self, request: ApprovalRequest) -> Approval:
        """The approval handler of every row: nobody can approve each row of a map."""
        if request.tool not in self._refused:
            self._refused.append(request.tool)
            log.warning("agy map: %r needs approval; it is refused for every row of the map", request.tool)
        return Approval(approved=False, reason="tools that need the user's approval cannot run in a map",
                        decided_by="map")


class RowSession(GeminiSession):
    """A session for one map row at a time, beside the agent's: same config, tools and policies; the
    history is emptied for each row and never saved; no session hooks."""

    def __init__(self, agent: GeminiSession, config: "AgentConfig", refuse: Callable):
        super().__init__(config, agent.services, agent.agent_id)
        self.recorder.forgotten = True  # a row is not a conversation: nothing is saved
        self.policies.rules = list(agent.policies.rules)  # the agent's rules as they are now,
        self.policies.grants = list(agent.policies.grants)  # and its standing "always allow" grants
        if agent.mcp is not None:
            self.mcp = agent.mcp
            self._offer_mcp_tools()
        self._refuse = refuse
        self.last_usage = Usage()

    async def answer(self, prompt: str, output: type | None) -> Outcome:
        self.messages = []
        self.last_usage = Usage()
        try:
            stream = self.start_turn(prompt, approval_handler=self._refuse)
        except AgyError as exc:
            return Outcome(None, error_text(exc))
        task = self._turn_task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # the map was stopped: stop the row's turn too
            task.cancel()
            await asyncio.wait({task})
            raise
        error = stream.error()
        if error is not None:
            return Outcome(None, error_text(error))
        response = stream.result(0)
        self.last_usage = response.usage
        tokens = response.usage.total_tokens
        if output is None:
            return Outcome(response.text, None, tokens)
        if response.parse_error is not None:
            return Outcome(None, invalid_output(output, response.parse_error), tokens)
        return Outcome(response.parsed.model_dump(mode="json"), None, tokens)


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def invalid_output(output: type, why: str) -> str:
    """The error column's text for a reply that does not validate as `output` (first line of `why`)."""
    first_line = why.strip().splitlines()[0] if why.strip() else why
    return error_text(OutputInvalid(f"the reply is not a valid {output.__name__}: {first_line}"))


# -- results ---------------------------------------------------------------------------------------------

def build_result(plan: MapPlan, column: str, rerun: "Rerun") -> Any:
    """The input with the answers (or the output model's fields) and `error` as new columns, in its order."""
    outcomes = plan.outcomes
    fields = list(plan.output.model_fields) if plan.output is not None else None

    def values(name: str | None) -> list[Any]:
        if name is None:
            return [o.value if o is not None and o.error is None else None for o in outcomes]
        return [o.value.get(name) if o is not None and isinstance(o.value, dict) else None for o in outcomes]

    added = {name: values(name) for name in fields} if fields else {column: values(None)}
    added[ERROR_COLUMN] = [o.error if o is not None else STOPPED for o in outcomes]
    if plan.rows.frame:
        from .map_frame import MapFrame  # pandas: only a caller who passed a DataFrame has it
        return MapFrame.of(plan.rows.data.assign(**added), rerun)
    records = MapRecords({**row, **{name: column_values[i] for name, column_values in added.items()}}
                         for i, row in enumerate(plan.rows.data))
    records.rerun = rerun
    return records


class Rerun:
    """What `retry_failed()` needs: the map's call, and the rows that ended well (kept, not asked again)."""

    def __init__(self, agent: "Agent", data: Any, template: str, options: dict[str, Any], outcomes: list):
        self.agent = agent
        self.data = data
        self.template = template
        self.options = options
        self.outcomes = outcomes

    def known(self) -> dict[int, Outcome]:
        """The rows that ended well, by position: a retry keeps them (even with the store off)."""
        return {i: o for i, o in enumerate(self.outcomes) if o is not None and o.error is None}

    def retry(self) -> Any:
        return run_map(self.agent, self.data, self.template, known=self.known(), **self.options)

    async def aretry(self) -> Any:
        return await arun_map(self.agent, self.data, self.template, known=self.known(), **self.options)


class MapRecords(list):
    """agent.map's result for a list of dicts: the rows with the answers and `error` added."""

    rerun: Rerun

    def retry_failed(self) -> "MapRecords":
        """Ask the failed (and stopped) rows again; the others are kept as they are."""
        return self.rerun.retry()

    async def aretry_failed(self) -> "MapRecords":
        return await self.rerun.aretry()


# -- the calls behind Agent.map / agent.aio.map --------------------------------------------------------

def _prepare(agent: "Agent", data: Any, template: str, *, output: type | None = None, concurrency: int = 8,
             column: str = "answer", mode: str = "interactive", progress: Any = True, resume: bool = True,
             known: Mapping[int, Outcome] | None = None) -> tuple[MapPlan, dict[str, Any], str]:
    """The plan, the options a retry_failed() repeats, and how the pending rows run (interactive or batch)."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    plan = plan_map(agent, data, template, output=output, concurrency=concurrency, column=column, resume=resume,
                    known=known)
    # retry_failed() asks the few failed rows interactively, whatever mode the map ran in
    options = {"output": output, "concurrency": concurrency, "column": column, "mode": "interactive",
               "progress": progress, "resume": resume}
    return plan, options, choose_mode(mode, agent, len(plan.pending))


def _start(agent: "Agent", plan: MapPlan, progress: Any) -> ChatStream:
    run = MapRun(plan, MapStore())
    first = run.progress  # read before the run starts changing it on the runtime loop
    stream = agent.start_rows(run)
    _follow(stream, first, progress, agent)
    return stream


def _follow(stream: ChatStream, first: MapProgress, progress: Any, agent: "Agent") -> None:
    """Show the map's progress events as `progress` asks, starting from `first` (the run's before any row)."""
    if callable(progress):
        stream.add_listener(lambda event: progress(event) if isinstance(event, MapProgress) else None)
    elif progress:
        display = progress_display()
        if display is not None:
            display(stream, first, agent.config)
        else:
            show = text_progress()
            stream.add_listener(lambda event: show(event) if isinstance(event, MapProgress) else None)


def _finish(agent: "Agent", data: Any, template: str, plan: MapPlan, options: dict[str, Any]) -> Any:
    rerun = Rerun(agent, data, template, options, plan.outcomes)
    stopped = sum(1 for o in plan.outcomes if o is not None and o.error == STOPPED)
    if stopped:
        log.warning("agy map: stopped with %d row(s) unfinished; run the same map again to finish them "
                    "(the finished rows are not asked again)", stopped)
    return build_result(plan, options["column"], rerun)


def run_map(agent: "Agent", data: Any, template: str, **options: Any) -> Any:
    """agent.map: block until every row ended (Ctrl-C stops the map; the finished rows are kept)."""
    plan, kept, ran_as = _prepare(agent, data, template, **options)
    if plan.pending and ran_as == "batch":
        plan.outcomes = run_batch(agent, plan, *batch_progress(kept["progress"], len(plan.pending)))
    elif plan.pending:
        plan.outcomes = _start(agent, plan, kept["progress"]).result()
    return _finish(agent, data, template, plan, kept)


async def arun_map(agent: "Agent", data: Any, template: str, **options: Any) -> Any:
    """await agent.amap: the same, awaited from any event loop (cancelling the await stops the map)."""
    plan, kept, ran_as = _prepare(agent, data, template, **options)
    if plan.pending and ran_as == "batch":
        on_progress, stop = batch_progress(kept["progress"], len(plan.pending))
        try:
            plan.outcomes = await asyncio.to_thread(run_batch, agent, plan, on_progress, stop)  # the wait blocks
        except asyncio.CancelledError:
            stop.set()  # the thread goes on: it cancels the job within batch.NAP s
            raise
    elif plan.pending:
        run = MapRun(plan, MapStore())
        first = run.progress
        stream = await agent.aio.start_rows(run)
        _follow(stream, first, kept["progress"], agent)
        plan.outcomes = await stream
    return _finish(agent, data, template, plan, kept)

