"""A subscriber's phone driving the app through its Twilio webhook, signed as Twilio signs."""

from __future__ import annotations

import itertools
import json
import re
from datetime import date
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator

from gateway.runtime import QUEUES
from gateway.state.keys import OUTBOX
from tests.support.scheduled import BurstWorker

AUTH_TOKEN = "test-auth-token"
API_TOKEN = "test-api-token"
BASE_URL = "https://tdbot.example.com"
SMS_PATH = "/webhooks/twilio/sms"

_sids = itertools.count(1)


def sign(path: str, form: dict, token: str = AUTH_TOKEN, base: str = BASE_URL) -> str:
    return RequestValidator(token).compute_signature(base + path, form)


def twiml_messages(body: bytes) -> list[str]:
    return [m.text or "" for m in ElementTree.fromstring(body).iter("Message")]


class Phone:
    def __init__(self, client, app, msisdn: str) -> None:
        self.client, self.app, self.msisdn = client, app, msisdn
        self.runtime = app.extensions["tdbot"]

    def post(self, text: str, sid: str | None = None, **extra: str):
        form = {"From": self.msisdn, "To": "10086", "Body": text, "MessageSid": sid or f"SM{next(_sids):032d}", **extra}
        return self.client.post(SMS_PATH, data=form, headers={"X-Twilio-Signature": sign(SMS_PATH, form)})

    def send(self, text: str, sid: str | None = None) -> str:
        response = self.post(text, sid)
        assert response.status_code == 200, response.data
        return "\n".join(twiml_messages(response.data))

    def deliver(self) -> None:
        queues = [self.runtime.queue(name) for name in QUEUES]
        BurstWorker(queues, connection=self.runtime.queue_redis).work(burst=True)

    def inbox(self) -> list[str]:
        """Every message the worker has sent to this phone so far (console sender)."""
        self.deliver()
        raw = self.runtime.redis.lrange(self.runtime.keys.shared(OUTBOX), 0, -1)
        return [e["text"] for e in map(json.loads, raw) if e["to"] == self.msisdn]

    def last_code(self) -> str:
        codes = [m for m in self.inbox() if "验证码" in m or "】Code " in m]
        assert codes, "no verification code was sent"
        return re.search(r"\d{6}", codes[-1]).group(0)

    def subscriber(self) -> dict:
        response = self.client.get(f"/api/v1/subscribers/{self.msisdn}", headers=api_headers())
        return response.get_json()


def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


def seed_demo(app, today: date = date(2026, 11, 25)) -> None:
    from gateway.state.demo import seed

    seed(app.extensions["tdbot"], today)
