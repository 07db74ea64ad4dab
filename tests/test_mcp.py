"""Tools from MCP servers: real servers (tests/mcp_servers/toolbox.py, written with the mcp SDK's own
MCPServer) over stdio and streamable HTTP, called by the model through the fake Gemini server."""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from agy_jupyter import Approval, ConfigError, McpServer, allow, allow_all
from agy_jupyter.agent.config import build_config
from agy_jupyter.agent.directory import AgentDirectory
from agy_jupyter.agent.mcp import parse_server
from agy_jupyter.agent.history import contents_for_model, history_is_valid
from agy_jupyter.agent.mcp.tools import MAX_IMAGE_BYTES, MAX_IMAGES, McpTool, declared_name, result_payload
from agy_jupyter.notebook.magics import AgyMagics
from agy_jupyter.testing import Reply

pytest.importorskip("mcp")

from mcp_servers.toolbox import image_bytes  # noqa: E402  (the server's own images, to compare; tests/ is on the path)

TOOLBOX = Path(__file__).parent / "mcp_servers" / "toolbox.py"
STDIO = f"box={sys.executable} {TOOLBOX} stdio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http_toolbox(port: int) -> subprocess.Popen:
    """The toolbox over streamable HTTP on 127.0.0.1:port, in its own process, once it listens."""
    process = subprocess.Popen([sys.executable, str(TOOLBOX), "http", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("the HTTP toolbox did not start")
            time.sleep(0.05)


@pytest.fixture
def http_toolbox():
    """The toolbox over streamable HTTP in its own process; yields (url, process)."""
    port = free_port()
    process = start_http_toolbox(port)
    yield f"http://127.0.0.1:{port}/mcp", process
    process.kill()
    process.wait(5)


def declared(request) -> list[str]:
    return [d["name"] for t in request.tools for d in t.get("functionDeclarations", [])]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")  # a zombie is dead


def call(fake, agent, name: str, args: dict) -> dict:
    """Have the model call `name` once; return the functionResponse the model got back."""
    call_id = f"call-{len(fake.requests)}"
    fake.enqueue(Reply.function_call(name, args, id=call_id), Reply.text("done"))
    before = len(fake.requests)
    agent.chat("go")
    return fake.requests[before + 1].function_response(call_id)


# -- the spec: strings, objects, errors ----------------------------------------------------------

def test_server_specs_in_every_form():
    stdio = parse_server("fs=python -m my_server --root '/a b'")
    assert (stdio.name, stdio.command, stdio.url, stdio.transport) == (
        "fs", ["python", "-m", "my_server", "--root", "/a b"], None, "stdio")
    http = parse_server("web=http://127.0.0.1:8000/mcp")
    assert (http.name, http.url, http.transport) == ("web", "http://127.0.0.1:8000/mcp", "http")
    assert McpServer("fs", command="python -m x").command == ["python", "-m", "x"]
    config = build_config(name="a", mcp_servers=["web=https://example.org/mcp", McpServer("fs", command=["x"])])
    assert [s.name for s in config.mcp_servers] == ["web", "fs"]


@pytest.mark.parametrize("spec, says", [
    ("no-equals-sign", "is not NAME=COMMAND or NAME=URL"),
    ("=python x", "is not NAME=COMMAND or NAME=URL"),
    ("box=", "is not NAME=COMMAND or NAME=URL"),
    ("a/b=python x", "MCP server name 'a/b'"),
    ("a__b=python x", "MCP server name 'a__b'"),
    ("box=python 'unbalanced", "cannot split its command"),
    ("box=ftp://host/mcp", None),  # not a URL we speak: taken as a command named ftp://… (fails at start)
])
def test_bad_specs_say_what_to_write(spec, says):
    if says is None:
        assert parse_server(spec).command == ["ftp://host/mcp"]
        return
    with pytest.raises(ConfigError) as caught:
        parse_server(spec)
    assert says in caught.value.message and "\n" not in caught.value.message


def test_a_server_needs_exactly_one_transport_and_unique_names():
    with pytest.raises(ConfigError, match="give command=.* or url=.*one of them"):
        build_config(mcp_servers=[McpServer.model_construct(name="x")])  # neither
    with pytest.raises(ConfigError, match="one of them"):
        build_config(mcp_servers=[{"name": "x", "command": ["a"], "url": "http://h/mcp"}])
    with pytest.raises(ConfigError, match="two MCP servers share the name"):
        build_config(mcp_servers=["x=a", "x=b"])


def test_secrets_are_not_saved_or_shown():
    server = McpServer("web", url="http://h/mcp", headers={"Authorization": "Bearer s3cret"},
                       env={"TOKEN": "s3cret"})
    config = build_config(name="a", mcp_servers=[server])
    assert "s3cret" not in config.to_json() and "s3cret" not in repr(server)
    assert json.loads(config.to_json())["mcp_servers"][0]["url"] == "http://h/mcp"
    assert type(config).from_json(config.to_json()).mcp_servers == [McpServer("web", url="http://h/mcp")]


def test_importing_agy_jupyter_does_not_import_mcp():
    code = ("import sys, agy_jupyter; from agy_jupyter.agent.config import build_config; "
            "build_config(name='a', mcp_servers=['x=python -m y']); print('mcp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- names ----------------------------------------------------------------------------------------

def test_declared_names_are_valid_gemini_function_names():
    assert declared_name("box", "echo") == "box__echo"
    assert declared_name("box", "read file/v2") == "box__read_file_v2"
    long = declared_name("box", "t" * 100)
    assert len(long) == 64 and long != declared_name("box", "t" * 99)
    tool = McpTool(name="box/echo", description="d", parameters_json_schema={"type": "object"}, func=print,
                   is_async=True, server="box", remote_name="echo", declared_name="box__echo", effect="execute")
    assert tool.name == "box/echo" and tool.declaration().name == "box__echo"


# -- results ---------------------------------------------------------------------------------------

def test_results_are_capped_and_say_so():
    from mcp_types import CallToolResult, TextContent
    long = CallToolResult(content=[TextContent(type="text", text="y" * 5000)])
    payload = result_payload("box/big", long, 1000)["result"]
    assert payload.startswith("y" * 1000) and "output cut: 5000 characters, the first 1000 shown" in payload


# -- end to end, stdio ---------------------------------------------------------------------------

def test_stdio_tools_reach_the_model_under_server_slash_tool_policies(fake, make_agent):
    asked = []

    def approve(request):
        asked.append((request.tool, request.args))
        return Approval(approved=True)

    agent = make_agent("a", mcp_servers=[STDIO], policies=[allow("box/echo")], approval_handler=approve)
    assert call(fake, agent, "box__echo", {"text": "hi"}) == {"result": "echo: hi"}
    assert {"box__echo", "box__add", "box__crash"} <= set(declared(fake.requests[0]))
    assert asked == []  # allow("box/echo") matched the policy name
    assert call(fake, agent, "box__add", {"a": 2, "b": 3}) == {"result": 5}
    assert asked == [("box/add", {"a": 2, "b": 3})]  # the approval names it server/tool
    assert agent.last_turn().tool_calls[0].status == "ok"


def test_mcp_tools_are_marked_execute_so_default_policies_ask(fake, make_agent):
    agent = make_agent("a", mcp_servers=[STDIO])  # no policies, no approval handler
    response = call(fake, agent, "box__echo", {"text": "hi"})
    assert "needs the user's approval" in response["error"]
    assert agent.last_turn().tool_calls[0].status == "denied"
    session = agent.runtime._session(agent.id)
    assert {t.effect for t in session.mcp.tools} == {"execute"}


def test_errors_and_big_outputs_from_the_server(fake, make_agent):
    server = McpServer("box", command=[sys.executable, str(TOOLBOX), "stdio"], max_output_chars=500)
    agent = make_agent("a", mcp_servers=[server], policies=[allow_all()])
    failed = call(fake, agent, "box__fail", {"why": "no such table"})
    assert "no such table" in failed["error"] and agent.last_turn().tool_calls[0].status == "error"
    big = call(fake, agent, "box__big", {"chars": 20000})["result"]
    assert len(big) < 600 and "output cut: 20000 characters" in big


def server_state(agent) -> dict:
    [state] = agent.describe()["mcp_servers"]
    return state


def test_a_server_that_crashes_mid_call_gives_a_clear_tool_error_then_restarts_once(fake, make_agent, runtime):
    agent = make_agent("a", mcp_servers=[STDIO], policies=[allow_all()], tools=[lambda_free_add])
    first = call(fake, agent, "box__pid", {})["result"]
    error = call(fake, agent, "box__crash", {})["error"]
    assert "MCP server 'box' is not running" in error and "crashing on purpose" in error
    assert "It will be started again at the next call of one of its tools" in error
    assert agent.last_turn().tool_calls[0].status == "error"  # the call in flight is not repeated
    # the runtime and the agent go on: its other tools work, and the server's tools start it again
    assert call(fake, agent, "lambda_free_add", {"a": 1, "b": 2}) == {"result": 3}
    second = call(fake, agent, "box__pid", {})["result"]
    assert second != first and alive(second) and not alive(first)
    assert call(fake, agent, "box__echo", {"text": "x"}) == {"result": "echo: x"}
    assert (server_state(agent)["running"], server_state(agent)["restarts_left"]) == (True, 0)
    # once: a second death is final
    error = call(fake, agent, "box__crash", {})["error"]
    assert "is not running" in error and "cannot be used in this session" in error
    assert "is not running" in call(fake, agent, "box__echo", {"text": "x"})["error"]
    state = server_state(agent)
    assert (state["server"], state["running"], "box/echo" in state["tools"]) == ("box", False, True)
    assert "closed the connection" in state["gone"] and not alive(second)
    assert runtime.is_alive and history_is_valid(contents_for_model(agent.history()))


def test_a_server_that_died_between_calls_is_started_again_before_the_next_call(fake, make_agent):
    agent = make_agent("a", mcp_servers=[STDIO], policies=[allow_all()])
    first = call(fake, agent, "box__pid", {})["result"]
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server_state(agent)["running"]:  # its stdout ended: the connection saw it die
        assert time.monotonic() < deadline, "the death of the server went unnoticed"
        time.sleep(0.02)
    assert "closed the connection" in server_state(agent)["gone"]
    second = call(fake, agent, "box__pid", {})["result"]  # no error: this call was not in flight
    assert second != first and alive(second) and server_state(agent)["restarts_left"] == 0


def test_a_server_that_cannot_be_started_again_says_so(fake, make_agent, tmp_path):
    server = McpServer("box", command=[sys.executable, str(TOOLBOX), "stdio", "--once", str(tmp_path / "started")])
    agent = make_agent("a", mcp_servers=[server], policies=[allow_all()])
    call(fake, agent, "box__crash", {})
    error = call(fake, agent, "box__echo", {"text": "x"})["error"]
    assert "MCP server 'box' died and could not be started again" in error
    assert "refusing a second start" in error and "cannot be used in this session" in error
    later = call(fake, agent, "box__echo", {"text": "x"})["error"]
    assert "is not running: it died and could not be started again" in later
    assert server_state(agent)["running"] is False


def test_no_restarts_when_the_server_allows_none(fake, make_agent):
    server = McpServer("box", command=[sys.executable, str(TOOLBOX), "stdio"], restarts=0)
    agent = make_agent("a", mcp_servers=[server], policies=[allow_all()])
    assert "cannot be used in this session" in call(fake, agent, "box__crash", {})["error"]
    assert "is not running" in call(fake, agent, "box__echo", {"text": "x"})["error"]


def test_a_call_that_times_out_leaves_the_server_usable(fake, make_agent):
    agent = make_agent("a", mcp_servers=[STDIO], policies=[allow_all()], tool_timeout=0.5)
    assert "timed out after 0.5 s" in call(fake, agent, "box__nap", {"seconds": 3})["error"]
    assert call(fake, agent, "box__echo", {"text": "still here"}) == {"result": "echo: still here"}


def lambda_free_add(a: int, b: int) -> int:
    """Add."""
    return a + b


def test_a_server_that_cannot_start_fails_the_creation_with_its_error(fake, make_agent, runtime):
    crash = f"bad={sys.executable} -c \"import sys; sys.exit('no database configured')\""
    with pytest.raises(ConfigError) as caught:
        make_agent("a", mcp_servers=[crash])
    assert "MCP server 'bad' could not be started" in caught.value.message
    assert "no database configured" in caught.value.message
    assert runtime.agent_ids() == {} and runtime.is_alive


def test_a_server_that_never_answers_times_out_and_is_stopped(fake, make_agent, runtime, tmp_path):
    pid_file = tmp_path / "pid"
    silent = McpServer("mute", command=[sys.executable, "-c", f"import os, time; open({str(pid_file)!r}, 'w')"
                                        ".write(str(os.getpid())); time.sleep(60)"], startup_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="MCP server 'mute' did not start within 1.5 s"):
        make_agent("a", mcp_servers=[silent])
    assert time.monotonic() - started < 6  # stopped at once, not after the polite shutdown's waits
    assert not alive(int(pid_file.read_text()))


def test_an_unreachable_http_server_fails_the_creation(fake, make_agent):
    with pytest.raises(ConfigError) as caught:
        make_agent("a", mcp_servers=[McpServer("web", url=f"http://127.0.0.1:{free_port()}/mcp")])
    assert "MCP server 'web' could not be started: ConnectError" in caught.value.message


@pytest.mark.parametrize("stop", ["shutdown", "delete", "runtime"])
def test_stdio_servers_stop_with_the_agent(fake, make_agent, runtime, stop):
    agent = make_agent("a", mcp_servers=[STDIO], policies=[allow_all()])
    pid = call(fake, agent, "box__pid", {})["result"]
    assert alive(pid)
    {"shutdown": agent.shutdown, "delete": agent.delete, "runtime": runtime.shutdown}[stop]()
    assert not alive(pid)


def test_a_restarted_runtime_starts_the_servers_again(fake, make_agent, runtime):
    agent = make_agent("a", mcp_servers=[STDIO], policies=[allow_all()])
    before = call(fake, agent, "box__pid", {})["result"]
    runtime.restart()
    after = call(fake, agent, "box__pid", {})["result"]
    assert after != before and not alive(before) and alive(after)


# -- end to end, streamable HTTP -------------------------------------------------------------------

def test_http_tools_reach_the_model(fake, make_agent, http_toolbox):
    url, _ = http_toolbox
    server = McpServer("web", url=url, headers={"Authorization": "Bearer token"})  # headers take their own path
    agent = make_agent("a", mcp_servers=[server], policies=[allow("web/add")])
    assert call(fake, agent, "web__add", {"a": 20, "b": 22}) == {"result": 42}
    assert "web__echo" in declared(fake.requests[0])


def test_an_http_server_that_dies_mid_call_gives_a_clear_tool_error_then_is_reconnected(fake, make_agent, runtime,
                                                                                        http_toolbox):
    url, process = http_toolbox
    agent = make_agent("a", mcp_servers=[McpServer("web", url=url, restarts=2)], policies=[allow_all()],
                       tool_timeout=20)
    error = call(fake, agent, "web__crash", {})["error"]
    assert "MCP server 'web' is not running" in error and process.wait(5) == 3
    assert agent.last_turn().tool_calls[0].status == "error"
    # nothing listens: the next call tries to connect again, and says why it could not
    error = call(fake, agent, "web__echo", {"text": "x"})["error"]
    assert "MCP server 'web' died and could not be started again" in error and "ConnectError" in error
    # a server on that address again: the next call connects to it
    again = start_http_toolbox(int(url.split(":")[2].split("/")[0]))
    try:
        assert call(fake, agent, "web__echo", {"text": "back"}) == {"result": "echo: back"}
        assert server_state(agent)["running"] and server_state(agent)["restarts_left"] == 0
    finally:
        again.kill()
        again.wait(5)
    assert runtime.is_alive


# -- a server whose tools change ------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_when_the_server_says_its_tools_changed_the_next_model_call_declares_the_new_set(fake, make_agent, transport,
                                                                                         request):
    spec = STDIO if transport == "stdio" else f"box={request.getfixturevalue('http_toolbox')[0]}"
    agent = make_agent("a", mcp_servers=[spec], policies=[allow_all()])
    before = len(fake.requests)  # the server announces the change as part of the call (the usual way)
    assert call(fake, agent, "box__grow", {"name": "fresh"}) == {"result": "grew fresh"}
    assert "box__fresh" not in declared(fake.requests[before])
    assert "box__fresh" in declared(fake.requests[before + 1])  # the model call right after the tool ran
    assert call(fake, agent, "box__fresh", {}) == {"result": "I am fresh"}
    assert "box/fresh" in server_state(agent)["tools"]
    before = len(fake.requests)
    assert call(fake, agent, "box__shrink", {"name": "fresh"}) == {"result": "removed fresh"}
    assert "box__fresh" not in declared(fake.requests[before + 1]) and "box__echo" in declared(fake.requests[before + 1])
    assert "unknown tool 'box__fresh'" in call(fake, agent, "box__fresh", {})["error"]


def test_a_change_announced_on_the_http_sessions_own_stream_is_declared_once_it_arrives(fake, make_agent, http_toolbox):
    # not part of the call: it races the call's result (measured: under load the model call right after
    # the tool missed it 6-34% of the time), so it is declared by the first model call after it arrives
    agent = make_agent("a", mcp_servers=[f"box={http_toolbox[0]}"], policies=[allow_all()])
    assert call(fake, agent, "box__grow", {"name": "later", "scoped": False}) == {"result": "grew later"}
    deadline = time.monotonic() + 10
    while "box__later" not in declared(fake.requests[-1]):
        assert time.monotonic() < deadline, "the new tool was never declared"
        time.sleep(0.05)
        fake.enqueue(Reply.text("and now?"))
        agent.chat("again")
    assert call(fake, agent, "box__later", {}) == {"result": "I am later"}


# -- images ---------------------------------------------------------------------------------------

def attached(part: dict) -> list[tuple[str, bytes]]:
    """The media of a functionResponse (google-genai sends bytes url-safe base64 encoded)."""
    return [(p["inlineData"]["mimeType"], base64.urlsafe_b64decode(p["inlineData"]["data"])) for p in part.get("parts", [])]


def test_images_from_a_server_reach_the_model_as_media(fake, make_agent):
    agent = make_agent("a", mcp_servers=[STDIO], policies=[allow_all()], model="gemini-3-flash-preview")
    fake.enqueue(Reply.function_call("box__picture", {"count": 2, "size": 1000}, id="p1"), Reply.text("nice"))
    agent.chat("draw")
    part = fake.requests[1].function_response_part("p1")
    assert attached(part) == [("image/png", image_bytes(1000, 0)), ("image/png", image_bytes(1000, 1))]
    assert part["response"] == {"result": "2 picture(s)\n[image 1 (image/png, 1,000 bytes) attached]\n"
                                          "[image 2 (image/png, 1,000 bytes) attached]"}


def test_images_are_capped_in_count_and_a_model_without_tool_media_gets_a_note(fake, make_agent):
    agent = make_agent("a", mcp_servers=[STDIO], policies=[allow_all()], model="gemini-3-flash-preview")
    fake.enqueue(Reply.function_call("box__picture", {"count": MAX_IMAGES + 2}, id="p1"), Reply.text("ok"))
    agent.chat("draw")
    part = fake.requests[1].function_response_part("p1")
    assert [data for _, data in attached(part)] == [image_bytes(64, n) for n in range(MAX_IMAGES)]
    assert part["response"]["result"].count(f"not sent: at most {MAX_IMAGES} images per result") == 2
    older = make_agent("b", mcp_servers=[STDIO], policies=[allow_all()])  # gemini-2.5: no media in tool results
    before = len(fake.requests)
    assert "not sent: this model does not take media" in call(fake, older, "box__picture", {})["media"]
    assert attached(fake.requests[before + 1].function_response_part(f"call-{before}")) == []


def test_image_caps_by_type_size_and_encoding():
    from mcp_types import CallToolResult, ImageContent, TextContent
    ok = base64.b64encode(b"\x89PNG-small").decode()
    huge = "A" * (MAX_IMAGE_BYTES * 4 // 3 + 8)
    result = CallToolResult(content=[TextContent(type="text", text="four"),
                                     ImageContent(type="image", data=ok, mime_type="image/png"),
                                     ImageContent(type="image", data=ok, mime_type="image/gif"),
                                     ImageContent(type="image", data=huge, mime_type="image/jpeg"),
                                     ImageContent(type="image", data="not base64!", mime_type="image/webp")])
    payload = result_payload("box/pics", result, 10_000)
    assert [(b.mime_type, b.data) for b in payload.media] == [("image/png", b"\x89PNG-small")]
    lines = payload.value["result"].splitlines()
    assert lines[0] == "four" and lines[1] == "[image 1 (image/png, 10 bytes) attached]"
    assert "image/gif" in lines[2] and "not sent: the model reads image/png" in lines[2]
    assert f"not sent: more than {MAX_IMAGE_BYTES:,} bytes" in lines[3]
    assert "not sent: its data is not base64" in lines[4]
    text_only = result_payload("box/t", CallToolResult(content=[TextContent(type="text", text="hi")]), 100)
    assert text_only == {"result": "hi"}  # no images: a plain dict, as before


# -- in a real kernel ---------------------------------------------------------------------------

def test_in_a_kernel_the_magic_starts_the_server_and_delete_stops_it(fake):
    from agy_jupyter.testing.kernel import FrontEnd, Kernel
    kernel = Kernel(env=fake.env())
    try:
        kernel.frontend = FrontEnd(kernel)
        kernel.run("%load_ext agy_jupyter")
        created = kernel.run(f'%agent create k --policy allow --mcp "{STDIO}"').text()
        assert "Created agent 'k'" in created
        fake.enqueue(Reply.function_call("box__pid", {}, id="k1"), Reply.text("done"))
        kernel.run("%%chat k -o answer\nwhich pid?")
        pid = fake.requests[-1].function_response("k1")["result"]
        assert alive(pid) and kernel.run("print(answer)").text().strip() == "done"
        kernel.run("%agent delete k")
        assert not alive(pid)
    finally:
        kernel.shutdown()


# -- %agent create --mcp --------------------------------------------------------------------------

@pytest.fixture
def shell(runtime):
    ip = InteractiveShell.instance()
    magics = AgyMagics(shell=ip, directory=AgentDirectory(runtime))
    ip.register_magics(magics)
    yield ip
    for name in magics.directory.names():
        magics.directory.delete(name)


def test_agent_create_mcp_option(shell, fake):
    shell.run_line_magic("agent", f'create a --policy allow --mcp "{STDIO}"')
    agent = shell.magics_manager.registry["AgyMagics"].directory.get("a")
    assert [str(s) for s in agent.config.mcp_servers] == [STDIO.replace(f"{sys.executable}", sys.executable)]
    assert call(fake, agent, "box__echo", {"text": "from the magic"}) == {"result": "echo: from the magic"}


@pytest.mark.parametrize("option, says", [
    ('--mcp "box python -m x"', "is not NAME=COMMAND or NAME=URL"),
    ('--mcp "a/b=python -m x"', "MCP server name 'a/b'"),
    ('--mcp "x=python -m a" --mcp "x=python -m b"', "two MCP servers share the name(s) x"),
])
def test_agent_create_mcp_mistakes_are_usage_errors(shell, option, says):
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("agent", f"create a {option}")
    first, *rest = str(caught.value).splitlines()
    assert says in first and rest[0].startswith("usage: %agent create")  # one line, then the usage
