"""RQ worker for tdbot's queues: `python worker.py` (as many as needed, on as many hosts)."""

from __future__ import annotations

import logging

from rq import Worker

from gateway.bootstrap import QUEUES, bootstrap
from gateway.config import from_env


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = bootstrap(from_env())
    queues = [runtime.queue(name) for name in QUEUES]
    # Queue order is priority: replies to a subscriber's own message before bulk reminders.
    Worker(queues, connection=runtime.queue_redis).work(with_scheduler=True)


if __name__ == "__main__":
    main()
