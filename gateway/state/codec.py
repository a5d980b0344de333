"""JSON for the domain records; compact, since every step reads and writes them."""

from __future__ import annotations

import json
from dataclasses import is_dataclass
from datetime import date, datetime

from dialogs.model import Charge, DialogState, Payment, Statement, Subscriber, Subscription


def json_default(value: object) -> object:
    """json's `default`: dates as ISO 8601, dataclasses as objects of their fields (API and store alike)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if is_dataclass(value):
        # The encoder walks the fields itself: far cheaper than dataclasses.asdict's deep copy on every step.
        return vars(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


_ENCODER = json.JSONEncoder(default=json_default, ensure_ascii=False, separators=(",", ":"))


def dumps(value: object) -> str:
    """Compact JSON; dataclasses become objects of their fields, dates ISO 8601."""
    return _ENCODER.encode(value)


def subscriber_to_json(subscriber: Subscriber) -> str:
    return dumps(subscriber)


def subscriber_from_json(raw: str | bytes) -> Subscriber:
    data = json.loads(raw)
    return Subscriber(
        msisdn=data["msisdn"], carrier=data.get("carrier"), locale=data.get("locale"),
        subscriptions=tuple(subscription_from_dict(s) for s in data.get("subscriptions", ())),
        statements=tuple(statement_from_dict(s) for s in data.get("statements", ())),
        opted_out=bool(data.get("opted_out")),
        charges=tuple(charge_from_dict(c) for c in data.get("charges", ())),
        sms_channel=data.get("sms_channel", ""),
    )


def charge_from_dict(data: dict) -> Charge:
    return Charge(
        subscription_id=data["subscription_id"], period_start=date.fromisoformat(data["period_start"]),
        amount_fen=int(data["amount_fen"]), charged_at=datetime.fromisoformat(data["charged_at"]),
        period_end=date.fromisoformat(data["period_end"]) if data.get("period_end") else None,
        credited_fen=int(data.get("credited_fen", 0)), statement_id=data.get("statement_id", ""),
    )


def subscription_from_dict(data: dict) -> Subscription:
    cancelled = data.get("cancelled_at")
    return Subscription(
        id=data["id"], name=data["name"], service_code=data["service_code"], fee_fen=int(data["fee_fen"]),
        renews_on=date.fromisoformat(data["renews_on"]), status=data.get("status", "active"),
        paid_fen=int(data.get("paid_fen", 0)), cancelled_at=datetime.fromisoformat(cancelled) if cancelled else None,
        anchor_day=int(data.get("anchor_day", 0)),  # 0, as stored before anchors: the day of renews_on
    )


def statement_from_dict(data: dict) -> Statement:
    return Statement(
        id=data["id"], subscription_id=data["subscription_id"], name=data["name"], amount_fen=int(data["amount_fen"]),
        issued_at=datetime.fromisoformat(data["issued_at"]), due_at=datetime.fromisoformat(data["due_at"]),
        status=data.get("status", "open"), paid_fen=int(data.get("paid_fen", 0)),
        late_fee_fen=int(data.get("late_fee_fen", 0)),
        payments=tuple(payment_from_dict(p) for p in data.get("payments", ())),
        pending_reference=data.get("pending_reference", ""), pending_fen=int(data.get("pending_fen", 0)),
        pending_since=_moment(data.get("pending_since")),
    )


def _moment(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def payment_from_dict(data: dict) -> Payment:
    return Payment(data["reference"], int(data["amount_fen"]), datetime.fromisoformat(data["paid_at"]),
                   int(data.get("in_time_fen", 0)))


# A field at its default is not written, and a field this release does not know is not read: a release before or
# after this one (mid-deploy) reads every dialog whose differences are unset.
_DIALOG_DEFAULTS = vars(DialogState())
_DIALOG_TUPLES = tuple(name for name, value in _DIALOG_DEFAULTS.items() if isinstance(value, tuple))


def dialog_to_json(state: DialogState) -> str:
    return dumps({k: v for k, v in vars(state).items() if v != _DIALOG_DEFAULTS[k]})


def dialog_from_json(raw: str | bytes | None) -> DialogState:
    if not raw:
        return DialogState()
    data = {k: v for k, v in json.loads(raw).items() if k in _DIALOG_DEFAULTS}
    for name in _DIALOG_TUPLES:
        data[name] = tuple(data.get(name, ()))
    return DialogState(**data)
