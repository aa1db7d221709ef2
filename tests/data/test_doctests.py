"""The examples in the docstrings of microprep.data run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "microprep.data",
    "microprep.data.base",
    "microprep.data.instances",
    "microprep.data.layout",
    "microprep.data.loader",
    "microprep.data.normalize",
    "microprep.data.segmentation",
    "microprep.data.source",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_examples_exist() -> None:
    attempted = sum(
        doctest.testmod(importlib.import_module(name), report=False).attempted
        for name in ("microprep.data.normalize", "microprep.data.layout", "microprep.data.source")
    )
    assert attempted >= 10
