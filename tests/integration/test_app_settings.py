"""Settings create_app refuses: the public default code secret once real traffic can reach the app."""

from __future__ import annotations

import pytest

from gateway import create_app
from gateway.config import DEFAULT_SECRET, InsecureConfig

LIVE = {"TESTING": False, "TDBOT_SECRET_KEY": DEFAULT_SECRET, "PUBLIC_BASE_URL": None, "TWILIO_ACCOUNT_SID": None}

REFUSED = [
    ("a Twilio account", {"TWILIO_ACCOUNT_SID": "AC0123"}, "TWILIO_ACCOUNT_SID"),
    ("a public URL", {"PUBLIC_BASE_URL": "https://tdbot.example.com"}, "PUBLIC_BASE_URL"),
]
STARTS = [
    ("a laptop: no Twilio account, no public URL", {}),
    ("an own secret", {"TDBOT_SECRET_KEY": "s3cr3t-of-our-own", "PUBLIC_BASE_URL": "https://tdbot.example.com"}),
    ("the test suite", {"TESTING": True, "PUBLIC_BASE_URL": "https://tdbot.example.com"}),
]


@pytest.mark.parametrize(("name", "settings", "named"), REFUSED, ids=[c[0] for c in REFUSED])
def test_the_default_secret_is_refused_once_real_traffic_can_arrive(test_config, name, settings, named) -> None:
    with pytest.raises(InsecureConfig) as refused:
        create_app({**test_config, **LIVE, **settings})
    assert "TDBOT_SECRET_KEY" in str(refused.value) and named in str(refused.value)


@pytest.mark.parametrize(("name", "settings"), STARTS, ids=[c[0] for c in STARTS])
def test_the_app_starts_without_real_traffic_or_with_its_own_secret(test_config, name, settings) -> None:
    client = create_app({**test_config, **LIVE, **settings}).test_client()
    assert client.get("/readyz").status_code == 200
