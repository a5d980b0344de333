"""A `JF` charge under way, for tests that run its job under the real worker."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from dialogs.apply import apply
from dialogs.effects import Pay
from dialogs.model import CANCELLED, Statement, Subscriber, Subscription
from dialogs.payments import charge_reference

MSISDN = "+8613800138000"
VID = "8613800138000-vid-20261107"


def paying(now: datetime) -> tuple[Subscriber, str]:
    """A subscriber who confirmed a `JF` charge of 9.50 just now; the charge's reference."""
    sub = Subscription("vid", "视频会员", "SPHY", 1500, date(2026, 12, 7), status=CANCELLED, cancelled_at=now)
    statement = Statement(VID, "vid", "视频会员", 950, now, now + timedelta(days=7))
    reference = charge_reference(VID, int(now.timestamp()))
    subscriber = Subscriber(MSISDN, "cmcc", "zh", (sub,), (statement,))
    return apply(subscriber, [Pay(VID, 950, reference)], now), reference
