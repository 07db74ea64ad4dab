"""Record a session through the recording proxy, replay it from the cassette, offline.

The upstream being recorded is a FakeGemini (the real API is not reachable here); the client is the
real google-genai client, driven by agy_jupyter.Agent.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from google import genai
from google.genai import errors, types

import agy_jupyter as agy
from agy_jupyter import Runtime, RuntimeConfig
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import (Cassette, CassetteMismatchError, Chunk, FakeGemini, Reply, Usage, record,
                                 replay)
from agy_jupyter.testing.cassette import SCRUBBED, first_difference, scrub
from agy_jupyter.testing.recorder import default_upstream

ROOT = Path(__file__).resolve().parents[1]
MODEL = "gemini-2.5-flash"
PLANTED_KEY = "planted-KEY-7f3a9c1e5b"       # a recognisable fake key: it must never reach the cassette
GOOGLE_SHAPED = "AIza" + "Q" * 35            # the shape of a real key, pasted into a prompt by mistake
PROMPT_1 = "What is 2 + 3? Use add."
PROMPT_2 = "Think first: why is that so?"


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


def script(upstream: FakeGemini) -> None:
    """Two turns: a function call then text; thoughts with a signature and explicit usage."""
    upstream.enqueue(
        Reply.function_call("add", {"a": 2, "b": 3}, id="call-1"),
        Reply.text("2 + 3 = 5", chunks=3, delay=0.03),
        Reply(chunks=[Chunk.thought("Adding is counting on. "), Chunk.thought("Done.", thought_signature=b"sig-1"),
                      Chunk.text("Because "), Chunk.text("counting on.")],
              usage=Usage(prompt=40, output=6, thoughts=9), delay=0.03, ttft=0.03))


@pytest.fixture
def key_env(monkeypatch, no_credentials):
    monkeypatch.setenv("GEMINI_API_KEY", PLANTED_KEY)


@pytest.fixture
def new_runtime():
    """new_runtime() -> a Runtime with short timeouts; each phase (record, replay) gets its own."""
    made = []

    def make() -> Runtime:
        made.append(Runtime(RuntimeConfig(chat_timeout=20, shutdown_timeout=5, inter_agent_delay=0.05),
                            quota=QuotaRegistry()))
        return made[-1]
    yield make
    for rt in made:
        rt.shutdown()


def run_session(runtime: Runtime, prompts=(PROMPT_1, PROMPT_2)) -> list:
    """Each turn's events (TurnFinished replaced by the parts of its response that must replay equal)."""
    agent = agy.Agent("recorded", runtime=runtime, tools=[add], policies=[agy.allow("add")], thinking_budget=256)
    turns = []
    for prompt in prompts:
        stream = agent.stream(prompt)
        events = [e for e in stream if not isinstance(e, agy.TurnFinished)]
        response = stream.result()
        turns.append((events, response.text, response.thoughts, response.usage, response.stop_reason,
                      [(c.name, c.args, c.status, c.result) for c in response.tool_calls]))
    return turns


@pytest.fixture
def recorded(tmp_path, key_env, new_runtime):
    """A two-turn session recorded through the proxy in front of a FakeGemini: (cassette path, turns)."""
    path = tmp_path / "session.json"
    with FakeGemini() as upstream:
        script(upstream)
        with record(path, upstream=upstream) as recorder:
            assert os.environ["GOOGLE_GEMINI_BASE_URL"] == recorder.url and recorder.upstream == upstream.url
            turns = run_session(new_runtime())
        assert upstream.pending == 0 and len(upstream.requests) == 3
        assert {r.api_key for r in upstream.requests} == {PLANTED_KEY}  # the proxy passed the key on
    assert "GOOGLE_GEMINI_BASE_URL" not in os.environ  # record() put the environment back
    return path, turns


def test_replay_gives_the_recorded_session(recorded, new_runtime):
    path, turns = recorded
    assert [t[1] for t in turns] == ["2 + 3 = 5", "Because counting on."]  # the recording itself worked
    assert turns[1][2] == "Adding is counting on. Done." and turns[1][3].thinking_tokens == 9
    with replay(path) as fake:  # no upstream any more
        replayed = run_session(new_runtime())
    assert replayed == turns
    assert fake.cassette_mismatches == [] and len(fake.requests) == 3


def test_cassette_file_is_versioned_readable_json(recorded):
    path, _ = recorded
    text = path.read_text()
    data = json.loads(text)
    assert (data["format"], data["version"]) == ("agy_jupyter cassette", 1)
    first = data["interactions"][0]
    assert first["request"]["action"] == "streamGenerateContent" and first["request"]["model"] == MODEL
    assert first["request"]["body"]["contents"][0]["parts"][0]["text"] == PROMPT_1
    # one SSE event per line, each with its time
    event_lines = [line.strip().rstrip(",") for line in text.splitlines() if line.strip().startswith('{"t":')]
    assert len(event_lines) == sum(len(i["response"]["events"]) for i in data["interactions"]) == 1 + 3 + 4
    times = [json.loads(line)["t"] for line in event_lines[1:4]]
    assert times == sorted(times) and times[-1] - times[0] >= 0.05  # two 30 ms gaps, kept
    assert Cassette.load(path).interactions[2].response["events"][-1]["data"]["usageMetadata"][
        "thoughtsTokenCount"] == 9


def test_key_never_reaches_the_cassette_or_the_log(tmp_path, key_env, capfd):
    path = tmp_path / "keys.json"
    with FakeGemini() as upstream, record(path, upstream=upstream.url, set_env=False, log=True) as recorder:
        with genai.Client(api_key=PLANTED_KEY, http_options=types.HttpOptions(base_url=recorder.url)) as client:
            client.models.generate_content(model=MODEL, contents=f"my key is {GOOGLE_SHAPED}, and {PLANTED_KEY}")
        other_key = "query-key-5d1e0b"  # a key sent as ?key= (older clients, curl examples)
        request = urllib.request.Request(f"{recorder.url}/v1beta/models/{MODEL}:generateContent?key={other_key}",
                                         data=json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as answer:
            assert json.loads(answer.read())["candidates"][0]["content"]["parts"][0]["text"] == "You said: hi"
        assert [r.api_key for r in upstream.requests] == [PLANTED_KEY, other_key]
        with pytest.raises(urllib.error.HTTPError) as listing:  # not a model method: passed on, not recorded
            urllib.request.urlopen(f"{recorder.url}/v1beta/models?key={other_key}")
        assert listing.value.code == 404 and "not found" in listing.value.read().decode()
    text = path.read_text()
    log = capfd.readouterr().err
    assert f"generateContent?key={SCRUBBED}" in log  # the request line was logged, without the key
    for secret in (PLANTED_KEY, other_key, GOOGLE_SHAPED):
        assert secret not in text and secret not in log
    data = json.loads(text)
    assert len(data["interactions"]) == 2
    assert data["interactions"][0]["request"]["body"]["contents"][0]["parts"][0]["text"] == \
        f"my key is {SCRUBBED}, and {SCRUBBED}"
    assert data["interactions"][1]["request"]["path"] == f"/v1beta/models/{MODEL}:generateContent"
    # the echo reply repeated the key: scrubbed in the reply too
    assert data["interactions"][0]["response"]["body"]["candidates"][0]["content"]["parts"][0]["text"].count(
        SCRUBBED) == 2


def test_a_changed_prompt_fails_loudly_naming_the_difference(recorded, new_runtime):
    path, _ = recorded
    with pytest.raises(CassetteMismatchError) as raised:
        with replay(path) as fake:
            with pytest.raises(agy.AgyError) as failed:
                run_session(new_runtime(), prompts=(PROMPT_1, "Think first: why not 6?"))
    message = str(failed.value)
    assert "contents[4].parts[0].text: expected 'Think first: why is that so?' got 'Think first: why not 6?'" \
        in message, message
    [mismatch] = fake.cassette_mismatches
    assert (mismatch.request_index, mismatch.interaction) == (2, 2)
    assert "contents[4].parts[0].text" in str(raised.value)


def test_first_difference_names_the_path():
    recorded = {"contents": [{"role": "user", "parts": [{"text": "a" * 100 + "X"}]}], "tools": []}
    assert first_difference(recorded, json.loads(json.dumps(recorded))) is None
    changed = {"contents": [{"role": "user", "parts": [{"text": "a" * 100 + "Y"}]}], "tools": []}
    assert first_difference(recorded, changed).startswith("contents[0].parts[0].text: expected …'aaa")
    assert first_difference(recorded, {"contents": []}) == "contents: expected 1 items got 0"
    assert first_difference({"a": 1}, {"a": 1, "b": 2}) == "b: expected nothing got 2"
    assert first_difference({"a": 1}, {"a": 1.0}) is None and first_difference({"a": True}, {"a": 1}) is not None


def test_scrub_replaces_credentials_wherever_they_are_but_not_short_words():
    value = {"text": f"a {PLANTED_KEY} b", PLANTED_KEY: [f"x{PLANTED_KEY}x", 3], "k": "x marks the spot"}
    assert scrub(value, [PLANTED_KEY, "x"]) == {
        "text": f"a {SCRUBBED} b", SCRUBBED: [f"x{SCRUBBED}x", 3], "k": "x marks the spot"}
    assert PLANTED_KEY not in Cassette([], upstream=f"http://h/?k={PLANTED_KEY}").dumps([PLANTED_KEY])


def test_requests_match_the_first_equal_recording_not_only_the_next(tmp_path, key_env):
    """Agents running side by side may ask in another order than when recorded; countTokens replays too."""
    path = tmp_path / "two.json"
    with FakeGemini() as upstream, record(path, upstream=upstream.url, set_env=False) as recorder:
        with genai.Client(api_key=PLANTED_KEY, http_options=types.HttpOptions(base_url=recorder.url)) as client:
            for prompt in ("first", "second"):
                client.models.generate_content(model=MODEL, contents=prompt)
            assert client.models.count_tokens(model=MODEL, contents="count me please").total_tokens == 3
    text = path.read_text()
    path.write_text(text.replace('"totalTokens": 3', '"totalTokens": 999'))  # served from the file, not computed
    with pytest.raises(CassetteMismatchError, match="request 3 has no recording left"):
        with FakeGemini(cassette=path) as fake, fake.client() as client:
            assert client.models.count_tokens(model=MODEL, contents="count me please").total_tokens == 999
            assert client.models.generate_content(model=MODEL, contents="second").text == "You said: second"
            assert client.models.generate_content(model=MODEL, contents="first").text == "You said: first"
            with pytest.raises(errors.ClientError) as refused:  # both used: nothing left to answer with
                client.models.generate_content(model=MODEL, contents="first")
    assert refused.value.code == 400 and "no recording left" in str(refused.value)
    assert len(fake.cassette_mismatches) == 1


def test_default_upstream_is_where_google_genai_would_send_requests(tmp_path, key_env, monkeypatch):
    sdk_client = genai.Client(api_key=PLANTED_KEY)  # no GOOGLE_GEMINI_BASE_URL here: the SDK's own default
    assert default_upstream() == sdk_client._api_client._http_options.base_url.rstrip("/") + "/" \
        and default_upstream().startswith("https://")
    sdk_client.close()
    with FakeGemini() as upstream:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", upstream.url)  # e.g. a local model server
        with record(tmp_path / "local.json") as recorder:
            assert recorder.upstream == upstream.url
            with genai.Client(api_key=PLANTED_KEY) as client:  # reads the variable record() set
                assert client.models.generate_content(model=MODEL, contents="via env").text == "You said: via env"
        assert os.environ["GOOGLE_GEMINI_BASE_URL"] == upstream.url  # put back
    assert [r.last_user_text for r in upstream.requests] == ["via env"]
    assert len(Cassette.load(tmp_path / "local.json").interactions) == 1


def test_errors_and_broken_streams_replay_as_recorded(tmp_path, key_env):
    path = tmp_path / "faults.json"

    def session(client) -> list:
        seen = []
        with pytest.raises(errors.ClientError) as quota:
            client.models.generate_content(model=MODEL, contents="too often")
        seen.append((quota.value.code, quota.value.details["error"]["details"]))
        texts = []
        with pytest.raises(Exception) as broken:  # the transport's protocol error, after the chunks read
            for chunk in client.models.generate_content_stream(model=MODEL, contents="long"):
                texts.append(chunk.text)
        seen.append((texts, type(broken.value).__name__))
        return seen

    with FakeGemini() as upstream, record(path, upstream=upstream.url, set_env=False) as recorder:
        upstream.enqueue(Reply.error(429, retry_delay=2.0, retry_after=2),
                         Reply.text("one two three four", chunks=4).drop_after(2))
        with genai.Client(api_key=PLANTED_KEY, http_options=types.HttpOptions(base_url=recorder.url)) as client:
            recorded = session(client)
    assert len(recorded[1][0]) == 2  # two chunks, then the connection broke
    interactions = Cassette.load(path).interactions
    assert interactions[0].response["headers"] == {"Retry-After": "2"}
    assert interactions[1].response["dropped"] is True
    with FakeGemini(cassette=path) as fake, fake.client() as client:
        assert session(client) == recorded


def _read_one_event_and_leave(base_url: str) -> bytes:
    """A client that cancels: reads the first SSE event, then closes the connection."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    conn.request("POST", f"/v1/models/{MODEL}:streamGenerateContent?alt=sse", headers={
        "Content-Type": "application/json", "x-goog-api-key": PLANTED_KEY},
        body=json.dumps({"contents": [{"role": "user", "parts": [{"text": "long story"}]}]}))
    response = conn.getresponse()
    first = response.readline()
    conn.close()
    return first


def test_a_cancelled_stream_is_recorded_as_cancelled(tmp_path, key_env):
    path = tmp_path / "cancel.json"
    with FakeGemini() as upstream, record(path, upstream=upstream.url, set_env=False) as recorder:
        upstream.enqueue(Reply.text("a long story told slowly", chunks=20, delay=0.05))
        first = _read_one_event_and_leave(recorder.url)
        assert upstream.wait_for_disconnect(timeout=5) is not None  # the proxy hung up upstream too
    response = Cassette.load(path).interactions[0].response
    assert response["cancelled"] is True and 1 <= len(response["events"]) < 20
    with FakeGemini(cassette=path) as fake:
        assert _read_one_event_and_leave(fake.url) == first
        gone = fake.wait_for_disconnect(timeout=5)  # it waited for the client to go, as upstream did
    assert gone is not None and 1 <= gone.chunks_sent <= len(response["events"])


@pytest.fixture
def timed_cassette(tmp_path, key_env):
    """One streamed reply with 0.2 s before each of 5 events; returns (path, recorded seconds).

    Long enough that the loose bounds below hold on a loaded machine (the SDK needs ~1 ms here)."""
    path = tmp_path / "timed.json"
    with FakeGemini() as upstream, record(path, upstream=upstream.url, set_env=False) as recorder:
        upstream.enqueue(Reply.text("one two three four five", chunks=5, delay=0.2, ttft=0.2))
        with genai.Client(api_key=PLANTED_KEY, http_options=types.HttpOptions(base_url=recorder.url)) as client:
            assert "".join(c.text for c in client.models.generate_content_stream(model=MODEL, contents="go")) \
                == "one two three four five"
    [interaction] = Cassette.load(path).interactions
    return path, interaction.duration


def replay_seconds(path, speed) -> tuple[float, list[str]]:
    with FakeGemini(cassette=path, speed=speed) as fake, fake.client() as client:
        start = time.perf_counter()
        texts = [c.text for c in client.models.generate_content_stream(model=MODEL, contents="go")]
        return time.perf_counter() - start, texts


def test_speed_realtime_keeps_the_recorded_timing_and_fast_does_not(timed_cassette):
    path, recorded = timed_cassette
    assert recorded >= 0.95  # 5 x 0.2 s, as the proxy saw it
    realtime, texts = replay_seconds(path, "realtime")
    assert len(texts) == 5 and "".join(texts) == "one two three four five"
    fast, fast_texts = replay_seconds(path, "fast")
    assert fast_texts == texts
    assert realtime >= 0.8 * recorded, (realtime, recorded)
    assert fast < 0.5 * recorded, (fast, recorded)
    double, _ = replay_seconds(path, 2)
    assert 0.8 * recorded / 2 <= double < 0.8 * recorded, (double, recorded)


def test_bad_cassettes_and_speeds_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="record one first"):
        FakeGemini(cassette=tmp_path / "missing.json")
    (tmp_path / "other.json").write_text('{"replies": []}')
    with pytest.raises(ValueError, match="not an agy_jupyter cassette"):
        FakeGemini(cassette=tmp_path / "other.json")
    (tmp_path / "v9.json").write_text('{"format": "agy_jupyter cassette", "version": 9, "interactions": []}')
    with pytest.raises(ValueError, match="record it again"):
        FakeGemini(cassette=tmp_path / "v9.json")
    (tmp_path / "empty.json").write_text('{"format": "agy_jupyter cassette", "version": 1, "interactions": []}')
    with pytest.raises(ValueError, match="'fast', 'realtime' or a number"):
        FakeGemini(cassette=tmp_path / "empty.json", speed="slow")


def test_recorder_says_when_it_cannot_reach_upstream(tmp_path, key_env):
    with pytest.raises(ValueError, match="give a base URL"):
        record(tmp_path / "x.json", upstream="ftp://example.invalid")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nobody listens on
    port = closed.getsockname()[1]
    closed.close()
    with record(tmp_path / "down.json", upstream=f"http://127.0.0.1:{port}", set_env=False) as recorder:
        with genai.Client(api_key=PLANTED_KEY, http_options=types.HttpOptions(base_url=recorder.url)) as client:
            with pytest.raises(errors.ServerError) as failed:
                client.models.generate_content(model=MODEL, contents="hi")
    assert failed.value.code == 502 and f"cannot reach http://127.0.0.1:{port}" in str(failed.value)
    assert Cassette.load(tmp_path / "down.json").interactions == []  # no reply, nothing recorded


# ----------------------------------------------------------------------------- command line
def _start_cli(*args: str) -> tuple[subprocess.Popen, str, str]:
    """Start the CLI; returns the process, the base URL it printed, and what it printed until it said it serves.

    Read to that line: communicate() reads the pipe's file descriptor, so lines readline() buffered are lost."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "agy_jupyter.testing", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    lines, url = [], None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("GOOGLE_GEMINI_BASE_URL="):
            url = line.strip().split("=", 1)[1]
        if url and line.startswith("Press Ctrl-C"):
            return proc, url, "".join(lines)
    proc.kill()
    raise AssertionError(f"no base URL printed: {lines} {proc.stderr.read()}")


def _stop_cli(proc: subprocess.Popen) -> tuple[int, str, str]:
    proc.terminate()
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def test_cli_records_and_replays(tmp_path, key_env):
    path = tmp_path / "cli.json"
    with FakeGemini() as upstream:
        upstream.enqueue(Reply.text("recorded answer", chunks=2))
        proc, url, _ = _start_cli("--record", str(path), "--upstream", upstream.url)
        with genai.Client(api_key=PLANTED_KEY, http_options=types.HttpOptions(base_url=url)) as client:
            assert client.models.generate_content(model=MODEL, contents="question").text == "recorded answer"
        code, out, err = _stop_cli(proc)
    assert code == 0, err
    assert "1 interaction" in out and "generateContent" in err  # the request log
    assert PLANTED_KEY not in path.read_text() + out + err

    proc, url, _ = _start_cli("--cassette", str(path), "--speed", "realtime")
    with genai.Client(api_key="anything", http_options=types.HttpOptions(base_url=url)) as client:
        assert client.models.generate_content(model=MODEL, contents="question").text == "recorded answer"
        with pytest.raises(errors.ClientError) as refused:
            client.models.generate_content(model=MODEL, contents="another question")
    code, out, err = _stop_cli(proc)
    assert "no recording left" in str(refused.value)
    assert "contents[0].parts[0].text: expected 'question' got 'another question'" in str(refused.value)
    assert code == 1 and "contents[0].parts[0].text" in err, (code, err)


def test_cli_replay_of_a_clean_session_exits_zero(recorded):
    path, _ = recorded
    proc, url, banner = _start_cli("--cassette", str(path))
    code, out, err = _stop_cli(proc)
    assert code == 0 and "3 recorded interactions" in banner, (code, banner, err)


# ----------------------------------------------------------------------------- a notebook in CI
def test_a_notebook_recorded_once_runs_headless_from_its_cassette(tmp_path, key_env):
    """The tutorial-notebook flow: record with a key once, then CI runs it offline (nbclient)."""
    from test_notebook_headless import SETUP, run_notebook  # tests/ is on sys.path (pytest prepend mode)

    cells = [SETUP, "%config AgyMagics.headless_approval = 'allow'", "%agent create helper --tools add",
             "%%chat helper -o answer\nWhat is 20 + 22?", "print(answer)"]
    path = tmp_path / "notebook.json"
    with FakeGemini() as upstream, record(path, upstream=upstream.url):
        upstream.enqueue(Reply.function_call("add", {"a": 20, "b": 22}, id="c1"),
                         Reply.text("20 + 22 = 42", chunks=3, delay=0.02))
        recorded = run_notebook(cells)
    assert recorded.cells[4].outputs[0]["text"] == "20 + 22 = 42\n"
    with replay(path, complete=True) as fake:  # GEMINI_API_KEY is fake-key now: no real key in CI
        replayed = run_notebook(cells)
    assert replayed.cells[4].outputs[0]["text"] == "20 + 22 = 42\n"
    assert fake.requests[1].function_response("c1") == {"result": 42}  # the tool really ran again
    static = [[o["data"]["text/plain"] for o in nb.cells[3].outputs if o.get("output_type") == "display_data"]
              for nb in (recorded, replayed)]
    assert static[0] == static[1] and static[0]
