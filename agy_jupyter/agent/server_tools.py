"""Gemini's server-side tools: the request tools they need, and what their results look like as events.

Google runs these tools inside one model call: `google_search` grounding and `url_context` answer with
candidate-level `groundingMetadata` (web sources, and which segment of the text each supports);
`code_execution` answers with `executableCode` and `codeExecutionResult` parts. The parts stay in the
history exactly as received; the metadata is read here into Citations.

The API refuses server tools next to function declarations on Gemini 1.x and 2.x models ("Tool use
with function calling is unsupported by the model"); Gemini 3 accepts the mix when the request sets
`tool_config.include_server_side_tool_invocations` (the Developer API only: google-genai refuses that
flag for Vertex).
"""
from __future__ import annotations

import re
from typing import Any, Literal

from google.genai import types

from .events import Citations

GeminiTool = Literal["search", "url", "code"]
GEMINI_TOOLS: dict[str, str] = {"search": "google_search", "url": "url_context", "code": "code_execution"}
# Gemini 1.x / 2.x: what needs Gemini 3 (server tools beside functions, media in function responses)
_BEFORE_GEMINI_3 = re.compile(r"^(?:models/)?gemini-(?:1|2)(?:\.|-|$)", re.I)
MAX_SOURCES = 50  # a citation list longer than this is cut (the metadata stays in the history)
MAX_SUPPORTS = 100


def request_tools(names: list[str]) -> list[types.Tool]:
    """One types.Tool per server tool, in a fixed order."""
    specs = {"search": types.Tool(google_search=types.GoogleSearch()),
             "url": types.Tool(url_context=types.UrlContext()),
             "code": types.Tool(code_execution=types.ToolCodeExecution())}
    return [specs[name] for name in GEMINI_TOOLS if name in names]


def before_gemini_3(model: str) -> bool:
    """A Gemini 1.x or 2.x model: it refuses server tools next to function declarations, and media
    (images, PDFs) inside a tool's function response."""
    return bool(_BEFORE_GEMINI_3.match(model))


def mixing_refused(model: str) -> bool:
    """True for the models whose API refuses server tools together with function declarations."""
    return before_gemini_3(model)


def check_backend(gemini_tools: list[str], function_tools: list[Any], backend: str) -> None:
    """Refuse at creation what the backend would refuse at the first chat (google-genai raises a
    ValueError for the combination flag on Vertex)."""
    if backend == "vertex" and gemini_tools and function_tools:
        from ..runtime.errors import ConfigError
        raise ConfigError("Vertex AI cannot combine Gemini's server tools with function tools "
                          "(google-genai sends include_server_side_tool_invocations only to the Gemini API)",
                          hint="use a Gemini API key, or give the agent one kind of tool")


def parse_names(text: str) -> list[str]:
    """`search,url,code` (or the API's own names) -> ["search", "url", "code"]; ValueError names the bad ones."""
    aliases = {**{name: name for name in GEMINI_TOOLS}, **{api: name for name, api in GEMINI_TOOLS.items()}}
    given = [n.strip().lower() for n in re.split(r"[,\s]+", text) if n.strip()]
    unknown = [n for n in given if n not in aliases]
    if unknown:
        raise ValueError(f"unknown Gemini tool(s) {', '.join(unknown)}; choose from {', '.join(GEMINI_TOOLS)}")
    return list(dict.fromkeys(aliases[n] for n in given))


def language_name(language: Any) -> str:
    """`Language.PYTHON` -> "python" (the name code highlighting looks up)."""
    name = getattr(language, "value", language)
    return "" if not name or name == "LANGUAGE_UNSPECIFIED" else str(name).lower()


def outcome_name(outcome: Any) -> str:
    """`Outcome.OUTCOME_OK` -> "ok"; "failed", "deadline_exceeded", or "" when unknown."""
    name = str(getattr(outcome, "value", outcome) or "")
    return "" if name in ("", "OUTCOME_UNSPECIFIED") else name.removeprefix("OUTCOME_").lower()


class GroundingCollector:
    """Sources and supports from the groundingMetadata of a call's streamed chunks, without repeats.

    The metadata may come on one chunk or on several (each with what it grounds so far): sources are
    kept once per URI, supports once per segment, so either way the list is the same.
    """

    def __init__(self) -> None:
        self.sources: list[dict[str, str]] = []
        self.supports: list[dict[str, Any]] = []
        self.queries: list[str] = []
        self._index: dict[str, int] = {}  # uri -> position in sources
        self._segments: set[tuple] = set()
        self._received: list[types.GroundingMetadata] = []  # each distinct one, as received

    def add(self, candidate: types.Candidate) -> None:
        metadata = candidate.grounding_metadata
        if metadata is not None:
            if metadata not in self._received:
                self._received.append(metadata)
            self.add_grounding(metadata)
        for url in (candidate.url_context_metadata.url_metadata or []) if candidate.url_context_metadata else []:
            if url.retrieved_url:
                self._source(url.retrieved_url, "")

    def add_grounding(self, metadata: types.GroundingMetadata) -> None:
        local: list[int | None] = []  # this metadata's chunk index -> our source index
        for chunk in metadata.grounding_chunks or []:
            source = chunk.web or chunk.retrieved_context
            uri = getattr(source, "uri", None) if source is not None else None
            local.append(self._source(uri, getattr(source, "title", None) or "") if uri else None)
        for query in metadata.web_search_queries or []:
            if query and query not in self.queries:
                self.queries.append(query)
        for support in metadata.grounding_supports or []:
            segment = support.segment
            text = (segment.text or "") if segment is not None else ""
            key = (segment.part_index, segment.start_index, segment.end_index, text) if segment else (None, text)
            indices = sorted({local[i] for i in support.grounding_chunk_indices or []
                              if 0 <= i < len(local) and local[i] is not None})
            if not text or not indices or key in self._segments or len(self.supports) >= MAX_SUPPORTS:
                continue
            self._segments.add(key)
            self.supports.append({"text": text, "sources": indices})

    def _source(self, uri: str, title: str) -> int:
        if uri not in self._index:
            self._index[uri] = len(self.sources)
            self.sources.append({"title": title, "uri": uri})
        elif title and not self.sources[self._index[uri]]["title"]:
            self.sources[self._index[uri]]["title"] = title
        return self._index[uri]

    @property
    def metadata(self) -> types.GroundingMetadata | None:
        """What the history keeps: the metadata as received when it came once (or repeated), else one
        built from all of it (chunk indices are per metadata, so they are renumbered)."""
        if len(self._received) <= 1:
            return self._received[0] if self._received else None
        web = [types.GroundingChunkWeb(uri=s["uri"], title=s["title"] or None) for s in self.sources]
        return self._received[-1].model_copy(update={
            "grounding_chunks": [types.GroundingChunk(web=w) for w in web],
            "grounding_supports": [types.GroundingSupport(segment=types.Segment(text=s["text"]),
                                                          grounding_chunk_indices=s["sources"]) for s in self.supports],
            "web_search_queries": list(self.queries) or None})

    def event(self) -> Citations | None:
        """The Citations of this call, if it had any sources."""
        if not self.sources:
            return None
        return Citations(sources=self.sources[:MAX_SOURCES],
                         supports=[s for s in self.supports if all(i < MAX_SOURCES for i in s["sources"])],
                         queries=list(self.queries))


def code_runs(parts: list[types.Part]) -> list[dict[str, str | None]]:
    """The code_execution runs in saved parts, in order: {code, language, outcome, output} (None until run)."""
    runs: list[dict[str, str | None]] = []
    for part in parts:
        if part.executable_code is not None:
            runs.append({"code": part.executable_code.code or "",
                         "language": language_name(part.executable_code.language) or "python",
                         "outcome": None, "output": None})
        elif part.code_execution_result is not None:
            if not runs or runs[-1]["outcome"] is not None:
                runs.append({"code": "", "language": "python", "outcome": None, "output": None})
            runs[-1].update(outcome=outcome_name(part.code_execution_result.outcome),
                            output=part.code_execution_result.output or "")
    return runs


def grounding_sources(metadata: types.GroundingMetadata | None) -> tuple[list[dict[str, str]], list[dict[str, Any]],
                                                                         list[str]]:
    """A saved reply's grounding as (sources, supports, queries)."""
    collector = GroundingCollector()
    if metadata is not None:
        collector.add_grounding(metadata)
    return collector.sources, collector.supports, collector.queries
