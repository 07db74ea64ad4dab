"""Runtime: one daemon thread running its own asyncio loop, holding every agent.

Every command goes through one path, `_submit`: it checks the thread is alive, takes a slot of the
bounded channel (waiting up to the operation timeout when all are taken), copies the caller's
contextvars (so output lands in the cell that asked), runs the command on the runtime loop under the
operation timeout, and replies once with a result or a typed error. The commands themselves are
defined once, in commands.py: `Runtime` is their sync face (`runtime.history(agent)`), `AsyncRuntime`
their async face (`await runtime.aio.history(agent)`); both call `_command` here.
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import functools
import inspect
import itertools
import logging
import threading
import time
import weakref
from typing import Any, Callable, Coroutine

from .commands import AgentRef, AsyncRuntimeFace, RuntimeCommands, SESSION_COMMANDS, SyncRuntimeFace
from .config import RuntimeConfig
from .errors import AgyError, ConfigError, RuntimeClosed, Timeout, UnknownAgent
from .interrupt import wait_interruptibly
from .quota import GLOBAL_QUOTA, QuotaRegistry
from .session import AgentSession, AgentSpec, ResourceCache, RuntimeServices
from .stream import ChatStream

log = logging.getLogger(__name__)

THREAD_NAME = "agy-runtime"
_JOIN_GRACE = 1.0  # callers wait this much past the operation timeout before giving up on a hung loop
_ASYNC_SLOT_POLL = 0.005



class _LoopThread:
    """The thread and its loop. Holds no reference to the Runtime, so a dropped Runtime is collected."""

    def __init__(self, name: str):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.crash: BaseException | None = None
        self.closing = False  # set (under pending_lock) once the loop has stopped: no new commands
        self.pending: set[concurrent.futures.Future] = set()
        self.pending_lock = threading.Lock()
        self.streams: weakref.WeakSet[ChatStream] = weakref.WeakSet()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()  # created here, never the caller's loop
        asyncio.set_event_loop(loop)
        self.loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        except BaseException as exc:  # SystemExit / KeyboardInterrupt out of a callback kills the loop
            self.crash = exc
            log.error("agy runtime thread crashed: %r", exc)
        finally:
            self._finish(loop)

    def _finish(self, loop: asyncio.AbstractEventLoop) -> None:
        with self.pending_lock:
            # The loop runs again below (to cancel tasks): a command submitted now must not start.
            self.closing = True
        cause = repr(self.crash) if self.crash else "the runtime was shut down"
        # Fail running turns before cancelling their tasks: the agent would report a cancelled task
        # as an ordinary user cancel, hiding that the runtime died under it.
        for stream in list(self.streams):
            if not stream.done():
                stream.close_unfinished(self.crash if self.crash is not None else cause)
        try:
            # Cancelling the tasks settles their callers' futures (reported as RuntimeClosed there).
            # Twice: commands queued just before `closing` become tasks while the first pass runs.
            for _ in range(2):
                tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in tasks:
                    task.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
                else:
                    loop.run_until_complete(asyncio.sleep(0))  # run callbacks already queued
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as exc:  # a dying loop must still release every waiter below
            log.warning("agy runtime: error while cancelling tasks at exit: %r", exc)
        finally:
            loop.close()
            # Futures whose coroutine never started (submitted as the loop stopped) are failed here.
            with self.pending_lock:
                pending, self.pending = list(self.pending), set()
            for fut in pending:
                if not fut.done():
                    fut.set_exception(RuntimeClosed(f"the runtime thread exited ({cause})", cause=self.crash or cause))

    def alive(self) -> bool:
        return (self.thread.is_alive() and self.loop is not None and not self.closing
                and not self.loop.is_closed())

    def on_thread(self) -> bool:
        return threading.current_thread() is self.thread


class Runtime(SyncRuntimeFace, RuntimeCommands):
    """The kernel-resident runtime. Create one with `Runtime(config)`, or use `get_runtime()`.

    Every command (commands.py) is a method here that blocks for its reply, and a coroutine on
    `runtime.aio` that awaits it from any event loop.
    """

    def __init__(self, config: RuntimeConfig | None = None, *, quota: QuotaRegistry | None = None,
                 name: str = THREAD_NAME):
        self.config = config if config is not None else RuntimeConfig()
        self.quota = quota if quota is not None else GLOBAL_QUOTA
        self._name = name
        self._ids = itertools.count(1)
        self._sessions: dict[int, AgentSession] = {}
        self._specs: dict[int, AgentSpec] = {}
        self._names: dict[str, int] = {}
        self._shutdown_called = False
        self._start_thread()
        self.aio = AsyncRuntime(self)
        # Weak, so registering does not keep the runtime alive; a collected runtime warns in __del__.
        self_ref = weakref.ref(self)
        self._atexit = lambda: (rt := self_ref()) is not None and rt._shutdown_at_exit()
        atexit.register(self._atexit)

    def _start_thread(self) -> None:
        self._thread = _LoopThread(self._name)
        self._semaphore = threading.BoundedSemaphore(self.config.channel_capacity)
        self._resources = ResourceCache()
        self._services = RuntimeServices(self.config, self._thread.loop, self.quota, self._resources)

    def __repr__(self) -> str:
        state = "running" if self._thread.alive() else ("shut down" if self._shutdown_called else "dead")
        return f"<Runtime {self._name} {state}, {len(self._sessions)} agents>"

    def __del__(self) -> None:
        thread = getattr(self, "_thread", None)
        if thread is None or getattr(self, "_shutdown_called", True) or not thread.alive():
            return
        log.warning("agy Runtime dropped without shutdown(); stopping its thread (call shutdown() to "
                    "cancel turns and close clients cleanly)")
        try:
            thread.loop.call_soon_threadsafe(thread.loop.stop)
        except RuntimeError:
            pass

    # -- properties ------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._thread.loop

    @property
    def thread(self) -> threading.Thread:
        return self._thread.thread

    @property
    def is_alive(self) -> bool:
        return self._thread.alive() and not self._shutdown_called

    # -- the one submit path ---------------------------------------------------------------------

    def _check_alive(self, operation: str) -> None:
        if self._shutdown_called or not self._thread.alive():
            raise self._closed_error(operation)

    def _closed_error(self, operation: str) -> AgyError:
        if self._shutdown_called:
            return RuntimeClosed(f"{operation}: the runtime was shut down", cause="shutdown() was called")
        crash = self._thread.crash
        if crash is not None:
            return RuntimeClosed(f"{operation}: the runtime thread is dead ({crash!r})", cause=crash)
        if not self._thread.alive():
            return RuntimeClosed(f"{operation}: the runtime thread is not running")
        return AgyError(f"{operation} was cancelled inside the runtime")

    def _outcome(self, operation: str, fut: concurrent.futures.Future) -> Any:
        # A command's task is cancelled when the runtime stops under it: report why, not a bare cancel.
        if fut.cancelled():
            raise self._closed_error(operation)
        return fut.result()

    def _schedule(self, operation: str, coro: Coroutine) -> concurrent.futures.Future:
        """Run `coro` on the runtime loop under the operation timeout, in the caller's context.

        The caller holds a slot of the semaphore; it is released when the command ends, or here if the
        command cannot be submitted (the loop is stopping or gone: RuntimeClosed).
        """
        thread, semaphore = self._thread, self._semaphore
        ctx = contextvars.copy_context()  # one copy per submission: a Context can't be shared by threads
        guarded = self._guard(operation, coro)
        try:
            # Under the lock, so _finish either sees this future in `pending` or we see `closing`.
            with thread.pending_lock:
                if thread.closing:
                    raise self._closed_error(operation)
                try:
                    fut = ctx.run(asyncio.run_coroutine_threadsafe, guarded, thread.loop)
                except RuntimeError:  # the loop was closed
                    raise self._closed_error(operation) from None
                thread.pending.add(fut)
        except BaseException:
            guarded.close()
            coro.close()
            semaphore.release()
            raise
        # Bound to this thread's semaphore: a command finishing after restart() must not free a new slot.
        fut.add_done_callback(functools.partial(_release, thread, semaphore))
        return fut

    async def _guard(self, operation: str, coro: Coroutine) -> Any:
        timeout = self.config.operation_timeout
        try:
            async with asyncio.timeout(timeout):
                return await coro
        except TimeoutError:
            raise Timeout(operation, timeout) from None
        except AgyError as exc:
            raise exc.with_operation(operation)

    def _command(self, operation: str, args: tuple) -> Any:
        """Sync form: block the calling thread for the reply."""
        self._check_alive(operation)
        if self._thread.on_thread():
            raise ConfigError(f"{operation}: a sync runtime call from the runtime's own thread would "
                              "deadlock", hint=f"use `await runtime.aio.{operation}(...)` there")
        deadline = self.config.operation_timeout
        if not self._semaphore.acquire(timeout=deadline):
            raise Timeout(f"{operation} (all {self.config.channel_capacity} command slots busy)", deadline)
        fut = self._schedule(operation, self._dispatch(operation, args))
        try:
            return fut.result(deadline + _JOIN_GRACE)
        except concurrent.futures.CancelledError:  # the runtime stopped under the command
            raise self._closed_error(operation) from None
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise Timeout(operation, deadline, f"{operation}: no reply from the runtime thread "
                                               f"within {deadline:g} s (is the loop blocked?)") from None
        except KeyboardInterrupt:
            fut.cancel()
            raise

    async def _acommand(self, operation: str, args: tuple) -> Any:
        """Async form: await the reply from any event loop (including the runtime's own)."""
        self._check_alive(operation)
        deadline = self.config.operation_timeout
        if not self._semaphore.acquire(blocking=False):
            give_up = time.monotonic() + deadline
            while not self._semaphore.acquire(blocking=False):
                if time.monotonic() > give_up:
                    raise Timeout(f"{operation} (all {self.config.channel_capacity} command slots busy)",
                                  deadline)
                await asyncio.sleep(_ASYNC_SLOT_POLL)
        fut = self._schedule(operation, self._dispatch(operation, args))
        wrapped = asyncio.wrap_future(fut)
        try:
            async with asyncio.timeout(deadline + _JOIN_GRACE):
                await wait_interruptibly(wrapped, fut.cancel)
        except TimeoutError:
            fut.cancel()
            raise Timeout(operation, deadline, f"{operation}: no reply from the runtime thread "
                                               f"within {deadline:g} s (is the loop blocked?)") from None
        if not wrapped.cancelled():
            wrapped.exception()  # the outcome is read from `fut`: mark this copy's error as retrieved
        return self._outcome(operation, fut)

    # -- command implementations (run on the runtime loop) ---------------------------------------

    async def _dispatch(self, operation: str, args: tuple) -> Any:
        if operation in SESSION_COMMANDS:
            agent, *rest = args
            result = getattr(self._session(agent), operation)(*rest)
            return await result if inspect.isawaitable(result) else result
        return await getattr(self, f"_do_{operation}")(*args)

    def _session(self, agent: AgentRef) -> AgentSession:
        agent_id = self._names.get(agent) if isinstance(agent, str) else agent
        if agent_id is None or agent_id not in self._sessions:
            raise UnknownAgent(agent)
        return self._sessions[agent_id]

    def _resolve_id(self, agent: AgentRef) -> int:
        self._session(agent)
        return self._names[agent] if isinstance(agent, str) else agent

    async def _do_create_agent(self, spec: AgentSpec) -> int:
        name = getattr(spec, "name", None)
        if not callable(getattr(spec, "create_session", None)):
            raise ConfigError(f"create_agent needs an agent config, got {type(spec).__name__}",
                              hint="pass agy_jupyter.AgentConfig(...)")
        if name and name in self._names:
            raise ConfigError(f"an agent named {name!r} already exists",
                              hint="pick another name, or delete the old agent first")
        agent_id = next(self._ids)
        session = spec.create_session(self._services, agent_id)
        if inspect.isawaitable(session):
            session = await session
        self._sessions[agent_id] = session
        self._specs[agent_id] = spec
        if name:
            self._names[name] = agent_id
        return agent_id

    async def _do_agent_ids(self) -> dict[str, int]:
        return {session.name: agent_id for agent_id, session in self._sessions.items()}

    async def _do_chat(self, agent: AgentRef, prompt: Any, options: dict) -> ChatStream:
        stream = self._session(agent).start_turn(prompt, **options)
        self._thread.streams.add(stream)
        return stream

    async def _do_send(self, agent: AgentRef, message: Any, sender: str | None) -> None:
        # The agent's own bounded inbox queues it (InboxFull when full) and spaces its turns.
        await self._session(agent).deliver(message, sender)

    async def _do_shutdown_agent(self, agent: AgentRef) -> None:
        await self._session(agent).shutdown()

    async def _do_delete(self, agent: AgentRef) -> None:
        agent_id = self._resolve_id(agent)
        session = self._sessions.pop(agent_id)
        self._specs.pop(agent_id, None)
        self._names = {n: i for n, i in self._names.items() if i != agent_id}
        await session.shutdown()

    # -- commands: the sync forms come from commands.py; this one is not a command ------------------

    def try_shutdown_agent(self, agent: AgentRef) -> bool:
        """Best effort, never blocks or raises: request shutdown of an agent; False if not possible."""
        if not self._thread.alive() or self._shutdown_called:
            return False
        if not self._semaphore.acquire(blocking=False):
            return False
        try:
            fut = self._schedule("try_shutdown_agent", self._do_shutdown_agent(agent))
        except AgyError:  # the loop stopped in between (_schedule released the slot)
            return False
        fut.add_done_callback(_log_failure("try_shutdown_agent"))
        return True

    # -- lifecycle -------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Cancel every turn, close the clients and join the thread within shutdown_timeout.

        Safe to call twice. Raises RuntimeClosed if the thread had crashed, Timeout if it hung.
        """
        if self._thread.on_thread():
            raise ConfigError("shutdown() from the runtime's own thread would wait for itself",
                              hint="call it from another thread")
        if self._shutdown_called:
            return
        self._shutdown_called = True
        atexit.unregister(self._atexit)
        thread = self._thread
        limit = self.config.shutdown_timeout
        if thread.alive():
            try:
                asyncio.run_coroutine_threadsafe(self._close_everything(), thread.loop)
            except RuntimeError:
                pass  # loop already closed: nothing left to close
        thread.thread.join(limit)
        if thread.thread.is_alive():
            log.error("agy runtime thread did not exit within %gs", limit)
            raise Timeout("shutdown (thread join)", limit)
        if thread.crash is not None:
            raise RuntimeClosed(f"the runtime thread had crashed: {thread.crash!r}", cause=thread.crash)

    async def _close_everything(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for session in list(self._sessions.values()):
                try:
                    await session.shutdown()
                except Exception as exc:
                    log.warning("agy runtime: shutting down agent %r failed: %r", session.name, exc)
            for failure in await self._resources.aclose():
                log.warning("agy runtime: closing a client failed: %r", failure)
        finally:
            loop.stop()

    def _shutdown_at_exit(self) -> None:
        try:
            self.shutdown()
        except AgyError as exc:
            log.warning("agy runtime: shutdown at exit: %s", exc)

    def restart(self) -> None:
        """Start a fresh thread after a crash or shutdown; agents come back with their history."""
        old = self._thread
        if old.on_thread():
            raise ConfigError("restart() from the runtime's own thread would wait for itself",
                              hint="call it from another thread")
        if old.alive() and not self._shutdown_called:
            self.shutdown()
        elif old.thread.is_alive():
            old.thread.join(self.config.shutdown_timeout)
        states = {i: s.snapshot() for i, s in self._sessions.items()}
        self._shutdown_called = False
        self._start_thread()
        atexit.unregister(self._atexit)  # still registered if the thread had crashed: register once
        atexit.register(self._atexit)

        async def rebuild() -> None:
            for agent_id, spec in self._specs.items():
                session = spec.create_session(self._services, agent_id)
                if inspect.isawaitable(session):
                    session = await session
                session.restore(states[agent_id])
                self._sessions[agent_id] = session

        self._sessions = {}
        asyncio.run_coroutine_threadsafe(rebuild(), self._thread.loop).result(self.config.operation_timeout)


class AsyncRuntime(AsyncRuntimeFace, RuntimeCommands):
    """The async forms of the runtime's commands: `await runtime.aio.history(agent)`."""

    def __init__(self, runtime: Runtime):
        self._runtime = runtime

    def __repr__(self) -> str:
        return f"<AsyncRuntime of {self._runtime!r}>"

    async def _command(self, name: str, args: tuple) -> Any:
        return await self._runtime._acommand(name, args)

    async def try_shutdown_agent(self, agent: AgentRef) -> bool:
        """Best effort, never blocks or raises: request shutdown of an agent; False if not possible."""
        return self._runtime.try_shutdown_agent(agent)


def _release(thread: _LoopThread, semaphore: threading.BoundedSemaphore,
             fut: concurrent.futures.Future) -> None:
    with thread.pending_lock:
        thread.pending.discard(fut)
    semaphore.release()


def _log_failure(what: str) -> Callable[[Any], None]:
    def check(fut: Any) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.warning("agy runtime: %s failed: %s", what, exc)
    return check


_default: Runtime | None = None
_default_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's default runtime, created on first use (and re-created after shutdown)."""
    global _default
    with _default_lock:
        if _default is None or _default._shutdown_called:
            _default = Runtime()
        return _default
