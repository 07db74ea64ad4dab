# mypy: disable-error-code="empty-body"
# (the tables' methods are definitions only: their bodies are the generated face methods)
"""Every runtime command, defined once; its sync and async forms are derived from that one definition.

A command is a stub method in a table class: its name, parameters, return type and docstring are the
whole definition, and whether it targets an agent is which descriptor wraps it. Four faces read the
tables, so they cannot drift apart:

    Runtime        runtime.history(agent)             blocks the calling thread for the reply
    AsyncRuntime   await runtime.aio.history(agent)   awaits it from any event loop
    Agent          agent.history()                    the same command bound to one agent
    AsyncAgent     await agent.aio.history()

A face is a class that inherits a table and one of the face bases below. When the face class is
created, `__init_subclass__` replaces each table entry with a real function built for that face (a
`def`, or an `async def` on async faces) carrying the command's `__signature__`, `__doc__` and name:
`help()`, `inspect`, tab completion and pydoc see ordinary methods, and a call costs no descriptor lookup.

Why a typed descriptor and not stub files: a `.pyi` (or an `if TYPE_CHECKING:` block) per face would be
the four hand-written lists again. Each table entry is an `AgentCommand[P, R]` / `RuntimeCommand[P, R]`
whose overloaded `__get__` tells a type checker what every face sees: `Callable[P, R]` on a sync face,
`Callable[P, Coroutine[Any, Any, R]]` on an async one, with `agent: AgentRef` in front on the runtime's
faces (checked with mypy in tests/test_api_faces.py). The runtime knows nothing of the agent layer's
types, so the agent table is generic in the message, usage and response types; `Agent` binds them.

Where a command runs: an `AgentCommand` with `runs_on="session"` calls the agent session's method of the
same name (`AgentSession` in session.py lists them); every other command calls `Runtime._do_<name>`.
"""
from __future__ import annotations

import inspect
import typing
from typing import (Any, Callable, Concatenate, Coroutine, Generic, Literal, Optional, ParamSpec, TypeVar,
                    Union, overload)

from .stream import ChatStream

P = ParamSpec("P")
R = TypeVar("R")
R2 = TypeVar("R2")
MessageT = TypeVar("MessageT")
UsageT = TypeVar("UsageT")
ResponseT = TypeVar("ResponseT")

AgentRef = Union[int, str]
_AGENT_PARAMETER = inspect.Parameter("agent", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=AgentRef)


# -- helpers -----------------------------------------------------------------------------------------

def _binder(name: str, signature: inspect.Signature) -> Callable[[tuple, dict], tuple]:
    """Turn a call's arguments into the command's positional arguments (defaults filled, **options as a dict)."""
    params = list(signature.parameters.values())[1:]  # without self
    simple = all(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params)
    arity = len(params)

    def bind(args: tuple, kwargs: dict) -> tuple:
        if simple and not kwargs and len(args) == arity:  # the common case: no binding needed
            return args
        try:
            bound = signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{name}(): {exc}") from None
        bound.apply_defaults()
        return tuple(bound.arguments.values())[1:]
    return bind


def _type_bindings(face: type) -> dict[Any, Any]:
    """The face's type arguments for the tables' type variables (AgentCommands[Message, …] → MessageT=Message)."""
    bindings: dict[Any, Any] = {}
    for klass in face.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            parameters = getattr(origin, "__parameters__", ())
            for parameter, argument in zip(parameters, typing.get_args(base)):
                bindings.setdefault(parameter, argument)
    return bindings


def _resolve(spec: Callable[..., Any], annotation: Any, bindings: dict[Any, Any]) -> Any:
    """An annotation for help(): evaluated where possible, the tables' type variables replaced."""
    if isinstance(annotation, str):
        try:
            annotation = eval(annotation, spec.__globals__)  # noqa: S307 - our own source's annotations
        except Exception:  # a forward reference not defined yet: show it as written
            return annotation
    if isinstance(annotation, TypeVar):
        return bindings.get(annotation, Any)
    parameters = getattr(annotation, "__parameters__", ())
    if parameters:
        try:
            return annotation[tuple(bindings.get(p, Any) for p in parameters)]
        except TypeError:
            return annotation
    return annotation


# -- the command descriptors -------------------------------------------------------------------------

class _Command:
    """What every command knows about itself: its definition, and how to build a face's method."""

    targets_agent = False

    def __init__(self, spec: Callable[..., Any], *, doc: str | None = None, returns: Any = None):
        self.spec = spec
        self.name = spec.__name__  # the runtime command it is; a face may show it under another name
        self.doc = doc if doc is not None else inspect.getdoc(spec)
        self._returns = returns

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def face_signature(self, face: type[_Face], bindings: dict[Any, Any]) -> inspect.Signature:
        """The signature a face shows: the spec's own, plus `agent` in front on the runtime's faces."""
        spec = inspect.signature(self.spec)
        params = list(spec.parameters.values())
        if self.targets_agent and not face._agent_face:
            params.insert(1, _AGENT_PARAMETER)
        returns = self._returns if self._returns is not None else spec.return_annotation
        return spec.replace(parameters=[p.replace(annotation=_resolve(self.spec, p.annotation, bindings))
                                        for p in params],
                            return_annotation=_resolve(self.spec, returns, bindings))

    def build(self, face: type[_Face], name: str, bindings: dict[Any, Any]) -> Callable[..., Any]:
        signature = self.face_signature(face, bindings)
        method = self._agent_method(face) if face._agent_face else self._runtime_method(face, signature)
        method.__name__ = name
        method.__qualname__ = f"{face.__qualname__}.{name}"
        method.__module__ = face.__module__
        method.__doc__ = self.doc
        method.__signature__ = signature  # type: ignore[attr-defined]
        return method

    def _runtime_method(self, face: type[_Face], signature: inspect.Signature) -> Callable[..., Any]:
        command, bind = self.name, _binder(self.name, signature)
        if face._async_face:
            async def run_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                return await self._command(command, bind(args, kwargs))
            return run_async

        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            return self._command(command, bind(args, kwargs))
        return run

    def _agent_method(self, face: type[_Face]) -> Callable[..., Any]:
        raise TypeError(f"{self.name} is not an agent command: it cannot be on {face.__name__}")


class RuntimeCommand(_Command, Generic[P, R]):
    """A command of the runtime as a whole (no agent argument), on the runtime's two faces."""

    @overload
    def __get__(self, obj: None, owner: type) -> RuntimeCommand[P, R]: ...
    @overload
    def __get__(self, obj: AsyncRuntimeFace, owner: type) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, obj: SyncRuntimeFace, owner: type) -> Callable[P, R]: ...

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        raise TypeError(f"{owner.__name__} is a command table, not a face: it has no {self.name}()")


class AgentCommand(_Command, Generic[P, R]):
    """A command on one agent: `runtime.X(agent, …)`, `agent.X(…)` and their async forms.

    `runs_on` says who carries it out on the runtime loop: the agent session's method of the same
    name, or the runtime (`Runtime._do_<name>`). On an agent face, `route(agent, *args, **kwargs)`
    returns the runtime command's arguments when they are not simply (agent id, *args), and
    `waits_for_reply` turns a returned ChatStream into its final result.
    """

    targets_agent = True

    def __init__(self, spec: Callable[..., Any], *, runs_on: Literal["session", "runtime"] = "session",
                 runtime_name: str | None = None, route: Callable[..., tuple] | None = None,
                 waits_for_reply: bool = False, doc: str | None = None, returns: Any = None):
        super().__init__(spec, doc=doc, returns=returns)
        self.runs_on = runs_on
        self.runtime_name = runtime_name or self.name
        self.route = route
        self.waits_for_reply = waits_for_reply

    @overload
    def __get__(self, obj: None, owner: type) -> AgentCommand[P, R]: ...
    @overload
    def __get__(self, obj: AsyncAgentFace, owner: type) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, obj: SyncAgentFace, owner: type) -> Callable[P, R]: ...
    @overload
    def __get__(self, obj: AsyncRuntimeFace, owner: type) -> Callable[Concatenate[AgentRef, P],
                                                                      Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, obj: SyncRuntimeFace, owner: type) -> Callable[Concatenate[AgentRef, P], R]: ...

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        raise TypeError(f"{owner.__name__} is a command table, not a face: it has no {self.name}()")

    def waiting_for_reply(self, result: type[R2], *, doc: str) -> AgentCommand[P, R2]:
        """This command on an agent face, returning the turn's result instead of its stream."""
        return AgentCommand(self.spec, runs_on=self.runs_on, runtime_name=self.runtime_name,
                            waits_for_reply=True, doc=doc, returns=result)

    def _agent_method(self, face: type[_Face]) -> Callable[..., Any]:
        command, route, waits = self.runtime_name, self.route, self.waits_for_reply

        def arguments(agent: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            return (route(agent, *args, **kwargs), {}) if route is not None else ((agent.id, *args), kwargs)

        if face._async_face:
            async def run_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                runtime, agent = self._command_target()
                call_args, call_kwargs = arguments(agent, args, kwargs)
                value = await getattr(runtime, command)(*call_args, **call_kwargs)
                return await value if waits else value
            return run_async

        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            runtime, agent = self._command_target()
            call_args, call_kwargs = arguments(agent, args, kwargs)
            value = getattr(runtime, command)(*call_args, **call_kwargs)
            return value.result() if waits else value
        return run


def runtime_command(spec: Callable[Concatenate[Any, P], R]) -> RuntimeCommand[P, R]:
    """Declare a command of the runtime as a whole."""
    return RuntimeCommand(spec)


@overload
def agent_command(spec: Callable[Concatenate[Any, P], R]) -> AgentCommand[P, R]: ...
@overload
def agent_command(*, runs_on: Literal["session", "runtime"] = "session", runtime_name: str | None = None,
                  route: Callable[..., tuple] | None = None
                  ) -> Callable[[Callable[Concatenate[Any, P], R]], AgentCommand[P, R]]: ...


def agent_command(spec: Any = None, **options: Any) -> Any:
    """Declare a command on one agent (written as the agent sees it: without the agent argument)."""
    if spec is None:
        return lambda fn: AgentCommand(fn, **options)
    return AgentCommand(spec, **options)


# -- the faces ---------------------------------------------------------------------------------------

class _Face:
    """Base of the four faces: installs the tables' commands as real methods of each face class."""

    _async_face = False
    _agent_face = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        bindings = _type_bindings(cls)
        for name in dir(cls):
            entry = inspect.getattr_static(cls, name)
            if isinstance(entry, _Command):
                setattr(cls, name, entry.build(cls, name, bindings))


class SyncRuntimeFace(_Face):
    """Runtime commands that block: a face implements `_command(name, args)`."""

    def _command(self, name: str, args: tuple) -> Any:
        raise NotImplementedError


class AsyncRuntimeFace(_Face):
    """Runtime commands as coroutines: a face implements `async _command(name, args)`."""

    _async_face = True

    async def _command(self, name: str, args: tuple) -> Any:
        raise NotImplementedError


class SyncAgentFace(_Face):
    """Agent commands that block: a face says which runtime face and agent its commands go to."""

    _agent_face = True

    def _command_target(self) -> tuple[Any, Any]:
        """(the sync runtime face, the agent)"""
        raise NotImplementedError


class AsyncAgentFace(_Face):
    """Agent commands as coroutines: a face says which async runtime face and agent they go to."""

    _async_face = True
    _agent_face = True

    def _command_target(self) -> tuple[Any, Any]:
        """(the async runtime face, the agent)"""
        raise NotImplementedError


# -- the tables --------------------------------------------------------------------------------------

class AgentCommands(Generic[MessageT, UsageT, ResponseT]):
    """The commands on one agent, as the agent sees them (the runtime adds `agent` in front)."""

    @agent_command
    def wait_for_idle(self) -> None:
        """Wait until the agent has no running turn and no message waiting in its inbox."""

    @agent_command
    def is_idle(self) -> bool:
        """True if the agent has no running turn and no message waiting in its inbox."""

    @agent_command
    def cancel(self) -> None:
        """Cancel the agent's running turn, if any; partial output is kept and marked cancelled."""

    @agent_command
    def signal_idle(self) -> None:
        """Mark the agent idle and wake everyone waiting for that."""

    @agent_command
    def wait_for_wakeup(self, timeout: float) -> bool:
        """Wait up to `timeout` s for a message to the agent; True if one arrived."""

    @agent_command
    def history(self) -> list[MessageT]:
        """The agent's messages, oldest first."""

    @agent_command
    def turn_count(self) -> int:
        """How many turns the agent has run."""

    @agent_command
    def total_usage(self) -> UsageT:
        """Tokens used by every turn of the agent."""

    @agent_command
    def last_turn_usage(self) -> UsageT:
        """Tokens used by the agent's last turn."""

    @agent_command
    def clear_history(self) -> None:
        """Forget the conversation (the agent's settings stay)."""

    @agent_command
    def compaction_indices(self) -> list[int]:
        """Where in the history older turns were replaced by a summary."""

    @agent_command
    def last_response(self) -> Optional[str]:
        """The text of the agent's last reply, or None."""

    @agent_command
    def last_turn(self) -> Optional[ResponseT]:
        """The whole response of the agent's last finished turn (text, tool calls, usage, stop reason)."""

    @agent_command
    def describe(self) -> dict[str, Any]:
        """The agent's state for listings: what it is doing, turns, tokens, context size, last error."""

    @agent_command
    def import_history(self, messages: list[dict[str, Any]]) -> None:
        """Replace an idle agent's history with saved messages (validated)."""

    @agent_command
    def start_rows(self, job: Any) -> ChatStream:
        """Start a job of stateless turns on the agent's config (agent.map's rows); return its handle at once."""

    @agent_command
    def disconnect(self) -> None:
        """Cancel the agent's turn and drop its backend connection; it reconnects on next use."""

    @agent_command(runs_on="runtime")
    def shutdown_agent(self) -> None:
        """Cancel the agent's turn and stop it; its history stays readable."""

    @agent_command(runs_on="runtime")
    def delete(self) -> None:
        """Stop the agent and forget it (history included)."""


class RuntimeCommands(AgentCommands[Any, Any, Any]):
    """Every command of the runtime: the agent commands, plus creating agents, chatting and messages."""

    @runtime_command
    def create_agent(self, spec: Any) -> int:
        """Create an agent from its config (agy_jupyter.AgentConfig); return its id."""

    @runtime_command
    def agent_ids(self) -> dict[str, int]:
        """Names and ids of every agent."""

    @agent_command(runs_on="runtime")
    def chat(self, prompt: Any, **options: Any) -> ChatStream:
        """Start a turn; return its stream handle at once (iterate it, await it or call .result())."""

    @agent_command(runs_on="runtime")
    def send(self, message: Any, sender: Optional[str] = None) -> None:
        """Put `message` in the agent's inbox; it becomes a turn once the agent is free.

        Messages to one agent start at least `inter_agent_delay` apart. A full inbox
        (`inbox_capacity` messages waiting) raises InboxFull.
        """


def commands(table: type) -> dict[str, _Command]:
    """The commands of a table (or face) class by the name they are shown under."""
    found: dict[str, _Command] = {}
    for klass in reversed(table.__mro__):
        for name, entry in vars(klass).items():
            if isinstance(entry, _Command):
                found[name] = entry
    return found


RUNTIME_COMMANDS = commands(RuntimeCommands)
SESSION_COMMANDS = frozenset(name for name, command in RUNTIME_COMMANDS.items()
                             if isinstance(command, AgentCommand) and command.runs_on == "session")
