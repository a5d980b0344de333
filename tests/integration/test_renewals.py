"""Renewals on `renews_on`, renewal reminders, and a cancelled package never renewing, over random histories too."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dialogs.reminders import RENEW, RENEWAL, Reminder
from gateway.jobs import renewals, sweeper
from gateway.state import audit
from gateway.state import due as due_index
from tests.support.phone import Phone
from tests.support.reminders import CMCC, CTCC, SHANGHAI, cancel, due, local, outbox, put, run_due

VID = ("vid", "视频会员", 1500, "2026-12-07")
MUSIC = ("music", "音乐包", 1000, "2026-12-07")


@pytest.fixture
def phone(client, app) -> Phone:
    put(client, CMCC, "cmcc", "zh", VID, MUSIC)
    return Phone(client, app, CMCC)


def subscription(phone: Phone, sub_id: str) -> dict:
    return next(s for s in phone.subscriber()["subscriptions"] if s["id"] == sub_id)


def renewal_reminders(texts: list[str]) -> list[str]:
    return [t for t in texts if "续订" in t or "renews" in t]


def test_an_active_package_renews_on_its_day_with_a_charge_line(phone, app, clock) -> None:
    clock.now = local(2026, 12, 6, 23, 59)
    run_due(app)
    assert subscription(phone, "vid")["renews_on"] == "2026-12-07"
    clock.now = local(2026, 12, 7, 0, 0)
    run_due(app)
    vid = subscription(phone, "vid")
    assert (vid["renews_on"], vid["paid_fen"], vid["status"]) == ("2027-01-07", 0, "active")
    charges = [(c["subscription_id"], c["period_start"], c["amount_fen"]) for c in phone.subscriber()["charges"]]
    assert sorted(charges) == [("music", "2026-12-07", 1000), ("vid", "2026-12-07", 1500)]
    # The next period's reminders and renewal are scheduled.
    assert due(app, RENEW)[f"n|{CMCC}|vid|20270107|0"] == local(2027, 1, 7)
    next_period = {at for m, at in due(app, RENEWAL).items() if "|20270107|" in m}
    assert sorted(next_period) == [local(2027, 1, 4, 8), local(2027, 1, 6, 8)]


def test_each_renewal_charge_is_in_the_audit_trail_once(phone, app, clock) -> None:
    """docs/billing.md, One period, one bill: the renewal's charge line is money the carrier bills; it once left no
    trace in the subscriber's trail (only the cancel's statement did)."""
    clock.now = local(2026, 12, 7, 0, 0)
    run_due(app)
    renewals.handle(phone.runtime, Reminder(RENEW, CMCC, "vid", "20261207"))  # replayed: charges nothing more
    trail = audit.read_all(phone.runtime.redis, phone.runtime.keys.audit(CMCC))
    charged = sorted(c for e in trail if e["kind"] == audit.CHANGE for c in e["changes"])
    assert charged == ["charge music 2026-12-07 to 2027-01-07: CNY 10.00",
                       "charge vid 2026-12-07 to 2027-01-07: CNY 15.00"]


@pytest.mark.parametrize(("renews_on", "rolled_to"), [
    ("2026-08-07", "2026-12-07"),  # months gone by
    ("2026-11-24", "2026-12-24"),  # yesterday
    ("2026-01-31", "2026-11-30"),  # a month-end cycle, clamped to November's last day
])
def test_an_import_with_a_renewal_date_gone_by_moves_to_the_next_one_without_charges(
    client, app, clock, renews_on: str, rolled_to: str
) -> None:
    saved = put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, renews_on))
    assert saved["subscriptions"][0]["renews_on"] == rolled_to
    run_due(app)
    record = Phone(client, app, CMCC).subscriber()
    assert (record["charges"], record["subscriptions"][0]["renews_on"]) == ([], rolled_to)
    assert date.fromisoformat(rolled_to) > clock.now.astimezone(SHANGHAI).date()


def test_an_import_dated_today_renews_today(client, app) -> None:
    saved = put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-11-25"))
    assert saved["subscriptions"][0]["renews_on"] == "2026-11-25"
    run_due(app)
    record = Phone(client, app, CMCC).subscriber()
    assert [(c["period_start"], c["amount_fen"]) for c in record["charges"]] == [("2026-11-25", 1500)]


def test_a_replayed_renewal_changes_nothing(phone, app, clock) -> None:
    clock.now = local(2026, 12, 7, 0, 0)
    run_due(app)
    before = phone.subscriber()
    replay = due_index.member(Reminder(RENEW, CMCC, "vid", "20261207"))
    assert sweeper.send_batch([replay], 0) == {"renewed": 1}
    assert phone.subscriber() == before


def test_renewal_reminders_say_when_how_much_and_how_to_cancel(phone, client, app, clock) -> None:
    cloud, video = ("cloud", "Cloud Drive", 800, "2026-12-07"), ("vid", "Video VIP", 1500, "2026-12-07")
    put(client, CTCC, "ctcc", "en", cloud, video)
    clock.now = local(2026, 12, 4, 8)
    run_due(app)
    assert sorted(renewal_reminders(outbox(app, CMCC))) == [
        "【中国移动】视频会员将于12月7日续订15.00元，回TD 1退订。回R拒收",
        "【中国移动】音乐包将于12月7日续订10.00元，回TD 2退订。回R拒收",
    ]
    assert sorted(renewal_reminders(outbox(app, CTCC))) == [
        "【中国电信】Cloud Drive renews 07 Dec for CNY 8.00. Reply TD 1 to cancel. Reply STOP to opt out.",
        "【中国电信】Video VIP renews 07 Dec for CNY 15.00. Reply TD 2 to cancel. Reply STOP to opt out.",
    ]


def test_a_cancelled_package_gets_no_renewal_reminder_and_never_renews(phone, client, app, clock) -> None:
    cancel(phone, 1)
    clock.now = local(2026, 12, 4, 8)
    run_due(app)
    # 音乐包 is now the first package TD lists.
    assert renewal_reminders(outbox(app, CMCC)) == ["【中国移动】音乐包将于12月7日续订10.00元，回TD 1退订。回R拒收"]
    put(client, CMCC, "cmcc", "zh", VID, MUSIC)  # the carrier's next import still lists it
    clock.now = local(2027, 3, 1)
    for _ in range(4):
        run_due(app)
    vid = subscription(phone, "vid")
    assert (vid["status"], vid["renews_on"]) == ("cancelled", "2026-12-07")
    assert {c["subscription_id"] for c in phone.subscriber()["charges"]} == {"music"}


def test_an_import_that_moves_the_renewal_day_moves_its_reminders(phone, client, app, clock) -> None:
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-20"))
    clock.now = local(2026, 12, 7, 8)
    run_due(app)
    assert [t for t in renewal_reminders(outbox(app, CMCC)) if "视频会员" in t] == []
    assert subscription(phone, "vid")["renews_on"] == "2026-12-20"
    assert [c["subscription_id"] for c in phone.subscriber()["charges"]] == ["music"]
    clock.now = local(2026, 12, 17, 8)
    run_due(app)
    assert "【中国移动】视频会员将于12月20日续订15.00元，回TD 1退订。回R拒收" in outbox(app, CMCC)
    clock.now = local(2026, 12, 20)
    run_due(app)
    assert subscription(phone, "vid")["renews_on"] == "2027-01-20"


# --- random histories -----------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("cancel"), st.integers(1, 2)),
        st.tuples(st.just("advance"), st.integers(1, 40)),
        st.tuples(st.just("import"), st.integers(-40, 40)),
        st.tuples(st.just("replay"), st.integers(0, 1000)),
        st.tuples(st.just("replay_renewals"), st.just(0)),
    ),
    min_size=1,
    max_size=8,
)


class History:
    """A subscriber living through `operations`, with every webhook kept for replaying."""

    def __init__(self, client, app, clock) -> None:
        self.app, self.clock = app, clock
        self.phone = Phone(client, app, CMCC)
        self.client = client
        self.posted: list[tuple[str, str]] = []
        self.periods: set[tuple[str, str]] = set()

    def send(self, text: str) -> None:
        sid = f"SMh{len(self.posted):030d}"
        self.posted.append((sid, text))
        self.phone.send(text, sid)

    def run(self, op: str, arg: int) -> None:
        getattr(self, op)(arg)
        run_due(self.app)
        for sub in self.phone.subscriber()["subscriptions"]:
            self.periods.add((sub["id"], sub["renews_on"].replace("-", "")))

    def cancel(self, number: int) -> None:
        self.clock.advance(minutes=20)  # within the code-sending limits
        self.send(f"TD {number}")
        self.send("Y")
        self.send(self.phone.last_code())

    def advance(self, days: int) -> None:
        self.clock.advance(days=days)

    def import_(self, shift: int) -> None:
        renews = (self.clock().astimezone(SHANGHAI).date() + timedelta(days=shift)).isoformat()
        put(self.client, CMCC, "cmcc", "zh", (*VID[:3], renews), (*MUSIC[:3], renews))

    def replay(self, pick: int) -> None:
        if self.posted:
            sid, text = self.posted[pick % len(self.posted)]
            self.phone.send(text, sid)

    def replay_renewals(self, _: int) -> None:
        members = [due_index.member(Reminder(RENEW, CMCC, sub, period)) for sub, period in sorted(self.periods)]
        sweeper.send_batch(members, 0)


def check(subscriber: dict, cancelled_before: set[str]) -> None:
    charges = subscriber["charges"]
    periods = [(c["subscription_id"], c["period_start"]) for c in charges]
    assert len(periods) == len(set(periods)), "a period was charged twice"
    for sub in subscriber["subscriptions"]:
        if sub["id"] in cancelled_before:
            assert sub["status"] == "cancelled", "a cancelled package came back"
        if sub["status"] == "cancelled":
            cancelled_at = datetime.fromisoformat(sub["cancelled_at"])
            late = [c for c in charges if c["subscription_id"] == sub["id"]
                    and datetime.fromisoformat(c["charged_at"]) > cancelled_at]
            assert not late, f"{sub['id']} was charged after it was cancelled: {late}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=operations)
def test_a_cancelled_package_never_renews_nor_is_charged_after_any_history(client, app, clock, redis, history) -> None:
    redis.flushdb()
    clock.now = local(2026, 11, 25, 10)
    put(client, CMCC, "cmcc", "zh", VID, MUSIC)
    life = History(client, app, clock)
    cancelled: set[str] = set()
    for op, arg in history:
        life.run("import_" if op == "import" else op, arg)
        subscriber = life.phone.subscriber()
        check(subscriber, cancelled)
        cancelled |= {s["id"] for s in subscriber["subscriptions"] if s["status"] == "cancelled"}
    # Shown by --hypothesis-show-statistics: how many histories cancelled, and renewed, something.
    event(f"cancelled {len(cancelled)}, charges {len(subscriber['charges'])}")


def test_histories_do_renew_active_packages(client, app, clock) -> None:
    """The property above is not vacuous: the same machinery renews what is active."""
    put(client, CMCC, "cmcc", "zh", VID, MUSIC)
    clock.now = local(2027, 2, 8)
    for _ in range(3):
        run_due(app)
    phone = Phone(client, app, CMCC)
    assert subscription(phone, "vid")["renews_on"] == "2027-03-07"
    assert len(phone.subscriber()["charges"]) == 6
    assert date.fromisoformat(subscription(phone, "music")["renews_on"]) == date(2027, 3, 7)
