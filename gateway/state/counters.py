"""Counts kept in Redis, for what no one process sees whole: the jobs' outcomes (RQ runs each job in a child process,
on any number of hosts) and messages per minute for the console's charts.

A web process buffers its per-minute counts and writes them every few seconds from a thread, so an inbound step
costs no extra round trip; a job writes its own as it goes (its process ends with the job).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from gateway.state.keys import COUNTERS, TRAFFIC, WORKER_SEEN, Keys

log = logging.getLogger(__name__)

TRAFFIC_TTL = 2 * 3600  # the charts show the last hour
FLUSH_EVERY = 5.0  # seconds a web process keeps its per-minute counts before writing them
IN, OUT = "in", "out"
WORKER_SEEN_TTL = 86400


def counter_key(keys: Keys) -> str:
    return keys.shared(COUNTERS)


def _field(family: str, labels: Mapping[str, str]) -> str:
    return "\t".join([family, *(f"{k}={v}" for k, v in sorted(labels.items()))])


def add(conn: Redis | Pipeline, keys: Keys, family: str, labels: Mapping[str, str], amount: int = 1) -> None:
    """Count `amount` more of `family` with `labels` (a Prometheus counter, kept in Redis)."""
    conn.hincrby(counter_key(keys), _field(family, labels), amount)


def read(redis: Redis, keys: Keys) -> list[tuple[str, dict[str, str], int]]:
    """Every (family, labels, count)."""
    found = []
    for raw, value in redis.hgetall(counter_key(keys)).items():
        family, *pairs = raw.decode().split("\t")
        found.append((family, dict(p.split("=", 1) for p in pairs), int(value)))
    return found


def minute(at: datetime) -> int:
    return int(at.timestamp()) // 60 * 60


def traffic_key(keys: Keys, start: int) -> str:
    return keys.shared(TRAFFIC, str(start))


def add_traffic(conn: Redis | Pipeline, keys: Keys, counts: Mapping[tuple[int, str, str], int]) -> None:
    """Add `counts` of (minute, direction, channel) to the per-minute tallies."""
    for (start, direction, channel), n in counts.items():
        conn.hincrby(traffic_key(keys, start), f"{direction}|{channel}", n)
        conn.expire(traffic_key(keys, start), TRAFFIC_TTL)


def traffic(redis: Redis, keys: Keys, minutes: Iterable[int]) -> dict[int, dict[tuple[str, str], int]]:
    """Per minute start: (direction, channel) → messages."""
    starts = list(minutes)
    with redis.pipeline(transaction=False) as pipe:
        for start in starts:
            pipe.hgetall(traffic_key(keys, start))
        tallies = pipe.execute()
    return {
        start: {tuple(f.decode().split("|", 1)): int(n) for f, n in tally.items()}  # type: ignore[misc]
        for start, tally in zip(starts, tallies, strict=True)
    }


class TrafficBuffer:
    """One process's per-minute counts for one Redis, written every `every` seconds by a thread this process shares
    with its other buffers (and on `flush`); with `every` 0, written as they come."""

    def __init__(self, redis: Redis, keys: Keys, every: float = FLUSH_EVERY) -> None:
        self.redis, self.keys, self.every = redis, keys, every
        self.due = time.monotonic() + every  # when the flushing thread next writes it
        self._counts: Counter[tuple[int, str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, direction: str, channel: str, at: datetime) -> None:
        """Count one message; never raises: a step that has committed must answer whatever happens to its count."""
        with self._lock:
            self._counts[(minute(at), direction, channel)] += 1
        if self.every > 0:
            _flusher.watch(self)
            return
        try:
            self.flush()
        except RedisError:  # kept by flush for the next write, as the flushing thread's are
            log.warning("could not write the messages-per-minute counts; they wait for the next message")

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if not counts:
            return
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                add_traffic(pipe, self.keys, counts)
                pipe.execute()
        except Exception:
            with self._lock:  # kept for the next try: a chart may lag, it should not lose
                self._counts.update(counts)
            raise


class _Flusher:
    """The thread that writes every buffer of this process, each every its own `every` seconds (started again in a
    forked child, which has none)."""

    def __init__(self) -> None:
        self.buffers: weakref.WeakSet[TrafficBuffer] = weakref.WeakSet()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.woken = threading.Event()  # a new buffer may be due sooner than the one the thread waits for

    def watch(self, buffer: TrafficBuffer) -> None:
        if buffer in self.buffers and self.thread is not None and self.thread.is_alive():
            return
        with self.lock:
            self.buffers.add(buffer)
            self.woken.set()
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="traffic-flush", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            self.woken.wait(self._pause())
            self.woken.clear()
            now = time.monotonic()
            for buffer in [b for b in list(self.buffers) if b.due <= now]:
                buffer.due = now + buffer.every
                try:
                    buffer.flush()
                except Exception:  # Redis away: the counts wait for the next round
                    continue

    def _pause(self) -> float:
        """Seconds until the next buffer is due."""
        now = time.monotonic()
        return max(0.0, min((b.due - now for b in list(self.buffers)), default=FLUSH_EVERY))


_flusher = _Flusher()


def saw_worker(conn: Redis | Pipeline, keys: Keys, at: datetime) -> None:
    """A worker ran a job at `at` (the reminder sweep, every few seconds)."""
    conn.set(keys.shared(WORKER_SEEN), int(at.timestamp()), ex=WORKER_SEEN_TTL)


def worker_seen(redis: Redis, keys: Keys) -> int | None:
    """When a worker last ran a job (epoch seconds), if it did in the last day."""
    raw = redis.get(keys.shared(WORKER_SEEN))
    return int(raw) if raw else None
