"""The processes tests start (worker.py, gunicorn, `tdbot run`, Kannel's boxes, fakesmsc) and the waiting around
them. Each runs in its own session, so that stopping its process group takes what it forked (RQ's scheduler, the
cron, gunicorn's workers) and nothing of the test run's own; each is stopped however its test ends."""

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROC = Path("/proc")
STOP_WAIT = 15.0
WAIT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def env_without(*prefixes: str, **settings: object) -> dict[str, str]:
    """This process's environment without the settings named by `prefixes` (those that would point a child at a real
    provider or another deployment), plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not (prefixes and k.startswith(prefixes))}
    return {**env, **{name: str(value) for name, value in settings.items()}}


def start(command: list[str], log: Path | None = None, **popen: Any) -> subprocess.Popen:
    """`command` in its own session, from the repository's root, its output appended to `log` (or dropped)."""
    if log is None:
        popen.setdefault("stdout", subprocess.DEVNULL)
        popen.setdefault("stderr", subprocess.DEVNULL)
        return subprocess.Popen(command, **{"cwd": ROOT, **popen}, start_new_session=True)
    with log.open("ab") as out:
        return subprocess.Popen(command, **{"cwd": ROOT, "stdout": out, "stderr": subprocess.STDOUT, **popen},
                                start_new_session=True)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, whole_group: bool = True) -> None:
    """`sig` to what `start` started (to its leader alone when not `whole_group`: as a supervisor would, leaving the
    rest to it); the whole group killed if it has not gone in time."""
    if process.poll() is None:
        _signal(process.pid, sig, whole_group)
        try:
            process.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            _signal(process.pid, signal.SIGKILL, True)
            process.wait(STOP_WAIT)


def _signal(pid: int, sig: int, whole_group: bool) -> None:
    with suppress(ProcessLookupError):  # gone already
        if whole_group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


@contextmanager
def running(command: list[str], log: Path | None = None, **popen: Any) -> Iterator[subprocess.Popen]:
    process = start(command, log, **popen)
    try:
        yield process
    finally:
        stop(process)


def start_worker(redis_url: str, tmp_path: Path, *args: str, drop: tuple[str, ...] = ("TWILIO_",),
                 before: tuple[str, ...] = (), **settings: object) -> subprocess.Popen:
    """`python worker.py *args` on `redis_url`, its data and `worker.log` under `tmp_path`, run through `before` (e.g.
    faketime), with `settings` over an environment without `drop`."""
    env = env_without(*drop, REDIS_URL=redis_url, TDBOT_DATA_DIR=tmp_path, **settings)
    return start([*before, sys.executable, "worker.py", *args], tmp_path / "worker.log", env=env)


@contextmanager
def worker(redis_url: str, tmp_path: Path, *args: str, **options: Any) -> Iterator[subprocess.Popen]:
    """`start_worker`, stopped when the block ends."""
    process = start_worker(redis_url, tmp_path, *args, **options)
    try:
        yield process
    finally:
        stop(process)


def wait_for(check: Callable[[], object], what: str, seconds: float = WAIT, log: Path | None = None,
             work: Callable[[], None] | None = None) -> Any:
    """What `check` gives once truthy (doing `work` before each look); fails after `seconds`, naming `what` and
    showing the end of `log`."""
    deadline = time.monotonic() + seconds
    while True:
        if work is not None:
            work()
        if found := check():
            return found
        if time.monotonic() > deadline:
            shown = f"; {log}:\n{tail(log)}" if log else ""
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}{shown}")
        time.sleep(0.05)


def tail(log: Path, chars: int = 3000) -> str:
    """The end of `log`, or of every `*.log` in it if it is a folder."""
    logs = sorted(log.glob("*.log")) if log.is_dir() else [log] if log.exists() else []
    return "\n".join(path.read_text(errors="replace") for path in logs)[-chars:] or "(no log)"


class Lines:
    """A child's output, line by line, readable with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
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


def play(terminal: subprocess.Popen, answers: str, code: str, done: str, deadline: float,
         first: str | None = None) -> str:
    """Be the subscriber at a terminal phone (`tdbot chat`, `tdbot ussd`, started with pipes): once `first` shows
    (if given) type `answers`, then the code that the pattern `code` finds in what it shows, and hang up; `done` must
    show and the command exit 0. The code."""
    output = Lines(terminal.stdout)
    if first is not None:
        output.until(first, deadline)
    terminal.stdin.write(answers)
    terminal.stdin.flush()
    typed = output.until(code, deadline).group(1)
    terminal.stdin.write(f"{typed}\n")
    terminal.stdin.close()
    output.until(done, deadline)
    assert terminal.wait(timeout=max(1.0, deadline - time.monotonic())) == 0
    return typed


# --- RQ's work horse ---------------------------------------------------------------------------------------------
# RQ runs each job in a forked work horse that leaves the worker's process group (`os.setpgrp()` in
# `rq.worker.Worker.fork_work_horse`): found, stopped and killed through /proc.

HAS_PROC = (PROC / "self" / "stat").exists()


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name: state, parent, process group, ..."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def work_horse(worker_pid: int) -> int | None:
    """RQ's work horse: the worker's child that made itself the leader of its own process group."""
    for entry in PROC.iterdir():
        if re.fullmatch(r"[0-9]+", entry.name):
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == worker_pid and int(fields[2]) == int(entry.name):
                return int(entry.name)
    return None


def stopped(pid: int) -> bool:
    """Whether `pid` has stopped (SIGSTOP delivered), not merely been sent the signal."""
    fields = _stat(pid)
    return fields is not None and fields[0] in ("T", "t")


def gone(pid: int) -> bool:
    fields = _stat(pid)
    return fields is None or fields[0] in ("Z", "X")  # a zombie runs nothing more
