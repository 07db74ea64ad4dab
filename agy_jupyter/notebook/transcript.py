"""The transcript of one reply: built from a turn's events, rendered as widget ops and as a static copy.

The live widget, the static copy saved in the notebook (text/markdown + text/plain + a JSON
transcript for the labextension) and headless text all read this one model.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..agent.events import (ApprovalRequested, QuotaWait, StatusChanged, TextDelta, ThoughtDelta, ToolCallStarted,
                            ToolFinished)

TRANSCRIPT_MIME = "application/vnd.agy.transcript+json"
TRANSCRIPT_VERSION = 1
PLAIN_PREVIEW_CHARS = 1000  # text/plain is a preview: the full text is in text/markdown once, not twice
_FENCE = re.compile(r"(^|\n)(```|~~~)[^\n]*\n.*?(\n\2[^\n]*(?=\n|$)|$)", re.S)
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1", re.S)
_UNSAFE_LINK = re.compile(r"\]\(\s*(?:javascript|vbscript|data):", re.I)
_STATUS_ICONS = {"ok": "✅", "error": "⚠️", "denied": "⛔", "cancelled": "⏹", "pending": "…"}


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
class Transcript:
    """One reply, as blocks in order: text, tool calls (with results); thoughts kept apart."""

    agent: str
    model: str = ""
    blocks: list[TextBlock | ToolBlock] = field(default_factory=list)
    thoughts: str = ""
    status: str = "thinking"
    detail: str = ""
    error: str | None = None
    hint: str | None = None
    usage_line: str = ""

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.blocks if isinstance(b, TextBlock))

    def apply(self, event: Any) -> list[list[Any]]:
        """Update from one turn event; return the widget ops it means (see the stream view protocol)."""
        if isinstance(event, TextDelta):
            if not self.blocks or not isinstance(self.blocks[-1], TextBlock):
                self.blocks.append(TextBlock())
            self.blocks[-1].text += event.text
            return [["text", event.text]]
        if isinstance(event, ThoughtDelta):
            self.thoughts += event.text
            return [["thought", event.text]]
        if isinstance(event, ToolCallStarted):
            self.blocks.append(ToolBlock(event.call_id, event.name, event.args))
            return [["tool_call", {"id": event.call_id, "name": event.name, "args": event.args}]]
        if isinstance(event, ToolFinished):
            block = self._tool(event.call_id, event.name)
            block.status, block.result = event.status, event.result
            return [["tool_result", {"id": event.call_id, "name": event.name, "status": event.status,
                                     "result": event.result}]]
        if isinstance(event, StatusChanged):
            self.status, self.detail = event.status, event.detail
            return [["status", {"status": event.status, "detail": event.detail}]]
        if isinstance(event, QuotaWait):
            self.status, self.detail = "waiting for quota", f"{event.seconds:.0f}s"
            return [["status", {"status": "waiting for quota", "detail": "", "seconds": event.seconds}]]
        if isinstance(event, ApprovalRequested):
            return []  # the approval view shows it; the status event already says so
        return []

    def fail(self, message: str, hint: str | None) -> list[list[Any]]:
        self.status, self.error, self.hint = "error", message, hint
        return [["error", {"message": message, "hint": hint or ""}], ["status", {"status": "error", "detail": ""}]]

    def _tool(self, call_id: str | None, name: str) -> ToolBlock:
        for block in reversed(self.blocks):
            if isinstance(block, ToolBlock) and block.id == call_id and block.name == name:
                return block
        block = ToolBlock(call_id, name, {})
        self.blocks.append(block)
        return block

    def replay_ops(self) -> list[list[Any]]:
        """Everything so far as ops for a view that rendered late (sent with reset)."""
        ops: list[list[Any]] = [["thought", self.thoughts]] if self.thoughts else []
        for block in self.blocks:
            if isinstance(block, TextBlock):
                ops.append(["text", block.text])
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

    def to_markdown(self) -> tuple[str, list[dict[str, Any]]]:
        """Markdown of the whole reply, and the JSON blocks that point into it (no text twice)."""
        pieces: list[str] = []
        blocks: list[dict[str, Any]] = []
        size = 0

        def add(markdown: str, block: dict[str, Any] | None = None) -> None:
            nonlocal size
            if block is not None:
                blocks.append({**block, "start": size, "end": size + len(markdown)})
            pieces.append(markdown)
            size += len(markdown)

        if self.thoughts:
            add("<details><summary>Thoughts</summary>\n\n" + quote(safe_markdown(self.thoughts)) + "\n\n</details>\n\n",
                {"type": "thoughts"})
        for block in self.blocks:
            if isinstance(block, TextBlock):
                add(safe_markdown(block.text) + "\n\n", {"type": "text"})
            else:
                add(tool_markdown(block), {"type": "tool", "id": block.id, "name": block.name, "status": block.status})
        if self.error:
            add(f"> **Error:** {escape_inline(self.error)}" + (f"  \n> {escape_inline(self.hint)}" if self.hint else "")
                + "\n\n", {"type": "error"})
        footer = " · ".join(p for p in (f"**{self.agent}**", self.model, _status_word(self.status), self.usage_line) if p)
        add(f"<sub>{footer}</sub>\n", {"type": "footer"})
        return "".join(pieces), blocks

    def static_bundle(self) -> dict[str, Any]:
        """text/markdown + text/plain + the JSON transcript: what a saved notebook shows without a kernel."""
        markdown, blocks = self.to_markdown()
        text = self.text
        plain = text if len(text) <= PLAIN_PREVIEW_CHARS else (
            text[:PLAIN_PREVIEW_CHARS] + f"… [{len(text) - PLAIN_PREVIEW_CHARS} more characters in text/markdown]")
        if self.error:
            plain += f"\n[error] {self.error}"
        transcript = {"version": TRANSCRIPT_VERSION, "agent": self.agent, "model": self.model, "status": self.status,
                      "markdown_mime": "text/markdown", "blocks": blocks, "usage": self.usage_line}
        return {"text/markdown": markdown, "text/plain": plain or f"[{self.agent}: {self.status}]",
                TRANSCRIPT_MIME: transcript}


def tool_markdown(block: ToolBlock) -> str:
    icon = _STATUS_ICONS.get(block.status, "")
    args = json.dumps(block.args, ensure_ascii=False, default=str)
    lines = [f"> 🔧 Tool call **{escape_inline(block.name)}** · {icon} {block.status}", ">", "> Arguments:", ">",
             "> ```json", f"> {args}", "> ```"]
    if block.result is not None:
        result = json.dumps(block.result, ensure_ascii=False, indent=1, default=str)
        if len(result) > 2000:
            result = result[:2000] + "\n…"
        lines += [">", "> Result:", ">", "> ```json", *(f"> {line}" for line in result.splitlines()), "> ```"]
    return "\n".join(lines) + "\n\n"


def safe_markdown(text: str) -> str:
    """Model text as Markdown with raw HTML neutralised outside code, and script links disabled.

    JupyterLab renders the Markdown of a trusted output without sanitizing it, so the HTML in a
    model's reply must never reach it as HTML.
    """
    return _map_outside(_FENCE, text, _escape_prose)


def _escape_prose(text: str) -> str:
    return _UNSAFE_LINK.sub("](#blocked:", _map_outside(_CODE_SPAN, text, _escape_html))


def _map_outside(pattern: re.Pattern, text: str, transform: Any) -> str:
    """Apply `transform` to every stretch of `text` that `pattern` does not match; matches stay as written."""
    out: list[str] = []
    position = 0
    for match in pattern.finditer(text):
        out += [transform(text[position:match.start()]), match.group(0)]
        position = match.end()
    out.append(transform(text[position:]))
    return "".join(out)


def _escape_html(text: str) -> str:
    # "<" starts every tag; escaping it alone leaves Markdown (blockquotes, entities) intact
    return text.replace("<", "&lt;")


def escape_inline(text: str) -> str:
    return _escape_html(text).replace("\n", " ")


def quote(markdown: str) -> str:
    return "\n".join(f"> {line}" for line in markdown.splitlines())


def _status_word(status: str) -> str:
    return {"done": "done", "cancelled": "cancelled", "error": "error"}.get(status, status)


def history_markdown(messages: list[Any], last_turns: int | None = None) -> str:
    """A rendered transcript of an agent's history (`%agent history`)."""
    if last_turns is not None:
        turns = sorted({m.turn for m in messages})[-last_turns:] if last_turns > 0 else []
        messages = [m for m in messages if m.turn in turns]
    if not messages:
        return "*No conversation yet.*"
    out: list[str] = []
    for message in messages:
        marks = " ".join(filter(None, [f"*{message.status}*" if message.status != "complete" else "",
                                       "*(compacted)*" if message.excluded and message.kind != "prompt" else ""]))
        if message.kind == "summary":
            out.append(f"**Summary of earlier turns** {marks}\n\n{quote(safe_markdown(message.text))}")
        elif message.kind == "tool_results":
            for response in message.function_responses:
                result = json.dumps(response.response, ensure_ascii=False, default=str)[:500]
                out.append(f"> ↩ **{escape_inline(response.name or '')}** → `{result.replace('`', '')}`")
        elif message.role == "user":
            out.append(f"---\n**You** · turn {message.turn} {marks}\n\n{quote(safe_markdown(message.text) or '[non-text content]')}")
        else:
            calls = "".join(f"\n\n> 🔧 **{escape_inline(c.name or '')}**"
                            f"(`{json.dumps(c.args, ensure_ascii=False, default=str).replace('`', '')}`)"
                            for c in message.function_calls)
            out.append(f"**Agent** {marks}\n\n{safe_markdown(message.text)}{calls}")
    return "\n\n".join(out)
