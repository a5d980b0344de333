"""RQ's scheduled jobs (retries, resends, paced sends) made due by moving them forward, not by sleeping."""

from __future__ import annotations

from rq import SimpleWorker

from gateway.runtime import QUEUES, Runtime


class BurstWorker(SimpleWorker):
    """RQ's in-process worker without its command channel: nothing sends commands to a burst worker in a test,
    and stopping the channel's thread can cost a second (RQ joins it with a 1 s timeout)."""

    def subscribe(self) -> None:
        pass


def scheduled_jobs(runtime: Runtime) -> int:
    return sum(runtime.queue(name).scheduled_job_registry.count for name in QUEUES)


def run_scheduled(runtime: Runtime, after_seconds: float) -> None:
    """Run what RQ scheduled for the next `after_seconds` (and what that enqueues now), as a worker with RQ's
    scheduler would once that time has passed."""
    redis = runtime.queue_redis
    for name in QUEUES:
        key = runtime.queue(name).scheduled_job_registry.key
        due = {job: score - after_seconds for job, score in redis.zrange(key, 0, -1, withscores=True)}
        if due:
            redis.zadd(key, due)
    queues = [runtime.queue(name) for name in QUEUES]
    BurstWorker(queues, connection=redis).work(burst=True, with_scheduler=True)
