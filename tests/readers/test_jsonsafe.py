"""jsonsafe: the fast path returns exactly what the checked parse returns, or defers to it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import microprep.readers.jsonsafe as jsonsafe
from microprep.errors import FormatError
from microprep.readers.jsonsafe import MAX_DEPTH, fast_loads, loads


def _checked(text: str) -> Any:
    """The checked parse alone (the fast path switched off)."""
    original = jsonsafe.fast_loads
    jsonsafe.fast_loads = lambda _text: jsonsafe._UNSURE  # type: ignore[assignment]
    try:
        return loads(text, file="x.json")
    finally:
        jsonsafe.fast_loads = original


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=False) == json.dumps(b, sort_keys=False) and type(a) is type(b)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(['a"b', "back\\slash", "[[[{", "}]", "1e999", "x" * 40]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_fast_path_agrees_or_defers(value: Any) -> None:
    text = json.dumps(value)
    fast = fast_loads(text)
    try:
        checked = _checked(text)
    except FormatError:
        assert fast is jsonsafe._UNSURE  # what the checks refuse is never vouched for
        return
    if fast is not jsonsafe._UNSURE:
        assert _same(fast, checked)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',  # duplicate key
        '{"a": NaN}',
        "[Infinity]",
        "[1e400]",  # overflows to inf
        "[" + "1" * 31 + "]",  # more than MAX_INT_DIGITS digits
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"k": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
    ],
)
def test_refused_texts_are_never_vouched_for(text: str) -> None:
    assert fast_loads(text) is jsonsafe._UNSURE
    with pytest.raises(FormatError):
        loads(text, file="x.json")


def test_depth_ignores_brackets_in_strings_and_escapes() -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH  # exactly the limit: accepted
    assert jsonsafe._max_depth(deep.encode()) == MAX_DEPTH
    assert loads(deep, file="x.json") is not None
    noisy = json.dumps(["[" * 200, '\\"[[[', {"k": "{" * 100}])
    assert jsonsafe._max_depth(noisy.encode()) == 2  # the brackets inside strings do not count
    assert fast_loads(noisy) == ["[" * 200, '\\"[[[', {"k": "{" * 100}]


def test_depth_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonsafe, "_FAST_BLOCK", 7)  # blocks split strings and brackets
    text = json.dumps([{"a": ["x]]", [[1.5, 2]], '"q"']}, "[{"] * 30)
    assert jsonsafe._max_depth(text.encode()) == 5
    assert fast_loads(text) == json.loads(text)


def test_large_but_finite_numbers_are_kept() -> None:
    assert fast_loads("[1e99, 123456789012345678901234567890]") == [
        1e99,
        123456789012345678901234567890,
    ]
    value = loads("[1e300]", file="x.json")  # deferred, then accepted by the checks
    assert value == [1e300] and math.isfinite(value[0])
