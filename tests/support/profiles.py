"""Hypothesis profiles: `ci` draws the same examples on every run, `dev` and `long` draw new ones for local runs."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import HealthCheck, settings

CI, DEV, LONG = "ci", "dev", "long"
DEFAULT_EXAMPLES = 100  # hypothesis' own default, what `dev` and `ci` keep
LONG_SCALE = 10
NOT_SET = ("", "0", "false", "no")


def register() -> None:
    # CI must not fail on luck: the same examples every run (derandomize, no example database), and nothing that
    # depends on how busy the machine is (per-example deadline, slow-generation health check).
    defaults = settings.get_profile("default")  # not whichever profile happens to be loaded
    settings.register_profile(CI, defaults, derandomize=True, database=None, deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile(DEV, defaults)  # random examples; failures are replayed from .hypothesis/
    settings.register_profile(LONG, defaults, max_examples=DEFAULT_EXAMPLES * LONG_SCALE, deadline=None)


def chosen(environ: Mapping[str, str]) -> str:
    """`HYPOTHESIS_PROFILE` if set, else `ci` when `CI` is set (as CI services and .ci/run do), else `dev`."""
    return environ.get("HYPOTHESIS_PROFILE") or (CI if environ.get("CI", "").lower() not in NOT_SET else DEV)


def examples(count: int) -> int:
    """`count` examples, scaled up by the `long` profile: a property that names its own count runs longer too."""
    return count * max(1, settings.default.max_examples // DEFAULT_EXAMPLES)
