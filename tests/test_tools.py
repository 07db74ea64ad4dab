"""Tests for agy_jupyter.agent.tools: schemas, docstrings, validation, results, SDK types."""
import asyncio
import dataclasses
import datetime
import enum
import functools
import json
import math
from typing import Annotated, Any, Literal, Optional

import pandas as pd
import pytest
from google.genai import types
from pydantic import BaseModel, Field

from agy_jupyter.agent.tools import Tool, as_tool, parse_docstring, result_to_response, tool
from agy_jupyter.runtime.errors import ConfigError, ToolError


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Point(BaseModel):
    """A point."""

    x: int
    y: int = 0


# --- schemas -----------------------------------------------------------------


def test_scalar_types_exact_schema():
    def f(a: int, b: float, c: str, d: bool):
        pass

    assert as_tool(f).parameters_json_schema == {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "number"},
            "c": {"type": "string"},
            "d": {"type": "boolean"},
        },
        "required": ["a", "b", "c", "d"],
    }


def test_container_optional_literal_schema():
    def f(xs: list[int], m: dict[str, float], o: Optional[str], lit: Literal["a", "b"]):
        pass

    assert as_tool(f).parameters_json_schema == {
        "type": "object",
        "properties": {
            "xs": {"type": "array", "items": {"type": "integer"}},
            "m": {"type": "object", "additionalProperties": {"type": "number"}},
            "o": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "lit": {"type": "string", "enum": ["a", "b"]},
        },
        "required": ["xs", "m", "o", "lit"],
    }


def test_enum_and_model_use_defs_and_refs_without_titles():
    def f(color: Color, p: Point):
        pass

    assert as_tool(f).parameters_json_schema == {
        "type": "object",
        "properties": {"color": {"$ref": "#/$defs/Color"}, "p": {"$ref": "#/$defs/Point"}},
        "required": ["color", "p"],
        "$defs": {
            "Color": {"type": "string", "enum": ["red", "green"]},
            "Point": {
                "type": "object",
                "description": "A point.",
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer", "default": 0}},
                "required": ["x"],
            },
        },
    }


def test_annotated_field_description_and_unannotated_any():
    def f(n: Annotated[int, Field(description="how many", ge=1)], anything, z: Any = None):
        pass

    schema = as_tool(f).parameters_json_schema
    assert schema["properties"] == {
        "n": {"type": "integer", "description": "how many", "minimum": 1},
        "anything": {},
        "z": {"default": None},
    }
    assert schema["required"] == ["n", "anything"]


def test_title_removed_but_property_named_title_kept():
    class Doc(BaseModel):
        title: str

    def f(title: str, doc: Doc, tag: str = "title"):
        pass

    schema = as_tool(f).parameters_json_schema
    assert set(schema["properties"]) == {"title", "doc", "tag"}
    assert schema["$defs"]["Doc"] == {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    assert schema["properties"]["tag"] == {"type": "string", "default": "title"}
    assert _title_keywords(schema) == []


def _title_keywords(node, in_map=False, path="$"):
    """Paths where "title" is used as a schema keyword (not as a property name)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "title" and not in_map:
                found.append(path)
            found += _title_keywords(value, key in ("properties", "$defs") and not in_map, f"{path}.{key}")
    return found


def test_no_title_keywords_anywhere():
    class Inner(BaseModel):
        v: int

    class Outer(BaseModel):
        inner: Inner
        items: list[Inner] = []

    def f(o: Outer, c: Color, t: Optional[Outer] = None):
        pass

    assert _title_keywords(as_tool(f).parameters_json_schema) == []


def test_defaults_make_params_optional_and_non_json_default_is_dropped():
    sentinel = object()

    def f(a: int, b: int = 2, c: Optional[str] = None, d: Any = sentinel):
        pass

    schema = as_tool(f).parameters_json_schema
    assert schema["required"] == ["a"]
    assert schema["properties"]["b"] == {"type": "integer", "default": 2}
    assert "default" not in schema["properties"]["d"]


def test_no_parameters_and_var_args_skipped():
    def none() -> str:
        """Nothing."""
        return "x"

    def star(a: int, *args: int):
        pass

    assert as_tool(none).parameters_json_schema == {"type": "object", "properties": {}}
    assert as_tool(star).parameters_json_schema == {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
    }


def test_only_kwargs_gives_open_object_and_passes_extras():
    def f(**kwargs):
        return kwargs

    t = as_tool(f)
    assert t.parameters_json_schema == {"type": "object", "properties": {}, "additionalProperties": True}
    assert t.validate({"anything": 1, "b": [2]}) == {"anything": 1, "b": [2]}


def test_parameter_names_that_clash_with_pydantic_work():
    def f(_private: int, json: str, model_config: int = 1):
        return _private, json, model_config

    t = as_tool(f)
    assert set(t.parameters_json_schema["properties"]) == {"_private", "json", "model_config"}
    assert t.validate({"_private": 1, "json": "j"}) == {"_private": 1, "json": "j"}


def test_string_annotations_resolve():
    ns: dict = {}
    exec("from __future__ import annotations\ndef f(a: int, b: list[str] | None = None):\n    pass\n", ns)
    schema = as_tool(ns["f"]).parameters_json_schema
    assert schema["properties"]["a"] == {"type": "integer"}
    assert schema["properties"]["b"]["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]


def test_unresolvable_annotation_is_config_error():
    ns: dict = {}
    exec("from __future__ import annotations\ndef f(a: Missing):\n    pass\n", ns)
    with pytest.raises(ConfigError, match="type hints of tool 'f'"):
        as_tool(ns["f"])


def test_type_without_json_schema_names_the_parameter():
    def f(ok: int, df: pd.DataFrame):
        pass

    with pytest.raises(ConfigError, match="parameter 'df' of tool 'f' has type DataFrame"):
        as_tool(f)


def test_positional_only_rejected():
    with pytest.raises(ConfigError, match="positional-only parameter 'obj'"):
        as_tool(len)


# --- docstrings -----------------------------------------------------------------


def test_google_docstring():
    def f(a: int, b: str = "x"):
        """Search the index.

        Uses the fast path.

        Args:
            a: How many results.
            b (str): The query,
                possibly long.

        Returns:
            A list.
        """

    t = as_tool(f)
    assert t.description == "Search the index.\n\nUses the fast path."
    assert t.parameters_json_schema["properties"]["a"]["description"] == "How many results."
    assert t.parameters_json_schema["properties"]["b"]["description"] == "The query, possibly long."


def test_sphinx_docstring():
    def f(a: int, b: int):
        """Add numbers.

        :param a: the first
            number
        :param int b: the second
        :returns: the sum
        """

    t = as_tool(f)
    assert t.description == "Add numbers."
    assert t.parameters_json_schema["properties"]["a"]["description"] == "the first number"
    assert t.parameters_json_schema["properties"]["b"]["description"] == "the second"


def test_numpy_docstring():
    def f(x: float, y: float, z: int = 0):
        """Scale a vector.

        Parameters
        ----------
        x, y : float
            Coordinates.
        z : int, optional
            Depth of
            recursion.

        Returns
        -------
        float
            Nothing useful.
        """

    t = as_tool(f)
    props = t.parameters_json_schema["properties"]
    assert t.description == "Scale a vector."
    assert props["x"]["description"] == "Coordinates."
    assert props["y"]["description"] == "Coordinates."
    assert props["z"]["description"] == "Depth of recursion."


def test_field_description_wins_over_docstring():
    def f(a: Annotated[int, Field(description="from Field")]):
        """Thing.

        Args:
            a: from docstring
        """

    assert as_tool(f).parameters_json_schema["properties"]["a"]["description"] == "from Field"


def test_parse_docstring_edge_cases():
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Just a summary.") == ("Just a summary.", {})
    summary, params = parse_docstring("Summary.\n\nRaises:\n    ValueError: when bad.\n")
    assert summary == "Summary."
    assert params == {}


def test_no_docstring_gives_empty_description_and_declaration_without_it():
    def f(a: int):
        pass

    t = as_tool(f)
    assert t.description == ""
    assert t.declaration().description is None


# --- async, decorator, callables ------------------------------------------------------


def test_async_detection():
    async def a(x: int) -> int:
        return x

    def s(x: int) -> int:
        return x

    class AsyncCallable:
        async def __call__(self, x: int) -> int:
            return x

    assert as_tool(a).is_async is True
    assert as_tool(s).is_async is False
    assert as_tool(functools.partial(a, x=1)).is_async is True
    assert as_tool(AsyncCallable()).is_async is True


def test_tool_decorator_bare_and_with_options():
    @tool
    def plain(a: int) -> int:
        """Plain."""
        return a + 1

    @tool(name="renamed", description="Custom description.", timeout=5)
    def fancy(a: int) -> int:
        """Docstring summary."""
        return a * 2

    # The functions stay callable exactly as before.
    assert plain(1) == 2
    assert fancy(2) == 4
    t1, t2 = as_tool(plain), as_tool(fancy)
    assert (t1.name, t1.description, t1.timeout) == ("plain", "Plain.", None)
    assert (t2.name, t2.description, t2.timeout) == ("renamed", "Custom description.", 5)
    assert t2.func is fancy


def test_tool_decorator_bad_options_fail_early():
    with pytest.raises(ConfigError, match="invalid tool name"):
        tool(name="has space")(lambda: None)
    with pytest.raises(ConfigError, match="timeout"):
        tool(timeout=-1)


def test_bound_method_and_decorated_method():
    class Store:
        def __init__(self):
            self.items = {"a": 1}

        @tool(timeout=3)
        def get(self, key: str) -> int:
            """Look up a key.

            Args:
                key: The key.
            """
            return self.items[key]

    store = Store()
    t = as_tool(store.get)
    assert t.name == "get"
    assert t.timeout == 3
    assert t.parameters_json_schema == {
        "type": "object", "properties": {"key": {"type": "string", "description": "The key."}}, "required": ["key"],
    }
    assert t.func(**t.validate({"key": "a"})) == 1
    # The plain function from the class skips `self` too.
    assert "self" not in as_tool(Store.get).parameters_json_schema["properties"]


def test_tool_on_bound_method_returns_callable_tool():
    class Counter:
        def inc(self, by: int = 1) -> int:
            return by

    t = tool(Counter().inc, name="increment")
    assert isinstance(t, Tool)
    assert t.name == "increment"
    assert t(by=4) == 4
    assert as_tool(t) is t


def test_partial_hides_bound_keywords_and_keeps_docs():
    def search(query: str, limit: int = 10, db: Any = None) -> list:
        """Search.

        Args:
            query: What to find.
        """
        return [query, limit, db]

    t = as_tool(functools.partial(search, db="conn"))
    assert t.name == "search"
    assert t.description == "Search."
    assert set(t.parameters_json_schema["properties"]) == {"query", "limit"}
    assert t.parameters_json_schema["properties"]["query"]["description"] == "What to find."
    with pytest.raises(ToolError, match="unexpected argument 'db'"):
        t.validate({"query": "q", "db": "other"})
    assert t.func(**t.validate({"query": "q"})) == ["q", 10, "conn"]


def test_callable_object():
    class Weather:
        """Weather lookups."""

        def __call__(self, city: str) -> str:
            """Current weather in a city."""
            return city

    t = as_tool(Weather())
    assert t.name == "Weather"
    assert t.description == "Current weather in a city."
    assert t.parameters_json_schema["required"] == ["city"]


def test_bad_names():
    with pytest.raises(ConfigError, match="lambda"):
        as_tool(lambda x: x)
    with pytest.raises(ConfigError, match="lambda"):
        tool(lambda x: x)
    with pytest.raises(ConfigError, match="invalid tool name '9lives'"):
        tool(name="9lives")(lambda: None)
    with pytest.raises(ConfigError, match="invalid tool name"):
        as_tool(tool(lambda: None, name="x" * 65))
    with pytest.raises(ConfigError, match="callable"):
        as_tool(42)
    ok = as_tool(tool(lambda: None, name="ns:tool.v1-beta_2"))
    assert ok.name == "ns:tool.v1-beta_2"


# --- validation --------------------------------------------------------------------


def _typed(n: int, ratio: float = 0.5, tags: Optional[list[str]] = None, mode: Literal["fast", "slow"] = "fast"):
    return n


def test_validate_coerces_and_omits_unsent_defaults():
    t = as_tool(_typed)
    assert t.validate({"n": "3"}) == {"n": 3}
    assert t.validate({"n": 3.0, "ratio": 1, "tags": ["a"]}) == {"n": 3, "ratio": 1.0, "tags": ["a"]}


def test_validate_wrong_type_mentions_argument_and_input():
    with pytest.raises(ToolError) as info:
        as_tool(_typed).validate({"n": "abc"})
    assert info.value.tool == "_typed"
    assert "argument 'n': Input should be a valid integer" in info.value.message
    assert "(got 'abc')" in info.value.message


def test_validate_literal_failure():
    with pytest.raises(ToolError, match=r"argument 'mode': Input should be 'fast' or 'slow'"):
        as_tool(_typed).validate({"n": 1, "mode": "medium"})


def test_validate_missing_and_unexpected():
    t = as_tool(_typed)
    with pytest.raises(ToolError, match="missing required argument 'n'"):
        t.validate({})
    with pytest.raises(ToolError, match="missing required argument 'n'"):
        t.validate(None)
    with pytest.raises(ToolError, match=r"unexpected argument 'count' \(the parameters are: n, ratio, tags, mode\)"):
        t.validate({"n": 1, "count": 2})
    with pytest.raises(ToolError, match="arguments must be an object"):
        t.validate(["n", 1])  # type: ignore[arg-type]


def test_validate_many_missing_in_one_message():
    def f(a: int, b: int, c: int):
        pass

    with pytest.raises(ToolError, match="missing required arguments 'a', 'b', 'c'"):
        as_tool(f).validate({})


def test_validate_constructs_models_and_enums():
    def f(p: Point, points: list[Point], color: Color):
        pass

    kwargs = as_tool(f).validate({"p": {"x": "1"}, "points": [{"x": 2, "y": 3}], "color": "green"})
    assert kwargs["p"] == Point(x=1, y=0)
    assert isinstance(kwargs["points"][0], Point) and kwargs["points"][0].y == 3
    assert kwargs["color"] is Color.GREEN


def test_validate_nested_error_location():
    def f(points: list[Point]):
        pass

    with pytest.raises(ToolError, match=r"argument 'points\[1\]\.x'"):
        as_tool(f).validate({"points": [{"x": 1}, {"x": "no"}]})


def test_validate_number_for_string_is_accepted():
    def f(code: str):
        return code

    assert as_tool(f).validate({"code": 42}) == {"code": "42"}


async def test_async_tool_runs_with_validated_kwargs():
    async def double(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    t = as_tool(double)
    assert await t.func(**t.validate({"n": "21"})) == 42


def test_hand_built_tool_passes_arguments_through_and_checks_name():
    t = Tool(name="echo", description="Echo.", parameters_json_schema={"type": "object"}, func=lambda **k: k,
             is_async=False)
    assert t.validate({"anything": 1}) == {"anything": 1}
    with pytest.raises(ConfigError):
        Tool(name="bad name", description="", parameters_json_schema={}, func=print, is_async=False)


def test_as_tool_builds_fresh_objects():
    def f(a: int):
        pass

    first, second = as_tool(f), as_tool(f)
    assert first is not second
    first.parameters_json_schema["properties"]["a"]["type"] = "changed"
    assert second.parameters_json_schema["properties"]["a"]["type"] == "integer"


# --- results -------------------------------------------------------------------


class Result(BaseModel):
    ok: bool
    when: datetime.date
    score: float = 1.0


@dataclasses.dataclass
class DC:
    a: int
    when: datetime.date


def test_result_plain_json_dict_returned_as_is():
    value = {"a": 1, "b": [1, 2.5, None], "c": {"d": "e"}}
    assert result_to_response(value) is value


def test_result_dict_needing_conversion():
    converted = result_to_response({"when": datetime.date(2024, 1, 2), 3: "int key", "nan": math.nan, "s": {1, 2}})
    assert converted == {"when": "2024-01-02", "3": "int key", "nan": None, "s": [1, 2]}


def test_result_pydantic_model():
    assert result_to_response(Result(ok=True, when=datetime.date(2024, 5, 6))) == {
        "ok": True, "when": "2024-05-06", "score": 1.0,
    }
    assert result_to_response(Result(ok=False, when=datetime.date(2024, 5, 6), score=math.inf))["score"] is None


@pytest.mark.parametrize("value", ["text", 3, 2.5, True, None, [1, "two", None]])
def test_result_scalars_and_lists(value):
    assert result_to_response(value) == {"result": value}


def test_result_tuple_and_non_finite():
    assert result_to_response((1, 2)) == {"result": [1, 2]}
    assert result_to_response(math.nan) == {"result": None}


def test_result_dataframe_is_summary():
    df = pd.DataFrame({"a": range(1000), "b": ["x"] * 1000})
    result = result_to_response(df)["result"]
    assert isinstance(result, str)
    assert result.startswith("DataFrame: 1000 rows x 2 columns")
    assert "999" not in result.split("First")[1]


def test_result_numpy_scalar_dataclass_and_other():
    np = pytest.importorskip("numpy")
    assert result_to_response(np.int64(5)) == {"result": 5}
    assert result_to_response(DC(1, datetime.date(2024, 1, 2))) == {"result": {"a": 1, "when": "2024-01-02"}}

    class Thing:
        def __repr__(self):
            return "Thing<" + "x" * 10_000 + ">"

    text = result_to_response(Thing())["result"]
    assert text.startswith("Thing<xxx")
    assert 4000 <= len(text) < 4100
    assert "truncated" in text


def test_results_are_accepted_by_function_response_and_survive_the_wire():
    thing = object()
    cases = [
        ({"a": 1}, {"a": 1}),
        (Result(ok=True, when=datetime.date(2024, 1, 1)), {"ok": True, "when": "2024-01-01", "score": 1.0}),
        ("s", {"result": "s"}),
        ([1], {"result": [1]}),
        (thing, {"result": repr(thing)}),
    ]
    for value, expected in cases:
        response = types.FunctionResponse(name="t", response=result_to_response(value))
        assert response.response == expected
        # what the SDK sends is JSON that reads back as the same dict
        assert json.loads(response.model_dump_json(exclude_none=True))["response"] == expected
    series = types.FunctionResponse(name="t", response=result_to_response(pd.Series([1, 2])))
    assert series.response["result"].startswith("Series: 2 rows, dtype: int64")


# --- SDK types ---------------------------------------------------------------------


def test_declaration_accepted_by_sdk_types():
    def lookup(p: Point, color: Color = Color.RED, limit: int = 5) -> str:
        """Look things up.

        Args:
            p: Where.
        """
        return ""

    t = as_tool(lookup)
    decl = t.declaration()
    assert isinstance(decl, types.FunctionDeclaration)
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[decl])])
    assert config.tools[0].function_declarations[0].name == "lookup"
    dumped = decl.model_dump(exclude_none=True)
    assert dumped["name"] == "lookup"
    assert dumped["description"] == "Look things up."
    assert dumped["parameters_json_schema"] == t.parameters_json_schema
    assert dumped["parameters_json_schema"]["properties"]["color"] == {"$ref": "#/$defs/Color", "default": "red"}
    # Survives the SDK's JSON round trip too (what goes over the wire).
    wire = types.FunctionDeclaration.model_validate_json(decl.model_dump_json(exclude_none=True))
    assert wire.parameters_json_schema == t.parameters_json_schema
