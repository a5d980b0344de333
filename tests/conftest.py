"""Fixtures: a real Redis (REDIS_URL, else embedded), a movable clock, the app, its client and CLI runner; and the
hypothesis profile (tests/support/profiles.py): derandomized when `CI` is set."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse, urlunparse

import pytest
from hypothesis import settings
from redis import Redis

from gateway import create_app
from tests.support import profiles
from tests.support.fake_twilio import fake_twilio, twilio_app, twilio_config, twilio_phone  # noqa: F401 (fixtures)
from tests.support.kannel import busy_sendsms, handset, kannel, kannel_app, live, serve  # noqa: F401 (fixtures)
from tests.support.phone import API_TOKEN, AUTH_TOKEN, BASE_URL, Phone, seed_demo
from tests.support.reminders import CMCC, cancel, put
from tests.support.ussd import USSD_TOKEN

TEST_DB = int(os.environ.get("TDBOT_TEST_DB", "9"))

profiles.register()
settings.load_profile(profiles.chosen(os.environ))


class Clock:
    """A clock tests move by hand; 2026-11-25 10:00 Asia/Shanghai unless told otherwise."""

    def __init__(self, start: datetime = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def _with_db(url: str, db: int) -> str:
    parts = urlparse(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}?db={db}"
    return urlunparse(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("REDIS_URL")
    if url:
        return _with_db(url, TEST_DB)
    from gateway.state.connection import embedded, url_of

    return _with_db(url_of(embedded(str(tmp_path_factory.mktemp("redis")))), TEST_DB)


@pytest.fixture
def redis(redis_url: str):
    connection = Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def test_config(redis_url: str, redis: Redis, clock: Clock) -> dict:
    return {
        "TESTING": True, "REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TDBOT_API_TOKEN": API_TOKEN,
        "TDBOT_SECRET_KEY": "test-secret", "PUBLIC_BASE_URL": BASE_URL, "CLOCK": clock,
        "TWILIO_ACCOUNT_SID": None, "TWILIO_FROM": None, "TWILIO_MESSAGING_SERVICE_SID": None,
        "TDBOT_SENDER_MPS": 1000,  # pacing is tested on its own; journeys should not wait a second a message
        "RATELIMIT_ENABLED": False,  # flood limits are tested on their own (tests/e2e/test_flooding.py)
        "TDBOT_USSD_TOKEN": USSD_TOKEN,
        "TDBOT_TRAFFIC_FLUSH_SECONDS": 0,  # counted at once: a buffer outliving its test must not write into the next
    }


@pytest.fixture
def app(test_config: dict):
    return create_app(test_config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def phone(client, app):
    """The China Mobile demo subscriber's phone."""
    return Phone(client, app, CMCC)


@pytest.fixture
def seeded(app):
    """The app with the demo subscribers (gateway/state/demo.py), as of 25 Nov 2026."""
    seed_demo(app)
    return app


@pytest.fixture
def confirming(seeded, phone):
    """The demo subscriber asked to cancel package 1 and is about to say Y."""
    phone.send("TD")
    phone.send("1")
    return phone


@pytest.fixture
def owing(client, phone):
    """China Mobile: 视频会员 at 15.00 a month renewing 7 Dec, cancelled 25 Nov 10:00 (19 of 30 days): 9.50 owed by
    2 Dec 23:59:59, late fee 5%."""
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"))
    cancel(phone)
    assert phone.subscriber()["statements"][0]["owed_fen"] == 950
    return phone

