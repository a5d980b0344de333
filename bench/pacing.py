"""Pacing across worker processes: N single-segment messages through real `worker.py` processes.

The console sender records when each message went out (the outbox's `at`); the achieved rate is
(N - 1) / (last - first) and should be within ±5% of the sender's MPS. A baseline run with pacing
off, same workers and messages, shows what the workers could do unpaced.

    .venv/bin/python bench/pacing.py [--mps 20] [--workers 2] [--messages 400] [--db 14]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402

from gateway.bootstrap import bootstrap  # noqa: E402
from gateway.delivery import outbound  # noqa: E402
from gateway.delivery.senders import OUTBOX_LENGTH  # noqa: E402
from gateway.state.keys import OUTBOX  # noqa: E402
from gateway.state.messages import OutboundMessage  # noqa: E402

UNPACED = 1_000_000.0
TOLERANCE = 0.05


def main() -> None:
    args = parse_args()
    url = urlunsplit(urlsplit(args.redis_url)._replace(path=f"/{args.db}"))
    redis = Redis.from_url(url)
    redis.flushdb()
    try:
        baseline = run(url, redis, UNPACED, args)
        paced = run(url, redis, args.mps, args)
    finally:
        redis.flushdb()
    deviation = paced / args.mps - 1
    print(f"workers: {args.workers} worker.py processes, messages: {args.messages} single-segment")
    print(f"unpaced baseline: {baseline:8.1f} msg/s")
    print(f"paced at {args.mps:g} MPS:  {paced:8.2f} msg/s  ({paced / baseline:.3f} of baseline)")
    print(f"deviation from {args.mps:g}/s: {deviation:+.2%}  (target within ±{TOLERANCE:.0%}): "
          f"{'OK' if abs(deviation) <= TOLERANCE else 'MISSED'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    parser.add_argument("--db", type=int, default=14, help="database to use; flushed before and after")
    parser.add_argument("--mps", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--messages", type=int, default=400)
    args = parser.parse_args()
    if not 2 <= args.messages <= OUTBOX_LENGTH:
        parser.error(f"--messages must be between 2 and {OUTBOX_LENGTH} (the console outbox keeps that many)")
    return args


def run(url: str, redis: Redis, mps: float, args: argparse.Namespace) -> float:
    """Queue the messages, let the workers send them, and return the rate they went out at."""
    redis.flushdb()
    env = {**os.environ, "REDIS_URL": url, "TDBOT_MPS_CONSOLE": str(mps)}
    for name in ("RQ_REDIS_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TDBOT_KEY_PREFIX"):
        env.pop(name, None)
    runtime = bootstrap({"REDIS_URL": url})
    messages = [OutboundMessage(uuid.uuid4().hex, f"+86138{n:08d}", f"TD bench {n}", "notice", int(time.time()))
                for n in range(args.messages)]
    with redis.pipeline(transaction=False) as pipe:
        for message in messages:
            runtime.store.save_message(message, pipeline=pipe)
        pipe.execute()
    outbound.enqueue(runtime, messages)
    sent = send_with_workers(redis, runtime.keys.shared(OUTBOX), env, args, timeout=args.messages / mps * 3 + 60)
    return (len(sent) - 1) / (sent[-1] - sent[0])


def send_with_workers(redis: Redis, outbox: str, env: dict, args: argparse.Namespace, timeout: float) -> list[float]:
    with tempfile.TemporaryFile() as log:
        workers = [
            subprocess.Popen([sys.executable, "worker.py", "--no-cron"], cwd=ROOT, env=env, stdout=log, stderr=log)
            for _ in range(args.workers)
        ]
        try:
            deadline = time.monotonic() + timeout
            while redis.llen(outbox) < args.messages:
                if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    log.seek(0)
                    sys.exit(f"workers did not send {args.messages} messages; their log ends:\n"
                             + log.read().decode(errors="replace")[-3000:])
                time.sleep(0.05)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(30)
    return sorted(json.loads(raw)["at"] for raw in redis.lrange(outbox, 0, -1))


if __name__ == "__main__":
    main()
