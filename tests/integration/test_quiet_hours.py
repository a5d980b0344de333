"""Quiet hours against a backlog (docs/reminders.md, issue 9 item 13): the sweeper and the sender each check them,
nothing goes out in quiet hours or after its deadline, and a reminder that can no longer be sent is counted."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import datetime, timedelta

import pytest

from dialogs.reminders import RENEWAL, SETTLE, Reminder
from gateway.delivery.pacing import Pacer
from gateway.jobs import sweeper
from gateway.jobs.reminders import message_id
from gateway.runtime import REMINDER_QUEUE
from gateway.state import due as due_index
from gateway.state.keys import OUTBOX, REMINDERS_MISSED
from tests.support.phone import Phone, api_headers
from tests.support.processes import wait_for, worker
from tests.support.reminders import CMCC, CUCC, SHANGHAI, cancel, due, local, outbox, put, run_due

REMINDER = "【中国联通】您的手机报结算单5.00元将于11月26日01:00到期，回JF缴费。回R拒收"
OVERDUE = "【中国联通】您的手机报结算单已逾期，待缴5.00元，回JF缴费。回R拒收"
MISSED = "no moment out of quiet hours before its deadline"  # why its message was skipped


@pytest.fixture
def phone(client, app) -> Phone:
    """China Unicom: settle within 24 hours of the cancel, reminders 12 and 2 hours before."""
    put(client, CUCC, "cucc", "zh", ("news", "手机报", 500, "2026-12-07"))
    return Phone(client, app, CUCC)


def cancel_at(phone: Phone, clock, at: datetime) -> Reminder:
    """Cancel at `at` and send the 12-hour reminder when due (12 hours later); return the 2-hour one."""
    clock.now = at
    cancel(phone)
    clock.now = at + timedelta(hours=12)
    run_due(phone.app)
    assert len(reminders_in(outbox(phone.app, CUCC))) == 1
    return Reminder(SETTLE, CUCC, phone.subscriber()["statements"][0]["id"], index=1)


def reminders_in(texts: list[str]) -> list[str]:
    return [t for t in texts if "到期" in t]


def overdue_in(texts: list[str]) -> list[str]:
    return [t for t in texts if "逾期" in t]


def as_scheduled_before(app, reminder: Reminder, at: datetime) -> None:
    """`reminder` due at `at`, as the rule before this one left it (21:59, a minute before quiet hours)."""
    runtime = app.extensions["tdbot"]
    due_index.schedule(runtime.redis, runtime.keys, [(reminder, at)])


def queue_for_the_sender(app) -> None:
    """One sweep and its batches: due reminders are made and wait in the queue for the sender (a backlog)."""
    runtime = app.extensions["tdbot"]
    sweeper.sweep(runtime)
    queue = runtime.queue(REMINDER_QUEUE)
    for job in queue.get_jobs():
        queue.remove(job)
        sweeper.send_batch(*job.args)


def missed(app) -> int:
    runtime = app.extensions["tdbot"]
    return int(runtime.redis.get(runtime.keys.shared(REMINDERS_MISSED)) or 0)


def message_of(app, reminder: Reminder) -> dict:
    runtime = app.extensions["tdbot"]
    stored = runtime.store.load_message(reminder.msisdn, message_id(reminder))
    return {"status": stored.status, "error": stored.error} if stored else {}


def test_a_reminder_brought_forward_before_quiet_hours_is_due_a_margin_before_they_begin(phone, app, clock) -> None:
    clock.now = local(2026, 11, 25, 1)
    cancel(phone)  # due 26 Nov 01:00; 2 h before is 23:00, quiet until 08:00, past the deadline
    assert sorted(due(app, SETTLE).values()) == [local(2026, 11, 25, 13), local(2026, 11, 25, 21, 30)]
    clock.now = local(2026, 11, 25, 21, 30)
    run_due(app)
    assert reminders_in(outbox(app, CUCC)) == [REMINDER, REMINDER]


def test_a_sweep_in_quiet_hours_lasting_past_the_deadline_sends_nothing_counts_it_and_the_overdue_notice_follows(
    phone, app, clock
) -> None:
    reminder = cancel_at(phone, clock, local(2026, 11, 25, 1))
    as_scheduled_before(app, reminder, local(2026, 11, 25, 21, 59))
    clock.now = local(2026, 11, 25, 22, 1)  # a backlog: the 21:59 reminder is swept at 22:01
    run_due(app)
    assert reminders_in(outbox(app, CUCC)) == [REMINDER]  # the 12-hour one, at 13:00
    assert due(app, SETTLE) == {}  # not deferred to 08:00, past its 01:00 deadline
    assert missed(app) == 1
    clock.now = local(2026, 11, 26, 1)
    run_due(app)
    clock.now = local(2026, 11, 26, 8)
    run_due(app)
    assert reminders_in(outbox(app, CUCC)) == [REMINDER]
    assert overdue_in(outbox(app, CUCC)) == [OVERDUE]


def test_a_sweep_in_quiet_hours_that_end_before_the_deadline_sends_at_their_end(phone, app, clock) -> None:
    reminder = cancel_at(phone, clock, local(2026, 11, 25, 8, 10))  # due 26 Nov 08:10
    as_scheduled_before(app, reminder, local(2026, 11, 25, 21, 59))
    clock.now = local(2026, 11, 25, 22, 1)
    run_due(app)
    assert len(reminders_in(outbox(app, CUCC))) == 1
    assert due(app, SETTLE)[due_index.member(reminder)] == local(2026, 11, 26, 8)
    clock.now = local(2026, 11, 26, 8)
    run_due(app)
    assert len(reminders_in(outbox(app, CUCC))) == 2
    assert missed(app) == 0


def test_a_reminder_reaching_the_sender_in_quiet_hours_lasting_past_the_deadline_is_not_sent(
    phone, app, clock
) -> None:
    reminder = cancel_at(phone, clock, local(2026, 11, 25, 1))
    as_scheduled_before(app, reminder, local(2026, 11, 25, 21, 59))
    clock.now = local(2026, 11, 25, 21, 59, 10)
    queue_for_the_sender(app)
    clock.now = local(2026, 11, 25, 22, 3)  # the sender gets to it at 22:03
    run_due(app)
    assert reminders_in(outbox(app, CUCC)) == [REMINDER]
    assert message_of(app, reminder) == {"status": "skipped", "error": MISSED}
    assert missed(app) == 1
    clock.now = local(2026, 11, 26, 8)
    run_due(app)
    assert reminders_in(outbox(app, CUCC)) == [REMINDER]
    assert overdue_in(outbox(app, CUCC)) == [OVERDUE]


def test_a_reminder_reaching_the_sender_in_quiet_hours_is_held_until_they_end_when_that_is_in_time(
    phone, app, clock
) -> None:
    reminder = cancel_at(phone, clock, local(2026, 11, 25, 8, 10))  # due 26 Nov 08:10
    as_scheduled_before(app, reminder, local(2026, 11, 25, 21, 59))
    clock.now = local(2026, 11, 25, 21, 59, 10)
    queue_for_the_sender(app)
    clock.now = local(2026, 11, 25, 22, 3)
    run_due(app)
    assert len(reminders_in(outbox(app, CUCC))) == 1
    assert message_of(app, reminder)["status"] == "queued"
    assert due(app, SETTLE)[due_index.member(reminder)] == local(2026, 11, 26, 8)
    clock.now = local(2026, 11, 26, 8)
    run_due(app)
    run_due(app)
    assert len(reminders_in(outbox(app, CUCC))) == 2
    assert message_of(app, reminder)["status"] == "sent"


def test_replies_and_verification_codes_are_never_held_by_quiet_hours(phone, app, clock) -> None:
    clock.now = local(2026, 11, 25, 23)
    assert "手机报" in phone.send("TD 1")
    phone.send("Y")
    assert phone.last_code()  # the code SMS went out at 23:00
    phone.send(phone.last_code())
    assert any("退订结果" in t for t in phone.inbox())  # and the confirmation


def held_overnight(phone: Phone, clock) -> Reminder:
    """The 2-hour reminder of a cancel at 08:10 reaches the sender at 22:03 and is held until 08:00."""
    reminder = cancel_at(phone, clock, local(2026, 11, 25, 8, 10))  # due 26 Nov 08:10
    as_scheduled_before(phone.app, reminder, local(2026, 11, 25, 21, 59))
    clock.now = local(2026, 11, 25, 21, 59, 10)
    queue_for_the_sender(phone.app)
    clock.now = local(2026, 11, 25, 22, 3)
    run_due(phone.app)
    assert message_of(phone.app, reminder)["status"] == "queued"
    return reminder


def pay(phone: Phone, amount_fen: int) -> None:
    statement = phone.subscriber()["statements"][0]
    paid = phone.client.post(
        f"/api/v1/statements/{statement['id']}/payments", json={"amount_fen": amount_fen, "reference": "bank-1"},
        headers=api_headers(),
    )
    assert paid.status_code == 200, paid.get_json()


def morning(phone: Phone, clock) -> list[str]:
    clock.now = local(2026, 11, 26, 8)
    run_due(phone.app)
    run_due(phone.app)
    return reminders_in(outbox(phone.app, CUCC))[1:]  # after the 12-hour one


def test_a_reminder_held_overnight_says_what_is_owed_in_the_morning(phone, app, clock) -> None:
    reminder = held_overnight(phone, clock)
    clock.now = local(2026, 11, 26, 2)
    pay(phone, 200)
    [sent] = morning(phone, clock)
    assert sent == REMINDER.replace("5.00", "3.00").replace("01:00", "08:10")
    runtime = app.extensions["tdbot"]
    assert runtime.store.load_message(CUCC, message_id(reminder)).text == sent
    # The audit trail shows what the phone got, after what was queued the evening before.
    trail = runtime.store.conversation(CUCC)
    audited = [m["text"] for e in trail for m in e.get("sent", []) if m["kind"] == "reminder"]
    assert audited[-1] == sent


@pytest.mark.parametrize("overnight", ["paid", "STOP"])
def test_a_reminder_held_overnight_with_nothing_left_to_say_is_skipped_not_left_queued(
    phone, app, clock, overnight
) -> None:
    reminder = held_overnight(phone, clock)
    clock.now = local(2026, 11, 26, 2)
    if overnight == "paid":
        pay(phone, 500)
    else:
        phone.send(overnight)
    assert morning(phone, clock) == []
    assert message_of(app, reminder) == {"status": "skipped", "error": "nothing left to say"}


def test_a_reminder_held_at_the_sender_costs_its_route_no_pacing_slot(phone, app, clock) -> None:
    runtime = app.extensions["tdbot"]
    reminder = cancel_at(phone, clock, local(2026, 11, 25, 8, 10))
    for name, route in runtime.routes.items():  # a long code: one segment a second
        runtime.routes[name] = dataclasses.replace(route, pacer=Pacer(runtime.redis, route.pacer.key, 1))
    as_scheduled_before(app, reminder, local(2026, 11, 25, 21, 59))
    clock.now = local(2026, 11, 25, 21, 59, 10)
    queue_for_the_sender(app)
    pacer = runtime.route(runtime.store.load_message(CUCC, message_id(reminder))).pacer
    runtime.redis.delete(pacer.key)  # the 12-hour reminder's slot is long past
    clock.now = local(2026, 11, 25, 22, 3)
    run_due(app)
    assert message_of(app, reminder)["status"] == "queued"
    assert pacer.book(1).wait == 0, "the held reminder took the next slot"


def test_a_renewal_reminder_held_overnight_names_the_package_by_its_number_in_the_morning(client, app, clock) -> None:
    """Held at 22:03 as "reply TD 2" for 音乐包; 视频会员 is cancelled at 02:00, so by 08:00 TD 2 means 流量包."""
    clock.now = local(2026, 11, 25, 10)
    packages = [("vid", "视频会员", 1500, "2026-12-07"), ("music", "音乐包", 1000, "2026-12-07"),
                ("data", "流量包", 2000, "2026-12-07")]
    put(client, CMCC, "cmcc", "zh", *packages)
    phone = Phone(client, app, CMCC)
    reminder = Reminder(RENEWAL, CMCC, "music", "20261207", 0)
    as_scheduled_before(app, reminder, local(2026, 11, 25, 21, 59))
    clock.now = local(2026, 11, 25, 21, 59, 10)
    queue_for_the_sender(app)
    clock.now = local(2026, 11, 25, 22, 3)
    run_due(app)
    assert message_of(app, reminder)["status"] == "queued"
    clock.now = local(2026, 11, 26, 2)
    cancel(phone, 1)
    clock.now = local(2026, 11, 26, 8)
    run_due(app)
    run_due(app)
    renewal = "【中国移动】音乐包将于12月7日续订10.00元，回TD 1退订。回R拒收"  # TD 2 now means 流量包
    assert [t for t in outbox(app, CMCC) if "续订" in t] == [renewal]


def test_a_missed_reminder_is_counted_once_however_often_its_batch_runs(phone, app, clock) -> None:
    """A worker killed mid-batch leaves its members to run again when the lease ends (gateway/jobs/sweeper.py)."""
    reminder = cancel_at(phone, clock, local(2026, 11, 25, 1))
    as_scheduled_before(app, reminder, local(2026, 11, 25, 21, 59))
    clock.now = local(2026, 11, 25, 22, 1)
    runtime = app.extensions["tdbot"]
    sweeper.sweep(runtime)
    [job] = runtime.queue(REMINDER_QUEUE).get_jobs()
    assert sweeper.send_batch(*job.args) == {"missed": 1}
    sweeper.send_batch(*job.args)
    assert missed(app) == 1


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs libfaketime's faketime (apt-get install faketime)")
def test_worker_py_pacing_reminders_across_2200_sends_none_in_quiet_hours(client, app, clock, redis_url, tmp_path):
    """The real worker.py (its cron, RQ, one segment a second) under faketime from 21:59:57, with six 2-hour
    reminders due at 21:59:50: those pacing carries past 22:00 wait for 08:00 (deadline 08:10) or are missed
    (deadline 01:00); none goes out at night."""
    runtime = app.extensions["tdbot"]
    deadlines, members = {}, {}
    for i in range(6):
        number = f"+8618600001{i:03d}"
        put(client, number, "cucc", "zh", ("news", "手机报", 500, "2026-12-07"))
        clock.now = local(2026, 11, 25, 8, 10) if i % 2 else local(2026, 11, 25, 1)
        phone = Phone(client, app, number)
        cancel(phone)
        phone.deliver()
        statement = runtime.store.load_subscriber(number).statements[0]
        deadlines[number], members[number] = statement.due_at, Reminder(SETTLE, number, statement.id, index=1)
    runtime.redis.delete(due_index.due_key(runtime.keys))  # these six alone are due
    due_index.schedule(runtime.redis, runtime.keys, [(r, local(2026, 11, 25, 21, 59, 50)) for r in members.values()])
    already = runtime.redis.llen(runtime.keys.shared(OUTBOX))

    # faketime's start is UTC: 21:59:57 in Shanghai.
    faketime = ("faketime", "-f", "@2026-11-25 13:59:57")

    def sent() -> dict[str, datetime]:
        raw = runtime.redis.lrange(runtime.keys.shared(OUTBOX), already, -1)
        return {e["to"]: datetime.fromtimestamp(e["at"], SHANGHAI) for e in map(json.loads, raw)}

    def missed_one(reminder: Reminder) -> bool:
        return bool(runtime.redis.exists(runtime.keys.shared(REMINDERS_MISSED, due_index.member(reminder))))

    def morning(reminder: Reminder) -> bool:
        return due(app, SETTLE).get(due_index.member(reminder)) == local(2026, 11, 26, 8)

    def settled() -> bool:
        """Each reminder sent, waiting for 08:00, or missed."""
        return all(n in sent() or morning(r) or missed_one(r) for n, r in members.items())

    with worker(redis_url, tmp_path, before=faketime, TDBOT_SWEEP_INTERVAL=1, TDBOT_SENDER_MPS=1, TZ="UTC"):
        wait_for(settled, "each reminder sent, waiting for 08:00, or missed", 60, log=tmp_path / "worker.log")

    for number, reminder in members.items():
        if number in sent():
            assert sent()[number] < local(2026, 11, 25, 22), "sent in quiet hours"
        elif deadlines[number] == local(2026, 11, 26, 8, 10):
            assert morning(reminder)
        else:
            assert missed_one(reminder)
    assert len(sent()) < len(members), "pacing never carried a reminder into quiet hours: nothing was tested"
