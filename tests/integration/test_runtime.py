"""The runtime RQ jobs use: the one installed by worker.py or the app, else one wired from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import worker
from gateway.bootstrap import bootstrap
from gateway.config import InvalidSetting

ROOT = Path(__file__).resolve().parents[2]
OWN_SETTINGS = ("TDBOT_", "TWILIO_", "KANNEL_", "PUBLIC_BASE_URL", "RQ_REDIS_URL", "REDIS_URL")


def test_a_job_run_where_nothing_installed_a_runtime_wires_one_from_the_environment(redis_url, redis, tmp_path) -> None:
    """A plain `rq worker` imports the job's module and runs it with no worker.py before it."""
    code = (
        "from gateway.delivery import outbound\n"  # what RQ imports to run a send; the gateway package comes first
        "from gateway import runtime\n"
        "wired = runtime.current()\n"
        "assert runtime.current() is wired, 'wired once, then installed'\n"
        "print(wired.keys.prefix, wired.redis.ping())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
    env.update(REDIS_URL=redis_url, TDBOT_KEY_PREFIX="wired", TDBOT_DATA_DIR=str(tmp_path))
    ran = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[-2:] == ["wired", "True"]


def test_every_process_refuses_settings_it_cannot_run_with_where_it_is_wired(test_config) -> None:
    """One check (config.check, in bootstrap): the app, the worker and the CLI refuse the same settings."""
    unreadable = {**test_config, "TDBOT_QUIET_HOURS": "ten-eight"}
    with pytest.raises(InvalidSetting, match="TDBOT_QUIET_HOURS"):
        bootstrap(unreadable)
    with pytest.raises(SystemExit, match="worker not started: TDBOT_QUIET_HOURS"):
        worker.main(cron=False, config=unreadable)
