"""Ways to put a message on a phone: Twilio's REST API, Kannel's sendsms, or a console outbox for development."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import requests
from redis import Redis

from dialogs.segments import is_gsm7
from gateway.state.codec import dumps

log = logging.getLogger(__name__)

OUTBOX_LENGTH = 1000
SENT_TTL = 7 * 86400  # how long the console sender can tell whether a message went
# Twilio errors that no retry can fix: opted out, invalid or unreachable 'To', blocked.
PERMANENT_TWILIO_ERRORS = {21211, 21408, 21610, 21612, 21614, 30004, 30005, 30006}
OPTED_OUT = 21610


class SendError(Exception):
    """A send that did not happen. `escalate`: no message will go until a person fixes something (credentials)."""

    def __init__(self, message: str, *, retryable: bool, code: int | None = None, escalate: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.escalate = escalate


class Sender(Protocol):
    name: str

    def send(self, to: str, text: str, status_callback: str | None, reference: str = "") -> str:
        """Hand the message to the provider; return its id. Raise SendError on failure. `reference` is our message
        id; a sender that can also look a send up by it offers `find(reference) -> provider id | None`."""


@dataclass
class ConsoleSender:
    redis: Redis
    outbox_key: str
    name: str = "console"

    def send(self, to: str, text: str, status_callback: str | None, reference: str = "") -> str:
        sid = f"CON{time.time_ns():x}"
        entry = {"sid": sid, "to": to, "text": text, "at": time.time()}
        with self.redis.pipeline() as pipe:
            pipe.rpush(self.outbox_key, dumps(entry))
            pipe.ltrim(self.outbox_key, -OUTBOX_LENGTH, -1)
            if reference:  # in the same MULTI as the send itself, so `find` is never wrong
                pipe.set(self._sent_key(reference), sid, ex=SENT_TTL)
            pipe.execute()
        log.info("console SMS to %s: %s", to, text)
        return sid

    def find(self, reference: str) -> str | None:
        sid = self.redis.get(self._sent_key(reference))
        return sid.decode() if sid else None

    def _sent_key(self, reference: str) -> str:
        return f"{self.outbox_key}:sent:{reference}"


class TwilioSender:
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, sender: dict[str, str], base_url: str | None) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=10))
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
            # TWILIO_EDGE / TWILIO_REGION would rewrite the host; the configured base URL is where sends go.
            self.client.edge = self.client.region = None
        self.sender = sender

    def send(self, to: str, text: str, status_callback: str | None, reference: str = "") -> str:
        from twilio.base.exceptions import TwilioRestException

        extra = {"status_callback": status_callback} if status_callback else {}
        try:
            message = self.client.messages.create(to=to, body=text, **self.sender, **extra)
        except TwilioRestException as exc:
            raise SendError(str(exc.msg), retryable=_retryable(exc.status, exc.code), code=exc.code) from exc
        except OSError as exc:
            raise SendError(str(exc), retryable=True) from exc
        return message.sid


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

    Refused connections and 5xx (bearerbox away, queue full) are retried; a read timeout is retried too, so a send
    Kannel took but did not answer may go twice rather than never (sendsms offers no lookup by our id).
    """

    name = "kannel"

    def __init__(self, url: str, username: str, password: str, short_code: str, smsc: str = "",
                 callback: str = "", session: requests.Session | None = None) -> None:
        self.url, self.short_code, self.smsc, self.callback = url, short_code, smsc, callback
        self.credentials = {"username": username, "password": password}
        self.session = session or requests.Session()

    def send(self, to: str, text: str, status_callback: str | None, reference: str = "") -> str:
        try:
            response = self.session.get(self.url, params=self.params(to, text, reference), timeout=SENDSMS_TIMEOUT)
        except requests.RequestException as exc:
            # Never the exception's text: it quotes the URL, and the URL carries the password.
            raise SendError(f"sendsms unreachable: {type(exc).__name__}", retryable=True) from None
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
    if status >= 500 or status == 429 or "queue full" in said.lower():
        return SendError(f"sendsms busy: {status} {said}", retryable=True)
    return SendError(f"sendsms rejected the message: {status} {said}", retryable=False)
