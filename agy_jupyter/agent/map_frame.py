"""agent.map's result for a DataFrame: the input frame with the answer columns, plus `retry_failed()`.

A subclass only so the result can carry its `retry_failed`; anything computed from it (head, filters,
merges) is a plain DataFrame, and a pickled copy drops the link back to the map (it holds the agent).
Imported only when a DataFrame was passed, so pandas never loads with `import agy_jupyter`.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..runtime.errors import ConfigError


class MapFrame(pd.DataFrame):
    """The rows with the answers (or the output model's fields) and `error` added, in the input's order."""

    @property
    def _constructor(self) -> type:
        return pd.DataFrame  # derived frames are plain: they are not this map's result any more

    @classmethod
    def of(cls, frame: pd.DataFrame, rerun: Any) -> "MapFrame":
        result = cls(frame)
        object.__setattr__(result, "_agy_rerun", rerun)  # past pandas' column-by-attribute guard; not pickled
        return result

    def _rerun(self) -> Any:
        rerun = self.__dict__.get("_agy_rerun")
        if rerun is None:
            raise ConfigError("this frame no longer knows the map that made it (it was copied or unpickled)",
                              hint="run agent.map(...) again: the finished rows are not asked again")
        return rerun

    def retry_failed(self) -> "MapFrame":
        """Ask the failed (and stopped) rows again; the others are kept as they are."""
        return self._rerun().retry()

    async def aretry_failed(self) -> "MapFrame":
        return await self._rerun().aretry()
