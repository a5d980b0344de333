"""Subscriber records arriving from outside (API, `tdbot import`, demo seed): one way in for all of them."""

from __future__ import annotations

from redis.client import Pipeline

from dialogs.imports import merge
from dialogs.model import Subscriber
from gateway.bootstrap import Runtime
from gateway.state import due


def upsert(runtime: Runtime, incoming: Subscriber, pipeline: Pipeline | None = None) -> Subscriber:
    """Merge `incoming` into the stored record (never re-activating a cancelled package) and schedule the renewal
    reminders it now implies; those go on `pipeline` when given, for the caller to execute with a batch."""
    now = runtime.clock()
    saved = runtime.store.update_subscriber(incoming.msisdn, lambda existing: merge(existing, incoming, now))
    due.schedule_renewals(runtime, saved, pipeline=pipeline)
    return saved
