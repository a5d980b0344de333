"""Outbound messages queued the way the service queues them, and read back as stored."""

from __future__ import annotations

import uuid

from dialogs.effects import NOTICE
from gateway.delivery import outbound
from gateway.runtime import OUTBOUND_QUEUE, Runtime
from gateway.state.messages import OutboundMessage

MSISDN = "+8613800138000"


def queue_message(
    runtime: Runtime, text: str = "您的视频会员已退订。", kind: str = NOTICE, queue: str = OUTBOUND_QUEUE,
    route: str = "",
) -> OutboundMessage:
    message = OutboundMessage(uuid.uuid4().hex, MSISDN, text, kind, int(runtime.clock().timestamp()), route=route)
    runtime.store.save_message(message)
    outbound.enqueue(runtime, [message], queue)
    return message


def stored(runtime: Runtime, message: OutboundMessage) -> OutboundMessage | None:
    return runtime.store.load_message(message.msisdn, message.id)
