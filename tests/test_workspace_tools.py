"""The workspace tools against real files in tmp_path: each tool, confinement, caps, previews, run_command."""
from __future__ import annotations

import base64
import time

import pytest

from agy_jupyter.agent import workspace_tools
from agy_jupyter.agent.builtin_tools import BuiltinContext, BuiltinTools
from agy_jupyter.agent.policies import allow
from agy_jupyter.agent.tools import split_media
from agy_jupyter.agent.workspace_tools import WorkspaceTools, workspace_tool
from agy_jupyter.agent.workspace import Workspace
from agy_jupyter.agent.content import Blob
from agy_jupyter.runtime.errors import ToolError
from agy_jupyter.testing import Reply

# the smallest valid PNG (1x1, transparent)
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


@pytest.fixture
def root(tmp_path):
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "app.py").write_text("import os\n\ndef load_data(path):\n    return open(path).read()\n")
    (ws / "notes.txt").write_text("".join(f"line {i}\n" for i in range(1, 1001)))
    (ws / "logo.png").write_bytes(PNG)
    (tmp_path / "secret.txt").write_text("top secret\n")
    return ws


@pytest.fixture
def tools(root):
    return WorkspaceTools(Workspace.at(root))


def build(name: str, root) -> "workspace_tools.Tool":
    return workspace_tool(BuiltinTools(name), BuiltinContext(workspace=root.resolve()))


# --- reading ---------------------------------------------------------------------


def test_view_file_numbers_lines_and_reads_a_range(tools):
    text = tools.view_file("src/app.py")
    assert text.splitlines()[0] == "src/app.py: lines 1-4 of 4"
    assert "     3\tdef load_data(path):" in text
    ranged = tools.view_file("notes.txt", start_line=10, end_line=12)
    assert ranged.splitlines() == ["notes.txt: lines 10-12 of 1000", "    10\tline 10", "    11\tline 11",
                                   "    12\tline 12"]


def test_view_file_caps_lines_and_says_where_to_read_on(tools):
    text = tools.view_file("notes.txt")
    assert f"lines 1-{workspace_tools.MAX_VIEW_LINES} of 1000" in text
    assert f"call again with start_line={workspace_tools.MAX_VIEW_LINES + 1}" in text
    asked_too_much = tools.view_file("notes.txt", start_line=1, end_line=1000)
    assert f"at most {workspace_tools.MAX_VIEW_LINES} lines at a time" in asked_too_much
    with pytest.raises(ToolError, match="past the end"):
        tools.view_file("notes.txt", start_line=2000)


def test_view_file_streams_a_file_too_big_to_count(tools, monkeypatch):
    monkeypatch.setattr(workspace_tools, "MAX_COUNT_BYTES", 100)
    assert tools.view_file("notes.txt", start_line=5, end_line=6).splitlines() == [
        "notes.txt: lines 5-6 of a file too big to count its lines", "     5\tline 5", "     6\tline 6"]
    last = 4 + workspace_tools.MAX_VIEW_LINES
    assert tools.view_file("notes.txt", start_line=5).splitlines()[-1] == (
        f"[more lines follow; call again with start_line={last + 1}]")
    assert tools.view_file("notes.txt", start_line=999).splitlines()[0] == "notes.txt: lines 999-1000 of 1000"


def test_view_file_cuts_a_very_long_line(tools, root):
    (root / "wide.csv").write_text("x" * (workspace_tools.MAX_LINE_CHARS + 50) + "\n")
    assert "[... line cut" in tools.view_file("wide.csv")


def test_an_image_goes_to_the_model_as_a_part(tools):
    result = tools.view_file("logo.png")
    response, media = split_media(result)
    assert response == "logo.png (image/png, 70 bytes) is attached"
    assert len(media) == 1 and media[0].inline_data.mime_type == "image/png" and media[0].inline_data.data == PNG


def test_a_pdf_comes_back_as_its_text(tools, root):
    pytest.importorskip("pypdf")
    (root / "paper.pdf").write_bytes(minimal_pdf("Hello PDF world"))
    text = tools.view_file("paper.pdf")
    assert "--- page 1 ---" in text and "Hello PDF world" in text


def test_a_binary_file_is_not_dumped(tools, root):
    (root / "data.bin").write_bytes(b"\x00\x01\x02" * 100)
    assert "binary file" in tools.view_file("data.bin")


def test_list_dir_shows_directories_first_and_sizes(tools):
    listing = tools.list_dir(".").splitlines()
    assert listing[0] == ".: 3 entries"
    assert listing[1] == "src/"
    assert listing[2].startswith("logo.png  (70 B)")
    with pytest.raises(ToolError, match="not a directory"):
        tools.list_dir("notes.txt")


def test_find_files_by_name_and_by_path(tools, root):
    (root / "src" / "deep").mkdir()
    (root / "src" / "deep" / "more.py").write_text("")
    assert tools.find_files("*.py").splitlines() == ["src/app.py", "src/deep/more.py"]
    assert tools.find_files("src/*.py").splitlines() == ["src/app.py"]
    assert tools.find_files("**/more.py").splitlines() == ["src/deep/more.py"]
    assert tools.find_files("*.nothing") == "no files match '*.nothing'"


def test_find_files_caps_its_results(tools, root, monkeypatch):
    monkeypatch.setattr(workspace_tools, "MAX_FIND_RESULTS", 3)
    for i in range(5):
        (root / f"f{i}.log").write_text("")
    out = tools.find_files("*.log").splitlines()
    assert out[:3] == ["f0.log", "f1.log", "f2.log"] and out[3] == "[results cut at 3 of 5; narrow the pattern]"


def test_grep_search_gives_file_and_line(tools):
    assert tools.grep_search(r"def \w+_data") == "src/app.py:3: def load_data(path):"
    assert tools.grep_search("line 99$", glob="*.txt") == "notes.txt:99: line 99"
    assert tools.grep_search("import", path="notes.txt").startswith("no matches")
    with pytest.raises(ToolError, match="invalid regular expression"):
        tools.grep_search("(unclosed")


def test_grep_search_caps_matches(tools, monkeypatch):
    monkeypatch.setattr(workspace_tools, "MAX_GREP_MATCHES", 5)
    lines = tools.grep_search("^line", path="notes.txt").splitlines()
    assert len(lines) == 6 and lines[-1].startswith("[matches cut at 5 of 1000")


def test_searches_stop_after_max_walk_entries(tools, root, monkeypatch):
    monkeypatch.setattr(workspace_tools, "MAX_WALK_ENTRIES", 3)
    note = "[stopped after looking at 3 files and directories; search a smaller path]"
    assert tools.find_files("*").splitlines()[-1] == note
    assert tools.grep_search("line 1$").splitlines()[-1] == note


# --- confinement -------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda t: t.view_file("../secret.txt"),
    lambda t: t.view_file("src/../../secret.txt"),
    lambda t: t.list_dir(".."),
    lambda t: t.grep_search("secret", path=".."),
    lambda t: t.find_files("*", path="../"),
    lambda t: t.write_file("../escaped.txt", "x"),
    lambda t: t.edit_file("../secret.txt", "top", "no"),
])
def test_dot_dot_is_refused(tools, root, call):
    with pytest.raises(ToolError, match="outside the workspace"):
        call(tools)
    assert not (root.parent / "escaped.txt").exists()
    assert (root.parent / "secret.txt").read_text() == "top secret\n"


def test_an_absolute_path_outside_is_refused_and_one_inside_is_fine(tools, root):
    with pytest.raises(ToolError, match="outside the workspace"):
        tools.view_file(str(root.parent / "secret.txt"))
    with pytest.raises(ToolError, match="outside the workspace"):
        tools.write_file("/tmp/agy-escape-test.txt", "x")
    assert "lines 1-4 of 4" in tools.view_file(str(root / "src" / "app.py"))


def test_a_symlink_pointing_out_is_refused_everywhere(tools, root):
    (root / "link.txt").symlink_to(root.parent / "secret.txt")
    (root / "linkdir").symlink_to(root.parent)
    for call in (lambda: tools.view_file("link.txt"), lambda: tools.view_file("linkdir/secret.txt"),
                 lambda: tools.edit_file("link.txt", "top", "no"),
                 lambda: tools.write_file("link.txt", "x", overwrite=True),
                 lambda: tools.write_file("linkdir/new.txt", "x"), lambda: tools.list_dir("linkdir")):
        with pytest.raises(ToolError, match="outside the workspace"):
            call()
    # searches walking the tree neither read nor list what the links reach
    assert tools.grep_search("secret").startswith("no matches")
    assert "link" not in tools.find_files("*")
    assert "link.txt -> (outside the workspace)" in tools.list_dir(".")
    assert (root.parent / "secret.txt").read_text() == "top secret\n"
    assert not (root.parent / "new.txt").exists()


def test_a_symlink_inside_the_workspace_is_followed(tools, root):
    (root / "alias.py").symlink_to(root / "src" / "app.py")
    assert "def load_data" in tools.view_file("alias.py")


# --- writing -----------------------------------------------------------------------------


def test_write_file_creates_and_overwrites_only_when_asked(tools, root):
    assert tools.write_file("out/report.md", "# Report\nok\n") == "created out/report.md (2 lines, 12 bytes)"
    assert (root / "out" / "report.md").read_text() == "# Report\nok\n"
    with pytest.raises(ToolError, match="already exists; pass overwrite=true"):
        tools.write_file("out/report.md", "new")
    assert (root / "out" / "report.md").read_text() == "# Report\nok\n"
    assert tools.write_file("out/report.md", "new\n", overwrite=True).startswith("overwrote out/report.md")
    assert (root / "out" / "report.md").read_text() == "new\n"


def test_edit_file_replaces_exactly_one_block(tools, root):
    assert tools.edit_file("src/app.py", "return open(path).read()", "with open(path) as f:\n        return f.read()"
                           ) == "edited src/app.py: replaced 1 line with 2 lines"
    assert "with open(path) as f:\n        return f.read()\n" in (root / "src" / "app.py").read_text()
    (root / "twice.txt").write_text("a\nx\na\n")
    with pytest.raises(ToolError, match="occurs 2 times"):
        tools.edit_file("twice.txt", "a\n", "b\n")
    with pytest.raises(ToolError, match="is not in 'twice.txt'"):
        tools.edit_file("twice.txt", "zzz", "b")
    assert (root / "twice.txt").read_text() == "a\nx\na\n"


def test_edit_file_keeps_windows_line_endings(tools, root):
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    tools.edit_file("win.txt", "two\nthree", "2\n3")
    assert (root / "win.txt").read_bytes() == b"one\r\n2\r\n3\r\n"


def test_edit_file_refuses_what_it_would_corrupt(tools, root):
    (root / "latin.txt").write_bytes("café\n".encode("latin-1"))
    (root / "data.bin").write_bytes(b"abc\x00def")
    for name in ("latin.txt", "data.bin"):
        with pytest.raises(ToolError, match="is not UTF-8 text"):
            tools.edit_file(name, "a", "b")
    assert (root / "latin.txt").read_bytes() == "café\n".encode("latin-1")


def test_previews_are_unified_diffs_of_what_would_change(root):
    edit = build("edit_file", root)
    preview = edit.preview({"path": "src/app.py", "old": "import os", "new": "import sys"})
    assert preview["kind"] == "diff" and preview["language"] == "diff"
    assert preview["text"].splitlines()[:3] == ["--- a/src/app.py", "+++ b/src/app.py", "@@ -1,4 +1,4 @@"]
    assert "-import os\n+import sys\n" in preview["text"]
    assert "import os" in (root / "src" / "app.py").read_text()  # a preview changes nothing
    write = build("write_file", root)
    created = write.preview({"path": "new.txt", "content": "hello\n"})["text"]
    assert created.splitlines()[:2] == ["--- /dev/null", "+++ b/new.txt"] and "+hello" in created
    replaced = write.preview({"path": "src/app.py", "content": "x = 1\n", "overwrite": True})["text"]
    assert "-import os" in replaced and "+x = 1" in replaced
    assert not (root / "new.txt").exists()


def test_effects_and_the_command_preview(root):
    assert {n: build(n, root).effect for n in ("view_file", "list_dir", "find_files", "grep_search", "write_file",
                                             "edit_file", "run_command")} == {
        "view_file": "read", "list_dir": "read", "find_files": "read", "grep_search": "read",
        "write_file": "write", "edit_file": "write", "run_command": "execute"}
    assert build("run_command", root).preview({"command": "ls -la"}) == {
        "kind": "command", "text": "ls -la", "language": "bash"}


# --- executing ---------------------------------------------------------------------------


def test_run_command_runs_in_the_workspace(tools, root):
    out = tools.run_command("pwd && echo oops >&2 && exit 3")
    assert out.splitlines() == ["exit code 3", str(root.resolve()), "oops"]


def test_run_command_caps_output_keeping_the_start_and_the_end(tools, monkeypatch):
    monkeypatch.setattr(workspace_tools, "MAX_COMMAND_OUTPUT_BYTES", 1000)
    out = tools.run_command("seq 1 5000")
    assert out.startswith("exit code 0\n1\n2\n3\n") and out.endswith("4999\n5000\n")
    assert "bytes of output cut ...]" in out and len(out) < 1100


def test_run_command_output_is_read_as_it_comes_not_held(tools):
    # 50 MB through the pipe: kept in memory it would show in the result's size or take the machine down
    out = tools.run_command("head -c 50000000 /dev/zero | tr '\\0' x; echo; echo END")
    assert out.startswith("exit code 0\nxxx") and out.endswith("x\nEND\n")
    assert f"[... {50_000_005 - workspace_tools.MAX_COMMAND_OUTPUT_BYTES:,} bytes of output cut ...]" in out


def wait_until_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie nobody reaped yet counts as exited)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_run_command_timeout_kills_the_process_group(tools, root):
    # the shell's child (a long sleep) must die with it, or it would outlive the call
    out = tools.run_command("sleep 30 & echo $! > child.pid; echo started; wait", timeout=0.5)
    assert out.splitlines()[:2] == ["timed out after 0.5 s and was killed", "started"]
    assert wait_until_gone(int((root / "child.pid").read_text()))


def test_run_command_leaves_nothing_running_in_the_background(tools, root):
    out = tools.run_command("sleep 30 > /dev/null & echo $! > child.pid; echo started")
    assert out == "exit code 0\nstarted\n"
    assert wait_until_gone(int((root / "child.pid").read_text()))


def test_run_command_refuses_a_bad_timeout(tools):
    with pytest.raises(ToolError, match="timeout must be between"):
        tools.run_command("true", timeout=0)


# --- end to end through the fake server ----------------------------------------------------------


def test_the_model_views_a_file_and_writes_one(make_agent, fake, root):
    agent = make_agent("coder", enabled_tools=["files"], workspace=str(root),
                       policies=[allow("view_file"), allow("write_file")])
    fake.enqueue(Reply.function_call("view_file", {"path": "src/app.py", "start_line": 3, "end_line": 4}, id="c1"),
                 Reply.function_call("write_file", {"path": "summary.md", "content": "load_data reads a file\n"},
                                     id="c2"),
                 Reply.text("Done."))
    response = agent.chat("summarise app.py into summary.md")
    assert response.text == "Done."
    assert (root / "summary.md").read_text() == "load_data reads a file\n"
    seen = fake.requests[1].function_response("c1")["result"]
    assert seen.splitlines()[1] == "     3\tdef load_data(path):"
    assert fake.requests[2].function_response("c2") == {"result": "created summary.md (1 line, 23 bytes)"}
    declared = {d["name"] for t in fake.requests[0].tools for d in t.get("functionDeclarations", [])}
    assert declared == {"view_file", "list_dir", "find_files", "grep_search", "write_file", "edit_file"}


def test_an_image_reaches_the_model_inside_the_function_response(make_agent, fake, root):
    agent = make_agent("looker", enabled_tools=["view_file"], workspace=str(root), policies=[allow("view_file")],
                       model="gemini-3-flash-preview")  # Gemini 3 takes media in tool results
    fake.enqueue(Reply.function_call("view_file", {"path": "logo.png"}, id="img"), Reply.text("A dot."))
    agent.chat("what is in logo.png?")
    answer = fake.requests[1].function_response_part("img")
    assert answer["response"] == {"result": "logo.png (image/png, 70 bytes) is attached"}
    (media,) = answer["parts"]
    assert media["inlineData"]["mimeType"] == "image/png"
    assert base64.b64decode(media["inlineData"]["data"]) == PNG


def test_an_escape_attempt_reaches_the_model_as_a_clear_error(make_agent, fake, root):
    agent = make_agent("probe", enabled_tools=["view_file"], workspace=str(root), policies=[allow("view_file")])
    fake.enqueue(Reply.function_call("view_file", {"path": "../secret.txt"}, id="bad"), Reply.text("Refused."))
    agent.chat("read ../secret.txt")
    error = fake.requests[1].function_response("bad")["error"]
    assert "outside the workspace" in error and "top secret" not in error


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose content stream draws `text` (hand-built: no PDF writer is installed)."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_blob_results_keep_the_rest_of_the_response():
    blob = Blob(PNG, "image/png", "chart.png")
    assert split_media(blob)[0] == "chart.png (image/png, 70 bytes) is attached"
    rest, media = split_media([{"rows": 3}, blob])
    assert rest == {"rows": 3} and len(media) == 1
    assert split_media({"plain": 1}) == ({"plain": 1}, [])


def test_in_a_kernel_the_workspace_is_its_current_directory(tmp_path):
    """A real kernel (jupyter starts it in the notebook's directory): %agent create --builtin files, then a
    %%chat whose model writes a file, which lands in that directory."""
    from agy_jupyter.testing import FakeGemini
    from agy_jupyter.testing.kernel import Kernel

    with FakeGemini() as server:
        kernel = Kernel(env=server.env())
        try:
            kernel.run(f"import os\nos.chdir({str(tmp_path)!r})\n%load_ext agy_jupyter")
            kernel.run("%agent create w --builtin files --policy allow")
            server.enqueue(Reply.function_call("write_file", {"path": "plan.md", "content": "# Plan\n"}, id="w1"),
                           Reply.text("Written."))
            execution = kernel.run("%%chat w\nWrite plan.md")
            assert execution.reply["content"]["status"] == "ok"
        finally:
            kernel.shutdown()
    assert (tmp_path / "plan.md").read_text() == "# Plan\n"
    assert server.requests[1].function_response("w1") == {"result": "created plan.md (1 line, 7 bytes)"}
