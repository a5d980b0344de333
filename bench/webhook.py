"""Benchmark the Twilio SMS webhook (one full dialog step) against a bare Redis+TwiML ceiling.

    .venv/bin/python bench/webhook.py [--duration 20] [--connections 16] [--subscribers 10000] [--db 13] [--raw]
                                      [--profile step.svg]

Both endpoints run under the same gunicorn settings (bench/gunicorn_conf.py, 2 workers) against the local Redis
(database --db, flushed before and after) and are driven by wrk for the same duration with signed requests from
many distinct numbers in a realistic mix (TD, a list choice, Y, a code, 0000, HELP). Needs `wrk` (Debian: apt-get
install wrk). Prints requests/s, p50 and p99 for each, and the ratio; the target is >= 0.75x the ceiling's
requests/s with p99 <= 12 ms at 16 connections. A third line, "2 calls", is the ceiling's route making a step's two
Redis calls and nothing else: the bound for any design that reads, then compares-and-sets.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

from redis import Redis
from twilio.request_validator import RequestValidator

from dialogs.model import Subscriber, Subscription
from gateway.state.keys import Keys
from gateway.state.store import Store

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SMS_PATH = "/webhooks/twilio/sms"
PUBLIC_BASE_URL = "https://bench.tdbot.example"
AUTH_TOKEN = "bench-auth-token"
# One journey per number, sent round by round so a number's messages never race each other.
MIX = ("TD", "1", "Y", "123456", "0000", "HELP")
# Enough distinct pre-signed requests that even this rate never replays one (a replay is a cheap duplicate).
MAX_RATE = 5000
TARGET_RATIO, TARGET_P99_MS = 0.75, 12.0
PACKAGES = (("vid", "视频会员", "SPHY", 1500), ("music", "音乐包", "YYB", 1000), ("data", "流量包", "LLB", 2000))


@dataclass(frozen=True)
class Figures:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    errors: int
    wrapped: int
    cpu_seconds: float  # gunicorn workers' user+system CPU during the measurement

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """Worker CPU per request: steadier than requests/s on a machine shared with other work."""
        return self.cpu_seconds / self.requests * 1e6


def main() -> None:
    args = _parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (or see the README's bench section)")
    if args.profile and shutil.which("py-spy") is None:
        sys.exit("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    redis_url = f"{args.redis.rstrip('/')}/{args.db}"
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    try:
        with tempfile.TemporaryDirectory(prefix="tdbot-bench-") as tmp:
            figures = _run(args, redis_url, redis, Path(tmp))
    finally:
        redis.flushdb()
    _report(figures, args.connections)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--subscribers", type=int, default=10_000, help="distinct numbers seeded and texting")
    parser.add_argument("--redis", default=_redis_base(), help="Redis server URL without a database")
    parser.add_argument("--db", type=int, default=13, help="Redis database to use (flushed before and after)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up load before each measurement")
    parser.add_argument("--raw", action="store_true", help="also measure the ceiling without Flask (raw WSGI)")
    parser.add_argument("--profile", metavar="PATH", help="py-spy one full-step worker into PATH (.svg: flame graph, "
                        "else speedscope JSON; sampling slows it, so that run's figures do not compare); needs py-spy "
                        "(pip install -e '.[bench]') and ptrace rights")
    return parser.parse_args()


def _redis_base() -> str:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _run(args: argparse.Namespace, redis_url: str, redis: Redis, tmp: Path) -> list[Figures]:
    numbers = [f"+86138{i:08d}" for i in range(args.subscribers)]
    warm_numbers = [f"+86139{i:08d}" for i in range(1000)]
    _seed(Store(redis, Keys("tdbot")), numbers + warm_numbers)
    load, warm = tmp / "load.txt", tmp / "warm.txt"
    _write_requests(load, numbers, "SMbench", journeys=math.ceil(args.duration * MAX_RATE / len(numbers) / len(MIX)))
    _write_requests(warm, warm_numbers, "SMwarm")
    env = {**os.environ, "REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
           "TDBOT_API_TOKEN": "bench-api-token", "TDBOT_SECRET_KEY": secrets.token_hex(32),
           # Flood limits are counted as in production, but set where this load never reaches them.
           "TDBOT_RATE_LIMIT_IP": "1000000/second", "TDBOT_RATE_LIMIT_SMS": "1000000/minute"}
    endpoints = [("ceiling", "bench.ceiling:app"), ("full step", "wsgi:app"), ("2 calls", "bench.ceiling:two_calls")]
    if args.raw:
        endpoints.append(("raw WSGI", "bench.ceiling:raw_app"))
    results = []
    for name, app in endpoints:
        with _gunicorn(app, env) as (base, server):
            _wrk(base, warm, args.wrk_threads, args.connections, args.warmup)
            before = _workers_cpu(server.pid)
            with _profiling(args.profile if app == "wsgi:app" else None, server.pid, args.duration):
                raw = _wrk(base, load, args.wrk_threads, args.connections, args.duration)
            results.append(_figures(name, raw, _workers_cpu(server.pid) - before))
    return results


@contextmanager
def _profiling(path: str | None, master: int, seconds: int):
    """py-spy sampling one gunicorn worker for the measurement, written to `path` (speedscope JSON, or an SVG
    flame graph when `path` ends in .svg); nothing when `path` is None."""
    if path is None:
        yield
        return
    worker = _workers(master)[0]
    fmt = "flamegraph" if path.endswith(".svg") else "speedscope"
    command = ["py-spy", "record", "--pid", worker, "--duration", str(seconds), "--format", fmt, "--output", path]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        _, err = spy.communicate(timeout=seconds + 30)
        if spy.returncode:
            print(f"py-spy failed ({spy.returncode}): {err.strip()[-500:]}", file=sys.stderr)
        else:
            print(f"profile of one worker: {path}", file=sys.stderr)


def _seed(store: Store, numbers: list[str]) -> None:
    renews = date.today() + timedelta(days=12)
    subscriptions = tuple(Subscription(i, name, code, fee, renews) for i, name, code, fee in PACKAGES)
    with store.redis.pipeline(transaction=False) as pipe:
        for n, number in enumerate(numbers):
            store.save_subscriber(Subscriber(number, locale="en" if n % 2 else "zh", subscriptions=subscriptions), pipe)
        pipe.execute()


def _write_requests(path: Path, numbers: list[str], sid_prefix: str, journeys: int = 1) -> None:
    """One pre-signed request per line, round by round: every number's TD, then every number's list choice, ...
    and the whole journey again `journeys` times."""
    validator = RequestValidator(AUTH_TOKEN)
    with path.open("w") as out:
        for r, text in enumerate(MIX * journeys):
            for n, number in enumerate(numbers):
                form = {"From": number, "To": "10086", "Body": text, "MessageSid": f"{sid_prefix}{r:03d}{n:029d}"}
                signature = validator.compute_signature(PUBLIC_BASE_URL + SMS_PATH, form)
                out.write(f"{signature}\t{urlencode(form)}\n")


@contextmanager
def _gunicorn(app: str, env: dict[str, str]):
    port = _free_port()
    command = [sys.executable, "-m", "gunicorn", "-c", str(BENCH / "gunicorn_conf.py"), "-b", f"127.0.0.1:{port}", app]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base + "/healthz", server)
        yield base, server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"gunicorn did not answer {url} within {seconds} s")


def _workers(master: int) -> list[str]:
    """The gunicorn master's worker pids (Linux /proc)."""
    return Path(f"/proc/{master}/task/{master}/children").read_text().split()


def _workers_cpu(master: int) -> float:
    """User+system CPU seconds used so far by the gunicorn master's children (Linux /proc; 0 elsewhere)."""
    try:
        ticks = 0
        for pid in _workers(master):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    except OSError:
        return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")


def _wrk(base: str, requests: Path, threads: int, connections: int, seconds: int) -> dict:
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", str(BENCH / "post.lua"),
               base + SMS_PATH, "--", str(requests), str(threads), SMS_PATH]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    line = next(x for x in output.splitlines() if x.startswith("BENCH "))
    return json.loads(line.removeprefix("BENCH "))


def _figures(name: str, raw: dict, cpu_seconds: float) -> Figures:
    return Figures(name, raw["requests"], raw["seconds"], raw["p50_us"] / 1000, raw["p99_us"] / 1000,
                   raw["non2xx"], raw["errors"], raw["wrapped"], cpu_seconds)


def _report(figures: list[Figures], connections: int) -> None:
    row = "{:<10} {:>8} {:>7} {:>7} {:>10} {:>7} {:>6}"
    print(row.format("endpoint", "req/s", "p50 ms", "p99 ms", "CPU us/req", "non-2xx", "errors"))
    for f in figures:
        print(row.format(f.name, f"{f.rps:.0f}", f"{f.p50_ms:.2f}", f"{f.p99_ms:.2f}", f"{f.cpu_us:.0f}", f.non2xx,
                         f.errors))
    ceiling, full = figures[:2]
    if full.wrapped:
        print("  warning: the full step ran out of pre-signed requests and replayed some (cheap duplicates); "
              "raise --subscribers")
    ratio = full.rps / ceiling.rps
    met = ratio >= TARGET_RATIO and full.p99_ms <= TARGET_P99_MS
    bound = figures[2]
    print(f"the 2-call bound: {bound.rps / ceiling.rps:.2f}x the ceiling, p99 {bound.p99_ms:.2f} ms")
    print(f"ratio full/ceiling: {ratio:.2f}x at {connections} connections "
          f"(target >= {TARGET_RATIO}x and p99 <= {TARGET_P99_MS:g} ms: {'met' if met else 'NOT met'})")


if __name__ == "__main__":
    main()
