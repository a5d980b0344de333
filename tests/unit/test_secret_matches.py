"""One rule for a token a caller presents (Kannel's and the USSD gateway's ?token=, the API's bearer token): it
matches only the configured secret, whole, and nothing matches a secret that is not set."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.config import secret_matches

tokens = st.text(min_size=0, max_size=40)


@given(configured=tokens, presented=tokens)
def test_a_token_matches_only_the_configured_secret_whole(configured: str, presented: str) -> None:
    config = {"TDBOT_KANNEL_TOKEN": configured}
    assert secret_matches(config, "TDBOT_KANNEL_TOKEN", presented) == (bool(configured) and presented == configured)


@given(presented=tokens)
def test_nothing_matches_a_secret_that_is_not_set(presented: str) -> None:
    assert not secret_matches({"TDBOT_API_TOKEN": None}, "TDBOT_API_TOKEN", presented)
    assert not secret_matches({}, "TDBOT_API_TOKEN", presented)
