"""Token usage for display: cost estimates from a price table, context fill against the model's limit.

`usage_report(agent)` is what `%agent usage` shows (this turn, this agent, the session, the context
fill), as data for the UsageView and as a plain-text table (`usage_text`) for terminals and logs.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..agent.api import Agent
from ..agent.directory import AgentDirectory, agents
from ..agent.history import Usage
from .safe_html import escape, static_html

# USD per million tokens; estimates from published list prices, for orientation only. Thinking
# tokens are billed as output. Users replace or extend this with `%config AgyMagics.prices = {...}`.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gemini-2.5-pro": {"input": 1.25, "output": 10.0, "cached": 0.31},
    "gemini-2.5-flash-lite": {"input": 0.10, "output": 0.40, "cached": 0.025},
    "gemini-2.5-flash": {"input": 0.30, "output": 2.50, "cached": 0.075},
    "gemini-2.0-flash-lite": {"input": 0.075, "output": 0.30, "cached": 0.019},
    "gemini-2.0-flash": {"input": 0.10, "output": 0.40, "cached": 0.025},
}
DEFAULT_CONTEXT_LIMITS: dict[str, int] = {
    "gemini-2.5-pro": 1_048_576,
    "gemini-2.5-flash": 1_048_576,
    "gemini-2.0-flash": 1_048_576,
}
ESTIMATE_NOTE = ("Costs are estimates from a price table (USD per million tokens), not a bill; "
                 "set %config AgyMagics.prices to match your plan.")


def lookup(table: Mapping[str, Any], model: str) -> Any:
    """The entry whose key is the longest prefix of the model name (versions and previews match)."""
    name = model.removeprefix("models/")
    matches = [key for key in table if name.startswith(key)]
    return table[max(matches, key=len)] if matches else None


def estimate_cost(usage: Usage, model: str, prices: Mapping[str, Mapping[str, float]]) -> float | None:
    price = lookup(prices, model)
    if price is None:
        return None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    fresh_input = usage.prompt_tokens - cached + usage.tool_prompt_tokens
    output = usage.output_tokens + usage.thinking_tokens
    per_million = (fresh_input * price.get("input", 0) + cached * price.get("cached", price.get("input", 0))
                   + output * price.get("output", 0))
    return per_million / 1_000_000


def usage_row(scope: str, usage: Usage, model: str, prices: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    return {"scope": scope, "prompt": usage.prompt_tokens, "output": usage.output_tokens,
            "thinking": usage.thinking_tokens, "cached": usage.cached_tokens,
            "cost": estimate_cost(usage, model, prices)}


def usage_data(model: str, scopes: list[tuple[str, Usage]], context_used: int,
               prices: Mapping[str, Mapping[str, float]], limits: Mapping[str, int]) -> dict[str, Any]:
    """The UsageView's `data` trait."""
    limit = lookup(limits, model)
    percent = round(100 * context_used / limit, 2) if limit else None
    return {"model": model, "rows": [usage_row(scope, usage, model, prices) for scope, usage in scopes],
            "context": {"used": context_used, "limit": limit, "percent": percent}, "currency": "USD",
            "note": ESTIMATE_NOTE}


def session_usage(directory: AgentDirectory | None = None) -> Usage:
    """Tokens used by every agent of `directory` (default: the notebook's `agents`)."""
    directory = directory if directory is not None else agents
    return sum((directory.get(name).usage() for name in directory.names()), Usage())


def usage_report(agent: Agent, directory: AgentDirectory | None = None, *,
                 prices: Mapping[str, Mapping[str, float]] = DEFAULT_PRICES,
                 limits: Mapping[str, int] = DEFAULT_CONTEXT_LIMITS) -> dict[str, Any]:
    """This turn, this agent and the session (the agents of `directory`), with costs and the context fill."""
    context = agent.runtime.describe(agent.id)["context_tokens"]  # the agent's own runtime
    scopes = [("This turn", agent.last_turn_usage()), ("This agent", agent.usage()),
              ("Session", session_usage(directory))]
    return {"agent": agent.name, **usage_data(agent.config.model, scopes, context, prices, limits)}


_COLUMNS = (("prompt", "Prompt"), ("output", "Output"), ("thinking", "Thinking"), ("cached", "Cached"))


def usage_text(data: Mapping[str, Any]) -> str:
    """The usage data as a plain-text table: what a terminal, jupyter console or a log shows."""
    rows = data.get("rows", [])
    scope_width = max([len("Scope"), *(len(str(row["scope"])) for row in rows)])
    header = "Scope".ljust(scope_width) + "".join(f"{title:>12}" for _, title in _COLUMNS) + f"{'Cost':>14}"
    lines = [f"Usage of {data['agent']!r} on {data.get('model', '')}" if data.get("agent")
             else f"Usage on {data.get('model', '')}", header]
    for row in rows:
        shown = _cost_text(row.get("cost"))
        lines.append(str(row["scope"]).ljust(scope_width) + "".join(f"{row[key]:>12,}" for key, _ in _COLUMNS)
                     + f"{shown:>14}")
    return "\n".join(lines + _footer(data))


def _footer(data: Mapping[str, Any]) -> list[str]:
    """The lines under the table: the context fill and the note on prices."""
    lines = []
    context = data.get("context") or {}
    if context.get("limit"):
        lines.append(f"Context: {context['used']:,} of {context['limit']:,} tokens ({context['percent']:.1f}% full)")
    elif context:
        lines.append(f"Context: {context.get('used', 0):,} tokens (no known limit for this model)")
    if data.get("note"):
        lines.append(data["note"])
    return lines


def usage_html(data: Mapping[str, Any]) -> str:
    """The usage table as sanitized HTML: what a saved notebook shows where the widget's state is not saved
    (GitHub, nbconvert, a notebook reopened without widget state)."""
    rows = data.get("rows", [])
    who = f"Usage of {data['agent']}" if data.get("agent") else "Usage"
    head = "".join(f"<th>{escape(title)}</th>" for title in ("Scope", *(t for _, t in _COLUMNS), "Cost"))
    body = "".join("<tr>" + f"<td>{escape(row['scope'])}</td>"
                   + "".join(f'<td class="agy-align-right">{row[key]:,}</td>' for key, _ in _COLUMNS)
                   + f'<td class="agy-align-right">{escape(_cost_text(row.get("cost")))}</td></tr>' for row in rows)
    return static_html(f'<div class="agy-header"><span class="agy-agent">{escape(who)}</span> '
                       f'<span class="agy-model">{escape(data.get("model", ""))}</span></div>'
                       f'<table class="agy-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
                       + "".join(f'<div class="agy-note">{escape(line)}</div>' for line in _footer(data)), "agy-reply")


def _cost_text(cost: float | None) -> str:
    if cost is None:
        return "no price"
    return "<$0.0001" if 0 < cost < 0.00005 else f"≈${cost:.4f}"


def usage_line(usage: Usage, model: str, prices: Mapping[str, Mapping[str, float]]) -> str:
    """One line for a reply's footer: tokens in/out and the estimated cost."""
    if not usage.calls:
        return ""
    line = f"{usage.prompt_tokens:,} in / {usage.output_tokens + usage.thinking_tokens:,} out tokens"
    cost = estimate_cost(usage, model, prices)
    return line + (f" · {_cost_text(cost)} (est.)" if cost is not None else "")
