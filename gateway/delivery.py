"""Delivery receipts from providers, mapped onto our message statuses."""

from __future__ import annotations

import logging

from gateway.bootstrap import Runtime
from gateway.keys import PROVIDER_SID
from gateway.messages import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED

log = logging.getLogger(__name__)

TWILIO_STATUSES = {
    "accepted": QUEUED, "scheduled": QUEUED, "queued": QUEUED, "sending": SENT, "sent": SENT,
    "delivered": DELIVERED, "read": DELIVERED, "undelivered": UNDELIVERED, "failed": FAILED, "canceled": FAILED,
}
# A later receipt never moves a message back (callbacks can arrive out of order).
RANK = {QUEUED: 0, SENT: 1, DELIVERED: 2, UNDELIVERED: 2, FAILED: 2}


def record_status(runtime: Runtime, provider_sid: str, provider_status: str, error_code: str = "") -> str | None:
    status = TWILIO_STATUSES.get(provider_status.lower())
    where = runtime.redis.get(runtime.keys.shared(PROVIDER_SID, provider_sid))
    if status is None or where is None:
        log.info("ignoring status %r for unknown message %s", provider_status, provider_sid)
        return None
    msisdn, message_id = where.decode().split("|", 1)
    key = runtime.keys.message(msisdn, message_id)
    current = (runtime.redis.hget(key, "status") or b"").decode()
    if RANK.get(status, 0) < RANK.get(current, 0):
        return current
    runtime.redis.hset(key, mapping={"status": status, "error": error_code})
    return status
