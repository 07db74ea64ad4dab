"""The notebook layer: %agent and %%chat magics, streaming / approval / usage widgets.

`%load_ext agy_jupyter` stays light: the magics are declared to IPython lazily (their module, and
google-genai with the agent layer, load when `%agent` or `%%chat` first runs) and the notebook tools
are named to the builtin registry, imported when an agent first asks for a builtin tool.
"""
from __future__ import annotations

from typing import Any

MAGICS_MODULE = f"{__name__}.magics"
MAGIC_KINDS = {"agent": "line", "chat": "cell"}
TOOL_MODULES = (f"{__name__}.notebook_tools", f"{__name__}.run_python")


def load_ipython_extension(shell: Any) -> None:
    """`%load_ext agy_jupyter`: register the magics and the async-cell transformer."""
    from ..agent import builtin_tools
    from ..agent.map_progress import use_batch_display, use_progress_display
    from . import main_thread, transformer

    builtin_tools.provide_from(*TOOL_MODULES)
    _declare_magics(shell)
    main_thread.capture_kernel_main()  # for turns no cell started (an inbox message)
    use_progress_display(_map_progress("show_map_progress"))  # agent.map's progress as a widget (the agent
    use_batch_display(_map_progress("show_batch_progress"))  # layer can't import it), and its batch job's
    transformer.register(shell)
    if transformer.in_kernel(shell):
        from . import lab_control
        from .widgets import ensure_assets
        lab_control.register(shell)  # the JupyterLab extension's commands (Stop agents)
        ensure_assets()  # the shared front-end library travels with %load_ext, once, not with a reply


def _map_progress(name: str) -> Any:
    """map_progress.<name>, imported when a map first shows progress (it brings ipywidgets and the agent layer)."""
    def show(*args: Any) -> Any:
        from . import map_progress

        return getattr(map_progress, name)(*args)
    return show


def unload_ipython_extension(shell: Any) -> None:
    from . import transformer

    transformer.unregister(shell)


def _declare_magics(shell: Any) -> None:
    manager = shell.magics_manager
    if "AgyMagics" in manager.registry:  # loaded before (a %reload_ext): keep them
        return
    if hasattr(manager, "register_lazy"):  # IPython >= 8.8: the module loads on the magics' first use
        for name, kind in MAGIC_KINDS.items():
            try:
                manager.register_lazy(name, MAGICS_MODULE, kind)  # IPython 9: %lsmagic lists the right kind
            except TypeError:  # IPython 8 takes no kind
                manager.register_lazy(name, MAGICS_MODULE)
    else:
        registered_magics(shell, load=True)


def registered_magics(shell: Any, *, load: bool = False) -> Any:
    """The shell's AgyMagics, or None without the extension. `load`: register them now if `%load_ext`
    declared them lazily and they were not used yet (a `%%chat` cell rewritten to await reaches the
    settings without going through the magic)."""
    manager = getattr(shell, "magics_manager", None)
    if manager is None:
        return None
    magics = manager.registry.get("AgyMagics")
    if magics is None and (load or MAGICS_MODULE in getattr(manager, "lazy_magics", {}).values()):
        from .magics import AgyMagics

        magics = AgyMagics(shell=shell)
        shell.register_magics(magics)
    return magics
