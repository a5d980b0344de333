"""A feature phone dialling the USSD menu, as Africa's Talking drives the app: every request of a session carries
all the answers so far, joined by `*`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from dialogs.segments import USSD_SCREEN

USSD_PATH = "/webhooks/ussd"
EVENTS_PATH = "/webhooks/ussd/events"
USSD_TOKEN = "test-ussd-token"

_sessions = itertools.count(1)


@dataclass(frozen=True)
class Screen:
    """One answer of the app: whether the session goes on, and what the phone shows."""

    ends: bool
    text: str

    @classmethod
    def parse(cls, body: str) -> Screen:
        assert body[:4] in ("CON ", "END "), body
        text = body[4:]
        assert len(text) <= USSD_SCREEN, f"{len(text)} characters: {text!r}"
        return cls(body.startswith("END "), text)


def form(msisdn: str, session_id: str, text: str, **extra: str) -> dict[str, str]:
    return {"sessionId": session_id, "serviceCode": "*100#", "phoneNumber": msisdn, "networkCode": "46000",
            "text": text, **extra}


@dataclass
class Session:
    """One dialling of the menu: `dial()` first, then `answer(...)` for each key pressed."""

    client: object
    msisdn: str
    token: str = USSD_TOKEN
    session_id: str = field(default_factory=lambda: f"ATUid_test{next(_sessions)}")
    answers: list[str] = field(default_factory=list)
    screens: list[tuple[str, Screen]] = field(default_factory=list)  # (text sent, screen), for replays

    @property
    def text(self) -> str:
        return "*".join(self.answers)

    def post(self, text: str, **extra: str):
        return self.client.post(f"{USSD_PATH}?token={self.token}", data=form(self.msisdn, self.session_id, text,
                                                                               **extra))

    def request(self, text: str) -> Screen:
        response = self.post(text)
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/plain"
        screen = Screen.parse(response.get_data(as_text=True))
        self.screens.append((text, screen))
        return screen

    def dial(self) -> Screen:
        return self.request("")

    def answer(self, *keys: str) -> Screen:
        """Press `keys` one screen after another; the last screen."""
        screen = None
        for key in keys:
            self.answers.append(key)
            screen = self.request(self.text)
        assert screen is not None
        return screen
