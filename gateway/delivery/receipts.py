"""Delivery receipts from providers, mapped onto our message statuses."""

from __future__ import annotations

import logging

from gateway import metrics
from gateway.delivery import outbound
from gateway.runtime import Runtime
from gateway.state.keys import PROVIDER_SID
from gateway.state.messages import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED, OutboundMessage

log = logging.getLogger(__name__)

TWILIO_STATUSES = {
    "accepted": QUEUED, "scheduled": QUEUED, "queued": QUEUED, "sending": SENT, "sent": SENT,
    "delivered": DELIVERED, "read": DELIVERED, "undelivered": UNDELIVERED, "failed": FAILED, "canceled": FAILED,
}
# Kannel's %d: delivered to the phone, not delivered to the phone, queued at the SMSC, accepted by the SMSC, rejected
# by the SMSC. Queued or accepted at the SMSC is what Twilio calls "sent": the carrier has it.
KANNEL_TYPES = {1: DELIVERED, 2: UNDELIVERED, 4: SENT, 8: SENT, 16: FAILED}
# What /metrics counts of receipts: "sent" is counted by the worker when the provider takes the message.
COUNTED = (DELIVERED, UNDELIVERED, FAILED)


def record_status(
    runtime: Runtime, provider_sid: str, provider_status: str, error_code: str = "", to: str = "", message_id: str = ""
) -> str | None:
    """Apply one receipt: the status the message moved to, or None when it moved nothing (late, repeated, or
    not about a message of ours). The message is the one the receipt URL names (`to`, `message_id`), else the
    one sent with that sid."""
    status = TWILIO_STATUSES.get(provider_status.lower())
    message = _message(runtime, provider_sid, to, message_id)
    if status is None or message is None or message.provider_sid not in ("", provider_sid):
        log.info("ignoring status %r for unknown message %s", provider_status, provider_sid)
        return None
    return _apply(runtime, message, status, error_code, error_code, provider_sid=provider_sid)


def record_kannel(runtime: Runtime, dlr_type: int, msisdn: str, message_id: str, smsc_reply: str = "") -> str | None:
    """Apply one Kannel delivery report (its URL names our message): the status the message moved to, or None."""
    message = runtime.store.load_message(msisdn, message_id)
    if message is None:
        log.info("ignoring Kannel report %d for unknown message %s", dlr_type, message_id)
        return None
    error = f"kannel {dlr_type}: {smsc_reply}"[:200] if KANNEL_TYPES[dlr_type] in (UNDELIVERED, FAILED) else ""
    return _apply(runtime, message, KANNEL_TYPES[dlr_type], error)


def _apply(runtime: Runtime, message: OutboundMessage, status: str, error: str, error_code: str = "",
           **changes: str) -> str | None:
    """Move `message` to `status` unless it is there or further already; a message now undelivered may go again.
    A failure report finding the message failed already (this report, or one before it) finishes the follow-up
    whatever of it an earlier try left undone: the report may be a retry of one that failed half-way. Counted once
    per move, whichever channel reported it."""
    if status not in (UNDELIVERED, FAILED):
        return _counted(runtime, message, status, outbound.advance(runtime, message, status, error=error, **changes))
    with outbound.following_up(runtime, message, error_code):  # a process killed half-way leaves it to recovery
        moved = _counted(runtime, message, status, outbound.advance(runtime, message, status, error=error, **changes))
        now = runtime.store.load_message(message.msisdn, message.id)
        if now is not None and now.status in (UNDELIVERED, FAILED):
            outbound.undelivered(runtime, now, error_code)
    return moved


def _counted(runtime: Runtime, message: OutboundMessage, status: str, moved: bool) -> str | None:
    if moved and status in COUNTED:
        metrics.receipt(runtime.route(message).channel, status)
    return status if moved else None


def _message(runtime: Runtime, provider_sid: str, to: str, message_id: str) -> OutboundMessage | None:
    named = runtime.store.load_message(to, message_id) if to and message_id else None
    if named is not None:
        return named
    where = runtime.redis.get(runtime.keys.shared(PROVIDER_SID, provider_sid))
    if where is None:
        return None
    msisdn, message_id = where.decode().split("|", 1)
    return runtime.store.load_message(msisdn, message_id)
