"""Ways to put a message on a phone: Twilio's REST API, Kannel's sendsms, or a console outbox for development."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlencode

import requests
from redis import Redis

from dialogs.segments import is_gsm7
from gateway.state import keys
from gateway.state.codec import dumps

log = logging.getLogger(__name__)

OUTBOX_LENGTH = 1000
SENT_TTL = 7 * 86400  # how long the console sender can tell whether a message went
TWILIO_TIMEOUT = 10  # seconds the Twilio client waits for an answer
# "Not in Twilio's list" is an answer only this long after the attempt began: the client's timeout, Twilio finishing a
# create we gave up on, and the list lagging a few seconds behind creates (docs/delivery.md).
TWILIO_SETTLES_AFTER = 60
TWILIO_CLOCK_SKEW = timedelta(seconds=30)  # Twilio's clock against ours, when matching a message by its creation
TWILIO_LOOKUP_LIMIT = 50  # the recipient's most recent messages looked at
OUTBOUND_API = "outbound-api"  # a message created through the REST API (a TwiML reply is "outbound-reply")
# Twilio errors that no retry can fix: opted out, invalid or unreachable 'To', blocked.
PERMANENT_TWILIO_ERRORS = {21211, 21408, 21610, 21612, 21614, 30004, 30005, 30006}
OPTED_OUT = 21610
UNAVAILABLE = 503  # the provider (or a proxy in front of it) is away: its route is down


class SendError(Exception):
    """A send (or lookup) that did not happen. `escalate`: no message will go until a person fixes something
    (credentials). `unreachable`: the route itself is away (no connection made, bearerbox away or its queue full, a
    503): the message waits for it without using up an attempt (docs/delivery.md, "A route that is down")."""

    def __init__(self, message: str, *, retryable: bool, code: int | None = None, escalate: bool = False,
                 unreachable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable or unreachable
        self.code = code
        self.escalate = escalate
        self.unreachable = unreachable


class SendUncertain(Exception):
    """The provider may or may not have taken the message: the request left and no answer came back."""


class Sender(Protocol):
    name: str

    def send(self, to: str, text: str, status_callback: str | None, reference: str = "") -> str:
        """Hand the message to the provider; return its id. Raise SendError when it did not leave, SendUncertain when
        it may have. `reference` is our message id.

        A sender that can look a send up offers `find(to, text, since, reference) -> [provider id, ...]` (what the
        provider holds that may be that message, oldest first; SendError when it cannot be asked) and
        `settles_after`: seconds after an attempt began when finding nothing means it never left."""


@dataclass
class ConsoleSender:
    """Development's phone: a message "sent" is kept whole in a Redis list (the outbox) that `tdbot chat`, `tdbot ussd`
    and `tdbot outbox` read; its log line names the message, never its text."""

    redis: Redis
    outbox_key: str
    name: str = "console"
    settles_after: int = 0  # its record of a send is written with the send itself

    def send(self, to: str, text: str, status_callback: str | None, reference: str = "") -> str:
        sid = f"CON{time.time_ns():x}"
        entry = {"sid": sid, "to": to, "text": text, "at": time.time()}
        with self.redis.pipeline() as pipe:
            pipe.rpush(self.outbox_key, dumps(entry))
            pipe.ltrim(self.outbox_key, -OUTBOX_LENGTH, -1)
            if reference:  # in the same MULTI as the send itself, so `find` is never wrong
                pipe.set(self._sent_key(reference), sid, ex=SENT_TTL)
            pipe.execute()
        # The outbox is the phone (`tdbot chat` shows a code from it); a log line never holds a message's words.
        log.info("console SMS %s to %s, %d characters (tdbot outbox shows it)", sid, to, len(text))
        return sid

    def find(self, to: str, text: str, since: datetime, reference: str) -> list[str]:
        sid = self.redis.get(self._sent_key(reference))
        return [sid.decode()] if sid else []

    def _sent_key(self, reference: str) -> str:
        return keys.sent(self.outbox_key, reference)


class TwilioSender:
    name = "twilio"
    settles_after = TWILIO_SETTLES_AFTER

    def __init__(
        self, account_sid: str, auth_token: str, sender: dict[str, str], base_url: str | None,
        timeout: float = TWILIO_TIMEOUT,
    ) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
            # TWILIO_EDGE / TWILIO_REGION would rewrite the host; the configured base URL is where sends go.
            self.client.edge = self.client.region = None
        self.sender = sender

    def send(self, to: str, text: str, status_callback: str | None, reference: str = "") -> str:
        from twilio.base.exceptions import TwilioRestException

        extra = {"status_callback": status_callback} if status_callback else {}
        with _asking_twilio():
            try:
                return self.client.messages.create(to=to, body=text, **self.sender, **extra).sid
            except OSError as exc:
                if _never_left(exc):
                    raise
                raise SendUncertain(str(exc)) from exc
            except TwilioRestException as exc:
                if exc.status >= 500:  # Twilio, or a proxy in front of it, may have stored the message first
                    raise SendUncertain(f"{exc.status}: {exc.msg}") from exc
                raise

    def find(self, to: str, text: str, since: datetime, reference: str = "") -> list[str]:
        """Messages Twilio holds from us to `to` with `text`, created since `since` (less the clock skew), oldest
        first. The recipient's latest messages, not a DateSent filter: Twilio filters that by day, and a message
        still queued at Twilio has no DateSent yet."""
        by_number = {"from_": self.sender["from_"]} if "from_" in self.sender else {}
        with _asking_twilio():
            listed = self.client.messages.list(
                to=to, limit=TWILIO_LOOKUP_LIMIT, page_size=TWILIO_LOOKUP_LIMIT, **by_number
            )
        earliest = since - TWILIO_CLOCK_SKEW
        ours = [
            m for m in listed
            if m.body == text and m.direction == OUTBOUND_API and self._from_us(m)
            and m.date_created is not None and m.date_created >= earliest
        ]
        return [m.sid for m in sorted(ours, key=lambda m: m.date_created)]

    def _from_us(self, message) -> bool:
        if "from_" in self.sender:
            return message.from_ == self.sender["from_"]
        return message.messaging_service_sid == self.sender.get("messaging_service_sid")


@contextmanager
def _asking_twilio() -> Iterator[None]:
    """Twilio's answers as SendError: an error answer, or no connection made (it did not leave)."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        yield
    except TwilioRestException as exc:
        raise SendError(str(exc.msg), retryable=_retryable(exc.status, exc.code), code=exc.code,
                        unreachable=exc.status == UNAVAILABLE) from exc
    except TwilioException as exc:  # a list page refused: the library keeps only the response
        status = getattr(exc.args[1] if len(exc.args) > 1 else None, "status_code", 500)
        raise SendError(f"{exc} ({status})", retryable=_retryable(status, None), unreachable=status == UNAVAILABLE
                        ) from exc
    except OSError as exc:  # a create's only when no connection was made; a lookup's, whatever cut it short
        raise SendError(str(exc), retryable=True, unreachable=True) from exc


def _never_left(exc: OSError) -> bool:
    """True when the request failed before reaching the provider: no connection was made. Anything else (a read
    timeout, a connection dropped after the request went) leaves the send uncertain."""
    from requests import exceptions as http
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    if isinstance(exc, http.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    return (
        isinstance(exc, http.ConnectionError)
        and isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError)
    )


def _retryable(status: int, code: int | None) -> bool:
    if code in PERMANENT_TWILIO_ERRORS:
        return False
    return status == 429 or status >= 500


# Kannel reports every state: delivered (1), undelivered (2), queued at the SMSC (4), accepted (8), rejected (16).
DLR_MASK = 31
SENDSMS_TIMEOUT = (3.05, 10)  # connect, read: seconds


class KannelSender:
    """Kannel's sendsms for one carrier link: from the carrier's short code, to its smsc when one is named, with
    delivery reports asked for at tdbot (`callback`: the DLR URL up to and including its token).

    A connection that could not be made, 5xx and a full queue (bearerbox away or busy) are retried. A request that went
    and got no answer (a read timeout, a dropped connection) is uncertain, and sendsms offers no lookup by our id: a
    person decides, never a blind second send (docs/delivery.md).
    """

    def __init__(self, url: str, username: str, password: str, short_code: str, smsc: str = "",
                 callback: str = "", name: str = "kannel", timeout: tuple[float, float] = SENDSMS_TIMEOUT) -> None:
        self.url, self.short_code, self.smsc, self.callback = url, short_code, smsc, callback
        self.name, self.timeout = name, timeout  # name: the route (carrier link) it serves
        self.credentials = {"username": username, "password": password}
        self.session = requests.Session()

    def send(self, to: str, text: str, status_callback: str | None, reference: str = "") -> str:
        try:
            response = self.session.get(self.url, params=self.params(to, text, reference), timeout=self.timeout)
        except requests.RequestException as exc:
            # Never the exception's text: it quotes the URL, and the URL carries the password.
            if not _never_left(exc):
                raise SendUncertain(f"sendsms did not answer: {type(exc).__name__}") from None
            raise SendError(f"sendsms unreachable: {type(exc).__name__}", retryable=True, unreachable=True) from None
        refused = sendsms_refusal(response.status_code, response.text)
        if refused is not None:
            raise refused
        return f"kannel-{reference or uuid.uuid4().hex}"

    def params(self, to: str, text: str, reference: str) -> dict[str, str]:
        # Chinese needs coding=2 as well as the charset: with the charset alone Kannel sends 7-bit and phones get ???.
        params = {**self.credentials, "from": self.short_code, "to": to, "text": text, "charset": "UTF-8"}
        if not is_gsm7(text):
            params["coding"] = "2"
        if self.smsc:
            params["smsc"] = self.smsc
        if self.callback and reference:
            params["dlr-mask"] = str(DLR_MASK)
            # %d and %A are Kannel's: the report's type and the SMSC's words.
            params["dlr-url"] = f"{self.callback}&{urlencode({'m': reference, 'to': to})}&type=%d&reply=%A"
        return params


def sendsms_refusal(status: int, body: str) -> SendError | None:
    """What sendsms's answer means: None when it took the message (0: Accepted, 3: Queued for later delivery)."""
    said = body.strip()[:200]
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        return SendError(f"sendsms refused our credentials: {status} {said}", retryable=False, escalate=True)
    if status >= 500 or "queue full" in said.lower():  # bearerbox away, no SMSC, or its queue full: the link is down
        return SendError(f"sendsms busy: {status} {said}", retryable=True, unreachable=True)
    if status == 429:
        return SendError(f"sendsms busy: {status} {said}", retryable=True)
    return SendError(f"sendsms rejected the message: {status} {said}", retryable=False)
