"""The late-fee and payment rules of docs/billing.md ("Payments and charges (JF)", "Late fees"), pure: examples, then
random histories of payments and `JF` charges around a deadline."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from carriers import POLICIES, CarrierPolicy, late_fee_fen
from dialogs import payments
from dialogs.apply import apply
from dialogs.effects import Pay
from dialogs.model import CANCELLED, OPEN, OVERDUE, PAID, Payment, Statement, Subscriber, Subscription
from dialogs.overdue import mark_overdue
from gateway.state import audit

SHANGHAI = ZoneInfo("Asia/Shanghai")
CMCC = POLICIES["cmcc"]
ISSUED = datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
DEADLINE = datetime(2026, 12, 2, 23, 59, 59, tzinfo=SHANGHAI)
SID = "8613800138000-vid-20261107"


def someone(statement: Statement) -> Subscriber:
    sub = Subscription("vid", "视频会员", "SPHY", 1500, date(2026, 12, 7), status=CANCELLED, cancelled_at=ISSUED)
    return Subscriber("+8613800138000", "cmcc", "zh", (sub,), (statement,))


def owing(amount: int = 950, **kw: object) -> Statement:
    return Statement(SID, "vid", "视频会员", amount, ISSUED, DEADLINE, **kw)


def at(hour: int, minute: int, day: int = 2) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SHANGHAI)


def pay(before: Statement, reference: str, amount: int, paid_at: datetime, now: datetime) -> payments.Settled:
    return payments.record_payment(someone(before), SID, Payment(reference, amount, paid_at), CMCC, now)


def jf_pending(confirmed_at: datetime, amount: int = 950) -> Statement:
    reference = payments.charge_reference(SID, int(confirmed_at.timestamp()))
    return apply(someone(owing(amount)), [Pay(SID, amount, reference)], confirmed_at).statement(SID)


# --- examples -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paid", "paid_at", "status", "fee", "owed"),
    [
        (950, at(23, 50), PAID, 0, 0),  # paid in time, posted after the deadline: no fee
        (950, DEADLINE - timedelta(seconds=1), PAID, 0, 0),  # the last second before the deadline
        (950, DEADLINE, OVERDUE, 48, 48),  # the deadline itself is late: the statement turned overdue then
        (450, at(23, 50), OVERDUE, 25, 525),  # the fee is on the 5.00 unpaid at the deadline
        (950, at(0, 10, day=3), OVERDUE, 48, 48),  # paid late: the fee stays
        (998, at(0, 10, day=3), PAID, 48, 0),
    ],
)
def test_a_payment_posted_after_the_deadline_counts_by_when_it_was_paid(paid, paid_at, status, fee, owed) -> None:
    overdue = mark_overdue(someone(owing()), CMCC, SID, at(0, 0, day=3)).statement(SID)
    assert (overdue.status, overdue.late_fee_fen) == (OVERDUE, 48)
    after = pay(overdue, "bank-1", paid, paid_at, now=at(0, 30, day=3)).statement
    assert (after.status, after.late_fee_fen, after.owed_fen) == (status, fee, owed)


def test_a_fee_already_paid_and_then_taken_back_is_an_overpayment() -> None:
    overdue = mark_overdue(someone(owing()), CMCC, SID, at(0, 0, day=3)).statement(SID)
    paid_late = pay(overdue, "sms-pay", 998, at(0, 20, day=3), now=at(0, 20, day=3)).statement
    settled = pay(paid_late, "bank-1", 950, at(23, 50), now=at(9, 0, day=3))
    assert (settled.statement.status, settled.statement.late_fee_fen, settled.overpaid_fen) == (PAID, 0, 998)


def test_a_late_payment_recorded_before_the_deadline_check_still_owes_the_fee() -> None:
    after = pay(owing(), "bank-1", 950, at(0, 10, day=3), now=at(0, 10, day=3)).statement
    assert (after.status, after.late_fee_fen, after.owed_fen) == (OVERDUE, 48, 48)


@pytest.mark.parametrize(("confirmed_at", "status", "fee"), [(at(23, 0), OPEN, 0), (at(0, 5, day=3), OVERDUE, 48)])
def test_a_jf_charge_confirmed_by_the_deadline_holds_the_statement_open(confirmed_at, status, fee) -> None:
    pending = jf_pending(confirmed_at)
    after = mark_overdue(someone(pending), CMCC, SID, at(0, 10, day=3)).statement(SID)
    assert (after.status, after.late_fee_fen) == (status, fee)


def test_a_jf_charge_that_goes_through_after_the_deadline_is_timely() -> None:
    pending = jf_pending(at(23, 0))
    payment = payments.receipt_payment(pending, pending.pending_reference, 950, charged_at=at(0, 20, day=3))
    assert payment.paid_at == at(23, 0)
    after = payments.record_payment(someone(pending), SID, payment, CMCC, at(0, 20, day=3)).statement
    assert (after.status, after.late_fee_fen, after.pending_reference) == (PAID, 0, "")


def test_a_jf_charge_that_finally_fails_turns_the_statement_overdue_then() -> None:
    pending = jf_pending(at(23, 0))
    released = payments.release_pending(someone(pending), SID, pending.pending_reference)
    after = mark_overdue(released, CMCC, SID, at(0, 40, day=3)).statement(SID)
    assert (after.status, after.late_fee_fen, after.pending_reference) == (OVERDUE, 48, "")


def test_a_receipt_for_a_charge_no_longer_pending_is_paid_when_the_ledger_took_it() -> None:
    payment = payments.receipt_payment(owing(status=PAID, paid_fen=950), "JF-x-1", 950, charged_at=at(0, 20, day=3))
    assert payment == Payment("JF-x-1", 950, at(0, 20, day=3))


# --- random histories ---------------------------------------------------------------------------

MINUTE = 60
HOUR = 3600


class Histories(RuleBasedStateMachine):
    """One statement, a clock walking over its deadline, payments posted (some paid long before they are posted),
    `JF` charges confirmed, taken by a ledger, recorded (perhaps long after, perhaps never) or failing for good.

    The model keeps its own books, apart from the code's: every payment recorded and when it was paid, the ledger's
    receipts, and what was escalated as overpaid. The code's statement must agree with them at every step."""

    @initialize(
        policy=st.sampled_from(sorted(POLICIES.values(), key=lambda p: p.key)),
        amount=st.integers(1, 3000),
        start=st.integers(-3 * 86400, 0),
    )
    def issue(self, policy: CarrierPolicy, amount: int, start: int) -> None:
        self.policy, self.amount = policy, amount
        self.now = DEADLINE + timedelta(seconds=start)
        self.trail: list[str] = []  # the late fees the subscriber's audit trail records
        self.was_overdue = False
        self.subscriber = someone(owing(amount))
        self.recorded: list[Payment] = []  # what the model saw recorded
        self.confirmed: dict[str, int] = {}  # JF reference -> fen the subscriber confirmed
        self.ledger: dict[str, tuple[int, datetime]] = {}  # reference -> (fen the backend took, when)
        self.unrecorded: set[str] = set()  # taken, its recording lost (a worker died); a retry records it
        self.escalated = 0
        self.references = 0
        self.still_to_take = 0  # of a JF charge confirmed before the deadline: what money paid late may stand in for
        self.in_time = 0  # late money that stood in for such a charge: paid in time (Late fees, rule 4)

    @property
    def subscriber(self) -> Subscriber:
        return self._subscriber

    @subscriber.setter
    def subscriber(self, after: Subscriber) -> None:
        """Each change is one commit, audited as the store audits it (Late fees, rule 3)."""
        before = getattr(self, "_subscriber", None)
        if after != before:
            entry = audit.turned_overdue(before, after)
            self.trail += entry["changes"] if entry else []
        self.was_overdue |= after.statement(SID).status == OVERDUE
        self._subscriber = after

    @property
    def statement(self) -> Statement:
        return self.subscriber.statement(SID)

    def _record(self, payment: Payment, capped: bool = False) -> None:
        """Posted payments are capped (the API answers 409 past the cap); a receipt of our own ledger never is."""
        before = self.statement
        settled = payments.record_payment(self.subscriber, SID, payment, self.policy, self.now, capped)
        assert settled.outcome in (payments.RECORDED, payments.DUPLICATE)
        if settled.outcome == payments.RECORDED:
            self.recorded.append(payment)
            self.escalated += settled.overpaid_fen
            pending_in_time = before.pending_reference and before.pending_since < DEADLINE
            if payment.paid_at >= DEADLINE and pending_in_time:
                stood_in = min(payment.amount_fen, self.still_to_take)
                self.still_to_take -= stood_in
                self.in_time += stood_in
        self.subscriber = settled.subscriber

    # --- the clock ---

    @rule(seconds=st.integers(1, 2 * 86400))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @precondition(lambda self: self.now < DEADLINE)
    @rule()
    def to_the_deadline(self) -> None:
        self.now = DEADLINE

    @rule()
    def deadline_check(self) -> None:
        once = mark_overdue(self.subscriber, self.policy, SID, self.now)
        assert mark_overdue(once, self.policy, SID, self.now) == once  # a replayed check changes nothing more
        self.subscriber = once

    # --- money from elsewhere ---

    @rule(amount=st.integers(1, 4000), paid_ago=st.integers(0, 2 * 86400), exactly_at_deadline=st.booleans())
    def payment_posted(self, amount: int, paid_ago: int, exactly_at_deadline: bool) -> None:
        paid_at = DEADLINE if exactly_at_deadline and self.now >= DEADLINE else self.now - timedelta(seconds=paid_ago)
        assume(len(self.statement.payments) < payments.MAX_PAYMENTS)
        self.references += 1
        self._record(Payment(f"bank-{self.references}", amount, paid_at), capped=True)

    # --- JF ---

    @precondition(lambda self: not self.statement.pending_reference and self.statement.owed_fen > 0)
    @rule()
    def jf_confirmed(self) -> None:
        reference = payments.charge_reference(SID, int(self.now.timestamp()))
        assume(reference not in self.confirmed)
        self.confirmed[reference] = self.statement.owed_fen
        self.still_to_take = self.statement.owed_fen if self.now < DEADLINE else 0
        self.subscriber = apply(self.subscriber, [Pay(SID, self.statement.owed_fen, reference)], self.now)
        assert (self.statement.pending_reference, self.statement.pending_since) == (reference, self.now)

    @precondition(lambda self: self.statement.pending_reference and self.statement.pending_reference not in self.ledger)
    @rule(recorded=st.booleans())
    def charge_taken(self, recorded: bool) -> None:
        statement = self.statement
        taken = min(statement.pending_fen, statement.owed_fen)  # what the charge job asks of the ledger
        assume(taken > 0 and len(statement.payments) < payments.MAX_PAYMENTS)
        self.ledger[statement.pending_reference] = (taken, self.now)
        self.unrecorded.add(statement.pending_reference)
        if recorded:
            self.charge_retried()

    @precondition(lambda self: self.unrecorded)
    @rule()
    def charge_retried(self) -> None:
        """A retry finds the receipt under its reference and records that, whatever is owed now."""
        reference = sorted(self.unrecorded)[0]
        taken, taken_at = self.ledger[reference]
        self.unrecorded.discard(reference)
        self._record(payments.receipt_payment(self.statement, reference, taken, taken_at))

    @precondition(lambda self: self.statement.pending_reference and self.statement.pending_reference not in self.ledger)
    @rule()
    def charge_failed_for_good(self) -> None:
        released = payments.release_pending(self.subscriber, SID, self.statement.pending_reference)
        self.subscriber = mark_overdue(released, self.policy, SID, self.now)

    # --- the books ---

    def timely_paid(self) -> int:
        return sum(p.amount_fen for p in self.recorded if p.paid_at < DEADLINE) + self.in_time

    def fee_by_the_rule(self) -> int:
        return late_fee_fen(self.policy, max(0, self.amount - self.timely_paid()))

    @invariant()
    def paid_is_what_was_recorded(self) -> None:
        assert self.statement.paid_fen == sum(p.amount_fen for p in self.recorded)
        assert [p.reference for p in self.statement.payments] == [p.reference for p in self.recorded]

    @invariant()
    def the_fee_is_charged_only_on_what_was_unpaid_at_the_deadline(self) -> None:
        statement = self.statement
        assert statement.late_fee_fen <= late_fee_fen(self.policy, self.amount)  # at most one fee
        if self.now < DEADLINE or statement.status == OPEN:
            assert statement.late_fee_fen == 0
        else:
            assert statement.late_fee_fen == self.fee_by_the_rule()

    @invariant()
    def a_statement_is_overdue_only_past_its_deadline_and_owing(self) -> None:
        statement = self.statement
        assert (statement.status == OVERDUE) <= (self.now >= DEADLINE and statement.owed_fen > 0)
        assert (statement.status == PAID) == (statement.owed_fen == 0)

    @invariant()
    def a_charge_confirmed_before_the_deadline_holds_the_statement_open_while_it_is_under_way(self) -> None:
        statement = self.statement
        if statement.pending_reference and statement.pending_since < DEADLINE:
            assert (statement.status, statement.late_fee_fen) == (OPEN, 0)

    @invariant()
    def money_taken_beyond_what_is_owed_is_escalated(self) -> None:
        statement = self.statement
        assert self.escalated == max(0, statement.paid_fen - statement.amount_fen - statement.late_fee_fen)
        assert statement.paid_fen <= statement.amount_fen + statement.late_fee_fen + self.escalated

    @invariant()
    def a_statement_turned_overdue_is_in_the_audit_trail_once_whatever_turned_it(self) -> None:
        assert len(self.trail) == int(self.was_overdue)

    @invariant()
    def a_charge_takes_no_more_than_was_confirmed(self) -> None:
        for reference, (taken, _) in self.ledger.items():
            assert 0 < taken <= self.confirmed[reference]

    def teardown(self) -> None:
        """Once every charge has gone through or failed and the deadline has been checked, the fee is exactly the
        rule's, and the statement is overdue exactly when something is still owed."""
        if not hasattr(self, "subscriber"):
            return
        while self.unrecorded:
            self.charge_retried()
        if self.statement.pending_reference:
            self.charge_failed_for_good()
        self.now = max(self.now, DEADLINE)
        self.deadline_check()
        statement = self.statement
        assert statement.late_fee_fen == self.fee_by_the_rule()
        assert statement.status == (OVERDUE if statement.owed_fen else PAID)
        assert self.escalated == max(0, statement.paid_fen - self.amount - statement.late_fee_fen)


Histories.TestCase.settings = settings(max_examples=200, stateful_step_count=25, deadline=None)
TestPaymentHistoriesKeepTheBillingRules = Histories.TestCase
