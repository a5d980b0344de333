"""tdbot as production runs it, for tests that need real processes: gunicorn with the project's gunicorn.conf.py (2
workers) and a real `worker.py`, on a free port, with the environment a test gives; both stopped at the end, each with
what it started (its own process group)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
READY_WITHIN = 30.0
# Inherited settings that would point the processes elsewhere than the test says (the shell's Redis database, a real
# Twilio account): a test names the Redis it means.
UNINHERITED = ("REDIS_URL", "RQ_REDIS_URL", "TWILIO_", "PUBLIC_BASE_URL", "TDBOT_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Stack:
    base: str  # http://127.0.0.1:<port>
    env: dict[str, str]  # what both processes run with
    logs: Path  # web.log, worker.log

    def log_text(self, tail: int = 4000) -> str:
        return "\n".join(p.read_text(errors="replace")[-tail:] for p in sorted(self.logs.glob("*.log")))


@contextmanager
def live_stack(settings: Mapping[str, str], tmp_path: Path, worker_args: Sequence[str] = ()) -> Iterator[Stack]:
    """gunicorn serving `wsgi:app` and `python worker.py *worker_args`, with `settings` over the inherited environment
    (less any Twilio or tdbot settings of the shell running the tests), until the block ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(UNINHERITED)}
    env.update(WEB_CONCURRENCY="2", PYTHONUNBUFFERED="1", TDBOT_DATA_DIR=str(tmp_path / "data"), **settings)
    logs = tmp_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(f"http://127.0.0.1:{port}", env, logs)
    web = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"]
    processes = [_start(web, env, logs / "web.log")]
    try:
        processes.append(_start([sys.executable, "worker.py", *worker_args], env, logs / "worker.log"))
        _wait_until_ready(stack, processes)
        yield stack
    finally:
        for process in processes:
            _stop(process)


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:  # its own session: stopping it stops what it forked (gunicorn's workers, rq's)
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _wait_until_ready(stack: Stack, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise AssertionError(f"a process exited while starting:\n{stack.log_text()}")
        try:
            if requests.get(f"{stack.base}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or its workers still booting
            pass
        time.sleep(0.2)
    raise AssertionError(f"{stack.base} not ready within {READY_WITHIN} s:\n{stack.log_text()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group it leads, as a supervisor would; SIGKILL if it will not go."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
