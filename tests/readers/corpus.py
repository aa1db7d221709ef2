"""Shared by the corpus tests of the JSON formats: the corpus files of a tool, and
``prep convert`` of one into COCO (whose categories and annotations the tests read back)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from microprep.cli.main import main

ROOT = Path(__file__).resolve().parent.parent / "corpus"


def corpus_files(
    tool: str, suffixes: tuple[str, ...]
) -> tuple[Path, list[Path], list[Path], list[Path]]:
    """``(folder, files, good, bad)`` of ``tests/corpus/TOOL``: ``bad_*`` files must fail."""
    folder = ROOT / tool
    files = sorted(p for p in folder.iterdir() if p.suffix in suffixes)
    good = [p for p in files if not p.name.startswith("bad_")]
    bad = [p for p in files if p.name.startswith("bad_")]
    return folder, files, good, bad


def convert(export: Path, out: Path, *extra: str) -> int:
    """``prep convert EXPORT --size 64x64 --to coco --out OUT ...``: the exit code (warnings
    are printed to stderr)."""
    args = ["convert", str(export), "--size", "64x64", "--to", "coco", "--out", str(out)]
    return main([*args, *extra])


def coco(out: Path) -> dict[str, Any]:
    """The ``coco.json`` that :func:`convert` wrote into ``out``."""
    data: dict[str, Any] = json.loads((out / "coco.json").read_text())
    return data
