"""The suite's own guarantees: nothing in it depends on wall time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st


def test_hypothesis_profile_has_no_deadline() -> None:
    assert settings.default.deadline is None
    assert settings.default.derandomize is True


@given(st.integers(0, 10))
def test_given_without_settings_inherits_no_deadline(value: int) -> None:
    # a test that declares no settings runs under the profile: a slow example never fails it
    assert settings.default.deadline is None
    assert 0 <= value <= 10
