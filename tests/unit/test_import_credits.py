"""docs/billing.md, Payments, rule 9: money the carrier reports paid after the cancel is credited on the statement.
Pure: imports, the engine (TD, JF), payments posted, `JF` charges and the deadline check composed as the gateway
composes them, over random histories, for a period the carrier billed itself and for a period we renewed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from carriers import POLICIES, CarrierPolicy, late_fee_fen, period_bounds, period_cost_fen
from dialogs import payments
from dialogs.apply import apply
from dialogs.engine import Facts, Message, step
from dialogs.imports import REFERENCE_PREFIX, Imported, Lower, receive
from dialogs.model import CANCELLED, DialogState, Payment, Statement, Subscriber, Subscription
from dialogs.overdue import mark_overdue
from dialogs.renewal import renew
from tests.support.imported import fees

MSISDN = "+8613800138000"
CODE = "424242"
CMCC, CUCC, CTCC = POLICIES["cmcc"], POLICIES["cucc"], POLICIES["ctcc"]
SHANGHAI = CMCC.tz
NOV25 = datetime(2026, 11, 25, 10, tzinfo=SHANGHAI)
DEC7 = date(2026, 12, 7)
VID = "8613800138000-vid-20261107"


def package(renews_on: date, fee: int = 1500, paid: int = 0) -> Subscription:
    return Subscription("vid", "视频会员", "SPHY", fee, renews_on, paid_fen=paid)


def sent(sub: Subscription, policy: CarrierPolicy = CMCC) -> Subscriber:
    return Subscriber(MSISDN, policy.key, "zh", (sub,))


def send(state: DialogState, who: Subscriber, text: str, now: datetime, policy: CarrierPolicy = CMCC):
    """One message as the gateway runs it: a step, then its effects folded into the record."""
    state, effects = step(state, Message(text), Facts(who, policy, b"credits", fresh_code=CODE), now)
    return state, apply(who, effects, now), effects


def cancelled(paid_before: int = 0, fee: int = 1500) -> Subscriber:
    """15.00 a month for 7 Nov - 7 Dec, imported with `paid_before` paid, cancelled on 25 Nov (19 of 30 days)."""
    who = receive(None, sent(package(DEC7, fee, paid_before)), NOV25).subscriber
    state = DialogState()
    for text in ("TD 1", "Y", CODE):
        state, who, _ = send(state, who, text, NOV25)
    assert who.subscription("vid").status == CANCELLED
    return who


def reported(who: Subscriber, paid: int, renews_on: date = DEC7, at: datetime = NOV25) -> Imported:
    return receive(who, sent(package(renews_on, paid=paid)), at)


def statement(who: Subscriber) -> Statement:
    [found] = who.statements
    return found


# --- examples -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("before", "after", "payment", "owed", "overpaid"), [
    (0, 1500, 1500, 0, 550),  # the auditor's case: 24.50 asked for a 9.50 period
    (0, 700, 700, 250, 0),
    (700, 1200, 500, 0, 250),  # 2.50 was asked, 5.00 reported on top
    (1200, 1500, 300, 0, 300),  # nothing was asked: money reported before the cancel lowered it to 0
])
def test_an_import_after_the_cancel_records_the_increase_it_reports(before, after, payment, owed, overpaid) -> None:
    imported = reported(cancelled(paid_before=before), after)
    [credit] = imported.credits
    assert credit.payment == Payment(f"{REFERENCE_PREFIX}-{VID}-{before}-{after}", payment, NOV25)
    assert (statement(imported.subscriber).owed_fen, credit.overpaid_fen) == (owed, overpaid)
    assert imported.subscriber.subscription("vid").paid_fen == after


@pytest.mark.parametrize(("paid", "renews_on"), [
    (1500, DEC7 + timedelta(days=31)),  # another period
    (0, DEC7),  # nothing more than stored
])
def test_an_import_reporting_nothing_more_for_the_statements_period_credits_nothing(paid: int, renews_on: date) -> None:
    who = cancelled()
    imported = reported(who, paid, renews_on)
    assert imported == Imported(imported.subscriber) and imported.subscriber.statements == who.statements
    assert imported.subscriber.subscription("vid").renews_on == DEC7  # a cancelled package's dates are history


def test_an_import_reporting_less_takes_nothing_back_and_says_so() -> None:
    who = reported(cancelled(), 700).subscriber
    imported = reported(who, 300)
    assert imported.subscriber == who
    assert imported.lower == (Lower(VID, 300, 700),)


def test_a_lower_report_before_the_cancel_credited_anything_is_no_news() -> None:
    """Money reported before the cancel credits the statement at the cancel: a report below it after is news."""
    assert reported(cancelled(paid_before=700), 300).lower == (Lower(VID, 300, 700),)
    assert reported(cancelled(), 0).lower == ()


def test_a_credit_whose_reference_is_held_for_other_terms_is_refused_and_keeps_the_old_total() -> None:
    who = cancelled(paid_before=200)
    imported = receive(who, sent(package(DEC7, paid=900)), NOV25, held=frozenset({f"{REFERENCE_PREFIX}-{VID}-200-900"}))
    assert imported.credits == () and [c.payment.amount_fen for c in imported.refused] == [700]
    assert imported.subscriber == who


def test_money_reported_after_the_deadline_is_late_and_before_it_timely() -> None:
    who = cancelled()
    due = statement(who).due_at
    late = reported(mark_overdue(who, CMCC, VID, due), 950, at=due).subscriber
    assert (statement(late).late_fee_fen, statement(late).owed_fen) == (48, 48)
    timely = reported(who, 950, at=due - timedelta(seconds=1)).subscriber
    assert mark_overdue(timely, CMCC, VID, due) == timely and statement(timely).owed_fen == 0


def test_a_renewal_undone_by_the_cancel_leaves_nothing_reported_for_the_period_billed() -> None:
    """Y at 23:58 on 6 Dec, the renewal at 00:00 and 15.00 reported paid for the new period, the code at 00:01."""
    who = receive(None, sent(package(DEC7)), NOV25).subscriber
    state, who, _ = send(DialogState(), who, "TD 1", datetime(2026, 12, 6, 23, 58, tzinfo=SHANGHAI))
    state, who, _ = send(state, who, "Y", datetime(2026, 12, 6, 23, 58, tzinfo=SHANGHAI))
    who = renew(who, "vid", DEC7, datetime(2026, 12, 7, tzinfo=SHANGHAI))
    who = receive(who, sent(package(date(2027, 1, 7), paid=1500)), datetime(2026, 12, 7, tzinfo=SHANGHAI)).subscriber
    _, who, _ = send(state, who, CODE, datetime(2026, 12, 7, 0, 1, tzinfo=SHANGHAI))
    assert (who.subscription("vid").renews_on, who.subscription("vid").paid_fen) == (DEC7, 0)
    assert statement(who).amount_fen == 1500  # the statement credited none of the undone period's 15.00


# --- random histories -----------------------------------------------------------------------------------------

percents = st.integers(0, 100)  # of the fee: the API and the CSV take 0 <= paid_fen <= fee_fen
after_cancel = st.lists(st.one_of(
    st.tuples(st.just("report"), percents),  # the carrier reports what was paid for the statement's period
    st.tuples(st.just("report_other"), percents),  # ... or for another period
    st.tuples(st.just("post"), st.integers(1, 2000)),  # a payment made elsewhere, posted to the API
    st.tuples(st.just("jf"), st.just(0)),  # JF, Y, the code: a charge pending
    st.tuples(st.just("charge"), st.just(0)),  # the charge job runs
    st.tuples(st.just("hours"), st.integers(1, 8 * 24)),
    st.tuples(st.just("deadline"), st.just(0)),  # the deadline check
), max_size=12)


@dataclass
class Life:
    """A package cancelled within a period, living on through imports, payments, charges and its deadline. It notes
    what the oracle needs: the period and the cancel day, the largest total reported, what was paid to us, and what
    was escalated as overpaid."""

    policy: CarrierPolicy
    who: Subscriber
    now: datetime
    fee: int
    state: DialogState = field(default_factory=DialogState)
    cancelled_on: date | None = None
    period: tuple[date, date] | None = None
    reported_at_cancel: int = 0
    paid_to_us: int = 0
    overpaid: int = 0
    posted: int = 0

    def report(self, percent: int, renews_on: date | None = None) -> None:
        sub = self.who.subscription("vid")
        incoming = Subscriber(MSISDN, self.policy.key, "zh", (package(renews_on or sub.renews_on, self.fee,
                                                                      self.fee * percent // 100),))
        imported = receive(self.who, incoming, self.now)
        self.who = imported.subscriber
        self.overpaid += sum(c.overpaid_fen for c in imported.credits)

    def report_other(self, percent: int) -> None:
        self.report(percent, self.who.subscription("vid").renews_on + timedelta(days=31))

    def cancel(self) -> None:
        sub = self.who.subscription("vid")
        self.period, self.cancelled_on = period_bounds(sub.renews_on, sub.anchor_day), self.today()
        self.reported_at_cancel = sub.paid_fen
        for text in ("TD 1", "Y", CODE):
            self.state, self.who, _ = send(self.state, self.who, text, self.now, self.policy)
        assert self.who.subscription("vid").status == CANCELLED

    def post(self, amount: int) -> None:
        self.posted += 1
        self._settled(payments.record_payment(self.who, self.sid(), Payment(f"bank-{self.posted}", amount, self.now),
                                              self.policy, self.now))

    def jf(self, _: int) -> None:
        self.now += timedelta(minutes=13)  # within the code limits: one a minute, five an hour
        for text in ("JF", "Y", CODE):
            self.state, self.who, _ = send(self.state, self.who, text, self.now, self.policy)

    def charge(self, _: int) -> None:
        """The charge job: what was confirmed, no more than is owed; nothing once the charge is released."""
        statement = self.who.statement(self.sid())
        if statement is None or not statement.pending_reference:
            return
        amount = min(statement.pending_fen, statement.owed_fen)
        if amount <= 0:
            return
        payment = payments.receipt_payment(statement, statement.pending_reference, amount, self.now)
        self._settled(payments.record_payment(self.who, self.sid(), payment, self.policy, self.now, capped=False))

    def hours(self, count: int) -> None:
        self.now += timedelta(hours=count)

    def deadline(self, _: int) -> None:
        statement = self.who.statement(self.sid())
        if statement is not None and self.now >= statement.due_at:
            self.who = mark_overdue(self.who, self.policy, self.sid(), self.now)

    def _settled(self, settled: payments.Settled) -> None:
        if settled.outcome == payments.RECORDED and settled.subscriber is not None:
            self.who = settled.subscriber
            self.paid_to_us += settled.payment.amount_fen if settled.payment else 0
            self.overpaid += settled.overpaid_fen

    def sid(self) -> str:
        return statement(self.who).id

    def today(self) -> date:
        return self.now.astimezone(self.policy.tz).date()

    def cost(self) -> int:
        assert self.period is not None and self.cancelled_on is not None
        return period_cost_fen(self.policy, self.fee, self.period, self.cancelled_on)


def lived(policy: CarrierPolicy, start: datetime, fee: int, ours: bool, days_in: int, before: list[int]) -> Life:
    """Imported (and, if `ours`, renewed by us that day), `before` reported paid, cancelled `days_in` days on."""
    start = start.replace(tzinfo=SHANGHAI)
    renews_on = start.date() if ours else start.date() + timedelta(days=days_in + 1)
    life = Life(policy, receive(None, sent(package(renews_on, fee), policy), start).subscriber, start, fee)
    if ours:
        life.who = renew(life.who, "vid", renews_on, datetime.combine(renews_on, datetime.min.time(), SHANGHAI))
    life.now += timedelta(days=days_in if ours else 0)
    for percent in before:
        life.report(percent)
    life.cancel()
    return life


@settings(max_examples=300, deadline=None)
@given(policy=st.sampled_from([CMCC, CUCC, CTCC]), start=st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31)),
       fee=fees, ours=st.booleans(), days_in=st.integers(0, 27), before=st.lists(percents, max_size=3),
       after=after_cancel)
def test_what_is_asked_plus_what_the_carrier_reported_paid_never_exceeds_the_cost_but_as_an_escalated_overpayment(
    policy: CarrierPolicy, start: datetime, fee: int, ours: bool, days_in: int, before: list[int], after: list
) -> None:
    """For the period: what the subscriber still owes us (late fee included), plus what they paid us, plus what the
    carrier holds for it (what our line bills, which paid money pays; else the largest total reported paid) is at most
    its cost and late fee, except by what was escalated as overpaid and, for a period the carrier billed itself, what
    was reported paid beyond the cost before the cancel (the carrier's to refund, "One period, one bill")."""
    life = lived(policy, start, fee, ours, days_in, before)
    for op, arg in after:
        getattr(life, op)(arg)
        sub, owed = life.who.subscription("vid"), statement(life.who)
        lines = [c.billed_fen for c in life.who.charges]
        carrier = sum(lines) if ours else sub.paid_fen
        unbilled = 0 if ours else max(0, life.reported_at_cancel - life.cost())
        asked = carrier + life.paid_to_us + owed.owed_fen
        assert asked <= life.cost() + owed.late_fee_fen + life.overpaid + unbilled, (op, arg, life.who)
        assert owed.late_fee_fen <= late_fee_fen(policy, owed.amount_fen)  # one carrier fee at most
        if ours:
            assert not any(p.reference.startswith(REFERENCE_PREFIX) for p in owed.payments), "the line's, not ours"
    credits = [p for p in statement(life.who).payments if p.reference.startswith(REFERENCE_PREFIX)]
    event(f"{'ours' if ours else 'imported'}, import credits {min(len(credits), 2)}, overpaid {bool(life.overpaid)}, "
          f"{statement(life.who).status}")


@settings(max_examples=300, deadline=None)
@given(policy=st.sampled_from([CMCC, CUCC, CTCC]), start=st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31)),
       fee=fees, ours=st.booleans(), days_in=st.integers(0, 27), first=percents, second=percents)
def test_an_import_after_the_cancel_leaves_the_statement_owing_what_it_would_have_before(
    policy: CarrierPolicy, start: datetime, fee: int, ours: bool, days_in: int, first: int, second: int
) -> None:
    """With nothing paid to us, and before the deadline, the order of a report and the cancel does not matter."""
    one_after = lived(policy, start, fee, ours, days_in, [first])
    one_after.report(second)
    both_before = lived(policy, start, fee, ours, days_in, [first, second])
    assert statement(one_after.who).owed_fen == statement(both_before.who).owed_fen
