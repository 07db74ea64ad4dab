"""The transcript of one reply: built from a turn's events, rendered as widget ops and as a static copy.

The live widget, the static copy saved in the notebook (sanitized text/html + text/plain + the JSON
transcript) and headless text all read this one model. The JSON transcript (version 2) is the schema
the labextension's model (labextension/src/transcript.js) also produces from the same ops; the
shared fixtures in tests/fixtures/transcripts pin that both agree.

Everything a model wrote is untrusted: it reaches HTML only through safe_html.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..agent.events import (ApprovalRequested, Citations, CodeExecuted, CodeExecutionStarted, QuotaWait, StatusChanged,
                            TextDelta, ThoughtDelta, ToolCallStarted, ToolFinished)
from ..agent.server_tools import code_runs, grounding_sources
from .safe_html import code_html, escape, escape_inline, markdown_html, static_html

TRANSCRIPT_MIME = "application/vnd.agy.transcript+json"
TRANSCRIPT_VERSION = 2
PLAIN_PREVIEW_CHARS = 1000  # text/plain is a preview: the full text is in the HTML already
PLAIN_TOOL_CHARS = 160  # one line per tool call in text/plain
LONG_JSON_LINES, LONG_JSON_CHARS = 12, 1200  # longer arguments / results start collapsed (as in the widget)
HTML_JSON_CHARS = 20_000  # a tool result longer than this is cut in the HTML (the JSON transcript has it all)
HTML_OUTPUT_CHARS = 20_000  # a code run's output longer than this is cut in the HTML (the JSON has it all)
_TOOL_STATUSES = {"ok", "error", "denied", "cancelled", "pending"}
_CODE_OUTCOMES = {"ok": "ok", "failed": "error", "deadline_exceeded": "error"}  # -> status classes
_WEB_URI = re.compile(r"https?://[^\s<>\"']+\Z", re.I)  # the only links a citation gets
_REPLY_STATUSES = {"done", "error", "cancelled"}
CONTINUED = "continued below"  # the status of a reply's part that code output split off (see Transcript.part)


@dataclass
class TextBlock:
    text: str = ""
    kind: str = "text"


@dataclass
class ToolBlock:
    id: str | None
    name: str
    args: dict[str, Any]
    status: str = "pending"
    result: dict[str, Any] | None = None
    kind: str = "tool"


@dataclass
class CodeBlock:
    """Code Gemini's code_execution tool ran on Google's servers; outcome None until its result."""
    id: str | None
    code: str
    language: str = "python"
    outcome: str | None = None
    output: str | None = None
    kind: str = "code_execution"

    def to_json(self) -> dict[str, Any]:
        return {"type": "code_execution", "id": self.id, "code": self.code, "language": self.language,
                "outcome": self.outcome, "output": self.output}


@dataclass
class CitationsBlock:
    """The web sources a model call was grounded in, and the segments of the reply each supports."""
    sources: list[dict[str, str]]
    supports: list[dict[str, Any]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    kind: str = "citations"

    def to_json(self) -> dict[str, Any]:
        return {"type": "citations", "sources": self.sources, "supports": self.supports, "queries": self.queries}


Block = TextBlock | ToolBlock | CodeBlock | CitationsBlock


@dataclass
class Transcript:
    """One reply, as blocks in order: text, tool calls (with results), code runs, citations; thoughts apart."""

    agent: str
    model: str = ""
    blocks: list[Block] = field(default_factory=list)
    thoughts: str = ""
    status: str = "thinking"
    detail: str = ""
    error: str | None = None
    hint: str | None = None
    usage_line: str = ""
    touched: int | None = None  # the index of the block the last applied event added or changed

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.blocks if isinstance(b, TextBlock))

    def apply(self, event: Any) -> list[list[Any]]:
        """Update from one turn event; return the widget ops it means (see the stream view protocol)."""
        self.touched = None
        if isinstance(event, TextDelta):
            if not self.blocks or not isinstance(self.blocks[-1], TextBlock):
                self.blocks.append(TextBlock())
            self.blocks[-1].text += event.text
            self.touched = len(self.blocks) - 1
            return [["text", event.text]]
        if isinstance(event, ThoughtDelta):
            self.thoughts += event.text
            return [["thought", event.text]]
        if isinstance(event, ToolCallStarted):
            self.blocks.append(ToolBlock(event.call_id, event.name, event.args))
            self.touched = len(self.blocks) - 1
            return [["tool_call", {"id": event.call_id, "name": event.name, "args": event.args}]]
        if isinstance(event, ToolFinished):
            block = self._tool(event.call_id, event.name)
            block.status, block.result = event.status, event.result
            self.touched = self._index(block)
            return [["tool_result", {"id": event.call_id, "name": event.name, "status": event.status,
                                     "result": event.result}]]
        if isinstance(event, StatusChanged):
            self.status, self.detail = event.status, event.detail
            return [["status", {"status": event.status, "detail": event.detail}]]
        if isinstance(event, QuotaWait):
            self.status, self.detail = "waiting for quota", f"{event.seconds:.0f}s"
            return [["status", {"status": "waiting for quota", "detail": "", "seconds": event.seconds}]]
        if isinstance(event, CodeExecutionStarted):
            self.blocks.append(CodeBlock(event.id, event.code, event.language))
            self.touched = len(self.blocks) - 1
            return [["code", {"id": event.id, "code": event.code, "language": event.language}]]
        if isinstance(event, CodeExecuted):
            block = self._code(event.id, event.code, event.language)
            block.outcome, block.output = event.outcome, event.output
            self.touched = self._index(block)
            return [["code_result", {"id": event.id, "code": event.code, "language": event.language,
                                     "outcome": event.outcome, "output": event.output}]]
        if isinstance(event, Citations):
            block = CitationsBlock(list(event.sources), list(event.supports), list(event.queries))
            self.blocks.append(block)
            self.touched = len(self.blocks) - 1
            return [["citations", {"sources": block.sources, "supports": block.supports, "queries": block.queries}]]
        if isinstance(event, ApprovalRequested):
            return []  # the approval view shows it; the status event already says so
        return []

    def _code(self, code_id: str | None, code: str, language: str) -> CodeBlock:
        """The code a result belongs to: same id; else the last code still running; else a new block.

        labextension/src/transcript.js (TranscriptModel.codeFor) applies the same rule.
        """
        runs = [b for b in self.blocks if isinstance(b, CodeBlock)]
        match = next((b for b in runs if code_id is not None and b.id == code_id), None) or next(
            (b for b in reversed(runs) if b.outcome is None), None)
        if match is None:
            match = CodeBlock(code_id, code, language)
            self.blocks.append(match)
        return match

    def _index(self, block: Block) -> int:
        return next(i for i, b in enumerate(self.blocks) if b is block)  # by identity: equal blocks can repeat

    def fail(self, message: str, hint: str | None) -> list[list[Any]]:
        self.status, self.error, self.hint = "error", message, hint
        return [["error", {"message": message, "hint": hint or ""}], ["status", {"status": "error", "detail": ""}]]

    def _tool(self, call_id: str | None, name: str) -> ToolBlock:
        """The call a result answers: same id; else the first unanswered call of that name; else a new block.

        The Gemini API often sends no ids; a result is never attached to a call of another name.
        labextension/src/transcript.js (matchCall) applies the same rule.
        """
        tools = [b for b in self.blocks if isinstance(b, ToolBlock)]
        match = next((b for b in tools if call_id is not None and b.id == call_id), None) or next(
            (b for b in tools if b.status == "pending" and b.name == name), None)
        if match is None:
            match = ToolBlock(call_id, name, {})
            self.blocks.append(match)
        return match

    def part(self, blocks: slice, thoughts: slice, *, last: bool) -> Transcript:
        """Some of the blocks and thoughts as a reply of their own: what one output shows when the output of
        code the agent ran (run_python) splits the reply. Only the last part carries the outcome."""
        piece = Transcript(agent=self.agent, model=self.model, blocks=self.blocks[blocks],
                           thoughts=self.thoughts[thoughts], status=CONTINUED)
        if last:
            piece.status, piece.detail, piece.error, piece.hint = self.status, self.detail, self.error, self.hint
            piece.usage_line = self.usage_line
        return piece

    def replay_ops(self) -> list[list[Any]]:
        """Everything so far as ops for a view that rendered late (sent with reset)."""
        ops: list[list[Any]] = [["thought", self.thoughts]] if self.thoughts else []
        for block in self.blocks:
            if isinstance(block, TextBlock):
                ops.append(["text", block.text])
            elif isinstance(block, CodeBlock):
                ops.append(["code", {"id": block.id, "code": block.code, "language": block.language}])
                if block.outcome is not None:
                    ops.append(["code_result", {"id": block.id, "code": block.code, "language": block.language,
                                                "outcome": block.outcome, "output": block.output}])
            elif isinstance(block, CitationsBlock):
                ops.append(["citations", {"sources": block.sources, "supports": block.supports,
                                          "queries": block.queries}])
            else:
                ops.append(["tool_call", {"id": block.id, "name": block.name, "args": block.args}])
                if block.status != "pending":
                    ops.append(["tool_result", {"id": block.id, "name": block.name, "status": block.status,
                                                "result": block.result}])
        ops.append(["status", {"status": self.status, "detail": self.detail}])
        if self.error:
            ops.append(["error", {"message": self.error, "hint": self.hint or ""}])
        return ops

    # -- the static copy -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The transcript, version 2: the schema the labextension's model produces from the same ops."""
        blocks = [{"type": "text", "text": b.text} if isinstance(b, TextBlock) else
                  {"type": "tool", "id": b.id, "name": b.name, "args": b.args, "status": b.status, "result": b.result}
                  if isinstance(b, ToolBlock) else b.to_json() for b in self.blocks]
        error = None if self.error is None else {"message": self.error, "hint": self.hint or ""}
        return {"version": TRANSCRIPT_VERSION, "agent": self.agent, "model": self.model, "status": self.status,
                "thoughts": self.thoughts, "blocks": blocks, "error": error, "usage": self.usage_line}

    def to_html(self) -> str:
        """The whole reply as sanitized HTML, looking like the live widget (no script, no remote image)."""
        # spaces between the spans: where a notebook's stylesheets are stripped (untrusted), they still read apart
        parts = [f'<div class="agy-header"><span class="agy-agent">{escape(self.agent)}</span> '
                 f'<span class="agy-model">{escape(self.model)}</span> '
                 f'<span class="agy-status">{escape(self.status)}</span></div>']
        if self.thoughts:
            parts.append('<details class="agy-thoughts"><summary>Thoughts</summary>'
                         f'<div class="agy-md agy-thought-text">{markdown_html(self.thoughts)}</div></details>')
        for block in self.blocks:
            if isinstance(block, TextBlock):
                parts.append(f'<div class="agy-md agy-text">{markdown_html(block.text)}</div>')
            elif isinstance(block, CodeBlock):
                parts.append(code_run_html(block.code, block.language, block.outcome, block.output))
            elif isinstance(block, CitationsBlock):
                parts.append(citations_html(block.sources, block.supports, block.queries))
            else:
                parts.append(tool_html(block.name, block.status, block.args, block.result))
        if self.error is not None:
            parts.append(error_html(self.error, self.hint))
        if self.usage_line:
            parts.append(f'<div class="agy-footer">{escape(self.usage_line)}</div>')
        status = self.status if self.status in _REPLY_STATUSES else "other"
        return static_html("".join(parts), "agy-reply", f"agy-status-{status}")

    def to_plain(self) -> str:
        """The reply as readable text: text (a preview when long), one line per tool call, error, footer."""
        lines: list[str] = []
        budget = PLAIN_PREVIEW_CHARS
        for block in self.blocks:
            if isinstance(block, ToolBlock):
                lines.append(tool_line(block.name, block.status, block.args, block.result))
                continue
            if isinstance(block, CodeBlock):
                lines.append(code_run_line(block.code, block.outcome, block.output))
                continue
            if isinstance(block, CitationsBlock):
                lines.append(citations_text(block.sources))
                continue
            text = block.text.strip("\n")
            shown = text[:max(budget, 0)]
            budget -= len(text)
            lines.append(shown + (f"… [{len(text) - len(shown)} more characters]" if len(shown) < len(text) else ""))
        if self.error is not None:
            lines.append(f"[error] {self.error}" + (f"\n[hint] {self.hint}" if self.hint else ""))
        lines.append(f"[{' · '.join(p for p in (self.agent, self.model, self.status, self.usage_line) if p)}]")
        return "\n".join(line for line in lines if line)

    def static_json(self) -> dict[str, Any]:
        """to_json() without the reply's prose, which the static copy keeps once, in its text/html.

        Holding the text twice (HTML and JSON) cost 1 byte per byte of text in every saved reply
        (64 KB reply: 2.8 -> 4.0 iopub bytes per text byte). The text blocks keep their place and length;
        block i is the i-th `.agy-text` / `.agy-tool` / `.agy-code-run` / `.agy-citations` child of the
        HTML copy's root, in the same order.
        """
        data = self.to_json()
        data["text_in"] = "text/html"
        data["thoughts"] = len(self.thoughts)
        data["blocks"] = [{"type": "text", "chars": len(b["text"])} if b["type"] == "text" else b
                          for b in data["blocks"]]
        return data

    def static_bundle(self) -> dict[str, Any]:
        """text/html + text/plain + the JSON transcript: what a saved notebook shows without a kernel."""
        return {"text/html": self.to_html(), "text/plain": self.to_plain(), TRANSCRIPT_MIME: self.static_json()}


def _pretty(value: Any) -> str:
    """Arguments and results as the widget shows them (dom.js prettyJson, the same rules).

    Strings as they are; an object with a multi-line string value (code, a command's output, a DataFrame
    summary) as `key:` lines with that text indented below, so it reads as written rather than as one
    clipped line of escaped newlines; anything else as JSON indented by 2.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and any(isinstance(v, str) and "\n" in v for v in value.values()):
        lines = []
        for key, item in value.items():
            if isinstance(item, str) and "\n" in item:
                lines += [f"{key}:", *("  " + line for line in item.rstrip("\n").split("\n"))]
            else:
                lines.append(f"{key}: {json.dumps(item, ensure_ascii=False, default=str)}")
        return "\n".join(lines)
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def json_html(label: str, value: Any) -> str:
    """A labelled JSON block (untrusted), collapsed into <details> when long, as the widget does."""
    text = _pretty(value)
    lines = text.count("\n") + 1
    if len(text) > HTML_JSON_CHARS:
        text = text[:HTML_JSON_CHARS] + f"\n… [{len(text) - HTML_JSON_CHARS} more characters]"
    pre = f'<pre class="agy-json">{escape(text)}</pre>'
    if lines <= LONG_JSON_LINES and len(text) <= LONG_JSON_CHARS:
        return f'<div class="agy-json-block"><div class="agy-label">{escape(label)}</div>{pre}</div>'
    return f'<details class="agy-json-block"><summary>{escape(label)} ({lines} lines)</summary>{pre}</details>'


def tool_html(name: str, status: str, args: Any, result: Any = None) -> str:
    """A tool call card: name, status (a coloured dot and a word), Arguments, Result."""
    state = status if status in _TOOL_STATUSES else "other"
    parts = [f'<div class="agy-tool agy-status-{state}"><div class="agy-tool-head">Tool call '
             f'<code class="agy-tool-name">{escape(name)}</code> '
             f'<span class="agy-tool-status">{escape(status)}</span></div>']
    if args is not None:
        parts.append(json_html("Arguments", args))
    if result is not None:
        parts.append(json_html("Result", result))
    return "".join(parts) + "</div>"


def error_html(message: str, hint: str | None) -> str:
    hint_html = f'<div class="agy-error-hint">{escape(hint)}</div>' if hint else ""
    return f'<div class="agy-error"><div class="agy-error-message">{escape(message)}</div>{hint_html}</div>'


def tool_line(name: str, status: str, args: Any, result: Any = None) -> str:
    """One line of text for a tool call: `[tool add: ok] {"a": 1} -> {"result": 2}`, cut to fit."""
    line = f"[tool {name}: {status}]"
    if args is not None:
        line += f" {json.dumps(args, ensure_ascii=False, default=str)}"
    if result is not None:
        line += f" -> {json.dumps(result, ensure_ascii=False, default=str)}"
    line = line.replace("\n", " ")
    return line if len(line) <= PLAIN_TOOL_CHARS else line[:PLAIN_TOOL_CHARS - 1] + "…"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… [{len(text) - limit} more characters]"


def code_run_html(code: str, language: str, outcome: str | None, output: str | None) -> str:
    """Code Gemini ran on its servers: the code (highlighted) and its output, like a tool card."""
    status = "running" if outcome is None else (outcome or "done")
    state = _CODE_OUTCOMES.get(outcome, "other") if outcome is not None else "pending"
    parts = [f'<div class="agy-code-run agy-status-{state}"><div class="agy-tool-head">Code run by Gemini '
             f'<span class="agy-tool-status">{escape(status.replace("_", " "))}</span></div>',
             code_html(code, language)]
    if output:
        parts.append(f'<div class="agy-label">Output</div><pre class="agy-output">'
                     f'{escape(_cut(output, HTML_OUTPUT_CHARS))}</pre>')
    return "".join(parts) + "</div>"


def web_link(uri: str, label: str) -> str:
    """A link to an http(s) URI with an escaped label; any other URI is shown as text, never as a link."""
    uri = str(uri or "").strip()
    if not _WEB_URI.match(uri):
        return escape(label or uri)
    return f'<a href="{escape(uri)}">{escape(label or uri)}</a>'


def citations_html(sources: list[dict[str, Any]], supports: list[dict[str, Any]], queries: list[str]) -> str:
    """Numbered sources with their links; the claims they support and the searches run, folded."""
    items = "".join(f'<li>{web_link(s.get("uri", ""), s.get("title") or s.get("uri", ""))}</li>' for s in sources)
    parts = [f'<div class="agy-citations"><div class="agy-label">Sources</div><ol>{items}</ol>']
    if supports:
        claims = "".join(f'<li>{escape(s.get("text", ""))} <span class="agy-mark">'
                         f'{escape(" ".join(f"[{i + 1}]" for i in s.get("sources", [])))}</span></li>'
                         for s in supports)
        parts.append(f'<details><summary>Supported claims ({len(supports)})</summary><ul>{claims}</ul></details>')
    if queries:
        parts.append(f'<div class="agy-note">Searched: {escape(" · ".join(queries))}</div>')
    return "".join(parts) + "</div>"


def code_run_line(code: str, outcome: str | None, output: str | None) -> str:
    """One line of text for a code run: `[code run: ok] print(1) -> 1`, cut to fit."""
    line = f"[code run: {outcome or 'running'}] {code}" + (f" -> {output}" if output else "")
    line = " ".join(line.split())
    return line if len(line) <= PLAIN_TOOL_CHARS else line[:PLAIN_TOOL_CHARS - 1] + "…"


def citations_text(sources: list[dict[str, Any]]) -> str:
    """The sources as text: `[sources] 1. Title <https://…>`, one per line."""
    return "[sources]\n" + "\n".join(f"{i}. {' '.join(str(s.get('title') or '').split())} <{s.get('uri', '')}>"
                                      for i, s in enumerate(sources, 1))


def history_bundle(messages: list[Any], last_turns: int | None = None) -> dict[str, str]:
    """An agent's history (`%agent history`) as sanitized text/html and readable text/plain."""
    if last_turns is not None:
        turns = sorted({m.turn for m in messages})[-last_turns:] if last_turns > 0 else []
        messages = [m for m in messages if m.turn in turns]
    if not messages:
        return {"text/html": static_html('<div class="agy-note">No conversation yet.</div>', "agy-history"),
                "text/plain": "No conversation yet."}
    html_parts: list[str] = []
    plain: list[str] = []
    for message in messages:
        marks = [m for m in (message.status if message.status != "complete" else "",
                             "compacted" if message.excluded and message.kind != "prompt" else "") if m]
        mark_html = "".join(f' <span class="agy-mark">({escape(m)})</span>' for m in marks)
        mark_text = "".join(f" ({m})" for m in marks)
        if message.kind == "summary":
            who, css = "Summary of earlier turns", "agy-message agy-summary"
        elif message.kind == "tool_results":
            for response in message.function_responses:
                name = response.name or "?"
                html_parts.append(f'<div class="agy-message">{tool_html(name, "result", None, response.response)}</div>')
                plain.append(tool_line(name, "result", None, response.response))
            continue
        elif message.role == "user":
            who, css = f"You · turn {message.turn}", "agy-message agy-you"
        else:
            who, css = "Agent", "agy-message"
        runs = [tuple(run.values()) for run in code_runs(message.parts)]
        sources = grounding_sources(message.grounding)
        text = message.text or ("" if message.function_calls or runs else "[non-text content]")
        body = f'<div class="agy-md">{markdown_html(text)}</div>' if text else ""
        calls = "".join(tool_html(c.name or "?", "call", c.args or {}) for c in message.function_calls)
        calls += "".join(code_run_html(*run) for run in runs)
        calls += citations_html(*sources) if sources[0] else ""
        html_parts.append(f'<div class="{css}"><div class="agy-header"><span class="agy-agent">{escape_inline(who)}'
                          f'</span>{mark_html}</div>{body}{calls}</div>')
        plain.append(f"{who}{mark_text}:" + (f"\n{text}" if text else ""))
        plain += [tool_line(c.name or "?", "call", c.args or {}) for c in message.function_calls]
        plain += [code_run_line(code, outcome, output) for code, _, outcome, output in runs]
        plain += [citations_text(sources[0])] if sources[0] else []
    return {"text/html": static_html("".join(html_parts), "agy-history"), "text/plain": "\n\n".join(plain)}

