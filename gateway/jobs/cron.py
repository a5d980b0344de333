"""RQ cron config: the sweeper every few seconds. `rq cron gateway.jobs.cron --url ...`,
`python -m gateway.jobs.cron`, or let worker.py start it (it does unless told `--no-cron`).

RQ 3's cron takes an interval in seconds, so no loop of our own is needed. A sweep job left waiting a minute
(workers busy) expires instead of piling up: the next one claims whatever is due by then.
"""

from __future__ import annotations

from redis import Redis
from rq import cron
from rq.cron import CronScheduler

from gateway import logs
from gateway.bootstrap import bootstrap
from gateway.config import from_env
from gateway.jobs import outbox
from gateway.jobs.outbox import recover_job
from gateway.jobs.sweeper import sweep_job
from gateway.runtime import DEFAULT_QUEUE, REMINDER_QUEUE

SWEEP_TTL = 60


def sweep_interval(config: dict) -> int:
    """Seconds between sweeps, `TDBOT_SWEEP_INTERVAL`."""
    return int(config.get("TDBOT_SWEEP_INTERVAL") or 5)


# rq cron reads its jobs by importing this module (`load_config_from_file`), so they are registered on import.
cron.register(sweep_job, REMINDER_QUEUE, interval=sweep_interval(from_env()), ttl=SWEEP_TTL, result_ttl=SWEEP_TTL)
# After-commit work a crashed request left in its outbox (gateway/jobs/outbox.py), once entries are a minute old.
cron.register(recover_job, DEFAULT_QUEUE, interval=outbox.RECOVER_AFTER, ttl=SWEEP_TTL, result_ttl=SWEEP_TTL)


def run(url: str) -> None:
    """Run the cron scheduler on the queues' Redis at `url` until SIGTERM or Ctrl-C."""
    scheduler = CronScheduler(connection=Redis.from_url(url))
    scheduler.load_config_from_file("gateway.jobs.cron")
    scheduler.start()


def main() -> None:
    config = from_env()
    logs.setup(config=config)
    run(bootstrap(config).queue_url)


if __name__ == "__main__":
    main()
