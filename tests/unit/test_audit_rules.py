"""docs/billing.md as a carrier's auditor reads it, over random histories: what arrives between the quote and the code,
and renewals after an import moved the renewal day. Pure: the engine, imports and renewals composed as the gateway
composes them."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from carriers import POLICIES, CarrierPolicy, period_bounds
from dialogs.apply import apply
from dialogs.engine import Facts, Message, step
from dialogs.imports import merge
from dialogs.model import CANCELLED, DialogState, Subscriber, Subscription
from dialogs.renewal import renew
from gateway.state import audit
from tests.support.imported import fees

MSISDN = "+8613800138000"
CODE = "424242"
SHANGHAI = POLICIES["cmcc"].tz
policies = st.sampled_from([POLICIES["cmcc"], POLICIES["cucc"], POLICIES["ctcc"]])
moments = st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31)).map(lambda d: d.replace(tzinfo=SHANGHAI))


@st.composite
def imports(draw: st.DrawFn, today: date) -> Subscription:
    """A record as the API validates it: any fee, paid 0..fee, a renewal day around today."""
    fee = draw(fees)
    renews_on = today + timedelta(days=draw(st.integers(-40, 40)))
    return Subscription("vid", "视频会员", "SPHY", fee, renews_on, paid_fen=draw(st.integers(0, fee)))


def send(state: DialogState, who: Subscriber, text: str, now: datetime, policy: CarrierPolicy):
    state, effects = step(state, Message(text), Facts(who, policy, b"audit", CODE), now)
    return state, apply(who, effects, now)


def owed(policy: CarrierPolicy, sub: Subscription, period: tuple[date, date], day: date) -> int:
    """The oracle for a period with no charge line: its cost up to `day`, less what was paid towards it."""
    start, end = period
    used, length = min(max((day - start).days + 1, 0), (end - start).days), (end - start).days
    cost = (sub.fee_fen if used else 0) if policy.proration == "month" else -(-sub.fee_fen * used // length)
    paid = sub.paid_fen if sub.renews_on == end else 0
    return max(cost - paid, 0)


@settings(max_examples=200, deadline=None)
@given(policy=policies, quote_at=moments, wait=st.integers(0, 299), data=st.data())
def test_the_code_bills_the_quoted_period_for_no_more_than_quoted_and_credits_what_arrived_since(
    policy: CarrierPolicy, quote_at: datetime, wait: int, data: st.DataObject
) -> None:
    today = quote_at.date()
    who = merge(None, Subscriber(MSISDN, policy.key, "zh", (data.draw(imports(today)),)), quote_at)
    before = who.subscription("vid")
    period = period_bounds(before.renews_on, before.anchor_day)
    state, who = send(DialogState(), who, "TD 1", quote_at, policy)
    state, who = send(state, who, "Y", quote_at, policy)
    quoted = owed(policy, before, period, today)
    assert state.amounts == (quoted,)

    code_at = quote_at + timedelta(seconds=wait)
    who = merge(who, Subscriber(MSISDN, policy.key, "zh", (data.draw(imports(today)),)), code_at)  # the import
    between = who.subscription("vid")
    _, who = send(state, who, CODE, code_at, policy)

    assert who.subscription("vid").status == CANCELLED
    [statement] = who.statements
    assert statement.id == f"{MSISDN[1:]}-vid-{period[0]:%Y%m%d}"  # the quoted period, under its own start
    assert statement.amount_fen == min(quoted, owed(policy, between, period, today))


# --- no day is billed on two lines ------------------------------------------------------------------------------


def renewed(who: Subscriber, now: datetime, trail: list[str] | None = None) -> Subscriber:
    """The renewal job, on time, for every renewal due by `now`, one period at a time; what each commit records in
    the audit trail appended to `trail`."""
    while (sub := who.subscription("vid")).active and now >= datetime.combine(sub.renews_on, time(), SHANGHAI):
        after = renew(who, "vid", sub.renews_on, now)
        assert renew(after, "vid", sub.renews_on, now) == after  # replayed: nothing more to charge or record
        entry = audit.charged(who, after)
        (trail if trail is not None else []).extend(entry["changes"] if entry else [])
        who = after
    return who


def cancelled(who: Subscriber, now: datetime, wait: int, policy: CarrierPolicy, trail: list[str] | None = None
              ) -> Subscriber:
    """TD 1 and Y at `now`, the renewal job if a midnight passes, and the code `wait` seconds later."""
    state, who = send(DialogState(), who, "TD 1", now, policy)
    state, who = send(state, who, "Y", now, policy)
    code_at = now + timedelta(seconds=wait)
    return send(state, renewed(who, code_at, trail), CODE, code_at, policy)[1]


history = st.lists(st.one_of(
    st.tuples(st.just("days"), st.integers(1, 45)),  # days go by, the renewal job runs on time
    st.tuples(st.just("import"), st.integers(-40, 40)),  # the carrier sends a renewal day around today
    st.tuples(st.just("cancel"), st.integers(0, 299)),
), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(policy=policies, start=moments, fee=fees, first=st.integers(-40, 40), operations=history)
def test_over_any_history_of_imports_and_renewals_no_day_is_billed_on_two_lines(
    policy: CarrierPolicy, start: datetime, fee: int, first: int, operations: list
) -> None:
    now = start

    def sent(shift: int) -> Subscriber:
        sub = Subscription("vid", "视频会员", "SPHY", fee, now.date() + timedelta(days=shift))
        return Subscriber(MSISDN, policy.key, "zh", (sub,))

    who, trail = merge(None, sent(first), now), []
    for op, arg in operations:
        if op == "days":
            now += timedelta(days=arg)
            who = renewed(who, now, trail)
        elif op == "import":
            who = merge(who, sent(arg), now)
        elif who.subscription("vid").active:
            who = cancelled(who, now, arg, policy, trail)
            now += timedelta(seconds=arg)
        billed = [(c.period_start, c.period_end) for c in who.charges if c.billed_fen]
        assert all(a[1] <= b[0] or b[1] <= a[0] for a, b in combinations(billed, 2)), who.charges
        assert all(0 <= c.credited_fen <= c.amount_fen for c in who.charges)
    # Each line the renewal job wrote is in the audit trail once (docs/billing.md, One period, one bill).
    written = sorted(c.split(" to ")[0] for c in trail if "(cut from" not in c)
    assert written == sorted(f"charge vid {c.period_start}" for c in who.charges)
