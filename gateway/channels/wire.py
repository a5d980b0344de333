"""What the channels share: a caller that is not the provider is refused (403, then 429 for an address refused too
often); and, for those that answer in plain text (Kannel's smsbox, the USSD gateway), a request their gateway, as
configured, would not make is a 400 naming what is wrong."""

from __future__ import annotations

from typing import NoReturn

from flask import Response, abort, current_app, request

from gateway import config
from gateway.web import limits


class BadRequest(ValueError):
    """A request the provider's gateway, as configured, does not make: answered 400 with the reason."""


class MissingField(BadRequest):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is required")


def token_given(setting: str) -> bool:
    """Whether the request's `token` query parameter is the secret setting `setting` (never when it is unset)."""
    return config.secret_matches(current_app.config, setting, request.args.get("token", ""))


def refuse() -> NoReturn:
    """403 for a request that is not the provider's; 429 once its address has been refused too often. Only refused
    requests count against an address: a provider calls from a few addresses for every subscriber."""
    over = current_app.extensions[limits.EXTENSION].unsigned_over_limit(client_address())
    abort(429 if over else 403)


def client_address() -> str:
    return request.remote_addr or "unknown"


def plain(text: str, status: int = 200) -> Response:
    return Response(text, status, mimetype="text/plain")
