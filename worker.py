"""RQ worker for tdbot's queues, with rq cron running the reminder sweeper: `python worker.py`.

Run as many as needed, on as many hosts; one cron is enough, so give the others `--no-cron`.
"""

from __future__ import annotations

import sys
from multiprocessing import Process

from rq import Worker

from gateway import logs
from gateway.bootstrap import bootstrap
from gateway.config import InvalidSetting, from_env
from gateway.jobs import cron as sweeper_cron
from gateway.jobs import horses
from gateway.runtime import QUEUES


def main(cron: bool = True, config: dict | None = None) -> None:
    """Work tdbot's queues with the settings in `config` (default: the environment) until stopped."""
    config = config if config is not None else from_env()
    logs.setup(config=config)
    try:
        runtime = bootstrap(config)  # its settings checked here, not in every job for as long as the worker runs
    except InvalidSetting as exc:
        raise SystemExit(f"worker not started: {exc}") from exc
    queues = [runtime.queue(name) for name in QUEUES]
    # rq cron (the reminder sweeper) in a child process: its scheduler wants a main thread for its signals.
    scheduler = Process(target=sweeper_cron.run, args=(runtime.queue_url,), daemon=True) if cron else None
    if scheduler:
        scheduler.start()
    try:
        # Queue order is priority: replies to a subscriber's own message before bulk reminders.
        # A horse killed mid-job gets no on_failure from RQ; a charge's last try needs it (gateway/jobs/horses.py).
        Worker(queues, connection=runtime.queue_redis, work_horse_killed_handler=horses.killed).work(
            with_scheduler=True)
    finally:
        if scheduler:
            scheduler.terminate()
            scheduler.join(10)


if __name__ == "__main__":
    main(cron="--no-cron" not in sys.argv[1:])
