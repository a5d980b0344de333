"""A message queued once: one whose id is decided by what it is about (a job run again, a webhook retried, a batch
claimed twice make the same message) is stored and queued by the first run that makes it. A later run queues it
again only while it has not gone out: the first may have died between storing and queuing it, and a message is
claimed before it is sent, so a second job sends nothing twice."""

from __future__ import annotations

from redis import WatchError

from gateway.delivery import outbound
from gateway.runtime import OUTBOUND_QUEUE, Runtime
from gateway.state.messages import QUEUED, SENDING, OutboundMessage


def queue_once(runtime: Runtime, message: OutboundMessage, queue: str = OUTBOUND_QUEUE,
               audited: dict | None = None) -> bool:
    """Store `message` (with the audit entry `audited`, in the same transaction) and queue it, unless it is stored
    already: then queue the stored one again if it is still queued or sending. True when this call stored it."""
    made = _store_once(runtime, message, audited)
    _queue_unsent(runtime, message if made else runtime.store.load_message(message.msisdn, message.id), queue)
    return made


def queue_stored(runtime: Runtime, msisdn: str, message_id: str, queue: str = OUTBOUND_QUEUE) -> None:
    """Queue a message an earlier commit stored with what it tells of, while it has not gone out: that commit may have
    been the last thing a process did."""
    _queue_unsent(runtime, runtime.store.load_message(msisdn, message_id), queue)


def _queue_unsent(runtime: Runtime, stored: OutboundMessage | None, queue: str) -> None:
    if stored is not None and stored.status in (QUEUED, SENDING):
        outbound.enqueue(runtime, [stored], queue)


def _store_once(runtime: Runtime, message: OutboundMessage, audited: dict | None) -> bool:
    key = runtime.keys.message(message.msisdn, message.id)
    with runtime.redis.pipeline() as pipe:
        try:
            pipe.watch(key)
            if pipe.exists(key):
                return False
            pipe.multi()
            runtime.store.save_message(message, pipeline=pipe)
            if audited is not None:
                runtime.store.audit(message.msisdn, audited, runtime.clock(), pipeline=pipe)
            pipe.execute()
            return True
        except WatchError:  # another run made it first
            return False
