"""Turn the carrier back office's JSON (or a CSV row) into a Subscriber, or say exactly what is wrong."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from carriers import POLICIES, to_e164
from dialogs.messages import LANGS
from dialogs.model import Payment, Subscriber, Subscription

MAX_SUBSCRIPTIONS = 100
MAX_NAME = 40
MAX_PAYMENT_FEN = 10_000_000
MAX_REFERENCE = 64
# A subscription id ends up inside statement ids, payment URLs and due-index members: URL-safe, no separators.
SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CLOCK_SKEW = timedelta(minutes=5)  # a payer's clock a little ahead of ours is not an error


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
    if not isinstance(value, str) or value not in allowed:
        raise Invalid(f"{name} must be one of {', '.join(sorted(allowed))}")
    return value


def subscription(index: int, data: object) -> Subscription:
    where = f"subscriptions[{index}]"
    if not isinstance(data, dict):
        raise Invalid(f"{where} must be an object")
    fee = data.get("fee_fen")
    if isinstance(fee, str) and fee.isascii() and fee.isdigit():  # "²".isdigit() too, and int() refuses it
        fee = int(fee)
    if not isinstance(fee, int) or isinstance(fee, bool) or not 0 <= fee <= 10_000_000:
        raise Invalid(f"{where}.fee_fen must be a whole number of fen between 0 and 10000000")
    return Subscription(
        id=_subscription_id(data, where), name=_text(data, "name", where, MAX_NAME),
        service_code=_text(data, "service_code", where, 32), fee_fen=fee, renews_on=_date(data, where),
        paid_fen=_paid(data, where, fee),
    )


def _paid(data: dict, where: str, fee: int) -> int:
    """What the carrier reports paid towards the current period; absent or empty (a blank CSV cell) is nothing."""
    paid = data.get("paid_fen")
    if paid is None or paid == "":
        return 0
    if isinstance(paid, str) and paid.isascii() and paid.isdigit():
        paid = int(paid)
    if not isinstance(paid, int) or isinstance(paid, bool) or not 0 <= paid <= fee:
        raise Invalid(f"{where}.paid_fen must be a whole number of fen between 0 and fee_fen ({fee})")
    return paid


def _subscription_id(data: dict, where: str) -> str:
    value = data.get("id")
    if not isinstance(value, str) or not SUBSCRIPTION_ID.fullmatch(value.strip()):
        raise Invalid(f"{where}.id must be 1 to 64 characters, each a letter A-Z or a-z, a digit 0-9, '.', '_' or '-'")
    return value.strip()


def _text(data: dict, name: str, where: str, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Invalid(f"{where}.{name} must be a non-empty string of at most {limit} characters")
    if any(c in value for c in "|\n\r") or not is_text(value):
        raise Invalid(f"{where}.{name} contains a character that is not allowed")
    return value.strip()


def is_text(value: str) -> bool:
    """Whether `value` is text UTF-8 can carry: not half a surrogate pair, which a JSON escape ("\\ud800") or a file
    read with surrogateescape makes, and which Redis, a log line or a reply would fail on later."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _date(data: dict, where: str) -> date:
    try:
        return date.fromisoformat(str(data.get("renews_on")))
    except ValueError:
        raise Invalid(f"{where}.renews_on must be a date like 2026-12-01") from None


def payment(data: object, now: datetime) -> Payment:
    """A payment made elsewhere, as `POST /api/v1/statements/<id>/payments` takes it."""
    if not isinstance(data, dict):
        raise Invalid("body must be a JSON object")
    amount = data.get("amount_fen")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= MAX_PAYMENT_FEN:
        raise Invalid(f"amount_fen must be a whole number of fen between 1 and {MAX_PAYMENT_FEN}")
    reference = data.get("reference")
    if not isinstance(reference, str) or not reference.strip() or len(reference) > MAX_REFERENCE:
        raise Invalid(f"reference must be a non-empty string of at most {MAX_REFERENCE} characters")
    if not reference.isprintable():
        raise Invalid("reference contains a character that is not allowed")
    return Payment(reference, amount, _paid_at(data.get("paid_at"), now))


def _paid_at(raw: object, now: datetime) -> datetime:
    if raw is None:
        return now
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Invalid("paid_at must be an ISO 8601 time with an offset, e.g. 2026-11-25T10:00:00+08:00")
    if moment > now + CLOCK_SKEW:
        raise Invalid("paid_at must not be in the future")
    return moment
