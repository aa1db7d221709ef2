"""Every docstring example of every microprep module (and the trainer plugins) runs as shown."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tempfile
from pathlib import Path

import pytest

import microprep

PACKAGES = ["microprep", "microprep_unet", "microprep_maskrcnn"]


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


MODULES = _modules()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # examples make their files with tempfile (as a reader would) and in the working folder:
    # both go under this test's own temporary folder, which pytest cleans up
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS, report=False
    )
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples fail"


def test_the_walk_finds_the_modules_and_their_examples() -> None:
    assert "microprep.paths" in MODULES and "microprep.crops.blockcopy" in MODULES
    assert len(MODULES) > 100
    assert microprep.__name__ in MODULES
    examples = doctest.DocTestFinder().find(importlib.import_module("microprep.paths"))
    assert sum(len(t.examples) for t in examples) >= 3
