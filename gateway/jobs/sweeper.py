"""The sweeper: claims due reminders in batches with a lease and hands each batch to one RQ job.

`rq cron` (gateway/jobs/cron.py, also started by worker.py) enqueues `sweep_job` every few seconds. Several sweepers may
run at once: claiming is one Lua call, so a member goes to one batch. A batch job acts on each member and then
acknowledges it; members of a batch whose worker was killed fall due again when the lease ends, and acting on a
member twice sends nothing twice (message ids come from the member, renewals and deadlines check the state).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable

from dialogs.reminders import DEADLINE, LATE, RENEW, RENEWAL, SETTLE, Reminder
from gateway import metrics
from gateway.jobs import overdue, reminders, renewals
from gateway.runtime import REMINDER_QUEUE, Runtime, current
from gateway.state import counters, due

log = logging.getLogger(__name__)

BATCH = 500
LEASE = 600  # seconds a batch job has to finish before its members fall due again; also its RQ timeout
RESULT_TTL = 3600

HANDLERS: dict[str, Callable[[Runtime, Reminder], str]] = {
    SETTLE: reminders.notify,
    RENEWAL: reminders.notify,
    LATE: reminders.notify,
    DEADLINE: overdue.handle,
    RENEW: renewals.handle,
}


def sweep(runtime: Runtime, batch: int = BATCH, lease: int = LEASE, job: Callable | None = None) -> int:
    """Claim everything due by the runtime's clock, one `job(members, lease_until)` per batch; return the count."""
    now = math.floor(runtime.clock().timestamp())
    while due.redue_expired(runtime, now, batch) == batch:
        pass
    lease_until, queue, claimed = now + lease, runtime.queue(REMINDER_QUEUE), 0
    while members := due.claim(runtime, now, batch, lease_until):
        queue.enqueue(job or send_batch, members, lease_until, job_timeout=lease, result_ttl=RESULT_TTL)
        claimed += len(members)
    if claimed:
        log.info("swept %d due reminders", claimed)
    return claimed


def sweep_job() -> int:
    """What rq cron runs; it also tells /readyz and the console that a worker is at work."""
    runtime = current()
    counters.saw_worker(runtime.redis, runtime.keys, runtime.clock())
    return sweep(runtime)


def send_batch(members: list[str], lease_until: int) -> dict[str, int]:
    """RQ job: act on each claimed member, then release the ones done. A member that failed stays claimed and falls
    due again when the lease ends."""
    runtime = current()
    outcomes: Counter[str] = Counter()
    done = []
    for raw in members:
        try:
            reminder = due.parse(raw)
            outcomes[HANDLERS[reminder.kind](runtime, reminder)] += 1
        except Exception:
            log.exception("reminder %s failed; it will be retried when its lease ends", raw)
            continue
        done.append(raw)
    due.ack(runtime, done, lease_until)
    metrics.reminders(runtime, outcomes)
    return dict(outcomes)
