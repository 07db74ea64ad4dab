"""The workspace root the file tools are confined to, and the one check every path goes through.

A path is resolved (symlinks followed, `..` collapsed) and must land under the resolved root; a path
that does not exist yet is checked through its nearest existing parent, which `resolve()` also follows.
So `../x`, `/etc/passwd` and a link inside the root that points out are all refused the same way.
`run_command` cannot be confined like this: a shell can reach anything, so its approval is its guard.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..runtime.errors import ToolError


@dataclass(frozen=True)
class Workspace:
    """A resolved root directory; `path()` turns a model's path argument into a checked absolute Path."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> "Workspace":
        return cls(Path(root).resolve())

    def path(self, tool: str, raw: str) -> Path:
        """`raw` (relative to the root, or absolute) resolved; ToolError when it leads outside the root."""
        if not isinstance(raw, str) or not raw.strip() or "\0" in raw:
            raise ToolError(tool, f"invalid path {raw!r}")
        given = Path(raw)
        resolved = (given if given.is_absolute() else self.root / given).resolve()
        if not self.contains(resolved):
            raise ToolError(tool, f"{raw!r} is outside the workspace {str(self.root)!r}; use a path inside it "
                                  "(relative paths start at the workspace root)")
        return resolved

    def contains(self, path: Path) -> bool:
        """True when `path`, with its symlinks followed, is the root or under it."""
        return path.resolve().is_relative_to(self.root)

    def relative(self, path: Path) -> str:
        """`path` as the model should see it: relative to the root, with forward slashes."""
        rel = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
        return rel or "."
