"""`import agy_jupyter` and `%load_ext agy_jupyter` stay light: google-genai, pydantic and the agent
layer load when the first agent is made, not before (the time is measured in benchmarks/bench_load.py;
these tests check what is imported, which does not depend on the machine's speed)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import agy_jupyter
from agy_jupyter.testing import FakeGemini, Reply
from agy_jupyter.testing.kernel import Kernel

HEAVY = ["google.genai", "pydantic", "agy_jupyter.agent.api", "agy_jupyter.agent.history",
         "agy_jupyter.notebook.magics", "agy_jupyter.notebook.run_python"]
LOADED = "import json, sys; print(json.dumps({m: m in sys.modules for m in %r}))" % HEAVY


def loaded_modules(text: str) -> dict[str, bool]:
    return json.loads(text.strip().splitlines()[-1])


def test_import_loads_no_heavy_module_and_every_public_name_resolves():
    script = textwrap.dedent(f"""
        import agy_jupyter
        {LOADED}
        names = {{n: type(getattr(agy_jupyter, n)).__name__ for n in agy_jupyter.__all__}}
        print(json.dumps(names))
        {LOADED}
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    before, names, after = out.stdout.strip().splitlines()
    assert not any(loaded_modules(before).values()), before
    assert set(json.loads(names)) == set(agy_jupyter.__all__) and "Agent" in agy_jupyter.__all__
    assert loaded_modules(after)["google.genai"]


def test_dir_and_missing_names():
    assert {"Agent", "display_chat", "get_runtime"} <= set(dir(agy_jupyter))
    with pytest.raises(AttributeError, match="no attribute 'Agentt'"):
        agy_jupyter.Agentt  # noqa: B018


@pytest.fixture(scope="module")
def server():
    with FakeGemini(default=Reply.text("lazy hello")) as fake:
        yield fake


def test_load_ext_in_a_kernel_defers_the_agent_layer_until_the_first_magic(server):
    kernel = Kernel(env=server.env())
    try:
        # the same cell sets a setting of the magics that are not loaded yet
        kernel.run("%load_ext agy_jupyter\n%config AgyMagics.coalesce_interval = 0.02")
        assert not any(loaded_modules(kernel.run(LOADED).text()).values())
        created = kernel.run("%agent create lazy --model gemini-2.5-flash")
        assert not created.errors(), created.text()
        after = loaded_modules(kernel.run(LOADED).text())
        assert after["google.genai"] and after["agy_jupyter.notebook.magics"]
        # the setting made before the magics existed reached them
        interval = kernel.run("print(get_ipython().magics_manager.registry['AgyMagics'].coalesce_interval)")
        assert interval.text().strip() == "0.02"
        reply = kernel.run("%%chat lazy\nhello")
        assert not reply.errors() and "lazy hello" in str(reply.cell_outputs())
    finally:
        kernel.shutdown()


def test_a_script_asking_for_notebook_tools_after_load_ext_gets_them(server):
    # the notebook tools register when an agent first needs a builtin, not at %load_ext
    kernel = Kernel(env=server.env())
    try:
        kernel.run("%load_ext agy_jupyter")
        made = kernel.run("from agy_jupyter import build_config\n"
                          "config = build_config(name='nb', enabled_tools=['notebook'])\n"
                          "print(sorted(t.name for t in config.all_tools()))")
        assert not made.errors(), made.text()
        assert "run_python" in made.text() and "list_variables" in made.text()
    finally:
        kernel.shutdown()
