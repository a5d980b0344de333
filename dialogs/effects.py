"""What a dialog step asks the world to do. The engine records these; the gateway performs them."""

from __future__ import annotations

from dataclasses import dataclass

from dialogs.model import Statement

CODE = "code"
CONFIRMATION = "confirmation"
NOTICE = "notice"


@dataclass(frozen=True)
class Reply:
    """An answer to the subscriber's own message (TwiML body, USSD screen)."""

    text: str


@dataclass(frozen=True)
class SendMessage:
    """A separate outbound message, tracked for delivery."""

    text: str
    kind: str = NOTICE


@dataclass(frozen=True)
class CancelSubscription:
    subscription_id: str


@dataclass(frozen=True)
class IssueStatement:
    statement: Statement


@dataclass(frozen=True)
class Escalate:
    reason: str


@dataclass(frozen=True)
class SetOptOut:
    opted_out: bool


Effect = Reply | SendMessage | CancelSubscription | IssueStatement | Escalate | SetOptOut
