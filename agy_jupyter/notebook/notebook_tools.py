"""The read-only notebook tools: list_variables, inspect_variable, notebook_history.

They read the user namespace of the IPython shell. Like every sync tool they run on the runtime's tool
threads, not the kernel's main thread: a describe() of a big frame takes a second, and on the main
thread it would freeze the widgets of the cell that is waiting. They only read.

Every answer is capped at OUTPUT_CAP characters (a module constant; run_python uses the same cap) and
says so when it was cut. Big data stays fast: describe and head/tail cover at most MAX_COLUMNS columns,
memory is `memory_usage(deep=False)` (deep=True walks every string object).
"""
from __future__ import annotations

import dataclasses
import reprlib
import sys
import types
from typing import Any

from IPython import get_ipython

from ..agent.builtin_tools import BuiltinContext, BuiltinTools, register
from ..agent.tools import Tool, as_tool

OUTPUT_CAP = 8000  # characters of one tool answer the model sees
MAX_COLUMNS = 20  # columns of a frame that describe / head / tail cover
MAX_ROWS = 50  # the most rows the model may ask for
MAX_VARIABLES = 200  # names list_variables lists
HISTORY_ITEM_CAP = 1000  # characters of one input or output in notebook_history

# IPython's own names in the user namespace; `_5`, `_i3`... are private names and go anyway
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit"})


def cap(text: str, limit: int = OUTPUT_CAP) -> str:
    """`text` cut to `limit` characters, ending with a line that tells the model it was cut."""
    if len(text) <= limit:
        return text
    note = f"\n[output cut: {limit} of {len(text)} characters shown]"
    return text[: max(0, limit - len(note))] + note


def _shell() -> Any:
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("no IPython shell: the notebook tools work inside a notebook kernel or IPython")
    return shell


def _is_ours(value: Any) -> bool:
    """An object of agy_jupyter itself (an Agent, the module): not the user's data."""
    module = getattr(type(value), "__module__", "") or ""
    return module == "agy_jupyter" or module.startswith("agy_jupyter.")


def _hidden(name: str, value: Any) -> bool:
    return (name.startswith("_") or name in _IPYTHON_NAMES or isinstance(value, types.ModuleType)
            or _is_ours(value) or (isinstance(value, type) and _is_ours(value)))


def user_variables(shell: Any) -> list[tuple[str, Any]]:
    """The user's names and values, minus modules, private names, IPython's and ours."""
    hidden_by_ipython = getattr(shell, "user_ns_hidden", {})
    items = list(shell.user_ns.items())  # a copy: the main thread may add names meanwhile
    return [(name, value) for name, value in items
            if not _hidden(name, value) and not (name in hidden_by_ipython and hidden_by_ipython[name] is value)]


def _type_name(value: Any) -> str:
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module.split('.')[0]}.{kind.__qualname__}"


def _size(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return "shape " + "x".join(str(n) for n in shape) if shape else "scalar"
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return f"len {len(value)}"
    return ""


def list_variables() -> str:
    """List the variables of the user's notebook: name, type, and shape or length.

    Modules, private names and IPython's own names are left out.
    """
    rows = []
    variables = user_variables(_shell())
    for name, value in variables[:MAX_VARIABLES]:
        size = _size(value)
        rows.append(f"{name}: {_type_name(value)}{f' ({size})' if size else ''}")
    if len(variables) > MAX_VARIABLES:
        rows.append(f"... and {len(variables) - MAX_VARIABLES} more")
    return cap("\n".join(rows) if rows else "(no user variables)")


def _safe_repr(value: Any) -> str:
    """reprlib's bounded repr; a repr that raises is reported, not propagated."""
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict = 2000, 2000, 50, 50
    try:
        return short.repr(value)
    except Exception as exc:
        return f"<{_type_name(value)}: repr failed: {type(exc).__name__}: {exc}>"


def _frame_text(pd: Any, frame: Any) -> str:
    with pd.option_context("display.max_columns", MAX_COLUMNS, "display.width", 200,
                           "display.max_colwidth", 50):
        return frame.to_string()


def _inspect_pandas(value: Any, rows: int) -> str:
    pd = sys.modules["pandas"]
    frame = value.to_frame() if isinstance(value, pd.Series) else value
    kind = "Series" if isinstance(value, pd.Series) else "DataFrame"
    n_rows, n_cols = frame.shape
    shown = frame.iloc[:, :MAX_COLUMNS]  # a wide frame: the first columns, said so below
    more = f" (the first {MAX_COLUMNS} of {n_cols} columns are shown)" if n_cols > MAX_COLUMNS else ""
    nulls = shown.isna().sum()
    memory = int(frame.memory_usage(index=True, deep=False).sum())
    lines = [f"{kind}: {n_rows} rows x {n_cols} columns{more}",
             f"memory: {memory / 1e6:.1f} MB (object columns counted shallow)",
             "dtypes and null counts:"]
    lines += [f"  {col}: {dtype}, {int(nulls.iloc[i])} null" for i, (col, dtype) in enumerate(shown.dtypes.items())]
    lines += [f"head({rows}):", _frame_text(pd, shown.head(rows))]
    if n_rows > rows:
        lines += [f"tail({rows}):", _frame_text(pd, shown.tail(rows))]
    numeric = shown.select_dtypes("number")
    if n_rows and numeric.shape[1]:
        lines += ["describe (numeric columns):", _frame_text(pd, numeric.describe())]
    others = shown.columns.difference(numeric.columns, sort=False)
    if n_rows and len(others):
        counts = ", ".join(f"{col}: {shown[col].nunique(dropna=True)} distinct" for col in others[:MAX_COLUMNS])
        lines.append(f"non-numeric columns: {counts}")
    return "\n".join(lines)


def _inspect_numpy(value: Any) -> str:
    np = sys.modules["numpy"]
    lines = [f"numpy.ndarray: shape {value.shape}, dtype {value.dtype}, {value.nbytes / 1e6:.1f} MB"]
    if value.size and (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
        data = value.astype(float, copy=False) if value.dtype == bool else value
        with np.errstate(all="ignore"):
            stats = {name: f"{complex(f(data)) if data.dtype.kind == 'c' else float(f(data)):.6g}"
                     for name, f in (("min", np.nanmin), ("max", np.nanmax), ("mean", np.nanmean), ("std", np.nanstd))}
            nans = int(np.isnan(data).sum()) if data.dtype.kind in "fc" else 0
            lines.append(", ".join(f"{name} {value}" for name, value in stats.items()) + f", nan {nans}")
    with np.printoptions(threshold=200, edgeitems=3, linewidth=120):
        lines.append(repr(value))
    return "\n".join(lines)


def _is_pandas(value: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, (pd.DataFrame, pd.Series))


def _is_numpy(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.ndarray)


def describe_value(value: Any, rows: int = 5) -> str:
    """The uncapped description inspect_variable gives of one value."""
    rows = max(1, min(int(rows), MAX_ROWS))
    if _is_pandas(value):
        return _inspect_pandas(value, rows)
    if _is_numpy(value):
        return _inspect_numpy(value)
    size = _size(value)
    return f"{_type_name(value)}{f' ({size})' if size else ''}\n{_safe_repr(value)}"


def inspect_variable(name: str, rows: int = 5) -> str:
    """Describe one variable of the user's notebook.

    A DataFrame or Series: shape, dtypes, null counts, memory, first and last rows, and describe().
    A numpy array: shape, dtype and summary statistics. Anything else: a short repr.

    Args:
        name: the variable's name in the notebook.
        rows: how many first and last rows to show (at most 50).
    """
    ns = _shell().user_ns
    if name not in ns:
        close = sorted(n for n, _ in user_variables(_shell()) if name.lower() in n.lower())[:10]
        hint = f"; similar names: {', '.join(close)}" if close else "; list_variables shows what exists"
        return f"no variable named {name!r}{hint}"
    try:
        text = describe_value(ns[name], rows)
    except Exception as exc:  # a user object that breaks on inspection: say so, the turn goes on
        text = f"{_type_name(ns[name])}: inspecting it failed: {type(exc).__name__}: {exc}"
    return cap(text)


def _history_inputs(shell: Any, n: int) -> list[tuple[int, str]]:
    """The last n (execution count, source) pairs of this session."""
    manager = getattr(shell, "history_manager", None)
    inputs = list(getattr(manager, "input_hist_raw", []) or shell.user_ns.get("In", []))
    numbered = [(i, source) for i, source in enumerate(inputs) if i > 0 and source.strip()]
    return numbered[-n:]


def notebook_history(n: int = 10) -> str:
    """The last n cells the user ran in this notebook session, with their outputs (Out[]), newest last.

    Args:
        n: how many cells (at most 50).
    """
    shell = _shell()
    n = max(1, min(int(n), 50))
    outputs = dict(getattr(shell.history_manager, "output_hist", None) or shell.user_ns.get("Out", {}))
    blocks = []
    for index, source in _history_inputs(shell, n):
        block = f"In [{index}]:\n{cap(source.rstrip(), HISTORY_ITEM_CAP)}"
        if index in outputs:
            block += f"\nOut[{index}]: {cap(_safe_repr(outputs[index]), HISTORY_ITEM_CAP)}"
        blocks.append(block)
    return cap("\n\n".join(blocks) if blocks else "(no cells run yet)")


def _read_tool(func: Any) -> Any:
    def factory(_context: BuiltinContext) -> Tool:
        return dataclasses.replace(as_tool(func), effect="read")
    return factory


register(BuiltinTools.LIST_VARIABLES, _read_tool(list_variables))
register(BuiltinTools.INSPECT_VARIABLE, _read_tool(inspect_variable))
register(BuiltinTools.NOTEBOOK_HISTORY, _read_tool(notebook_history))
