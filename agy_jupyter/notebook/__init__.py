"""The notebook layer: %agent and %%chat magics, streaming / approval / usage widgets."""
from __future__ import annotations

from typing import Any

from . import notebook_tools, run_python  # noqa: F401  (they register the notebook builtin tools)


def load_ipython_extension(shell: Any) -> None:
    """`%load_ext agy_jupyter`: register the magics and the async-cell transformer."""
    from . import transformer
    from .magics import AgyMagics

    shell.register_magics(AgyMagics(shell=shell))
    from ..agent.map_progress import use_progress_display
    from .map_progress import show_map_progress
    use_progress_display(show_map_progress)  # agent.map's progress as a widget (the agent layer can't import it)
    run_python.capture_kernel_main()  # for turns no cell started (an inbox message)
    transformer.register(shell)
    if transformer.in_kernel(shell):
        from . import lab_control
        from .widgets import ensure_assets
        lab_control.register(shell)  # the JupyterLab extension's commands (Stop agents)
        ensure_assets()  # the shared front-end library travels with %load_ext, once, not with a reply


def unload_ipython_extension(shell: Any) -> None:
    from . import transformer

    transformer.unregister(shell)
