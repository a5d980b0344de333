"""Done when (issue 11): a subscriber of each carrier cancels a package end to end over `/webhooks/ussd` on the live
stack (gunicorn with 2 workers, a real worker.py), the code read from what the console sender sent; and `tdbot ussd`
plays a session in a terminal against it."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import requests

from dialogs.model import CANCELLED, Subscriber, Subscription
from gateway import create_app
from gateway.state import demo
from gateway.state.keys import OUTBOX
from gateway.state.subscribers import upsert
from tests.support.live import running as live_stack
from tests.support.processes import play, running

log = logging.getLogger(__name__)

TOKEN = "live-ussd-token"
CODE = re.compile(r"(?:验证码|Code )(\d{6})")
CONFIRMED = re.compile(r"】(?:退订结果：|Result:)")
WAIT = 20.0
TDBOT = Path(sys.executable).parent / "tdbot"
# Each carrier's demo subscriber, the package they cancel (the first listed) and what the last screen says.
CARRIERS = {
    "+8613800138000": ("46000", "视频会员已退订，结清"),  # China Mobile, zh
    "+8618600000000": ("46001", "手机报已退订，结清"),  # China Unicom, the carrier's zh
    "+8618900000000": ("46003", "Cloud Storage cancelled; settle"),  # China Telecom, en
}
TERMINAL = "+8613800138009"  # a fourth subscriber, for the terminal: codes go out at most once a minute a number


def seed(redis_url: str) -> object:
    """The demo subscribers and one more, as of today (the processes keep real time)."""
    runtime = create_app({"TESTING": True, "REDIS_URL": redis_url}).extensions["tdbot"]
    demo.seed(runtime, date.today())
    package = Subscription("music", "音乐包", "YYB", 1000, date.today() + timedelta(days=12))
    upsert(runtime, Subscriber(TERMINAL, locale="zh", subscriptions=(package,)))
    return runtime


class Dialling:
    """One session over HTTP, as Africa's Talking makes it; keeps what was sent and shown."""

    def __init__(self, base: str, number: str, network: str) -> None:
        self.base, self.number, self.network = base, number, network
        self.session_id, self.answers, self.transcript = f"ATUid_{uuid.uuid4().hex[:16]}", [], []

    def press(self, key: str | None) -> str:
        if key is not None:
            self.answers.append(key)
        text = "*".join(self.answers)
        form = {"sessionId": self.session_id, "serviceCode": "*100#", "phoneNumber": self.number,
                "networkCode": self.network, "text": text}
        response = requests.post(f"{self.base}/webhooks/ussd", params={"token": TOKEN}, data=form, timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
        body = response.text
        assert body[:4] in ("CON ", "END ") and len(body) - 4 <= 182, body
        self.transcript.append((text, body))
        return body


def sent_to(redis, outbox: str, number: str, pattern: re.Pattern[str], deadline: float) -> re.Match[str]:
    """The newest message the console sender has sent `number` that matches `pattern`, waiting for the worker."""
    while time.monotonic() < deadline:
        sent = [json.loads(raw) for raw in redis.lrange(outbox, 0, -1)]
        found = [m for e in sent if e["to"] == number and (m := pattern.search(e["text"]))]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"nothing like {pattern.pattern!r} reached {number} within {WAIT} s")


def test_a_subscriber_of_each_carrier_cancels_a_package_over_ussd_on_the_live_stack(redis, redis_url, tmp_path):
    runtime = seed(redis_url)
    outbox = runtime.keys.shared(OUTBOX)
    with live_stack(redis_url, tmp_path, TDBOT_USSD_TOKEN=TOKEN) as stack:
        deadline = time.monotonic() + 2 * WAIT
        for number, (network, result) in CARRIERS.items():
            phone = Dialling(stack.base, number, network)
            assert phone.press(None).startswith("CON ")
            assert phone.press("2").startswith("CON ")
            assert phone.press("1").startswith("CON ")
            assert phone.press("1").startswith("CON ")
            done = phone.press(sent_to(redis, outbox, number, CODE, deadline).group(1))
            assert done.startswith("END ") and result in done, done
            log.info("%s:\n%s", number, "\n".join(f"> {text!r}\n< {body}" for text, body in phone.transcript))
        for number in CARRIERS:
            subscriber = runtime.store.load_subscriber(number)
            assert subscriber.subscriptions[0].status == CANCELLED and len(subscriber.statements) == 1
            sent_to(redis, outbox, number, CONFIRMED, deadline)  # and the confirmation went out by SMS


def test_tdbot_ussd_plays_a_session_in_the_terminal(redis, redis_url, tmp_path):
    runtime = seed(redis_url)
    with live_stack(redis_url, tmp_path, TDBOT_USSD_TOKEN=TOKEN) as stack:
        deadline = time.monotonic() + 2 * WAIT
        command = [str(TDBOT), "ussd", TERMINAL, "--url", stack.base, "--linger", "0.5"]
        with running(command, env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     text=True, encoding="utf-8") as terminal:
            play(terminal, "2\n1\n1\n", r"<< .*验证码(\d{6})", r"^END 退订结果：", deadline, first=r"^CON 请选择：")
    assert runtime.store.load_subscriber(TERMINAL).subscriptions[0].status == CANCELLED
