"""The async-cell input transformer.

IPython turns a `%%chat` cell into `get_ipython().run_cell_magic('chat', line, body)`. In a kernel with
autoawait on the asyncio runner, this hook rewrites that call to `await chat_cell_async(line, body)`,
so ipykernel runs the cell as an async cell: it stays running (`[*]`) until the reply ends, Run-All
order is kept, and widget clicks are handled while it awaits. Anywhere else the call is left alone
and the blocking magic runs.
"""
from __future__ import annotations

from typing import Any

from IPython import get_ipython

CELL_MAGIC_CALL = "get_ipython().run_cell_magic('chat', "
ASYNC_CALL = "await __import__('agy_jupyter.notebook.cell', fromlist=['_']).chat_cell_async("


def in_kernel(shell: Any) -> bool:
    """Running in a Jupyter kernel (not terminal IPython, not plain Python)."""
    return getattr(shell, "kernel", None) is not None


def async_cells_available(shell: Any) -> bool:
    """A kernel, autoawait on, on the asyncio runner: the only place an awaited cell can take clicks."""
    if not in_kernel(shell) or not getattr(shell, "autoawait", False):
        return False
    try:
        from IPython.core.interactiveshell import _asyncio_runner
    except ImportError:
        return False
    return shell.loop_runner is _asyncio_runner


def chat_cells_to_async(lines: list[str]) -> list[str]:
    if not lines or not lines[0].startswith(CELL_MAGIC_CALL) or not async_cells_available(get_ipython()):
        return lines
    return [ASYNC_CALL + lines[0][len(CELL_MAGIC_CALL):], *lines[1:]]


def register(shell: Any) -> None:
    if chat_cells_to_async not in shell.input_transformers_post:
        shell.input_transformers_post.append(chat_cells_to_async)


def unregister(shell: Any) -> None:
    if chat_cells_to_async in shell.input_transformers_post:
        shell.input_transformers_post.remove(chat_cells_to_async)
