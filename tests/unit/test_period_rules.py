"""docs/billing.md "Periods and proration", "Deadlines" and "One period, one bill", as rules over random dates and
random histories. Pure: the engine, imports and renewals composed as the gateway composes them."""

from __future__ import annotations

import calendar
import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from carriers import POLICIES, CarrierPolicy, next_renewal, period_bounds, period_cost_fen, renewal_after
from carriers import settlement_deadline as rule_deadline
from dialogs import codes
from dialogs.apply import apply
from dialogs.engine import Facts, Message, statement_for, step
from dialogs.imports import merge
from dialogs.model import CANCELLED, CONFIRMING, PAID, Charge, DialogState, Subscriber, Subscription
from dialogs.renewal import renew
from gateway.state import codec
from tests.support.imported import fees

MSISDN = "+8613800138000"
CODE = "424242"
CMCC, CUCC, CTCC = POLICIES["cmcc"], POLICIES["cucc"], POLICIES["ctcc"]
SHANGHAI = CMCC.tz


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


def someone(*subs: Subscription, carrier: str = "cmcc", charges: tuple[Charge, ...] = ()) -> Subscriber:
    return Subscriber(MSISDN, carrier, "zh", subs, charges=charges)


def package(renews_on: date, fee: int = 1500, **kw: object) -> Subscription:
    return Subscription("vid", "视频会员", "SPHY", fee, renews_on, **kw)


def facts(who: Subscriber, policy: CarrierPolicy = CMCC) -> Facts:
    return Facts(subscriber=who, policy=policy, secret=b"rules", fresh_code=CODE)


def send(state: DialogState, who: Subscriber, text: str, now: datetime, policy: CarrierPolicy = CMCC):
    """One message as the gateway runs it: a step, then its effects folded into the record."""
    state, effects = step(state, Message(text), facts(who, policy), now)
    return state, apply(who, effects, now)


def cancel(who: Subscriber, quote_at: datetime, code_at: datetime, policy: CarrierPolicy = CMCC,
           between=lambda who: who, yes_at: datetime | None = None) -> Subscriber:
    """TD 1 at `quote_at`, Y then or at `yes_at`, then `between` (a renewal, say), then the code at `code_at`."""
    state, who = send(DialogState(), who, "TD 1", quote_at, policy)
    state, who = send(state, who, "Y", yes_at or quote_at, policy)
    _, who = send(state, between(who), CODE, code_at, policy)
    assert who.subscription("vid").status == CANCELLED
    return who


# --- periods keep their anchor day ----------------------------------------------------------------------------

anchors = st.integers(1, 31)
days = st.dates(date(1999, 1, 1), date(2101, 12, 31))  # leap years, 2000 among them, and a century that is not


def anchored(year: int, month: int, anchor: int) -> date:
    """The oracle: the anchor day of a month, or its last day when the month is shorter."""
    return date(year, month, min(anchor, calendar.monthrange(year, month)[1]))


def month_after(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def test_a_31st_package_renews_on_each_months_last_day_and_comes_back_to_the_31st() -> None:
    dates, day = [], date(2027, 1, 31)
    for _ in range(4):
        day = next_renewal(day, 31)
        dates.append(day)
    assert dates == [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31)]
    assert next_renewal(date(2028, 1, 31), 31) == date(2028, 2, 29)
    assert next_renewal(date(2028, 2, 29), 31) == date(2028, 3, 31)


@settings(deadline=None)
@given(anchor=anchors, start=days, count=st.integers(1, 40))
def test_renewals_fall_on_the_anchor_day_of_each_following_month(anchor: int, start: date, count: int) -> None:
    day = anchored(start.year, start.month, anchor)
    year, month = start.year, start.month
    for _ in range(count):
        day = next_renewal(day, anchor)
        year, month = month_after(year, month)
        assert day == anchored(year, month, anchor)


@settings(deadline=None)
@given(anchor=anchors, day=days)
def test_the_renewal_after_a_day_is_the_first_anchored_date_after_it(anchor: int, day: date) -> None:
    after = renewal_after(anchor, day)
    assert after > day
    assert after == anchored(after.year, after.month, anchor)
    start, end = period_bounds(after, anchor)
    assert end == after and start <= day  # no anchored date between `day` and the renewal after it


@settings(deadline=None)
@given(anchor=anchors, day=days)
def test_a_period_runs_from_one_anchored_date_to_the_next(anchor: int, day: date) -> None:
    end = anchored(day.year, day.month, anchor)
    start, same_end = period_bounds(end, anchor)
    assert same_end == end and 28 <= (end - start).days <= 31
    assert start == anchored(start.year, start.month, anchor) and next_renewal(start, anchor) == end


def renewal_job(who: Subscriber, now: datetime) -> Subscriber:
    """The renewal job for every renewal due by `now` (at 00:00 local on its day), one period at a time."""
    while (sub := who.subscription("vid")).renews_on <= now.astimezone(SHANGHAI).date():
        who = renew(who, "vid", sub.renews_on, now)
    return who


@settings(deadline=None)
@given(anchor=anchors, first=days, later=st.integers(0, 400), paid=st.integers(0, 1500))
def test_the_renewal_job_and_an_imports_roll_forward_land_on_the_same_day(
    anchor: int, first: date, later: int, paid: int
) -> None:
    """Renewing period by period from an anchored date, and importing that date late, agree on the next renewal."""
    renews_on = anchored(first.year, first.month, anchor)
    today = renews_on + timedelta(days=later)
    now = local(today.year, today.month, today.day, 12)
    renewed = renewal_job(someone(package(renews_on, anchor_day=anchor)), now)
    stored = someone(package(period_bounds(renews_on, anchor)[0], anchor_day=anchor))  # a period before
    imported = merge(stored, someone(package(renews_on, paid_fen=paid)), now)
    if later:
        assert imported.subscription("vid").renews_on > today and imported.charges == ()  # rolled, not renewed
    imported = renewal_job(imported, now)  # a date today is renewed today
    assert renewed.subscription("vid").renews_on == imported.subscription("vid").renews_on
    assert imported.subscription("vid").anchor_day == anchor


def test_an_import_on_the_stored_cycle_keeps_the_anchor_and_any_other_date_starts_a_new_one() -> None:
    now = local(2027, 2, 10, 12)
    stored = someone(package(date(2027, 2, 28), anchor_day=31))
    assert merge(stored, someone(package(date(2027, 2, 28))), now).subscription("vid").anchor_day == 31
    assert merge(stored, someone(package(date(2027, 4, 30))), now).subscription("vid").anchor_day == 31
    assert merge(stored, someone(package(date(2027, 2, 27))), now).subscription("vid").anchor_day == 27
    assert merge(None, someone(package(date(2027, 2, 28))), now).subscription("vid").anchor_day == 28


def test_the_anchor_survives_being_stored_and_old_records_take_their_renewal_day() -> None:
    sub = package(date(2027, 2, 28), anchor_day=31)
    stored = codec.subscriber_from_json(codec.subscriber_to_json(someone(sub)))
    assert stored.subscription("vid") == sub
    old = '{"msisdn":"+8613800138000","subscriptions":[{"id":"vid","name":"v","service_code":"S","fee_fen":1500,' \
          '"renews_on":"2027-02-28","status":"active","paid_fen":0,"cancelled_at":null}],' \
          '"charges":[{"subscription_id":"vid","period_start":"2027-01-28","amount_fen":1500,' \
          '"charged_at":"2027-01-28T00:00:00+08:00"}]}'
    restored = codec.subscriber_from_json(old)
    assert restored.subscription("vid").anchor_day == 28
    line = restored.charges[0]
    assert (line.period_end, line.credited_fen, line.statement_id) == (None, 0, "")


# --- proration over the real period ---------------------------------------------------------------------------


def test_cancelling_a_31st_package_on_its_renewal_day_bills_one_day_of_a_28_day_period() -> None:
    """Issue 9, item 5: 31.00/month renewed 31 Jan (now renewing 28 Feb) and cancelled 31 Jan quoted 4.00."""
    sub = package(date(2027, 2, 28), fee=3100, anchor_day=31)
    assert statement_for(facts(someone(sub)), sub, local(2027, 1, 31, 10)).amount_fen == 111  # ceil(3100 / 28)


@settings(deadline=None)
@given(anchor=anchors, day=days, fee=fees, used=st.integers(-3, 35))
def test_a_cancelled_period_costs_its_days_used_over_its_real_length(anchor: int, day: date, fee: int, used: int):
    start, end = period_bounds(anchored(day.year, day.month, anchor), anchor)
    length = (end - start).days
    cancelled_on = start + timedelta(days=used - 1)
    expected = -(-fee * min(max(used, 0), length) // length)
    assert period_cost_fen(CMCC, fee, (start, end), cancelled_on) == expected
    assert period_cost_fen(CUCC, fee, (start, end), cancelled_on) == (fee if used > 0 else 0)  # the whole month


# --- deadlines: the later of the quoted one and the rule at completion ------------------------------------------


def test_a_code_after_midnight_is_due_by_the_rule_applied_at_completion() -> None:
    """Issue 9, item 4: TD 1 at 23:58 on 25 Nov, code at 00:01 on 26 Nov, China Mobile: due 3 Dec 23:59:59."""
    who = cancel(someone(package(date(2026, 12, 7))), local(2026, 11, 25, 23, 58), local(2026, 11, 26, 0, 1))
    statement = who.statements[0]
    assert statement.due_at == local(2026, 12, 3, 23, 59, 59)
    assert statement.amount_fen == 950  # as quoted: 19 of 30 days, the quote's day


def test_unicom_confirmed_at_10_08_is_due_at_10_08_the_next_day() -> None:
    who = someone(package(date(2026, 12, 7)), carrier="cucc")
    who = cancel(who, local(2026, 11, 25, 10), local(2026, 11, 25, 10, 8), CUCC, yes_at=local(2026, 11, 25, 10, 6))
    assert who.statements[0].due_at == local(2026, 11, 26, 10, 8)


@settings(max_examples=200, deadline=None)
@given(policy=st.sampled_from([CMCC, CUCC, CTCC]), quote=st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31)),
       delay=st.integers(0, 299))
def test_the_deadline_is_never_before_the_quoted_one_nor_the_rule_at_completion(
    policy: CarrierPolicy, quote: datetime, delay: int
) -> None:
    quote_at = quote.replace(tzinfo=SHANGHAI)
    code_at = quote_at + timedelta(seconds=delay)  # a code lives five minutes
    who = cancel(someone(package(quote_at.date() + timedelta(days=10)), carrier=policy.key), quote_at, code_at, policy)
    quoted = datetime.fromtimestamp(math.ceil(rule_deadline(policy, quote_at).timestamp()), UTC)  # kept in seconds
    assert who.statements[0].due_at == max(rule_deadline(policy, code_at), quoted)


# --- one period, one bill -------------------------------------------------------------------------------------

DEC7 = date(2026, 12, 7)


def renewed_on_dec_7(who: Subscriber) -> Subscriber:
    return renew(who, "vid", DEC7, local(2026, 12, 7))


def asked(who: Subscriber, period_start: date) -> int:
    """What the carrier may still bill on the period's charge lines plus what its statements ask for it."""
    charged = sum(c.billed_fen for c in who.charges if c.period_start == period_start)
    stated = sum(s.amount_fen for s in who.statements if s.id.endswith(f"-{period_start:%Y%m%d}"))
    return charged + stated


def test_a_cancel_after_a_renewal_re_rates_the_charged_period_and_asks_nothing_more() -> None:
    """Issue 9, item 6: the renewal's 15.00 charge line and a cancel statement billed the same period twice."""
    who = renewed_on_dec_7(someone(package(DEC7)))
    who = cancel(who, local(2026, 12, 25, 10), local(2026, 12, 25, 10, 1))
    cost = -(-1500 * 19 // 31)  # 7 Dec - 7 Jan: 31 days, 19 used
    assert who.statements[0].amount_fen == 0 and who.statements[0].status == PAID
    assert who.charges == (Charge("vid", DEC7, 1500, local(2026, 12, 7), date(2027, 1, 7), credited_fen=1500 - cost,
                                  statement_id=who.statements[0].id),)
    assert asked(who, DEC7) == cost


def test_a_renewal_between_yes_and_the_code_is_undone() -> None:
    """Issue 9, item 6: Y at 23:58, the renewal at 00:00, the code at 00:01 left a 15.00 charge and a 15.00 bill."""
    who = cancel(someone(package(DEC7)), local(2026, 12, 6, 23, 58), local(2026, 12, 7, 0, 1),
                 between=renewed_on_dec_7)
    statement = who.statements[0]
    assert (statement.id, statement.amount_fen) == ("8613800138000-vid-20261107", 1500)  # 30 of 30 days, as quoted
    assert [(c.period_start, c.credited_fen, c.statement_id) for c in who.charges] == [(DEC7, 1500, statement.id)]
    assert asked(who, DEC7) == 0
    assert who.subscription("vid").renews_on == DEC7  # back to the end of the period billed


def test_what_was_paid_towards_the_period_is_credited_on_the_statement() -> None:
    who = cancel(someone(package(DEC7, paid_fen=700)), local(2026, 11, 25, 10), local(2026, 11, 25, 10, 1))
    assert who.statements[0].amount_fen == 950 - 700


def test_a_plan_ordered_with_bg_gets_its_first_periods_charge_line() -> None:
    now = local(2027, 1, 31, 10)
    state, who = send(DialogState(), someone(), "BG", now)
    state, who = send(state, who, "1", now)
    _, who = send(state, who, "Y", now)
    sub = who.subscriptions[0]
    assert (sub.renews_on, sub.anchor_day) == (date(2027, 2, 28), 31)
    assert who.charges == (Charge(sub.id, date(2027, 1, 31), sub.fee_fen, now, date(2027, 2, 28)),)


# --- random histories -----------------------------------------------------------------------------------------

messages = st.sampled_from(["TD 1", "Y", CODE, "N", "0000"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("send"), messages),
        # TD 1, Y after a few seconds, the renewal job or not, and the code a little later: a whole cancel.
        st.tuples(st.just("cancel"), st.tuples(st.integers(0, 200), st.booleans(), st.integers(0, 200))),
        st.tuples(st.just("wait"), st.integers(0, 6 * 60)),  # seconds: inside a code's five minutes, or not
        st.tuples(st.just("days"), st.integers(1, 45)),
        st.tuples(st.just("to_renewal"), st.integers(0, 2 * 60)),  # seconds before the next renewal's midnight
        st.just(("renew", 0)),  # the renewal job, after waits that may have left it late
        st.tuples(st.just("import"), st.integers(-40, 40)),
        st.tuples(st.just("import_paid"), st.integers(0, 100)),  # percent of the fee, for the current period
    ),
    min_size=1,
    max_size=14,
)


@dataclass
class History:
    """One package living through random operations, run as the gateway runs them, noting what the oracle needs:
    each charge line's period as the renewal that wrote it set it, and the period and day of the latest quote."""

    policy: CarrierPolicy
    who: Subscriber
    now: datetime
    fee: int
    state: DialogState = field(default_factory=DialogState)
    charged: dict[date, tuple[date, date]] = field(default_factory=dict)
    quote: tuple[date, tuple[date, date]] | None = None  # the latest quote's local day, and the period it was for

    def run(self, op: str, arg) -> None:
        getattr(self, op)(arg)

    def send(self, text: str) -> None:
        before = self.who.subscription("vid")
        self.state, self.who = send(self.state, self.who, text, self.now, self.policy)
        if text == "TD 1" and self.state.stage == CONFIRMING:
            self.quote = (self.today(), period_bounds(before.renews_on, before.anchor_day))

    def cancel(self, plan: tuple[int, bool, int]) -> None:
        before_yes, renewal_job, before_code = plan
        self.send("TD 1")
        self.wait(before_yes)
        self.send("Y")
        self.wait(before_code)
        if renewal_job:
            self.renew(0)
        self.send(CODE)

    def today(self) -> date:
        return self.now.astimezone(SHANGHAI).date()

    def wait(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    def days(self, count: int) -> None:
        """Days go by, and the renewal job runs on time as they do."""
        self.now += timedelta(days=count)
        self.renew(0)

    def to_renewal(self, seconds: int) -> None:
        at = datetime.combine(self.who.subscription("vid").renews_on, time(), SHANGHAI) - timedelta(seconds=seconds)
        self.now = max(self.now, at)

    def renew(self, _: int) -> None:
        """The renewal job, run at or after a renewal's midnight, one period at a time (as its reminders fall due)."""
        while (sub := self.who.subscription("vid")).active and self.now >= datetime.combine(
                sub.renews_on, time(), SHANGHAI):
            self.who = renew(self.who, "vid", sub.renews_on, self.now)
            if not any(start == sub.renews_on for start in self.charged):
                self.charged[sub.renews_on] = (sub.renews_on, self.who.subscription("vid").renews_on)

    def import_(self, shift: int, paid: int = 0) -> None:
        incoming = package(self.today() + timedelta(days=shift), self.fee, paid_fen=paid)
        self.who = merge(self.who, Subscriber(MSISDN, self.policy.key, "zh", (incoming,)), self.now)

    def import_paid(self, percent: int) -> None:
        """The carrier's back office reports what was paid towards the current period."""
        sub = self.who.subscription("vid")
        incoming = replace(sub, paid_fen=self.fee * percent // 100)
        self.who = merge(self.who, Subscriber(MSISDN, self.policy.key, "zh", (incoming,)), self.now)

    def periods(self) -> set[tuple[date, date]]:
        """Every period a charge line or a statement bills."""
        periods = {self.charged[c.period_start] for c in self.who.charges}
        for statement in self.who.statements:
            assert self.quote is not None
            quoted = self.quote[1]
            assert statement.id.endswith(f"-{quoted[0]:%Y%m%d}"), "the statement bills another period than quoted"
            periods.add(quoted)
        return periods

    def cost(self, period: tuple[date, date]) -> int:
        """The oracle: the fee for a period run to its end; re-rated to the quote's day for the period it falls in;
        nothing for a period begun after it, or a renewal after the quote."""
        if self.who.subscription("vid").active:
            return self.fee
        assert self.quote is not None
        (start, end), (day, quoted) = period, self.quote
        if start > day or start >= quoted[1]:
            return 0
        if end <= day or self.policy.proration == "month":
            return self.fee
        return -(-self.fee * ((day - start).days + 1) // (end - start).days)

    def asked(self) -> int:
        """What the carrier may still bill on the package's charge lines plus what its statements ask."""
        return sum(c.billed_fen for c in self.who.charges) + sum(s.amount_fen for s in self.who.statements)


@settings(max_examples=300, deadline=None)
@given(policy=st.sampled_from([CMCC, CUCC, CTCC]), start=st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31)),
       fee=fees, shift=st.integers(-40, 40), paid=st.integers(0, 100), history=operations)
def test_over_any_history_a_package_is_never_asked_more_than_its_periods_cost(
    policy: CarrierPolicy, start: datetime, fee: int, shift: int, paid: int, history: list
) -> None:
    life = History(policy, someone(carrier=policy.key), start.replace(tzinfo=SHANGHAI), fee)
    life.import_(shift, fee * paid // 100)
    for op, arg in history:
        life.run("import_" if op == "import" else op, arg)
        starts = [c.period_start for c in life.who.charges]
        assert len(starts) == len(set(starts)), "a period was charged twice"
        assert len(life.who.statements) <= 1, "a package was billed on cancelling twice"
        for line in life.who.charges:
            if life.cost(life.charged[line.period_start]) == 0:
                assert line.billed_fen == 0, f"{line} is for a period begun after the cancel"
        assert life.asked() <= sum(life.cost(p) for p in life.periods()), life.who
    # Shown by --hypothesis-show-statistics: that histories do renew, cancel, and cancel a charged period.
    credited = {"undone" if c.credited_fen == c.amount_fen else "re-rated" for c in life.who.charges if c.statement_id}
    event(f"charges {min(len(life.who.charges), 3)}, statements {len(life.who.statements)}, {sorted(credited)}")


def test_a_flow_confirmed_by_the_previous_release_completes_on_the_current_period() -> None:
    """A dialog stored before quotes named their period (in flight during a deploy) still bills what it quoted."""
    quoted_due = local(2026, 12, 2, 23, 59, 59)
    now = local(2026, 11, 25, 10)
    raw = json.dumps({
        "stage": "verifying", "selected": ["vid"], "amounts": [950], "due_ats": [int(quoted_due.timestamp())],
        "code_hash": codes.hash_code(b"rules", MSISDN, CODE), "code_expires_at": int(now.timestamp()) + 60,
        "codes_sent": [int(now.timestamp()) - 60], "updated_at": int(now.timestamp()) - 60, "lang": "zh",
    })
    _, who = send(codec.dialog_from_json(raw), someone(package(DEC7)), CODE, now)
    statement = who.statements[0]
    assert (statement.id, statement.amount_fen, statement.due_at) == ("8613800138000-vid-20261107", 950, quoted_due)
