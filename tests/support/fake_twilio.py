"""A local Twilio-compatible Messages API over real HTTP, and the status callbacks Twilio would post back.

The app reaches it through `TWILIO_API_BASE_URL`. Tests script its next answers (429, 500, a 4xx with a
Twilio error code, or an answer held until the client has given up), read what it received, list it back as
Twilio's Message list does (newest first, optionally lagging behind the creates), and have it post signed status
callbacks to the app, either through a Flask test client or over HTTP to a live server. Its clock is the test's.
"""

from __future__ import annotations

import hmac
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask, Response, jsonify, request
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from dialogs.segments import segments
from gateway import create_app
from tests.support.phone import AUTH_TOKEN, Phone, seed_demo

ACCOUNT_SID = "AC" + "0" * 31 + "1"
FROM = "+15005550006"
API_VERSION = "2010-04-01"
# What Twilio answers besides a created message, by HTTP status.
ERRORS = {
    400: (21604, "A 'To' phone number is required."),
    401: (20003, "Authenticate"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}
OPTED_OUT = (400, 21610, "Attempt to send to unsubscribed recipient")


@dataclass
class Sent:
    """One message the fake accepted, as Twilio would store it."""

    sid: str
    to: str
    body: str
    sender: str
    status_callback: str
    created_at: datetime
    statuses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Hold:
    """A create answered only after `seconds` (past the client's timeout); `accept`: stored before that."""

    seconds: float
    accept: bool


@dataclass(frozen=True)
class TookThenFailed:
    """A create Twilio stored and then answered with an error anyway (a 5xx from a proxy or a backend behind it)."""

    status: int


class FakeTwilio:
    def __init__(
        self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.account_sid, self.auth_token, self.clock = account_sid, auth_token, clock
        self.messages: list[Sent] = []
        self.requests = 0  # create requests
        self.lookups = 0  # list requests
        self.list_lag = 0.0  # seconds (by `clock`) before a created message shows in the list
        self.on_create: Callable[[Sent], None] | None = None
        self._answers: deque[tuple[int, int, str] | Hold | TookThenFailed] = deque()
        self._list_answers: deque[tuple[int, int, str]] = deque()
        self._sids = (f"SM{n:032x}" for n in itertools.count(1))
        self._lock = threading.Lock()
        self.app = self._build()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def fail_next(self, count: int = 1, status: int = 500, code: int | None = None, message: str = "") -> None:
        """Answer the next `count` create requests with an error instead of accepting them."""
        default_code, default_message = ERRORS.get(status, (status, "Error"))
        self._answers.extend([(status, code or default_code, message or default_message)] * count)

    def refuse_next_as_opted_out(self, count: int = 1) -> None:
        self.fail_next(count, *OPTED_OUT)

    def hold_next(self, seconds: float, accept: bool = True) -> None:
        """Answer the next create only after `seconds`, when the client has given up: with the message stored
        first (`accept`: Twilio took it), or not (the request timed out before Twilio took it)."""
        self._answers.append(Hold(seconds, accept))

    def take_then_fail_next(self, count: int = 1, status: int = 500) -> None:
        """Store each of the next `count` creates, then answer it with `status` as if it had not been taken."""
        self._answers.extend([TookThenFailed(status)] * count)

    def fail_lookups(self, count: int = 1, status: int = 500) -> None:
        """Answer the next `count` list requests with an error."""
        self._list_answers.extend([(status, *ERRORS.get(status, (status, "Error")))] * count)

    def answer_lookups(self) -> None:
        """List requests are answered again (the errors `fail_lookups` scripted are dropped)."""
        self._list_answers.clear()

    def to(self, number: str) -> list[Sent]:
        return [m for m in self.messages if m.to == number]

    def callback_form(self, message: Sent, status: str, error_code: str = "") -> dict[str, str]:
        form = {
            "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "From": message.sender, "To": message.to,
            "MessageSid": message.sid, "SmsSid": message.sid, "MessageStatus": status, "SmsStatus": status,
        }
        if error_code:
            form["ErrorCode"] = error_code
        return form

    def post_status(self, message: Sent, status: str, error_code: str = "", client=None, signed: bool = True):
        """Post one status callback for `message` to its StatusCallback URL, signed as Twilio signs.

        With a Flask test `client` the request goes through it (the URL's path); otherwise over HTTP.
        """
        form = self.callback_form(message, status, error_code)
        headers = {"X-Twilio-Signature": self.sign(message.status_callback, form)} if signed else {}
        message.statuses.append(status)
        if client is not None:
            url = urlsplit(message.status_callback)
            return client.post(f"{url.path}?{url.query}", data=form, headers=headers)
        return requests.post(message.status_callback, data=form, headers=headers, timeout=10)

    def progress(self, message: Sent, *statuses: str, client=None, error_code: str = "") -> None:
        """Post a run of callbacks (e.g. "sent", "delivered"); the error code goes with a failed last one."""
        for i, status in enumerate(statuses):
            last = i == len(statuses) - 1
            response = self.post_status(message, status, error_code if last else "", client=client)
            assert response.status_code < 300, (status, response.status_code)

    def sign(self, url: str, form: dict[str, str]) -> str:
        return RequestValidator(self.auth_token).compute_signature(url, form)

    def _build(self) -> Flask:
        app = Flask("fake_twilio")
        path = f"/{API_VERSION}/Accounts/<account_sid>/Messages.json"
        app.add_url_rule(path, "create", self._create, methods=["POST"])
        app.add_url_rule(path, "list", self._list, methods=["GET"])
        return app

    def _create(self, account_sid: str) -> tuple[Response, int]:
        with self._lock:
            self.requests += 1
            answer = self._answers.popleft() if self._answers else None
        if not self._authorized(account_sid):
            return _error(401, *ERRORS[401])
        if isinstance(answer, tuple):
            return _error(*answer)
        if isinstance(answer, Hold) and not answer.accept:
            time.sleep(answer.seconds)
            return _error(503, *ERRORS[503])
        form = request.form
        sender = form.get("From") or form.get("MessagingServiceSid", "")
        if not form.get("To") or not sender or "Body" not in form:
            return _error(400, *ERRORS[400])
        message = Sent(
            next(self._sids), form["To"], form["Body"], sender, form.get("StatusCallback", ""), self.clock()
        )
        with self._lock:
            self.messages.append(message)
        if self.on_create:
            self.on_create(message)
        if isinstance(answer, Hold):
            time.sleep(answer.seconds)
        if isinstance(answer, TookThenFailed):
            return _error(answer.status, *ERRORS.get(answer.status, (answer.status, "Error")))
        return jsonify(self._resource(message)), 201

    def _list(self, account_sid: str) -> tuple[Response, int]:
        """Twilio's Message list: filtered by To and From, newest first, one page of PageSize."""
        with self._lock:
            self.lookups += 1
            answer = self._list_answers.popleft() if self._list_answers else None
        if not self._authorized(account_sid):
            return _error(401, *ERRORS[401])
        if answer is not None:
            return _error(*answer)
        to, sender, size = request.args.get("To"), request.args.get("From"), int(request.args.get("PageSize", 50))
        shown_before = self.clock() - timedelta(seconds=self.list_lag)
        with self._lock:
            listed = [
                m for m in reversed(self.messages)
                if m.created_at <= shown_before and to in (None, m.to) and sender in (None, m.sender)
            ][:size]
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        return jsonify(
            messages=[self._resource(m) for m in listed], uri=uri, first_page_uri=uri, next_page_uri=None,
            previous_page_uri=None, page=0, page_size=size, start=0, end=max(len(listed) - 1, 0),
        ), 200

    def _authorized(self, account_sid: str) -> bool:
        auth = request.authorization
        return (
            auth is not None and account_sid == self.account_sid
            and hmac.compare_digest(auth.username or "", self.account_sid)
            and hmac.compare_digest(auth.password or "", self.auth_token)
        )

    def _resource(self, message: Sent) -> dict:
        stamp = format_datetime(message.created_at.astimezone(UTC), usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message.sid}"
        from_service = message.sender.startswith("MG")
        return {
            "sid": message.sid, "account_sid": self.account_sid, "api_version": API_VERSION, "status": "queued",
            "to": message.to, "from": None if from_service else message.sender, "body": message.body,
            "messaging_service_sid": message.sender if from_service else None, "direction": "outbound-api",
            "num_segments": str(segments(message.body)), "num_media": "0", "price": None, "price_unit": "USD",
            "error_code": None, "error_message": None, "date_created": stamp, "date_updated": stamp,
            "date_sent": None, "uri": f"{uri}.json", "subresource_uris": {"media": f"{uri}/Media.json"},
        }


def _error(status: int, code: int, message: str) -> tuple[Response, int]:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return jsonify(code=code, message=message, more_info=more_info, status=status), status


@pytest.fixture
def fake_twilio(clock) -> Iterator[FakeTwilio]:
    server = FakeTwilio(clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def twilio_config(test_config: dict, fake_twilio: FakeTwilio) -> dict:
    """The test app's settings, sending through the fake Twilio with its credentials."""
    return {
        **test_config, "TWILIO_ACCOUNT_SID": fake_twilio.account_sid, "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_FROM": FROM, "TWILIO_API_BASE_URL": fake_twilio.url,
    }


@pytest.fixture
def twilio_app(twilio_config: dict) -> Flask:
    return create_app(twilio_config)


@pytest.fixture
def twilio_phone(twilio_app: Flask) -> Phone:
    """The China Mobile demo subscriber's phone, on an app that sends through the fake Twilio."""
    seed_demo(twilio_app)
    return Phone(twilio_app.test_client(), twilio_app, "+8613800138000")
