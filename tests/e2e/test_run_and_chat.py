"""The newcomer's path: `tdbot run` with no REDIS_URL (embedded Redis), then `tdbot chat` completes a cancel."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

TDBOT = Path(sys.executable).parent / "tdbot"
NUMBER = "+8613800138000"
WAIT = 60.0  # every wait below is bounded by this
# Settings that would point `tdbot run` away from its embedded Redis and console sender.
UNSET = ("REDIS_URL", "RQ_REDIS_URL", "PUBLIC_BASE_URL", "TDBOT_API_TOKEN", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
         "TWILIO_FROM", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_API_BASE_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(server: subprocess.Popen, url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert server.poll() is None, "tdbot run exited early"
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not ready within {WAIT} s")


class Lines:
    """A subprocess's output, line by line, readable with a deadline."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, pattern: str, deadline: float) -> re.Match[str]:
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        pytest.fail(f"no {pattern!r} in the output:\n{''.join(self.seen)}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, as a supervisor would; then, if it will not go, kill what it started (its own process group)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


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
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(TDBOT_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    port, deadline = free_port(), time.monotonic() + WAIT
    with open(tmp_path / "run.log", "wb") as log:
        server = subprocess.Popen([str(TDBOT), "run", "--port", str(port)], cwd=tmp_path, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    chat = None
    try:
        wait_until_ready(server, f"http://127.0.0.1:{port}/readyz", deadline)
        chat = subprocess.Popen([str(TDBOT), "chat", NUMBER], cwd=tmp_path, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8")
        output = Lines(chat.stdout)
        chat.stdin.write("TD\n1\nY\n")
        chat.stdin.flush()
        code = output.until(r"验证码(\d{6})", deadline).group(1)
        chat.stdin.write(f"{code}\n")
        chat.stdin.close()
        output.until(r"视频会员已退订", deadline)
        assert chat.wait(timeout=max(1.0, deadline - time.monotonic())) == 0
        signs_in_to_the_console(port, (tmp_path / "run.log").read_text())
    finally:
        if chat is not None and chat.poll() is None:
            chat.kill()
            chat.wait(timeout=5)
        stop(server)
    logged = (tmp_path / "run.log").read_text(errors="replace")
    assert server.returncode == 0, logged[-2000:]
    assert code not in logged, "the code reached the phone through the outbox, never a log line"
