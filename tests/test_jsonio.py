"""simpler_build.jsonio is json.loads / json.dumps(sort_keys=True), without the package.

Compared with the json package itself on generated documents, generated
non-documents and the edge cases of its own code (whitespace around the
value, trailing data, a BOM), including the error's message and position.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simpler_build import jsonio

_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


def _outcome(fn: Any, arg: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn(arg))
    except Exception as exc:  # the comparison is of what each raises
        return (type(exc).__name__, (str(exc), getattr(exc, "pos", None)))


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (json parses 'NaN')."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(_values, st.sampled_from(["", " ", "\n\t ", "\r\n"]))
def test_loads_matches_json_on_documents(value: Any, pad: str) -> None:
    for text in (json.dumps(value), pad + json.dumps(value, indent=1) + pad):
        assert _same(jsonio.loads(text), json.loads(text))


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='{}[]",:0123456789.eE+-truefalsnNIiy \t\n\r\\u\ufeffx', max_size=30))
def test_loads_matches_json_on_any_text(text: str) -> None:
    mine, theirs = _outcome(jsonio.loads, text), _outcome(json.loads, text)
    assert mine[0] == theirs[0]
    if mine[0] == "ok":
        assert _same(mine[1], theirs[1])
    else:
        assert mine[1] == theirs[1]  # the same message at the same position


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "{} x",
        "[1] [2]",
        "01",
        '{"a": 1,}',
        "\ufeff{}",
        "NaN",
        " -Infinity ",
        '"\\ud800"',
    ],
)
def test_loads_edge_cases_match_json(text: str) -> None:
    mine, theirs = _outcome(jsonio.loads, text), _outcome(json.loads, text)
    assert mine[0] == theirs[0]
    assert _same(mine[1], theirs[1]) if mine[0] == "ok" else mine[1] == theirs[1]


def test_a_malformed_document_is_a_json_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        jsonio.loads('{"a": 1} trailing')
    assert (info.value.msg, info.value.pos, info.value.lineno) == ("Extra data", 9, 1)


@settings(max_examples=300, deadline=None)
@given(_values | st.dictionaries(st.text(max_size=8), _values, max_size=6))
def test_dumps_matches_json_sorted(value: Any) -> None:
    assert jsonio.dumps(value) == json.dumps(value, sort_keys=True)


@pytest.mark.parametrize(
    "value", [float("nan"), {"x": float("inf")}, {1: 2, "a": 3}, {"o": object()}]
)
def test_dumps_edge_cases_match_json(value: Any) -> None:
    assert _outcome(jsonio.dumps, value) == _outcome(lambda v: json.dumps(v, sort_keys=True), value)


def test_without_the_c_accelerator_the_package_does_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonio, "_scan", None)
    assert jsonio.loads(' {"b": [1, 2.5]} ') == {"b": [1, 2.5]}
    assert jsonio.dumps({"b": 1, "a": [None]}) == '{"a": [null], "b": 1}'
    with pytest.raises(json.JSONDecodeError):
        jsonio.loads("{")


def test_it_does_not_load_the_json_package() -> None:
    """The point of the module: the C scanner and encoder, not json's regex-compiling import."""
    code = (
        "import sys; from simpler_build import jsonio;"
        "assert jsonio.loads(jsonio.dumps({'k': [1, 'v']})) == {'k': [1, 'v']};"
        "print(sorted(m for m in sys.modules if m == 'json' or m.startswith('json.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
