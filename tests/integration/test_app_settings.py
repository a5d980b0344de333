"""Settings the app and the worker refuse at start-up: the public default code secret once real traffic can reach the
app, and quiet hours that cannot be read (or leave no room to remind in)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import create_app
from gateway.config import DEFAULT_SECRET, InsecureConfig, InvalidSetting

ROOT = Path(__file__).resolve().parents[2]

LIVE = {"TESTING": False, "TDBOT_SECRET_KEY": DEFAULT_SECRET, "PUBLIC_BASE_URL": None, "TWILIO_ACCOUNT_SID": None,
        "TDBOT_USSD_TOKEN": None, "TDBOT_USSD_ALLOW": ""}

REFUSED = [
    ("a Twilio account", {"TWILIO_ACCOUNT_SID": "AC0123"}, "TWILIO_ACCOUNT_SID"),
    ("a public URL", {"PUBLIC_BASE_URL": "https://tdbot.example.com"}, "PUBLIC_BASE_URL"),
    ("a USSD gateway's token", {"TDBOT_USSD_TOKEN": "at-token"}, "TDBOT_USSD_TOKEN"),
    ("a USSD gateway's addresses", {"TDBOT_USSD_ALLOW": "196.201.214.0/24"}, "TDBOT_USSD_ALLOW"),
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


BAD_QUIET_HOURS = ["22:00", "25:00-08:00", "22:00-22:00", "ten-eight", "22:00-08:00-09:00", "08:00-07:45"]
GOOD_QUIET_HOURS = ["", "off", "OFF", "21:00-09:00", "01:00-06:00", " 22:00 - 08:00 "]


@pytest.mark.parametrize("setting", BAD_QUIET_HOURS)
def test_the_app_refuses_quiet_hours_it_cannot_read_naming_the_setting(test_config, setting: str) -> None:
    with pytest.raises(InvalidSetting) as refused:
        create_app({**test_config, "TDBOT_QUIET_HOURS": setting})
    assert "TDBOT_QUIET_HOURS" in str(refused.value) and repr(setting) in str(refused.value)


@pytest.mark.parametrize("setting", ["٢٢:٠٠-٠٨:٠٠", "２２:００-０８:００", "²²:00-08:00"])
def test_quiet_hours_are_written_in_ascii_digits(test_config, setting: str) -> None:
    """A Unicode digit class took Arabic-Indic or full-width digits for HH:MM; the refusal blamed the ISO format."""
    with pytest.raises(InvalidSetting, match="not HH:MM-HH:MM"):
        create_app({**test_config, "TDBOT_QUIET_HOURS": setting})


@pytest.mark.parametrize("setting", GOOD_QUIET_HOURS)
def test_the_app_starts_with_quiet_hours_it_can_read(test_config, setting: str) -> None:
    client = create_app({**test_config, "TDBOT_QUIET_HOURS": setting}).test_client()
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(("name", "value"), [("TDBOT_QUIET_HOURS", "22:00"), ("TDBOT_TRAFFIC_FLUSH_SECONDS", "five")])
def test_the_worker_refuses_to_start_on_settings_it_cannot_read(redis_url: str, tmp_path: Path, name, value) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env.update({"REDIS_URL": redis_url, "TDBOT_DATA_DIR": str(tmp_path), name: value})
    worker = subprocess.Popen(
        [sys.executable, "worker.py", "--no-cron"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        _, stderr = worker.communicate(timeout=30)  # a worker that starts works until stopped
    finally:
        if worker.poll() is None:  # it started after all: stop it and RQ's scheduler process it forked
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert worker.returncode != 0
    assert name in stderr and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("own_queue_redis", [False, True])
def test_rq_dashboard_and_rq_cron_reach_the_queues_where_the_workers_do(test_config, redis_url, own_queue_redis):
    """RQ_REDIS_URL, else REDIS_URL: one answer for every process that reaches the queues by URL."""
    queues = redis_url.replace("127.0.0.1", "localhost", 1) if own_queue_redis else None  # the same database
    app = create_app({**test_config, "RQ_REDIS_URL": queues})
    runtime = app.extensions["tdbot"]
    assert runtime.queue_url == (queues or redis_url)
    assert app.config["RQ_DASHBOARD_REDIS_URL"] == [runtime.queue_url]
