"""The newcomer's path (README): `tdbot run` with no REDIS_URL (embedded Redis), then `tdbot chat` completes a cancel,
and so does `tdbot ussd`."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.processes import env_without, free_port, play, running, start, stop, wait_for

TDBOT = Path(sys.executable).parent / "tdbot"
NUMBER = "+8613800138000"
DIALLER = "+8618600000000"  # another demo subscriber for `tdbot ussd`: a number gets at most one code a minute
WAIT = 60.0  # every wait below is bounded by this
# Settings that would point `tdbot run` away from its embedded Redis and console sender.
UNSET = ("REDIS_URL", "RQ_REDIS_URL", "PUBLIC_BASE_URL", "TDBOT_API_TOKEN", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
         "TWILIO_FROM", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_API_BASE_URL")


def ready(server: subprocess.Popen, url: str) -> bool:
    assert server.poll() is None, "tdbot run exited early"
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def signs_in_to_the_console(port: int, banner: str) -> None:
    """The demo operator `tdbot run` made, with the password it printed, sees the dashboard."""
    name, password = re.search(r"sign in as (\S+) / (\S+),", banner).groups()
    session, base = requests.Session(), f"http://127.0.0.1:{port}/ops"
    token = re.search(r'name="csrf_token" value="([^"]+)"', session.get(f"{base}/sign-in", timeout=10).text).group(1)
    form = {"name": name, "password": password, "csrf_token": token}
    page = session.post(f"{base}/sign-in", data=form, timeout=10)
    assert page.status_code == 200 and "Dashboard" in page.text and "<svg" in page.text


@pytest.mark.skipif(not TDBOT.exists(), reason="the tdbot console script is not installed")
def test_tdbot_run_then_chat_cancels_a_package(tmp_path: Path) -> None:
    env = env_without(*UNSET, TDBOT_DATA_DIR=tmp_path / "data", PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    port, deadline = free_port(), time.monotonic() + WAIT
    server = start([str(TDBOT), "run", "--port", str(port)], tmp_path / "run.log", cwd=tmp_path, env=env)
    phones = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True,
              "encoding": "utf-8", "cwd": tmp_path, "env": env}
    try:
        readyz = f"http://127.0.0.1:{port}/readyz"
        wait_for(lambda: ready(server, readyz), readyz, WAIT, log=tmp_path / "run.log")
        with running([str(TDBOT), "chat", NUMBER], **phones) as chat:
            code = play(chat, "TD\n1\nY\n", r"验证码(\d{6})", r"视频会员已退订", deadline)
        with running([str(TDBOT), "ussd", DIALLER, "--linger", "0.5"], **phones) as terminal:
            dialled = play(terminal, "2\n1\n1\n", r"<< .*验证码(\d{6})", r"^END 退订结果：", deadline,
                           first=r"^CON 请选择：")
        signs_in_to_the_console(port, (tmp_path / "run.log").read_text())
    finally:
        stop(server, whole_group=False)  # SIGTERM, as a supervisor would: tdbot run stops what it started
    logged = (tmp_path / "run.log").read_text(errors="replace")
    assert server.returncode == 0, logged[-2000:]
    assert code not in logged and dialled not in logged, "codes reach a phone through the outbox, never a log line"
