"""Package names imported on first use: `import agy_jupyter` and `%load_ext` should not pay for
google-genai, pydantic or ipywidgets before an agent or a widget exists (benchmarks/bench_load.py)."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(namespace: dict[str, Any], homes: Mapping[str, str]) -> tuple[Callable[[str], Any],
                                                                                  Callable[[], list[str]]]:
    """A package's module `__getattr__` and `__dir__` for `homes` (public name -> module, relative to
    the package). The first lookup imports the module and keeps the value in the package's namespace,
    so later lookups are plain attribute reads."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__


def homes_of(modules: Mapping[str, list[str]]) -> dict[str, str]:
    """{module: [names]} -> {name: module}."""
    return {name: module for module, names in modules.items() for name in names}
