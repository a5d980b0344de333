"""Flood control with flask-limiter on the app's Redis: a cap per client IP, and a cap per sending number on
inbound SMS, with one polite notice per window and silence after it.

Every route but the health probes is capped per IP by flask-limiter's application limit. The inbound SMS webhook
is different: it is counted only once its Twilio signature has been checked (forged requests are cheaper to
reject than to count, and must not use up a real subscriber's allowance), and its two counters, per IP and per
number, are bumped in the same Redis round trip that reads the subscriber (`Service.handle(..., quotas)`), as
flask-limiter's fixed windows in its own storage.

Settings: `TDBOT_RATE_LIMIT_IP` and `TDBOT_RATE_LIMIT_SMS` (limits notation: "300/second", "20/minute");
`RATELIMIT_ENABLED=False` turns both off (the test suite does, except where it tests them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

EXTENSION = "tdbot.limits"
DEFAULT_IP_LIMIT = "300/second"
DEFAULT_SMS_LIMIT = "20/minute"
PER_IP = "ip"
PER_NUMBER = "number"
SMS_ENDPOINT = "twilio_sms.inbound"


@dataclass(frozen=True)
class Quota:
    """A fixed-window counter: `key` lives `seconds` from its first hit and allows `allowed` hits."""

    scope: str
    key: str
    seconds: int
    allowed: int


class OverQuota(Exception):
    def __init__(self, quota: Quota) -> None:
        super().__init__(f"over the {quota.scope} limit")
        self.quota = quota


class Limits:
    def __init__(self, limiter: Limiter, prefix: str, per_ip: RateLimitItem, per_number: RateLimitItem) -> None:
        self.limiter, self.prefix = limiter, prefix
        self.per_ip, self.per_number = per_ip, per_number
        self.notice = type(per_number)(1, per_number.multiples, namespace="NOTICE")

    def sms_quotas(self, ip: str, msisdn: str) -> tuple[Quota, ...]:
        """What one inbound SMS counts against; nothing when limits are off."""
        if not self.limiter.enabled:
            return ()
        return self._quota(PER_IP, self.per_ip, "sms-ip", ip), self._quota(PER_NUMBER, self.per_number, "sms", msisdn)

    def _quota(self, scope: str, item: RateLimitItem, *identifiers: str) -> Quota:
        key = self.limiter.storage.prefixed_key(item.key_for(self.prefix, *identifiers))
        return Quota(scope, key, item.get_expiry(), item.amount)

    def first_notice(self, msisdn: str) -> bool:
        """True for the first message over `msisdn`'s limit in a window: only that one is answered."""
        try:
            return self.limiter.limiter.hit(self.notice, self.prefix, "sms", msisdn)
        except RedisError:
            return False  # when in doubt, stay quiet: a flooding phone gets no reply rather than many


def init_app(app: Flask) -> Limits:
    """Attach flask-limiter to `app`, on the connection pool of the app's Redis (embedded or not)."""
    from gateway import health

    runtime = app.extensions["tdbot"]
    per_ip = str(app.config.get("TDBOT_RATE_LIMIT_IP") or DEFAULT_IP_LIMIT)
    prefix = f"{runtime.keys.prefix}:limits"
    limiter = Limiter(
        get_remote_address, app=app, application_limits=[per_ip], strategy="fixed-window", key_prefix=prefix,
        storage_uri="redis://", storage_options={"connection_pool": runtime.redis.connection_pool},
        # Redis down must not turn every request into a 500: the routes answer "busy" / 503 themselves.
        swallow_errors=True,
    )
    # Platform probes see the app as it is, never throttled; inbound SMS is counted after its signature check.
    # (A request filter is flask-limiter's cheapest way out: checked before any limit is resolved.)
    uncounted = {health.bp.name}
    limiter.request_filter(lambda: request.blueprint in uncounted or request.endpoint == SMS_ENDPOINT)
    per_number = parse(str(app.config.get("TDBOT_RATE_LIMIT_SMS") or DEFAULT_SMS_LIMIT))
    limits = Limits(limiter, prefix, parse(per_ip), per_number)
    app.extensions[EXTENSION] = limits
    return limits
