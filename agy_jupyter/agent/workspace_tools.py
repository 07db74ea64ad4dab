"""The workspace tools (the Antigravity SDK's set, in Python): read, search, write and edit files, run commands.

Every path argument goes through `Workspace.path`, and every file a search walks to is checked the
same way, so nothing outside the workspace root is read or written (see workspace.py). `run_command`
is the exception a shell makes: it runs in the root but can reach anything, so it asks (effect
"execute") and its approval, which shows the command, is the guard. Writes ask too and show a diff.

Outputs are capped by the constants below, and every cut says so, so the model knows to ask for more.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import mimetypes
import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from ..runtime.errors import ToolError
from .builtin_tools import BuiltinContext, BuiltinTools, register
from .content import Blob, sniff_mime_type
from .tools import Tool, as_tool
from .workspace import Workspace

MAX_VIEW_LINES = 400  # lines one view_file call shows
MAX_LINE_CHARS = 1000  # a longer line is cut (minified files, CSV blobs)
MAX_TEXT_CHARS = 60_000  # any one text result
MAX_COUNT_BYTES = 50_000_000  # view_file counts the lines of files up to this size (bigger: streamed, not counted)
MAX_MEDIA_BYTES = 5_000_000  # an image or PDF sent to the model as a part
MAX_PDF_PAGES = 200  # pages of a PDF whose text view_file extracts
MAX_LIST_ENTRIES = 500
MAX_FIND_RESULTS = 200
MAX_GREP_MATCHES = 200
MAX_WALK_ENTRIES = 50_000  # files and directories find_files and grep_search look at before stopping
MAX_GREP_FILE_BYTES = 5_000_000  # bigger files are skipped by grep_search (and counted)
MAX_DIFF_CHARS = 100_000  # the diff an approval shows
MAX_COMMAND_OUTPUT_BYTES = 30_000  # kept of a command's output: its first quarter and the rest from its end
MAX_COMMAND_TIMEOUT = 600.0
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints", "node_modules"})
_BINARY_PROBE = 8192
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _cap(text: str, limit: int, what: str = "output") -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[{what} cut at {limit} of {len(text)} characters]"


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:_BINARY_PROBE]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob with `**` (any depth), `*` and `?` (within one name) and [classes], as a full-match regex."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class WorkspaceTools:
    """The tool functions of one workspace; each public method is a tool the model sees by its name."""

    def __init__(self, workspace: Workspace):
        self.ws = workspace

    # --- reading ---------------------------------------------------------------

    def view_file(self, path: str, start_line: int | None = None, end_line: int | None = None) -> Any:
        """Read a file in the workspace. Text comes back with line numbers; images are shown to you as images;
        PDFs come back as their text.

        Args:
            path: the file, relative to the workspace root.
            start_line: first line to show (1-based); default 1.
            end_line: last line to show (inclusive); default start_line + 399. Long files are shown in
                pieces of at most 400 lines: call again with the next start_line to read on.
        """
        file = self._file("view_file", path)
        rel = self.ws.relative(file)
        size = file.stat().st_size
        with file.open("rb") as f:
            probe = f.read(_BINARY_PROBE)
        mime = sniff_mime_type(probe) or mimetypes.guess_type(file.name)[0] or ""
        if mime in _IMAGE_TYPES or mime == "application/pdf":
            if size > MAX_MEDIA_BYTES:
                raise ToolError("view_file", f"{rel} is {size:,} bytes, more than the {MAX_MEDIA_BYTES:,} bytes "
                                             "a file sent to the model may have")
            data = file.read_bytes()
            text = _pdf_text(data) if mime == "application/pdf" else None
            if text is not None:
                return self._numbered("view_file", rel, io.StringIO(text), start_line, end_line)
            return [f"{rel} ({mime}, {size:,} bytes) is attached", Blob(data, mime, rel)]
        if _is_binary(probe):
            return f"{rel} is a binary file ({mime or 'unknown type'}, {size:,} bytes); it is not shown"
        # streamed: a multi-gigabyte CSV is read only up to the lines shown (and not counted)
        with file.open(encoding="utf-8", errors="replace") as lines:
            return self._numbered("view_file", rel, lines, start_line, end_line, count=size <= MAX_COUNT_BYTES)

    def list_dir(self, path: str = ".") -> str:
        """List a directory of the workspace: subdirectories first (ending in /), then files with their sizes.

        Args:
            path: the directory, relative to the workspace root; default the root itself.
        """
        folder = self.ws.path("list_dir", path)
        if not folder.is_dir():
            raise ToolError("list_dir", f"{path!r} is not a directory" + ("" if folder.exists() else " (it does not exist)"))
        entries = sorted(folder.iterdir(), key=lambda p: (not _is_dir(p), p.name.lower()))
        lines = []
        for entry in entries[:MAX_LIST_ENTRIES]:
            if entry.is_symlink() and not self.ws.contains(entry):
                lines.append(f"{entry.name} -> (outside the workspace)")
            elif _is_dir(entry):
                lines.append(f"{entry.name}/")
            else:
                lines.append(f"{entry.name}  ({_size(entry)})")
        head = f"{self.ws.relative(folder)}: {len(entries)} entries"
        if len(entries) > MAX_LIST_ENTRIES:
            lines.append(f"[list cut at {MAX_LIST_ENTRIES} of {len(entries)} entries]")
        return "\n".join([head, *lines]) if entries else f"{head} (empty)"

    def find_files(self, pattern: str, path: str = ".") -> str:
        """Find files and directories by glob pattern, e.g. "*.csv" (any depth, by name), "data/*.json" or
        "**/test_*.py" (by path from the root). .git, __pycache__ and node_modules are skipped.

        Args:
            pattern: the glob. Without a "/" it matches names at any depth; with one it matches the path
                relative to the workspace root ("**" spans directories).
            path: the directory to search in, relative to the workspace root; default the root.
        """
        if not pattern.strip():
            raise ToolError("find_files", "the pattern is empty")
        pattern = pattern.strip().removeprefix("./")
        regex = _glob_regex(pattern)
        by_name = "/" not in pattern
        found: list[str] = []
        total, notes = 0, []
        try:
            for entry, is_dir in self._walk("find_files", path):
                rel = self.ws.relative(entry)
                if regex.match(entry.name if by_name else rel):
                    total += 1
                    if len(found) < MAX_FIND_RESULTS:
                        found.append(rel + ("/" if is_dir else ""))
        except _WalkCut:
            notes.append(_WALK_CUT_NOTE.format(n=MAX_WALK_ENTRIES))
        if total > len(found):
            notes.insert(0, f"[results cut at {MAX_FIND_RESULTS} of {total}; narrow the pattern]")
        return "\n".join(found + notes if found else [f"no files match {pattern!r}", *notes])

    def grep_search(self, pattern: str, path: str = ".", glob: str | None = None) -> str:
        """Search the text of files for a regular expression (Python syntax). Each match is
        "file:line: text". Binary files and .git, __pycache__, node_modules are skipped.

        Args:
            pattern: the regular expression, e.g. "def load_" or "(?i)todo".
            path: a file or directory to search, relative to the workspace root; default the root.
            glob: only files whose name matches this glob, e.g. "*.py" (a pattern with "/" matches the path).
        """
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolError("grep_search", f"invalid regular expression {pattern!r}: {exc}") from None
        name_filter = _glob_regex(glob) if glob else None
        filter_by_path = bool(glob) and "/" in str(glob)
        matches: list[str] = []
        total, skipped, notes = 0, 0, []
        try:
            for entry, is_dir in self._walk("grep_search", path):
                rel = self.ws.relative(entry)
                if is_dir or (name_filter and not name_filter.match(rel if filter_by_path else entry.name)):
                    continue
                try:
                    if entry.stat().st_size > MAX_GREP_FILE_BYTES:
                        skipped += 1
                        continue
                    data = entry.read_bytes()
                except OSError:
                    continue
                if _is_binary(data):
                    continue
                for number, line in enumerate(io.StringIO(data.decode("utf-8", errors="replace")), 1):
                    if regex.search(line):
                        total += 1
                        if len(matches) < MAX_GREP_MATCHES:
                            matches.append(f"{rel}:{number}: {_cut_line(line.rstrip(), 300)}")
        except _WalkCut:
            notes.append(_WALK_CUT_NOTE.format(n=MAX_WALK_ENTRIES))
        if total > len(matches):
            notes.insert(0, f"[matches cut at {MAX_GREP_MATCHES} of {total}; narrow the pattern, path or glob]")
        if skipped:
            notes.append(f"[{skipped} file(s) over {MAX_GREP_FILE_BYTES:,} bytes were not searched]")
        if not matches:
            return "\n".join([f"no matches for {pattern!r}", *notes])
        return _cap("\n".join([*matches, *notes]), MAX_TEXT_CHARS)

    # --- writing ---------------------------------------------------------------

    def write_file(self, path: str, content: str, overwrite: bool = False) -> str:
        """Create a text file (and its missing directories). An existing file is replaced only with
        overwrite=true; to change part of a file use edit_file.

        Args:
            path: the file, relative to the workspace root.
            content: the whole text of the file.
            overwrite: replace the file if it exists; default false.
        """
        file, old = self._write_target(path, overwrite)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(content, encoding="utf-8", newline="")
        verb = "created" if old is None else "overwrote"
        return f"{verb} {self.ws.relative(file)} ({_lines(content)}, {len(content.encode()):,} bytes)"

    def edit_file(self, path: str, old: str, new: str) -> str:
        """Replace one exact block of text in a file. `old` must occur exactly once, character for
        character (whitespace and indentation included); include a few surrounding lines to make it unique.

        Args:
            path: the file, relative to the workspace root.
            old: the exact text to replace.
            new: the text to put in its place.
        """
        file, text, updated = self._edit(path, old, new)
        file.write_text(updated, encoding="utf-8", newline="")
        return f"edited {self.ws.relative(file)}: replaced {_lines(old)} with {_lines(new)}"

    # --- executing -------------------------------------------------------------

    def run_command(self, command: str, timeout: float = 60) -> str:
        """Run a shell command (with /bin/sh) in the workspace root and return its exit code and
        output (stdout and stderr together). It is not confined to the workspace: the user approves it.
        Processes it leaves in the background are stopped when it ends.

        Args:
            command: the command line, e.g. "ls -la" or "python script.py".
            timeout: seconds before the command and its children are killed; default 60, at most 600.
        """
        if not command.strip():
            raise ToolError("run_command", "the command is empty")
        if not 0 < timeout <= MAX_COMMAND_TIMEOUT:
            raise ToolError("run_command", f"timeout must be between 0 and {MAX_COMMAND_TIMEOUT:g} seconds")
        # its own session, so a timeout kills the whole process group, not just the shell
        proc = subprocess.Popen(command, shell=True, cwd=self.ws.root, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        assert proc.stdout is not None
        output = _HeadAndTail(proc.stdout, MAX_COMMAND_OUTPUT_BYTES)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # also when the thread is interrupted: leave nothing of the command running
            _kill_group(proc)
            proc.wait()
        output.done.wait(5)  # a child that left the group may hold the pipe open: its output is cut there
        status = f"timed out after {timeout:g} s and was killed" if timed_out else f"exit code {proc.returncode}"
        text = output.text()
        return f"{status}\n{text}" if text else f"{status} (no output)"

    # --- previews (what an approval shows) ---------------------------------------

    def preview_write(self, args: dict) -> dict:
        file, old = self._write_target(args.get("path", ""), bool(args.get("overwrite", False)))
        return _diff(self.ws.relative(file), old, str(args.get("content", "")))

    def preview_edit(self, args: dict) -> dict:
        file, text, updated = self._edit(args.get("path", ""), args.get("old", ""), args.get("new", ""))
        return _diff(self.ws.relative(file), text, updated)

    @staticmethod
    def preview_command(args: dict) -> dict:
        return {"kind": "command", "text": str(args.get("command", "")), "language": "bash"}

    # --- internals ---------------------------------------------------------------

    def _file(self, tool: str, path: str) -> Path:
        file = self.ws.path(tool, path)
        if not file.exists():
            raise ToolError(tool, f"{path!r} does not exist in the workspace; list_dir or find_files shows what does")
        if file.is_dir():
            raise ToolError(tool, f"{path!r} is a directory; use list_dir")
        return file

    def _numbered(self, tool: str, rel: str, lines: Iterable[str], start: int | None, end: int | None,
                  count: bool = True) -> str:
        """Lines start..end numbered, at most MAX_VIEW_LINES; `count` reads on to the end to count them all."""
        first = 1 if start is None else start
        if first < 1 or (end is not None and end < first):
            raise ToolError(tool, f"invalid line range {start}-{end}; lines are numbered from 1")
        stop = first + MAX_VIEW_LINES - 1 if end is None else min(end, first + MAX_VIEW_LINES - 1)
        shown: list[str] = []
        total, more = 0, False
        for total, line in enumerate(lines, 1):
            if total > stop:
                more = True
                if not count:
                    break
            elif total >= first:
                shown.append(f"{total:>6}\t{_cut_line(line.rstrip(chr(10)), MAX_LINE_CHARS)}")
        if total == 0:
            return f"{rel} is empty"
        if not shown:
            raise ToolError(tool, f"{rel} has {total} lines; start_line {first} is past the end")
        last = first + len(shown) - 1
        counted = count or not more
        head = f"{rel}: lines {first}-{last} of {total if counted else 'a file too big to count its lines'}"
        notes = []
        if more and end is not None and end > last:
            notes.append(f"[at most {MAX_VIEW_LINES} lines at a time; call again with start_line={last + 1}]")
        elif more and end is None:
            left = f"{total - last} more lines" if counted else "more lines follow"
            notes.append(f"[{left}; call again with start_line={last + 1}]")
        return _cap("\n".join([head, *shown, *notes]), MAX_TEXT_CHARS)

    def _walk(self, tool: str, path: str) -> Iterator[tuple[Path, bool]]:
        """Every file and directory under `path` (or `path` itself when it is a file), links out dropped."""
        start = self.ws.path(tool, path)
        if not start.exists():
            raise ToolError(tool, f"{path!r} does not exist in the workspace")
        if start.is_file():
            yield start, False
            return
        seen = 0
        for folder, dirs, files in os.walk(start, followlinks=False):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            base = Path(folder)
            for name, is_dir in [*((d, True) for d in dirs), *((f, False) for f in sorted(files))]:
                seen += 1
                if seen > MAX_WALK_ENTRIES:
                    raise _WalkCut()
                entry = base / name
                if self.ws.contains(entry):  # a link to somewhere outside is neither listed nor read
                    yield entry, is_dir

    def _write_target(self, path: str, overwrite: bool) -> tuple[Path, str | None]:
        file = self.ws.path("write_file", path)
        if file.is_dir():
            raise ToolError("write_file", f"{path!r} is a directory")
        if not file.exists():
            return file, None
        if not overwrite:
            raise ToolError("write_file", f"{path!r} already exists; pass overwrite=true to replace it, or use "
                                          "edit_file to change part of it")
        return file, file.read_text(encoding="utf-8", errors="replace")

    def _edit(self, path: str, old: str, new: str) -> tuple[Path, str, str]:
        """The file, its text and the text after the edit; ToolError unless `old` occurs exactly once."""
        file = self._file("edit_file", path)
        if not old:
            raise ToolError("edit_file", "`old` is empty; give the exact text to replace")
        data = file.read_bytes()
        try:
            if _is_binary(data):
                raise UnicodeError
            text = data.decode("utf-8")
        except UnicodeError:  # decoding with replacements and writing back would corrupt it
            raise ToolError("edit_file", f"{path!r} is not UTF-8 text; edit_file only changes text files") from None
        if "\r\n" in text:  # the model writes "\n": match and edit a Windows file as if it had "\n", keep its "\r\n"
            text, old, new = text.replace("\r\n", "\n"), old.replace("\r\n", "\n"), new.replace("\r\n", "\n")
            if text.count(old) == 1:
                original = data.decode("utf-8")
                return file, original, text.replace(old, new, 1).replace("\n", "\r\n")
        count = text.count(old)
        if count == 0:
            raise ToolError("edit_file", f"the text of `old` is not in {path!r}; view_file shows the exact text "
                                         "(whitespace and indentation must match)")
        if count > 1:
            raise ToolError("edit_file", f"the text of `old` occurs {count} times in {path!r}; include more "
                                         "surrounding lines so it occurs exactly once")
        return file, text, text.replace(old, new, 1)


class _WalkCut(Exception):
    """The walk reached MAX_WALK_ENTRIES."""


_WALK_CUT_NOTE = "[stopped after looking at {n:,} files and directories; search a smaller path]"


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _size(path: Path) -> str:
    try:
        n = float(path.stat().st_size)
    except OSError:
        return "unreadable"
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _lines(text: str) -> str:
    n = len(text.splitlines())
    return f"{n} line" if n == 1 else f"{n} lines"


def _cut_line(line: str, limit: int) -> str:
    return line if len(line) <= limit else line[:limit] + f" [... line cut, {len(line)} characters]"


class _HeadAndTail:
    """Reads a pipe to its end on a thread, keeping only its first and last bytes (errors are usually at
    the end): a command that prints gigabytes costs no memory and never blocks on a full pipe."""

    def __init__(self, pipe: IO[bytes], limit: int):
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        self.head_limit, self.tail_limit = limit // 4, limit - limit // 4
        self.done = threading.Event()
        threading.Thread(target=self._read, args=(pipe,), name="agy-run-command-output", daemon=True).start()

    def _read(self, pipe: IO[bytes]) -> None:
        try:
            with pipe:
                while chunk := os.read(pipe.fileno(), 65536):
                    self.total += len(chunk)
                    room = self.head_limit - len(self.head)
                    self.head += chunk[:room] if room > 0 else b""
                    self.tail += chunk[max(room, 0):]
                    del self.tail[:-self.tail_limit]
        finally:
            self.done.set()

    def text(self) -> str:
        head, tail = bytes(self.head), bytes(self.tail)
        cut = self.total - len(head) - len(tail)
        middle = f"\n[... {cut:,} bytes of output cut ...]\n".encode() if cut > 0 else b""
        return (head + middle + tail).decode("utf-8", errors="replace")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _pdf_text(data: bytes) -> str | None:
    """The text of a PDF, page by page, with pypdf when it is installed; None without it or for no text."""
    try:
        import pypdf
    except ImportError:
        return None
    try:
        pages = pypdf.PdfReader(io.BytesIO(data)).pages
        texts = [(page.extract_text() or "").strip() for page in pages[:MAX_PDF_PAGES]]
    except Exception:  # a PDF pypdf cannot read goes to the model as a document instead
        return None
    if not any(texts):  # scanned pages: the model reads the document itself better
        return None
    cut = [f"[text of the first {MAX_PDF_PAGES} of {len(pages)} pages]"] if len(pages) > MAX_PDF_PAGES else []
    return "\n".join([*(f"--- page {i} ---\n{text}" for i, text in enumerate(texts, 1)), *cut])


def _diff(rel: str, old: str | None, new: str) -> dict:
    import difflib  # only when an approval shows a diff, not with every `import agy_jupyter`

    lines = difflib.unified_diff((old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile="/dev/null" if old is None else f"a/{rel}", tofile=f"b/{rel}")
    text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
    return {"kind": "diff", "text": _cap(text or f"(no change to {rel})\n", MAX_DIFF_CHARS, "diff"),
            "language": "diff"}


# --- registration --------------------------------------------------------------

_EFFECTS = {
    BuiltinTools.VIEW_FILE: "read", BuiltinTools.LIST_DIR: "read", BuiltinTools.FIND_FILES: "read",
    BuiltinTools.GREP_SEARCH: "read", BuiltinTools.WRITE_FILE: "write", BuiltinTools.EDIT_FILE: "write",
    BuiltinTools.RUN_COMMAND: "execute",
}
_PREVIEWS: dict[BuiltinTools, Callable[[WorkspaceTools], Callable[[dict], dict]]] = {
    BuiltinTools.WRITE_FILE: lambda tools: tools.preview_write,
    BuiltinTools.EDIT_FILE: lambda tools: tools.preview_edit,
    BuiltinTools.RUN_COMMAND: lambda tools: tools.preview_command,
}


def workspace_tool(name: BuiltinTools, context: BuiltinContext) -> Tool:
    """The Tool `name` for the workspace in `context` (the factory registered for each of them)."""
    tools = WorkspaceTools(Workspace.at(context.workspace))
    preview = _PREVIEWS.get(name)
    built = dataclasses.replace(as_tool(getattr(tools, name.value)), effect=_EFFECTS[name],
                                preview=preview(tools) if preview else None)
    if name is BuiltinTools.RUN_COMMAND:  # its own timeout argument governs, not the agent's tool_timeout
        built = dataclasses.replace(built, timeout=MAX_COMMAND_TIMEOUT + 10)
    return built


for _name in _EFFECTS:
    register(_name, functools.partial(workspace_tool, _name))
