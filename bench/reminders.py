"""The reminder due index against RQ's own `enqueue_at`, in one run on one Redis.

    .venv/bin/python bench/reminders.py [--count 1000000] [--rq-jobs 20000] [--db 15]

1. Baseline: `Queue.enqueue_at` for --rq-jobs jobs (one RQ job per future reminder): bytes per job
   (INFO memory used_memory delta / jobs) and jobs scheduled per second.
2. The due index: --count reminders (half settlement, half renewal, due over the next 30 days) scheduled with
   `gateway.state.due.schedule` in pipelined batches: bytes per pending reminder and schedules per second.
3. The sweep: the clock moved past them all, `gateway.jobs.sweeper.sweep` claims the whole index in batches (one RQ job
   per batch) and an RQ SimpleWorker hands every reminder to a no-op sender that counts, acknowledging each batch.

The database --db is flushed before and after. used_memory is server-wide, so other clients of the same Redis add
noise; `MEMORY USAGE` of the due set is printed beside it as a cross-check. Targets: <= 200 B per reminder,
>= 50,000 scheduled/s, the whole index swept and handed to the sender in <= 60 s.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from rq import Queue, SimpleWorker  # noqa: E402

from dialogs.reminders import RENEWAL, SETTLE, Due, Reminder  # noqa: E402
from gateway import bootstrap  # noqa: E402
from gateway.config import from_env  # noqa: E402
from gateway.delivery.routing import CONSOLE  # noqa: E402
from gateway.jobs import sweeper  # noqa: E402
from gateway.runtime import REMINDER_QUEUE, current  # noqa: E402
from gateway.state import due  # noqa: E402

START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
SPREAD = timedelta(days=30)
TARGET_BYTES, TARGET_RATE, TARGET_SWEEP = 200, 50_000, 60.0


@dataclass
class CountingSender:
    """A console sender that only counts what it is handed."""

    name: str = "console"
    sent: int = 0

    def send(self, to: str, text: str, status_callback: str | None, reference: str = "") -> str:
        self.sent += 1
        return "counted"


def noop(member: str) -> None:
    """What the baseline's jobs would run; they are only scheduled."""


def hand_to_sender(members: list[str], lease_until: int) -> int:
    """The sweep's batch job here: parse each member, hand it to the sender, acknowledge the batch."""
    runtime = current()
    for raw in members:
        runtime.routes[CONSOLE].sender.send(due.parse(raw).msisdn, raw, None)
    return due.ack(runtime, members, lease_until)


def jobs_module():
    """This file imported as a module: RQ will not run functions from __main__."""
    return importlib.import_module("bench.reminders")


def entries(count: int) -> Iterator[Due]:
    """Realistic members: a settlement reminder or a renewal reminder per subscriber, due over the next month."""
    step = SPREAD / max(count, 1)
    for i in range(count):
        msisdn = f"+86138{i:08d}"
        if i % 2:
            reminder = Reminder(SETTLE, msisdn, f"{msisdn[1:]}-vid-20261107", index=i % 3)
        else:
            reminder = Reminder(RENEWAL, msisdn, "music", "20261207", i % 3)
        yield reminder, START + step * i


def batches(count: int, size: int) -> Iterator[list[Due]]:
    batch: list[Due] = []
    for entry in entries(count):
        batch.append(entry)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def used_memory(redis: Redis) -> int:
    return int(redis.info("memory")["used_memory"])


def bench_rq(redis: Redis, jobs: int) -> tuple[float, float]:
    """RQ's enqueue_at: (bytes per job, jobs per second)."""
    queue = Queue("bench-enqueue-at", connection=redis)
    before, started = used_memory(redis), time.perf_counter()
    for i, (reminder, at) in enumerate(entries(jobs)):
        queue.enqueue_at(at, jobs_module().noop, due.member(reminder), job_id=f"bench-{i}")
    elapsed = time.perf_counter() - started
    return (used_memory(redis) - before) / jobs, jobs / elapsed


def bench_schedule(runtime, count: int, size: int, pipelined: int) -> tuple[float, float, float]:
    """The due index: (bytes per reminder by INFO, bytes by MEMORY USAGE, schedules per second)."""
    redis, keys = runtime.redis, runtime.keys
    before, elapsed = used_memory(redis), 0.0
    pipe = redis.pipeline(transaction=False)
    for n, batch in enumerate(batches(count, size), 1):
        started = time.perf_counter()
        due.schedule(redis, keys, batch, pipeline=pipe)
        if n % pipelined == 0:
            pipe.execute()
        elapsed += time.perf_counter() - started
    started = time.perf_counter()
    pipe.execute()
    elapsed += time.perf_counter() - started
    pending = redis.zcard(due.due_key(keys))
    assert pending == count, f"{pending} pending, expected {count}"
    by_key = redis.memory_usage(due.due_key(keys), samples=0) or 0
    return (used_memory(redis) - before) / count, by_key / count, count / elapsed


def bench_sweep(runtime, count: int, batch: int) -> tuple[float, float, int]:
    """Sweep everything and hand it to the sender: (seconds claiming and enqueueing, seconds in all, sent)."""
    started = time.perf_counter()
    claimed = sweeper.sweep(runtime, batch=batch, job=jobs_module().hand_to_sender)
    swept = time.perf_counter() - started
    worker = SimpleWorker([runtime.queue(REMINDER_QUEUE)], connection=runtime.queue_redis)
    worker.log.setLevel("WARNING")
    worker.work(burst=True)
    total = time.perf_counter() - started
    assert claimed == count, f"claimed {claimed} of {count}"
    keys = runtime.keys
    left = runtime.redis.zcard(due.claimed_key(keys)) + runtime.redis.zcard(due.due_key(keys))
    assert left == 0, f"{left} reminders left unacknowledged"
    return swept, total, runtime.routes[CONSOLE].sender.sent


def main() -> None:
    args = parse_args()
    url = urlunsplit(urlsplit(args.redis_url)._replace(path=f"/{args.db}"))
    redis = Redis.from_url(url)
    redis.flushdb()
    sender = CountingSender()
    config = {**from_env(), "REDIS_URL": url, "RQ_REDIS_URL": None, "SENDER": sender,
              "CLOCK": lambda: START + SPREAD + timedelta(days=1)}
    runtime = bootstrap.bootstrap(config)
    try:
        rq_bytes, rq_rate = bench_rq(redis, args.rq_jobs)
        redis.flushdb()
        due_bytes, key_bytes, due_rate = bench_schedule(runtime, args.count, args.batch, args.pipeline)
        swept, total, sent = bench_sweep(runtime, args.count, args.sweep_batch)
    finally:
        redis.flushdb()
    report(args, rq_bytes, rq_rate, due_bytes, key_bytes, due_rate, swept, total, sent)


def report(args, rq_bytes, rq_rate, due_bytes, key_bytes, due_rate, swept, total, sent) -> None:
    def verdict(ok: bool) -> str:
        return "OK" if ok else "MISSED"

    print(f"RQ enqueue_at, {args.rq_jobs:,} jobs:   {rq_bytes:8.0f} B/job        {rq_rate:10,.0f} jobs/s")
    print(f"due index, {args.count:,} reminders: {due_bytes:8.0f} B/reminder   {due_rate:10,.0f} schedules/s"
          f"   (MEMORY USAGE of the set: {key_bytes:.0f} B/reminder)")
    print(f"  vs RQ: {rq_bytes / due_bytes:.1f}x less memory, {due_rate / rq_rate:.1f}x faster to schedule")
    print(f"  target <= {TARGET_BYTES} B/reminder: {verdict(due_bytes <= TARGET_BYTES)};"
          f" >= {TARGET_RATE:,}/s: {verdict(due_rate >= TARGET_RATE)}")
    print(f"sweep: {args.count:,} claimed in {-(-args.count // args.sweep_batch):,} batch jobs in {swept:.1f} s,"
          f" all {sent:,} handed to the sender in {total:.1f} s ({sent / total:,.0f}/s)")
    print(f"  target <= {TARGET_SWEEP:.0f} s: {verdict(total <= TARGET_SWEEP and sent == args.count)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    parser.add_argument("--db", type=int, default=15, help="database to use; flushed before and after")
    parser.add_argument("--count", type=int, default=1_000_000, help="reminders to schedule and sweep")
    parser.add_argument("--rq-jobs", type=int, default=20_000, help="jobs for the enqueue_at baseline")
    parser.add_argument("--batch", type=int, default=1000, help="reminders per ZADD")
    parser.add_argument("--pipeline", type=int, default=10, help="ZADDs per round trip")
    parser.add_argument("--sweep-batch", type=int, default=1000, help="reminders per claimed batch (one RQ job)")
    return parser.parse_args()


if __name__ == "__main__":
    main()
