"""A web process writes its messages-per-minute counts every TDBOT_TRAFFIC_FLUSH_SECONDS, as configured (not a fixed
five seconds), and refuses at start-up a setting it cannot read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway import create_app
from gateway.config import InvalidSetting
from gateway.state import counters
from gateway.state.counters import IN, TrafficBuffer
from gateway.state.keys import Keys
from tests.support.waiting import wait_for

AT = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def _written(redis, keys: Keys) -> int:
    return sum(counters.traffic(redis, keys, [counters.minute(AT)])[counters.minute(AT)].values())


def test_counts_are_written_after_the_configured_seconds_not_a_fixed_five(redis) -> None:
    soon, late = TrafficBuffer(redis, Keys("soon"), 0.2), TrafficBuffer(redis, Keys("late"), 60)
    soon.add(IN, "twilio", AT)
    late.add(IN, "twilio", AT)
    assert wait_for(lambda: _written(redis, Keys("soon")) == 1, 2.5), "a 0.2 s buffer was not written within 2.5 s"
    assert _written(redis, Keys("late")) == 0, "a 60 s buffer was written with the other's"
    late.flush()
    assert _written(redis, Keys("late")) == 1


def test_the_app_counts_a_step_after_the_configured_seconds(test_config, redis) -> None:
    app = create_app({**test_config, "TDBOT_TRAFFIC_FLUSH_SECONDS": "0.2"})
    from tests.support.phone import Phone, seed_demo

    seed_demo(app)
    Phone(app.test_client(), app, "+8613800138000").send("TD")
    keys, start = Keys(), counters.minute(test_config["CLOCK"]())
    assert wait_for(lambda: counters.traffic(redis, keys, [start])[start], 2.5)


@pytest.mark.parametrize("setting", ["five", "-1", "nan", "inf", "1e400"])
def test_the_app_refuses_a_flush_interval_it_cannot_use_naming_the_setting(test_config, setting: str) -> None:
    with pytest.raises(InvalidSetting) as refused:
        create_app({**test_config, "TDBOT_TRAFFIC_FLUSH_SECONDS": setting})
    assert "TDBOT_TRAFFIC_FLUSH_SECONDS" in str(refused.value) and repr(setting) in str(refused.value)


@pytest.mark.parametrize("setting", ["0", "0.5", "5", " 30 ", None])
def test_the_app_starts_with_a_flush_interval_it_can_use(test_config, setting) -> None:
    client = create_app({**test_config, "TDBOT_TRAFFIC_FLUSH_SECONDS": setting}).test_client()
    assert client.get("/readyz").status_code == 200
