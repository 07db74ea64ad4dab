"""The builtin-tools registry: names and groups, what an agent gets by default, clear errors."""
from __future__ import annotations

import dataclasses

import pytest

from agy_jupyter.agent import builtin_tools
from agy_jupyter.agent.builtin_tools import BuiltinContext, BuiltinTools, expand, selected
from agy_jupyter.agent.config import build_config
from agy_jupyter.agent.tools import as_tool
from agy_jupyter.runtime.errors import ConfigError


@pytest.fixture
def registry(monkeypatch):
    """A registry of our own for the test (the real one is filled by the modules that provide tools)."""
    factories: dict = {}
    monkeypatch.setattr(builtin_tools, "_factories", factories)
    monkeypatch.setattr(builtin_tools, "_providers", [])
    return factories


def fake_view_file(path: str) -> str:
    """Read a file."""
    return path


def test_groups_and_single_names_expand_in_order_once_each():
    assert expand(["view_file", "files", "shell"]) == [
        BuiltinTools.VIEW_FILE, BuiltinTools.LIST_DIR, BuiltinTools.FIND_FILES, BuiltinTools.GREP_SEARCH,
        BuiltinTools.WRITE_FILE, BuiltinTools.EDIT_FILE, BuiltinTools.RUN_COMMAND]


def test_an_unknown_name_says_what_exists():
    with pytest.raises(ConfigError) as caught:
        expand(["fils"])
    assert "unknown builtin tool or group 'fils'" in caught.value.message
    assert "notebook, files, shell" in caught.value.hint and "run_python" in caught.value.hint


def test_no_builtins_unless_asked(registry):
    registry[BuiltinTools.VIEW_FILE] = lambda context: as_tool(fake_view_file)
    assert selected(None, None) == []
    assert build_config(name="plain").all_tools() == []
    # all but the disabled ones: only those some module provides
    assert selected(None, ["run_command"]) == [BuiltinTools.VIEW_FILE]


def test_an_agent_gets_the_tools_built_for_its_workspace(registry, tmp_path):
    seen = []

    def factory(context: BuiltinContext):
        seen.append(context.workspace)
        return dataclasses.replace(as_tool(fake_view_file), name="view_file", effect="read")

    builtin_tools.register(BuiltinTools.VIEW_FILE, factory)
    config = build_config(name="reader", enabled_tools=["view_file"], workspace=str(tmp_path))
    assert [(t.name, t.effect) for t in config.all_tools()] == [("view_file", "read")]
    config.all_tools()
    assert seen == [tmp_path.resolve()]  # built once for this selection and workspace


def test_a_tool_whose_provider_is_not_loaded_fails_at_create_with_what_to_do(registry):
    with pytest.raises(ConfigError) as caught:
        build_config(name="nb", enabled_tools=["notebook"])
    assert "'list_variables' is not available here" in caught.value.message
    assert "%load_ext agy_jupyter" in caught.value.message


def test_a_provider_named_lazily_is_imported_when_an_agent_first_needs_a_builtin(registry, monkeypatch, tmp_path):
    # %load_ext names the notebook tools' modules instead of importing them; a module that registers
    # view_file stands in for them here
    provider = tmp_path / "lazy_view_file_provider.py"
    provider.write_text("import dataclasses\n"
                        "from agy_jupyter.agent import builtin_tools\n"
                        "from agy_jupyter.agent.tools import as_tool\n"
                        "def view_file(path: str) -> str:\n"
                        "    'Read a file.'\n"
                        "    return path\n"
                        "builtin_tools.register('view_file', lambda context: dataclasses.replace(\n"
                        "    as_tool(view_file), effect='read'))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    builtin_tools.provide_from("lazy_view_file_provider")
    builtin_tools.provide_from("lazy_view_file_provider")  # named twice, imported once
    assert registry == {} and builtin_tools._providers == ["lazy_view_file_provider"]
    config = build_config(name="reader", enabled_tools=["view_file"], workspace=str(tmp_path))
    assert [t.name for t in config.all_tools()] == ["view_file"] and builtin_tools._providers == []


def test_a_tool_effect_is_checked():
    with pytest.raises(ConfigError, match="effect must be one of read, write, execute"):
        dataclasses.replace(as_tool(fake_view_file), effect="delete")
