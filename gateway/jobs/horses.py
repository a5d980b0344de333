"""A work horse killed mid-job (SIGKILL, the OOM killer, RQ's hard timeout) while its worker lives: RQ retries or fails
the job without calling its on_failure callback, which a charge's last try needs (docs/billing.md, Payments, rule 7)."""

from __future__ import annotations

import logging

from rq.job import Job

log = logging.getLogger(__name__)


class WorkHorseKilled(Exception):
    """The process running a job died before the job could tell how it went."""


def killed(job: Job, retpid: int, ret_val: int, rusage: object) -> None:
    """RQ's `work_horse_killed_handler`: run in the worker before RQ decides to retry (`retries_left` not yet counted
    down, as for an exception), so the job's own failure callback sees this try like any other failed one."""
    log.warning("work horse %s of job %s died (wait status %s)", retpid, job.id, ret_val)
    callback = job.failure_callback
    if callback is None:
        return
    exc = WorkHorseKilled(f"work horse {retpid} died with wait status {ret_val}")
    try:
        callback(job, job.connection, WorkHorseKilled, exc, None)
    except Exception:  # the worker must go on working its queues whatever one callback does
        log.exception("failure callback of job %s raised", job.id)
