"""Ways to put a message on a phone: Twilio's REST API, or a console outbox for development."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from redis import Redis

from gateway.state.codec import dumps

log = logging.getLogger(__name__)

OUTBOX_LENGTH = 1000
SENT_TTL = 7 * 86400  # how long the console sender can tell whether a message went
# Twilio errors that no retry can fix: opted out, invalid or unreachable 'To', blocked.
PERMANENT_TWILIO_ERRORS = {21211, 21408, 21610, 21612, 21614, 30004, 30005, 30006}
OPTED_OUT = 21610


class SendError(Exception):
    def __init__(self, message: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


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
