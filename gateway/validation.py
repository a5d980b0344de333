"""Turn the carrier back office's JSON (or a CSV row) into a Subscriber, or say exactly what is wrong."""

from __future__ import annotations

from datetime import date

from carriers import POLICIES, to_e164
from dialogs.messages import LANGS
from dialogs.model import Subscriber, Subscription

MAX_SUBSCRIPTIONS = 100
MAX_NAME = 40


class Invalid(ValueError):
    """A request the caller must fix; the message says how."""


def msisdn(raw: str) -> str:
    number = to_e164(raw)
    if number is None:
        raise Invalid(f"{raw!r} is not a valid phone number; use E.164, e.g. +8613800138000")
    return number


def subscriber(number: str, data: object) -> Subscriber:
    if not isinstance(data, dict):
        raise Invalid("body must be a JSON object")
    subs = data.get("subscriptions", [])
    if not isinstance(subs, list) or len(subs) > MAX_SUBSCRIPTIONS:
        raise Invalid(f"subscriptions must be a list of at most {MAX_SUBSCRIPTIONS} objects")
    parsed = tuple(subscription(i, s) for i, s in enumerate(subs))
    if len({s.id for s in parsed}) != len(parsed):
        raise Invalid("subscriptions[].id must be unique")
    return Subscriber(msisdn=number, carrier=_choice(data, "carrier", POLICIES), locale=_choice(data, "locale", LANGS),
                      subscriptions=parsed)


def _choice(data: dict, name: str, allowed) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise Invalid(f"{name} must be one of {', '.join(sorted(allowed))}")
    return value


def subscription(index: int, data: object) -> Subscription:
    where = f"subscriptions[{index}]"
    if not isinstance(data, dict):
        raise Invalid(f"{where} must be an object")
    fee = data.get("fee_fen")
    if isinstance(fee, str) and fee.isdigit():
        fee = int(fee)
    if not isinstance(fee, int) or isinstance(fee, bool) or not 0 <= fee <= 10_000_000:
        raise Invalid(f"{where}.fee_fen must be a whole number of fen between 0 and 10000000")
    return Subscription(
        id=_text(data, "id", where, 64), name=_text(data, "name", where, MAX_NAME),
        service_code=_text(data, "service_code", where, 32), fee_fen=fee, renews_on=_date(data, where),
    )


def _text(data: dict, name: str, where: str, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Invalid(f"{where}.{name} must be a non-empty string of at most {limit} characters")
    if any(c in value for c in "|\n\r"):
        raise Invalid(f"{where}.{name} contains a character that is not allowed")
    return value.strip()


def _date(data: dict, where: str) -> date:
    try:
        return date.fromisoformat(str(data.get("renews_on")))
    except ValueError:
        raise Invalid(f"{where}.renews_on must be a date like 2026-12-01") from None
