"""Byte-level fuzzing helpers shared by the readers' tests: random edits of a valid export."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

Edit = tuple[str, int, int]


def fuzz(max_examples: int) -> settings:
    """Settings for a fuzz test (tmp_path is function-scoped but only a scratch folder)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def edits(data: bytes, alphabet: bytes) -> st.SearchStrategy[list[Edit]]:
    """Up to 4 byte edits (replace, insert, delete) anywhere in ``data``, from ``alphabet``."""
    return st.lists(
        st.tuples(
            st.sampled_from(["replace", "insert", "delete"]),
            st.integers(min_value=0, max_value=len(data) - 1),
            st.sampled_from(list(alphabet)),
        ),
        min_size=1,
        max_size=4,
    )


def mutate(data: bytes, changes: list[Edit]) -> bytes:
    """``data`` with ``changes`` applied in order."""
    out = bytearray(data)
    for op, pos, byte in changes:
        pos = min(pos, len(out) - 1)
        if op == "replace":
            out[pos] = byte
        elif op == "insert":
            out.insert(pos, byte)
        elif len(out) > 1:
            del out[pos]
    return bytes(out)
