"""What a dialog step asks the world to do. The engine records these; the gateway performs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dialogs.model import Charge, Statement, Subscription

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
    # The end of the period its statement bills (a renewal after the quote is undone), and the package's charge
    # lines as the cancel credits them (docs/billing.md, "One period, one bill").
    renews_on: date | None = None
    charges: tuple[Charge, ...] = ()


@dataclass(frozen=True)
class IssueStatement:
    statement: Statement


@dataclass(frozen=True)
class Escalate:
    reason: str


@dataclass(frozen=True)
class ForAgent:
    """A message the subscriber sent while a person has the conversation (人工): kept for that person."""

    text: str  # as heard (dialogs.engine.heard): a code typed while one is awaited is starred out


@dataclass(frozen=True)
class SetOptOut:
    opted_out: bool


@dataclass(frozen=True)
class Pay:
    """Charge a statement through the billing port; `reference` makes the charge idempotent."""

    statement_id: str
    amount_fen: int
    reference: str


@dataclass(frozen=True)
class OrderPlan:
    """Start a new monthly package the subscriber confirmed (二次确认)."""

    subscription: Subscription


Effect = Reply | SendMessage | CancelSubscription | IssueStatement | Escalate | ForAgent | SetOptOut | Pay | OrderPlan
