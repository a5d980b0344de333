"""The subscriber's world as the dialog engine sees it: plain, immutable data."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime

ACTIVE = "active"
CANCELLED = "cancelled"

OPEN = "open"
PAID = "paid"
OVERDUE = "overdue"


@dataclass(frozen=True)
class Subscription:
    id: str
    name: str
    service_code: str
    fee_fen: int
    renews_on: date
    status: str = ACTIVE
    paid_fen: int = 0
    cancelled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True)
class Payment:
    """Money received against a statement; `reference` is the payer's idempotency key."""

    reference: str
    amount_fen: int
    paid_at: datetime


@dataclass(frozen=True)
class Charge:
    """A renewal billed: one per package and period, so a replayed renewal never charges twice."""

    subscription_id: str
    period_start: date
    amount_fen: int
    charged_at: datetime


@dataclass(frozen=True)
class Statement:
    id: str
    subscription_id: str
    name: str
    amount_fen: int
    issued_at: datetime
    due_at: datetime
    status: str = OPEN
    paid_fen: int = 0
    late_fee_fen: int = 0
    payments: tuple[Payment, ...] = ()
    # A `JF` charge handed to the billing backend and not yet settled: no second charge while set. `pending_since`
    # is when the subscriber confirmed it: a charge confirmed before the deadline is paid in time (docs/billing.md).
    pending_reference: str = ""
    pending_fen: int = 0
    pending_since: datetime | None = None

    @property
    def owed_fen(self) -> int:
        return max(0, self.amount_fen + self.late_fee_fen - self.paid_fen)


@dataclass(frozen=True)
class Subscriber:
    msisdn: str
    carrier: str | None = None
    locale: str | None = None
    subscriptions: tuple[Subscription, ...] = ()
    statements: tuple[Statement, ...] = ()
    opted_out: bool = False
    charges: tuple[Charge, ...] = ()
    sms_channel: str = ""  # the SMS channel (twilio, kannel) they last texted on: where notices go by default

    def active(self) -> tuple[Subscription, ...]:
        return tuple(s for s in self.subscriptions if s.active)

    def subscription(self, subscription_id: str) -> Subscription | None:
        return next((s for s in self.subscriptions if s.id == subscription_id), None)

    def statement(self, statement_id: str) -> Statement | None:
        return next((s for s in self.statements if s.id == statement_id), None)

    def open_statements(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.status != PAID and s.owed_fen > 0)

    def with_subscription(self, sub: Subscription) -> Subscriber:
        others = tuple(s for s in self.subscriptions if s.id != sub.id)
        if len(others) == len(self.subscriptions):
            return replace(self, subscriptions=self.subscriptions + (sub,))
        return replace(self, subscriptions=tuple(sub if s.id == sub.id else s for s in self.subscriptions))

    def with_statement(self, st: Statement) -> Subscriber:
        if self.statement(st.id) is None:
            return replace(self, statements=self.statements + (st,))
        return replace(self, statements=tuple(st if s.id == st.id else s for s in self.statements))


IDLE = "idle"
CHOOSING = "choosing"
CONFIRMING = "confirming"
VERIFYING = "verifying"
LOCKED = "locked"
OFFERED = "offered"  # a plan's fee was stated; waiting up to 24 h for 是/Y

# What a flow is for: the same choose/confirm/code stages serve cancelling, paying and ordering.
CANCEL = "cancel"
PAY = "pay"
PLAN = "plan"


@dataclass(frozen=True)
class DialogState:
    """Where one subscriber is in a conversation. Times are epoch seconds."""

    stage: str = IDLE
    intent: str = CANCEL
    options: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()
    # What the subscriber confirmed, per selected item: fen (pay: per statement; cancel: per package, the amount
    # quoted) and, for a cancel, the quoted deadline in epoch seconds. Completion bills exactly what was quoted.
    amounts: tuple[int, ...] = ()
    due_ats: tuple[int, ...] = ()
    code_hash: str = ""
    code_expires_at: int = 0
    attempts: int = 0
    codes_sent: tuple[int, ...] = field(default=())
    lang: str = ""
    updated_at: int = 0
    locked_until: int = 0
    plan_offer: str = ""
    offer_expires_at: int = 0
    # The listing the last reply showed a page of (its template key, e.g. "list") and the index of that page's first
    # line, so `98` and `0` can turn its pages. Pages are worked out again each turn for the channel the message
    # came in on, so a listing started by SMS can be paged on a USSD screen and the other way round.
    listing: str = ""
    page_start: int = 0
