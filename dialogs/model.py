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
    paid_fen: int = 0  # paid towards the current period (the one ending on renews_on), as the carrier reports it
    cancelled_at: datetime | None = None
    # The day of the month it renews on (31: 31 Jan, 28 Feb, 31 Mar): kept, since renews_on alone forgets it in a
    # short month. 0 when not given, and for records stored before it existed: the day of renews_on.
    anchor_day: int = 0

    def __post_init__(self) -> None:
        if self.anchor_day == 0:
            object.__setattr__(self, "anchor_day", self.renews_on.day)  # frozen: set once, while being made
        if not 1 <= self.anchor_day <= 31:
            raise ValueError(f"anchor_day {self.anchor_day} is not a day of the month")

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True)
class Payment:
    """Money received against a statement; `reference` is the payer's idempotency key."""

    reference: str
    amount_fen: int
    paid_at: datetime
    # Of a payment made after the deadline, the part that counts as paid in time: it stood in for a `JF` charge
    # confirmed before the deadline and still pending (docs/billing.md, Late fees, rule 4).
    in_time_fen: int = 0


@dataclass(frozen=True)
class Charge:
    """A charge line: the fee the carrier bills for one period of a package, written when the period starts (a
    renewal, or a `BG` order). One per package and period, so a replayed renewal never charges twice. A cancel in
    the period re-rates it (docs/billing.md, "One period, one bill"): `credited_fen` is the part the carrier must not
    collect, and `statement_id` the statement that credited it."""

    subscription_id: str
    period_start: date
    amount_fen: int
    charged_at: datetime
    period_end: date | None = None  # None on lines stored before it was kept: the next renewal after the start
    credited_fen: int = 0
    statement_id: str = ""

    @property
    def billed_fen(self) -> int:
        """What the carrier may still bill on this line."""
        return self.amount_fen - self.credited_fen


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

    def with_charge(self, line: Charge) -> Subscriber:
        """`line` added, or in place of the line for the same package and period."""
        same = (line.subscription_id, line.period_start)
        if all((c.subscription_id, c.period_start) != same for c in self.charges):
            return replace(self, charges=self.charges + (line,))
        return replace(self, charges=tuple(
            line if (c.subscription_id, c.period_start) == same else c for c in self.charges))


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
    # quoted) and, for a cancel, the quoted deadline in epoch seconds, the end and the start of the period quoted (ISO
    # dates), and when the quote was made (epoch seconds). Completion bills that period, for no more than quoted.
    amounts: tuple[int, ...] = ()
    due_ats: tuple[int, ...] = ()
    periods: tuple[str, ...] = ()
    period_starts: tuple[str, ...] = ()
    quoted_at: int = 0
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
    # 人工: a person has the conversation until ops resolves the escalation; the bot only passes messages on
    # (and says so once: `human_noticed`).
    human: bool = False
    human_noticed: bool = False
