"""The examples in the augment modules' docstrings run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "microprep.augment",
    "microprep.augment.noise",
    "microprep.augment.levels",
    "microprep.augment.ranges",
    "microprep.augment.spatial_noise",
    "microprep.augment.geometry2d",
    "microprep.augment.geometry3d",
    "microprep.augment.fields",
    "microprep.augment.config",
    "microprep.augment.sample",
    "microprep.augment.pipeline",
    "microprep.augment.scale",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
