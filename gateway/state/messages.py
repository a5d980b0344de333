"""Outbound messages as stored for delivery tracking."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
SKIPPED = "skipped"  # not sent: a reminder that had nothing left to say when its turn came

REMINDER = "reminder"  # the kind of a reminder message (the others are dialogs.effects' kinds)
REPLY = "reply"  # a step's reply, sent as a message where the channel cannot answer in its HTTP response (Kannel)
AGENT = "agent"  # written by a person in the ops console (人工)


@dataclass(frozen=True)
class OutboundMessage:
    id: str
    msisdn: str
    text: str
    kind: str
    created_at: int
    status: str = QUEUED
    provider_sid: str = ""
    attempts: int = 0
    error: str = ""
    resends: int = 0  # how many times an undelivered message was sent again before this one
    ref: str = ""  # a reminder's due-index member, re-checked right before sending
    claim: str = ""  # the token of the run that claimed it for sending (Store.claim_message)
    claimed_at: int = 0  # when that run began its attempt (epoch seconds): where a lookup of an uncertain send starts
    repeats: str = ""  # a confirmation sent again: the id of the copy it repeats (docs/delivery.md)
    route: str = ""  # the carrier link it leaves by (gateway/delivery/routing.py); '' (older records): the default
    slot: int = 0  # the pacing slot booked for it (microseconds, the pacer's clock) that its job comes back for
    slot_mps: str = ""  # the route's rate when that slot was booked: at another rate the booking does not hold
    told: int = 0  # 1: a person was told it never arrived (docs/delivery.md): a repeated report tells nobody again

    def to_hash(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_hash(cls, data: dict[bytes, bytes] | dict[str, str]) -> OutboundMessage:
        text = {_s(k): _s(v) for k, v in data.items()}
        ints = {f.name for f in fields(cls) if f.type == "int"}
        return cls(**{k: int(v) if k in ints else v for k, v in text.items() if k in _NAMES})


_NAMES = {f.name for f in fields(OutboundMessage)}


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
