"""Which hypothesis profile a run uses: CI draws the same examples every time, local runs draw new ones."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import profiles


def draws(profile: str) -> list[int]:
    seen: list[int] = []

    @settings(settings.get_profile(profile), max_examples=30)
    @given(st.integers())
    def record(value: int) -> None:
        seen.append(value)

    record()
    return seen


@pytest.mark.parametrize(("environ", "profile"), [
    ({"CI": "true"}, profiles.CI),
    ({"CI": "1", "HYPOTHESIS_PROFILE": profiles.LONG}, profiles.LONG),
    ({}, profiles.DEV),
    ({"CI": ""}, profiles.DEV),
    ({"CI": "false"}, profiles.DEV),
    ({"HYPOTHESIS_PROFILE": profiles.LONG}, profiles.LONG),
])
def test_ci_is_derandomized_and_a_longer_random_profile_is_there_for_local_runs(environ, profile) -> None:
    assert profiles.chosen(environ) == profile


def test_ci_draws_the_same_examples_on_every_run() -> None:
    ci = settings.get_profile(profiles.CI)
    assert (ci.derandomize, ci.database, ci.deadline) == (True, None, None)
    assert draws(profiles.CI) == draws(profiles.CI)


def test_local_profiles_draw_at_random_and_long_draws_ten_times_as_many() -> None:
    dev, long = settings.get_profile(profiles.DEV), settings.get_profile(profiles.LONG)
    assert not dev.derandomize and not long.derandomize
    assert long.max_examples == profiles.LONG_SCALE * dev.max_examples


def test_this_run_uses_the_profile_its_environment_chose() -> None:
    wanted = settings.get_profile(profiles.chosen(os.environ))
    assert (settings.default.derandomize, settings.default.max_examples) == (wanted.derandomize, wanted.max_examples)
