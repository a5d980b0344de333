"""tdbot as production runs it, for tests that need real processes: gunicorn (gunicorn.conf.py, 2 workers) and an RQ
worker, on a free port, against the test Redis database; stopped (their process groups) when the test ends."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import requests
from twilio.request_validator import RequestValidator

from tests.support import processes
from tests.support.processes import env_without, free_port, tail, wait_for

AUTH_TOKEN = "live-auth-token"


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


def _ready(base: str, started: list[subprocess.Popen], logs: Path) -> bool:
    assert all(p.poll() is None for p in started), tail(logs)
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.RequestException:  # not listening yet, or its workers still booting (a loaded machine)
        return False


@contextmanager
def running(redis_url: str, tmp_path: Path, worker: bool = True, **settings: str) -> Iterator[Live]:
    """gunicorn with 2 workers (and an RQ worker with its cron) serving tdbot until the block ends."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = env_without(
        "TWILIO_", "PROMETHEUS_", REDIS_URL=redis_url, TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=base,
        TDBOT_SECRET_KEY="live-secret", TDBOT_DATA_DIR=tmp_path / "data", WEB_CONCURRENCY="2",
        TDBOT_SENDER_MPS="1000", TDBOT_QUIET_HOURS="off", TDBOT_SWEEP_INTERVAL="1",
        PROMETHEUS_MULTIPROC_DIR=tmp_path / "metrics", PYTHONUNBUFFERED="1", **settings,
    )
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    gunicorn = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "wsgi:app"]
    with ExitStack() as stack:
        started = [stack.enter_context(processes.running(gunicorn, logs / "web.log", env=env))]
        if worker:
            worker_py = [sys.executable, "worker.py"]
            started.append(stack.enter_context(processes.running(worker_py, logs / "worker.log", env=env)))
        wait_for(lambda: _ready(base, started, logs), f"{base} to be ready", log=logs)
        yield Live(base, env, logs)
