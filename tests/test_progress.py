"""Progress lines for output without a terminal."""

from __future__ import annotations

import logging

import pytest

from microprep.progress import due, with_progress_lines


def test_lines_are_frequent_at_first_then_sparse() -> None:
    counts = [n for n in range(1, 1001) if due(n)]
    assert counts[:10] == list(range(1, 11))
    assert counts[10:19] == list(range(20, 101, 10))
    assert counts[19:] == list(range(200, 1001, 100))


def test_items_pass_unchanged_and_each_due_item_gets_a_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="microprep.progress"):
        out = list(with_progress_lines(range(13), what="predicted", total=13, name=str))
    assert out == list(range(13))
    lines = [r.getMessage() for r in caplog.records if r.name == "microprep.progress"]
    # items 1..10, then the last one (13 of 13)
    assert len(lines) == 11
    assert lines[0].startswith("predicted 1/13 (0): ") and "ETA" in lines[0]
    assert lines[-1].startswith("predicted 13/13 (12): ") and lines[-1].endswith("ETA 0 min 0 s")


def test_disabled_emits_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="microprep.progress"):
        assert list(with_progress_lines("abc", what="x", enabled=False)) == ["a", "b", "c"]
    assert not [r for r in caplog.records if r.name == "microprep.progress"]
