"""tdbot as production runs it, for tests that need real processes: gunicorn (gunicorn.conf.py, 2 workers) and an RQ
worker, on a free port, against the test Redis database; stopped (their process groups) when the test ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import requests
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[2]
AUTH_TOKEN = "live-auth-token"
WAIT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Live:
    base: str
    env: dict[str, str]
    logs: Path

    def sms(self, number: str, text: str, sid: str) -> str:
        """Text `text` from `number` through the Twilio webhook, signed; the bot's reply ('' when it stays quiet)."""
        url = f"{self.base}/webhooks/twilio/sms"
        form = {"From": number, "To": "10086", "Body": text, "MessageSid": sid}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        response = requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)
        response.raise_for_status()
        return "\n".join(m.text or "" for m in ElementTree.fromstring(response.content).iter("Message"))

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _wait_ready(base: str, processes: list[subprocess.Popen], live: Live) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), live.log_text()[-3000:]
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or its workers still booting (a loaded machine)
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} not ready within {WAIT} s:\n{live.log_text()[-3000:]}")


@contextmanager
def running(redis_url: str, tmp_path: Path, worker: bool = True, **settings: str) -> Iterator[Live]:
    """gunicorn with 2 workers (and an RQ worker with its cron) serving tdbot until the block ends."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "PROMETHEUS_"))}
    env.update(
        REDIS_URL=redis_url, TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=base, TDBOT_SECRET_KEY="live-secret",
        TDBOT_DATA_DIR=str(tmp_path / "data"), WEB_CONCURRENCY="2", TDBOT_SENDER_MPS="1000", TDBOT_QUIET_HOURS="off",
        TDBOT_SWEEP_INTERVAL="1", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), PYTHONUNBUFFERED="1",
        **settings,
    )
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    live = Live(base, env, logs)
    gunicorn = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "wsgi:app"]
    processes = [_start(gunicorn, env, logs / "web.log")]
    if worker:
        processes.append(_start([sys.executable, "worker.py"], env, logs / "worker.log"))
    try:
        _wait_ready(base, processes, live)
        yield live
    finally:
        for process in processes:
            _stop(process)
