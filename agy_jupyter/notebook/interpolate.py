"""`%%chat --interpolate`: put `{name}` values from the user namespace into the prompt.

Only a brace around a plain name that exists in the namespace is replaced; every other brace (JSON,
code, f-strings, format specs) is left exactly as written. A DataFrame becomes a compact summary.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ..agent.content import dataframe_summary, is_dataframe

MAX_VALUE_CHARS = 4000
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_value(value: Any) -> str:
    if is_dataframe(value):
        return dataframe_summary(value)
    text = value if isinstance(value, str) else repr(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"… [{len(text) - MAX_VALUE_CHARS} more characters]"
    return text


def interpolate(template: str, namespace: Mapping[str, Any]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("_") or name not in namespace:
            return match.group(0)
        return render_value(namespace[name])

    return _PLACEHOLDER.sub(replace, template)
