"""One API, four faces: every command is on Runtime, runtime.aio, Agent and agent.aio with the same name,
parameters, docstring and result type, because all four are derived from one definition
(agy_jupyter/runtime/commands.py). Results are compared by running every command through the fake server.
"""
from __future__ import annotations

import asyncio
import inspect
import os
import pydoc
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

import agy_jupyter
from agy_jupyter import Agent, AgentConfig, ChatResponse, Runtime
from agy_jupyter.agent.api import AgentCommandTable, AsyncAgent
from agy_jupyter.agent.session import GeminiSession
from agy_jupyter.runtime import AgentSession, AsyncRuntime, ChatStream
from agy_jupyter.runtime.commands import (AgentCommand, AgentCommands, RuntimeCommands, SESSION_COMMANDS,
                                          commands)
from agy_jupyter.testing import Reply

FACES = [(Runtime, AsyncRuntime, RuntimeCommands), (Agent, AsyncAgent, AgentCommandTable)]


# -- the definition and its faces ------------------------------------------------------------------

@pytest.mark.parametrize("sync_face, async_face, table", FACES, ids=["runtime", "agent"])
def test_every_command_is_on_both_faces_with_one_signature_and_docstring(sync_face, async_face, table):
    table_commands = commands(table)
    assert len(table_commands) >= 20
    for name, command in table_commands.items():
        sync, async_ = getattr(sync_face, name), getattr(async_face, name)
        assert inspect.isfunction(sync) and not inspect.iscoroutinefunction(sync), name
        assert inspect.iscoroutinefunction(async_), name
        assert inspect.signature(sync) == inspect.signature(async_), name
        assert sync.__doc__ == async_.__doc__ == command.doc and command.doc, name
        assert sync.__name__ == async_.__name__ == name


def test_the_runtime_faces_take_the_agent_first_and_the_agent_faces_do_not():
    for name, command in commands(RuntimeCommands).items():
        params = list(inspect.signature(getattr(Runtime, name)).parameters)
        if isinstance(command, AgentCommand):
            assert params[:2] == ["self", "agent"], name
            if name in commands(AgentCommands):  # the same command, bound to one agent
                assert list(inspect.signature(getattr(Agent, name)).parameters) == ["self", *params[2:]]
        else:
            assert "agent" not in params, name


def test_every_agent_command_of_the_runtime_is_reachable_from_an_agent():
    runtime_agent_commands = {n for n, c in commands(RuntimeCommands).items() if isinstance(c, AgentCommand)}
    reached = {c.runtime_name for c in commands(AgentCommandTable).values()}
    assert runtime_agent_commands <= reached
    assert set(commands(AgentCommands)) <= set(commands(AgentCommandTable))
    for name in ("chat", "stream", "usage", "clear", "shutdown", "history", "send", "cancel", "wait_for_idle"):
        assert callable(getattr(Agent, name)) and inspect.iscoroutinefunction(getattr(AsyncAgent, name))


def test_session_commands_agree_with_the_agent_session_protocol():
    for name in SESSION_COMMANDS:
        spec = list(inspect.signature(commands(RuntimeCommands)[name].spec).parameters)
        for session_type in (AgentSession, GeminiSession):
            method = getattr(session_type, name, None)
            assert method is not None, f"{session_type.__name__} has no {name}()"
            assert list(inspect.signature(method).parameters) == spec, (session_type.__name__, name)


def test_help_shows_each_face_with_its_signature_and_docstring():
    sync_help = pydoc.render_doc(Agent, renderer=pydoc.plaintext)
    async_help = pydoc.render_doc(AsyncAgent, renderer=pydoc.plaintext)
    assert "chat(self, prompt: Any, **options: Any) -> agy_jupyter.agent.history.ChatResponse" in sync_help
    assert "async chat(self, prompt: Any, **options: Any) -> agy_jupyter.agent.history.ChatResponse" in async_help
    assert "async usage(self) -> agy_jupyter.agent.history.Usage" in async_help
    for text in (sync_help, async_help):
        assert "Ask and wait for the whole reply" in text and "Tokens used by every turn" in text
    runtime_help = pydoc.render_doc(AsyncRuntime, renderer=pydoc.plaintext)
    assert "async wait_for_wakeup(self, agent: Union[int, str], timeout: float) -> bool" in runtime_help


# -- both faces give the same results (through the fake server) --------------------------------------

class NoRows:
    """A rows job with nothing to do: agent.map's MapRun has the same `start(session) -> ChatStream`."""

    def start(self, session) -> ChatStream:
        stream = ChatStream(session.loop, label="no rows")
        stream.finish([])
        return stream


def agent_plan(peer: Agent) -> list[tuple[str, tuple]]:
    """A call of every agent command, in an order where each one can run."""
    return [("stream", ("hello",)), ("chat", ("hello again",)), ("wait_for_idle", ()), ("is_idle", ()),
            ("cancel", ()), ("signal_idle", ()), ("wait_for_wakeup", (0.01,)), ("history", ()),
            ("turn_count", ()), ("total_usage", ()), ("usage", ()), ("last_turn_usage", ()),
            ("compaction_indices", ()), ("last_response", ()), ("last_turn", ()), ("describe", ()),
            ("start_rows", (NoRows(),)), ("send", (peer, "a note")), ("disconnect", ()), ("import_history", ([],)), ("clear_history", ()),
            ("clear", ()), ("shutdown_agent", ()), ("shutdown", ()), ("delete", ())]


def runtime_plan(agent: int, peer: int) -> list[tuple[str, tuple]]:
    plan = [("agent_ids", ()), ("chat", (agent, "hello"))]
    plan += [(name, (agent, *args)) for name, args in agent_plan(None)
             if name in commands(RuntimeCommands) and name not in ("chat", "send")]
    return plan + [("send", (peer, "a note", "me"))]


def run_plan(face, plan) -> dict[str, object]:
    results = {}
    for name, args in plan:
        value = getattr(face, name)(*args)
        if inspect.iscoroutine(value):  # the async face (a ChatStream is awaitable too: not that)
            value = asyncio.run(value)
        if isinstance(value, ChatStream):
            value.result(5)  # the next command must not find the agent busy
        results[name] = value
    return results


def conforms(value, annotation) -> bool:
    """Does `value` have the declared result type (as far as isinstance can tell)?"""
    if annotation is typing.Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        return any(conforms(value, arm) for arm in typing.get_args(annotation))
    return isinstance(value, origin or annotation)


def test_every_agent_command_gives_the_same_result_on_both_faces(make_agent, fake):
    assert {name for name, _ in agent_plan(None)} == set(commands(AgentCommandTable))  # the plan is complete
    peer = make_agent("peer")
    results = {}
    for mode in ("sync", "async"):
        agent = make_agent(f"agent-{mode}")
        results[mode] = run_plan(agent if mode == "sync" else agent.aio, agent_plan(peer))
        for name, value in results[mode].items():
            declared = inspect.signature(getattr(Agent, name)).return_annotation
            assert conforms(value, declared), (mode, name, value, declared)
    for name in results["sync"]:
        assert type(results["sync"][name]) is type(results["async"][name]), name
    assert isinstance(results["async"]["chat"], ChatResponse) and results["async"]["chat"].text
    assert isinstance(results["async"]["stream"], ChatStream)
    assert results["sync"]["turn_count"] == results["async"]["turn_count"] == 2
    peer.wait_for_idle()
    assert peer.turn_count() == 2  # one note from each face


def test_every_runtime_command_gives_the_same_result_on_both_faces(runtime, fake):
    results = {}
    for mode, face in (("sync", runtime), ("async", runtime.aio)):
        create = face.create_agent(AgentConfig(name=f"agent-{mode}"))
        agent = create if mode == "sync" else asyncio.run(create)
        peer = runtime.create_agent(AgentConfig(name=f"peer-{mode}"))
        plan = runtime_plan(agent, peer)
        assert {n for n, _ in plan} | {"create_agent"} == set(commands(RuntimeCommands))
        results[mode] = run_plan(face, plan)
        results[mode]["create_agent"] = agent
        for name, value in results[mode].items():
            declared = inspect.signature(getattr(Runtime, name)).return_annotation
            assert conforms(value, declared), (mode, name, value, declared)
    for name in results["sync"]:
        assert type(results["sync"][name]) is type(results["async"][name]), name


def test_agent_aio_chat_returns_the_reply_like_agent_chat(make_agent, fake):
    agent = make_agent()
    fake.enqueue(Reply.text("sync reply"), Reply.text("async reply"))
    assert agent.chat("one").text == "sync reply"
    reply = asyncio.run(agent.aio.chat("two"))
    assert isinstance(reply, ChatResponse) and reply.text == "async reply"
    assert asyncio.run(agent.aio.usage()) == agent.usage() and agent.usage().calls == 2
    asyncio.run(agent.aio.clear())
    assert agent.history() == []
    asyncio.run(agent.aio.shutdown())
    assert agent.describe()["state"] == "idle"
    with pytest.raises(agy_jupyter.RuntimeClosed):
        agent.chat("after shutdown")


# -- type checkers see both faces --------------------------------------------------------------------

def test_a_type_checker_sees_both_faces(tmp_path):
    # mypy is in the `test` extra: no skip, a missing checker fails the test
    source = tmp_path / "uses_the_api.py"
    source.write_text(textwrap.dedent("""
        import agy_jupyter as agy

        async def check(agent: agy.Agent, runtime: agy.Runtime) -> None:
            reveal_type(agent.chat("x"))
            reveal_type(await agent.aio.chat("x"))
            reveal_type(agent.stream("x"))
            reveal_type(await agent.aio.stream("x"))
            reveal_type(await agent.aio.usage())
            reveal_type(agent.history())
            reveal_type(await agent.aio.last_turn())
            reveal_type(runtime.chat(1, "x"))
            reveal_type(await runtime.aio.wait_for_wakeup("a", 1.0))
            agent.wait_for_wakeup("soon")
            runtime.history()
    """))
    root = Path(agy_jupyter.__file__).parent.parent
    env = {**os.environ, "MYPYPATH": str(root)}
    result = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
                             "--no-incremental", "--cache-dir", os.devnull, str(source)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    revealed = [line.split('Revealed type is "')[1].rstrip('"') for line in result.stdout.splitlines()
                if "Revealed type" in line]
    assert revealed == [
        "agy_jupyter.agent.history.ChatResponse", "agy_jupyter.agent.history.ChatResponse",
        "agy_jupyter.runtime.stream.ChatStream", "agy_jupyter.runtime.stream.ChatStream",
        "agy_jupyter.agent.history.Usage", "list[agy_jupyter.agent.history.Message]",
        "agy_jupyter.agent.history.ChatResponse | None", "agy_jupyter.runtime.stream.ChatStream", "bool",
    ], result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2 and '"str"; expected "float"' in errors[0] and "Too few arguments" in errors[1], errors
