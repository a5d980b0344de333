"""Settlement reminders through the due index, the sweeper and a real RQ worker; the clock is moved, never slept."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from dialogs.reminders import SETTLE, Reminder
from gateway.jobs import sweeper
from gateway.runtime import REMINDER_QUEUE
from gateway.state import due as due_index
from tests.support.phone import Phone, api_headers
from tests.support.processes import wait_for, worker
from tests.support.reminders import CMCC, CTCC, CUCC, cancel, due, local, outbox, put, run_due

REMINDER_ZH = "【中国移动】您的视频会员结算单9.50元将于12月2日23:59到期，回JF缴费。回R拒收"


@pytest.fixture
def phone(client, app) -> Phone:
    """China Mobile, zh: cancelling 视频会员 on 25 Nov 10:00 owes 9.50元 by 2 Dec 23:59:59."""
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"), ("music", "音乐包", 1000, "2026-12-07"))
    return Phone(client, app, CMCC)


def reminders_in(texts: list[str]) -> list[str]:
    return [t for t in texts if "到期" in t or "is due" in t]


@pytest.mark.parametrize(
    ("msisdn", "carrier", "expected"),
    [
        # 7 days, end of day: 3 and 1 days before 2 Dec 23:59:59 fall at night and move to 08:00.
        (CMCC, "cmcc", [local(2026, 11, 30, 8), local(2026, 12, 2, 8)]),
        # 24 hours: 12 h before 26 Nov 10:00 is 22:00 (quiet, so 08:00), the same as 2 h before.
        (CUCC, "cucc", [local(2026, 11, 26, 8)]),
        # 15 days, end of day: 10 Dec 23:59:59.
        (CTCC, "ctcc", [local(2026, 12, 8, 8), local(2026, 12, 10, 8)]),
    ],
)
def test_settlement_reminders_are_due_at_the_carriers_offsets_out_of_quiet_hours(
    client, app, msisdn: str, carrier: str, expected: list[datetime]
) -> None:
    put(client, msisdn, carrier, "zh", ("vid", "视频会员", 1500, "2026-12-07"))
    cancel(Phone(client, app, msisdn))
    assert sorted(due(app, SETTLE).values()) == expected


def test_a_reminder_goes_out_once_when_due_and_ends_with_how_to_refuse(phone, app, clock) -> None:
    cancel(phone)
    clock.now = local(2026, 11, 30, 7, 59)
    run_due(app)
    assert reminders_in(outbox(app, CMCC)) == []
    clock.now = local(2026, 11, 30, 8, 0)
    run_due(app)
    run_due(app)
    assert reminders_in(outbox(app, CMCC)) == [REMINDER_ZH]
    assert REMINDER_ZH.endswith("回R拒收")


def test_a_reminder_swept_late_into_quiet_hours_waits_for_morning(phone, app, clock) -> None:
    cancel(phone)
    clock.now = local(2026, 11, 30, 22, 30)  # the 08:00 reminder was held up by a backlog until the night
    run_due(app)
    assert reminders_in(outbox(app, CMCC)) == []
    assert local(2026, 12, 1, 8) in due(app, SETTLE).values()
    clock.now = local(2026, 12, 1, 8)
    run_due(app)
    assert len(reminders_in(outbox(app, CMCC))) == 1


@pytest.mark.parametrize(
    ("setting", "at", "waits"),
    [("", (23, 0), True), ("off", (23, 0), False), ("21:00-09:00", (8, 30), True), ("21:00-09:00", (9, 0), False)],
)
def test_quiet_hours_follow_the_deployment_setting(phone, app, clock, setting, at, waits) -> None:
    app.extensions["tdbot"].config["TDBOT_QUIET_HOURS"] = setting
    cancel(phone)
    clock.now = local(2026, 11, 30, *at)
    run_due(app)
    assert (reminders_in(outbox(app, CMCC)) == []) is waits


def test_an_english_reminder_says_reply_stop(client, app, clock) -> None:
    put(client, CTCC, "ctcc", "en", ("vid", "Video VIP", 1500, "2026-12-07"))
    cancel(Phone(client, app, CTCC))
    clock.now = local(2026, 12, 8, 8)
    run_due(app)
    assert reminders_in(outbox(app, CTCC)) == [
        "【中国电信】Your Video VIP statement of CNY 9.50 is due 10 Dec 23:59. Reply JF to pay. Reply STOP to opt out."
    ]


def test_a_paid_statement_gets_no_reminder(phone, client, app, clock) -> None:
    cancel(phone)
    statement = phone.subscriber()["statements"][0]
    paid = client.post(
        f"/api/v1/statements/{statement['id']}/payments", json={"amount_fen": 950, "reference": "bank-1"},
        headers=api_headers(),
    )
    assert paid.status_code == 200, paid.get_json()
    clock.now = local(2026, 12, 2, 8)
    run_due(app)
    assert reminders_in(outbox(app, CMCC)) == []


@pytest.mark.parametrize("stop", ["R", "拒收", "STOP"])
def test_stop_silences_reminders_and_start_brings_them_back(phone, app, clock, stop: str) -> None:
    cancel(phone)
    phone.send(stop)
    clock.now = local(2026, 11, 30, 8)
    run_due(app)
    assert reminders_in(outbox(app, CMCC)) == []
    phone.send("START")
    clock.now = local(2026, 12, 2, 8)
    run_due(app)
    assert len(reminders_in(outbox(app, CMCC))) == 1


def statement_reminders(phone: Phone, count: int) -> list[str]:
    """`count` distinct reminders for the phone's statement, all due now."""
    statement_id = phone.subscriber()["statements"][0]["id"]
    entries = [(Reminder(SETTLE, phone.msisdn, statement_id, index=i), phone.runtime.clock()) for i in range(count)]
    runtime = phone.runtime
    due_index.schedule(runtime.redis, runtime.keys, entries)
    return [due_index.member(r) for r, _ in entries]


def batch_jobs(app) -> list[list[str]]:
    return [job.args[0] for job in app.extensions["tdbot"].queue(REMINDER_QUEUE).get_jobs()]


def test_concurrent_sweepers_never_claim_a_reminder_twice(phone, app) -> None:
    cancel(phone)
    scheduled = statement_reminders(phone, 120)
    runtime = app.extensions["tdbot"]
    start = threading.Barrier(4)

    def sweep() -> None:
        start.wait()
        for _ in range(10):
            sweeper.sweep(runtime, batch=7)

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [m for batch in batch_jobs(app) for m in batch]
    assert sorted(claimed) == sorted(scheduled)
    run_due(app)
    assert len(reminders_in(outbox(app, CMCC))) == 120


def test_a_batch_run_twice_sends_each_reminder_once(phone, app) -> None:
    cancel(phone)
    statement_reminders(phone, 3)
    sweeper.sweep(app.extensions["tdbot"])
    (job,) = app.extensions["tdbot"].queue(REMINDER_QUEUE).get_jobs()
    assert sweeper.send_batch(*job.args) == {"sent": 3}
    assert sweeper.send_batch(*job.args) == {"duplicate": 3}
    run_due(app)
    assert len(reminders_in(outbox(app, CMCC))) == 3


def test_what_a_dead_worker_claimed_falls_due_again_when_its_lease_ends(phone, app, clock) -> None:
    cancel(phone)
    scheduled = statement_reminders(phone, 5)
    runtime = app.extensions["tdbot"]
    now = int(clock().timestamp())
    # A sweeper claimed these and its worker died before sending anything.
    assert sorted(due_index.claim(runtime, now, 100, now + sweeper.LEASE)) == sorted(scheduled)
    assert run_due(app) == 0
    clock.advance(seconds=sweeper.LEASE - 1)
    assert run_due(app) == 0
    clock.advance(seconds=1)
    assert run_due(app) == 5
    assert len(reminders_in(outbox(app, CMCC))) == 5
    assert runtime.redis.zcard(due_index.claimed_key(runtime.keys)) == 0


def test_a_late_acknowledgement_does_not_release_another_batchs_claim(phone, app, clock) -> None:
    cancel(phone)
    (member,) = statement_reminders(phone, 1)
    runtime = app.extensions["tdbot"]
    now = int(clock().timestamp())
    first_lease = now + 10
    due_index.claim(runtime, now, 10, first_lease)
    clock.advance(seconds=11)
    assert run_due(app) == 1  # re-dued and claimed by a second batch, which finished
    assert due_index.ack(runtime, [member], first_lease) == 0  # the first batch, late, owns nothing any more


def test_worker_py_runs_the_sweeper_and_delivers_a_reminder(phone, app, clock, redis_url, tmp_path) -> None:
    clock.now = datetime.now(UTC)  # the worker process keeps real time
    cancel(phone)
    statement_reminders(phone, 1)
    # Real time in the worker: without TDBOT_QUIET_HOURS=off, a run in Shanghai's night would wait for 08:00.
    with worker(redis_url, tmp_path, TDBOT_SWEEP_INTERVAL=1, TDBOT_SENDER_MPS=1000, TDBOT_QUIET_HOURS="off"):
        wait_for(lambda: reminders_in(outbox(app, CMCC)), "a reminder delivered", log=tmp_path / "worker.log")
    assert reminders_in(outbox(app, CMCC))[0].endswith("回R拒收")
