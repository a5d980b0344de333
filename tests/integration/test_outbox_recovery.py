"""The recovery cron finds and finishes after-commit work nobody finished, and no bad entry holds it up."""

from __future__ import annotations

import pytest

from dialogs.reasons import OUTBOX_STUCK, OUTBOX_UNREADABLE
from gateway.jobs import outbox
from gateway.jobs.outbox import Pending
from gateway.service import Service
from gateway.state.keys import ESCALATIONS
from tests.support.phone import Phone

CODE_SENT = "验证码"


def codes(phone: Phone) -> list[str]:
    return [m for m in phone.inbox() if CODE_SENT in m and any(c.isdigit() for c in m)]


def killed_after_commit(monkeypatch, phone: Phone, sid: str) -> None:
    """`phone` says Y and the request dies right after the step's commit."""
    monkeypatch.setattr(Service, "_after_commit", lambda *_: None)
    phone.send("Y", sid=sid)
    monkeypatch.undo()


def test_work_a_killed_process_left_unindexed_is_found_and_done(confirming, app, clock, monkeypatch) -> None:
    killed_after_commit(monkeypatch, confirming, "SMkilled1")
    runtime = app.extensions["tdbot"]
    assert runtime.redis.zcard(outbox.index_key(runtime)) == 0
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover_job() == 1
    assert len(codes(confirming)) == 1
    assert not runtime.redis.exists(outbox.key(runtime, confirming.msisdn))


def test_discovery_walks_the_keyspace_a_few_keys_at_a_time_and_wraps_around(confirming, app, monkeypatch) -> None:
    killed_after_commit(monkeypatch, confirming, "SMkilled2")
    runtime = app.extensions["tdbot"]
    found = [outbox.discover(runtime, count=1, calls=1) for _ in range(2 * runtime.redis.dbsize() + 10)]
    assert sum(found) >= 1
    assert runtime.redis.zscore(outbox.index_key(runtime), confirming.msisdn) == 0


def test_discovery_ignores_keys_that_only_look_like_an_outbox(app) -> None:
    runtime = app.extensions["tdbot"]
    runtime.redis.hset(b"tdbot:{\xff}:pending", "SMx", "{}")
    runtime.redis.hset("tdbot:{not a number}:pending", "SMx", "{}")
    assert outbox.discover(runtime) == 0
    assert runtime.redis.zcard(outbox.index_key(runtime)) == 0


def test_a_retry_too_soon_to_resume_still_indexes_the_work_for_the_cron(confirming, app, clock, monkeypatch) -> None:
    killed_after_commit(monkeypatch, confirming, "SMkilled3")
    confirming.send("Y", sid="SMkilled3")  # the provider's retry, while the first try could still be at it
    runtime = app.extensions["tdbot"]
    assert codes(confirming) == []
    assert runtime.redis.zscore(outbox.index_key(runtime), confirming.msisdn) is not None
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover(runtime) == 1
    assert len(codes(confirming)) == 1


@pytest.mark.parametrize("entry", [
    '{"at": 0, "from_a_newer_release": 1}', '{"at": "x"}', '{"at": null}', '{"at": 0, "messages": 5}', "not json",
    '{"at": 0, "payments": [["st1", "950", "JF-1"]]}',
])
def test_an_unreadable_entry_is_set_aside_for_a_person_and_the_rest_are_done(
    confirming, app, clock, monkeypatch, entry
) -> None:
    killed_after_commit(monkeypatch, confirming, "SMkilled4")
    runtime = app.extensions["tdbot"]
    poisoned = "+8613900000001"
    runtime.redis.hset(outbox.key(runtime, poisoned), "SMbad", entry)
    runtime.redis.zadd(outbox.index_key(runtime), {poisoned: 0, confirming.msisdn: 1})
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover(runtime) == 1
    assert len(codes(confirming)) == 1
    assert (poisoned, OUTBOX_UNREADABLE) in runtime.store.escalations()
    assert runtime.redis.hexists(runtime.keys.shared("pending", outbox.UNREADABLE), f"{poisoned}|SMbad")
    assert runtime.redis.zcard(outbox.index_key(runtime)) == 0


def test_an_entry_that_keeps_failing_goes_to_the_back_and_the_others_are_done(confirming, app, clock, monkeypatch):
    killed_after_commit(monkeypatch, confirming, "SMkilled5")
    runtime = app.extensions["tdbot"]
    failing = "+8613900000002"
    runtime.redis.set(runtime.keys.shared(ESCALATIONS), "not a sorted set")  # Redis refuses this entry's work
    runtime.redis.hset(outbox.key(runtime, failing), "SMfail", Pending(at=0, escalations=["x"]).to_json())
    runtime.redis.zadd(outbox.index_key(runtime), {failing: 0, confirming.msisdn: 1})
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover(runtime) == 1
    assert len(codes(confirming)) == 1
    assert runtime.redis.zscore(outbox.index_key(runtime), failing) == clock().timestamp()
    assert runtime.redis.hexists(outbox.key(runtime, failing), "SMfail"), "kept for a later run"



def fails_for(monkeypatch, msisdn: str) -> None:
    """After-commit work for `msisdn` fails (say, a bug in this release), everyone else's goes through."""
    work = outbox._work

    def failing(runtime, who, pending, now):
        if who == msisdn:
            raise RuntimeError("this entry's work keeps failing")
        return work(runtime, who, pending, now)

    monkeypatch.setattr(outbox, "_work", failing)


def test_an_entry_failing_for_half_an_hour_is_escalated_once_and_still_retried(app, clock, monkeypatch) -> None:
    runtime, stuck = app.extensions["tdbot"], "+8613900000003"
    runtime.redis.hset(outbox.key(runtime, stuck), "SMstuck", Pending(at=0, escalations=["owed"]).to_json())
    runtime.redis.zadd(outbox.index_key(runtime), {stuck: 0})
    fails_for(monkeypatch, stuck)
    for _ in range(outbox.STUCK_AFTER + 2):
        clock.advance(seconds=outbox.RECOVER_AFTER + 1)
        assert outbox.recover(runtime) == 0
    assert runtime.store.escalations() == [(stuck, OUTBOX_STUCK)]
    kept = Pending.from_json(runtime.redis.hget(outbox.key(runtime, stuck), "SMstuck"))
    assert (kept.tries, kept.escalations) == (outbox.STUCK_AFTER + 2, ["owed"])
    monkeypatch.undo()  # the fix is deployed
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover(runtime) == 1
    assert sorted(runtime.store.escalations()) == sorted([(stuck, "owed"), (stuck, OUTBOX_STUCK)])
    assert not runtime.redis.exists(outbox.key(runtime, stuck))


def test_counting_a_failed_try_never_brings_back_an_entry_a_retry_finished_meanwhile(app, clock, monkeypatch) -> None:
    runtime, msisdn = app.extensions["tdbot"], "+8613900000004"
    runtime.redis.hset(outbox.key(runtime, msisdn), "SMraced", Pending(at=0, escalations=["x"]).to_json())
    runtime.redis.zadd(outbox.index_key(runtime), {msisdn: 0})

    def finished_elsewhere_then_failed(runtime, who, pending, now):
        runtime.redis.hdel(outbox.key(runtime, who), "SMraced")
        raise RuntimeError("this try failed after the retry had finished the work")

    monkeypatch.setattr(outbox, "_work", finished_elsewhere_then_failed)
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover(runtime) == 0
    assert not runtime.redis.exists(outbox.key(runtime, msisdn))


def test_a_backlog_bigger_than_a_batch_is_cleared_in_one_cron_run(app, clock) -> None:
    runtime = app.extensions["tdbot"]
    backlog = [f"+86139{n:08d}" for n in range(outbox.RECOVER_BATCH + 5)]
    for msisdn in backlog:
        runtime.redis.hset(outbox.key(runtime, msisdn), "SMx", Pending(at=0, escalations=["backlog"]).to_json())
        runtime.redis.zadd(outbox.index_key(runtime), {msisdn: 0})
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover_job() == len(backlog)
    assert sorted(m for m, _ in runtime.store.escalations()) == backlog
    assert runtime.redis.zcard(outbox.index_key(runtime)) == 0


def test_a_batch_with_nothing_left_to_do_does_not_end_the_cron_run(confirming, app, clock, monkeypatch) -> None:
    killed_after_commit(monkeypatch, confirming, "SMkilled6")
    runtime = app.extensions["tdbot"]
    finished = {f"+86137{n:08d}": 0 for n in range(outbox.RECOVER_BATCH + 5)}  # work done, index not yet cleaned
    runtime.redis.zadd(outbox.index_key(runtime), {**finished, confirming.msisdn: 1})
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover_job() == 1
    assert len(codes(confirming)) == 1
    assert runtime.redis.zcard(outbox.index_key(runtime)) == 0
