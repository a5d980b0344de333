"""What the channels that answer in plain text share (Kannel's smsbox, the USSD gateway): a request their gateway,
as configured, would not make is a 400 naming what is wrong."""

from __future__ import annotations

from flask import Response


class BadRequest(ValueError):
    """A request the provider's gateway, as configured, does not make: answered 400 with the reason."""


class MissingField(BadRequest):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is required")


def plain(text: str, status: int = 200) -> Response:
    return Response(text, status, mimetype="text/plain")
