"""Flood control with flask-limiter on the app's Redis: a cap per client IP, and a cap per sending number on
inbound SMS, with one polite notice per window and silence after it.

Every route but the health probes and the provider webhooks (Twilio, Kannel) is capped per IP by flask-limiter's
application limit. Signed provider webhooks are not: Twilio posts every customer's traffic from a few shared addresses
and one smsbox posts all of a carrier's, so a cap per IP would cap real subscribers. A webhook request whose
signature or token fails is counted per IP instead (after the cheap HMAC check, so the counting is only ever paid for
refused requests). Inbound SMS is also capped per sending number,
counted only once its signature has been checked (a forgery must not use up a real subscriber's allowance), in the
same Redis call that reads the subscriber (`Service.handle(..., quotas)`): a fixed window kept in the subscriber's
own Cluster slot, with flask-limiter's limit notation. It counts messages, not requests: a retried webhook is one
message, and one already answered counts nothing (docs/delivery.md).

Settings: `TDBOT_RATE_LIMIT_IP` and `TDBOT_RATE_LIMIT_SMS` (limits notation: "300/second", "20/minute");
`RATELIMIT_ENABLED=False` turns both off (the test suite does, except where it tests them). Behind a proxy, set
`TDBOT_PROXY_HOPS` so the client IP is read from X-Forwarded-For (gateway/__init__.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from redis.exceptions import RedisError

from gateway.runtime import EXTENSION as RUNTIME
from gateway.state.keys import Keys
from gateway.state.quotas import Quota
from gateway.web import health

log = logging.getLogger(__name__)

EXTENSION = "tdbot.limits"
DEFAULT_IP_LIMIT = "300/second"
DEFAULT_SMS_LIMIT = "20/minute"
DEFAULT_SIGN_IN_LIMIT = "10/minute"  # ops console sign-in attempts, per client IP and per operator name
# Provider webhooks' blueprints: their routes are counted per IP only when their signature (or token) fails. The USSD
# gateway's too: it calls for every subscriber from a few addresses.
WEBHOOKS = frozenset({"twilio_sms", "kannel", "ussd"})
HOOKS = 3  # flask-limiter's before-request, after-request and teardown hooks


class Limits:
    def __init__(self, limiter: Limiter, keys: Keys, per_ip: RateLimitItem, per_number: RateLimitItem,
                 sign_in: RateLimitItem | None = None) -> None:
        self.limiter, self.keys, self.prefix = limiter, keys, keys.limits()
        self.per_ip, self.per_number = per_ip, per_number
        self.sign_in = sign_in or parse(DEFAULT_SIGN_IN_LIMIT)

    def sms_quotas(self, msisdn: str) -> tuple[Quota, ...]:
        """What one signed inbound SMS counts against (its sender's allowance); nothing when limits are off."""
        if not self.limiter.enabled:
            return ()
        # A hash of the message ids counted (gateway/state/store.py), named apart from the plain counter it replaced.
        n = self.per_number
        key = self.keys.sms_quota(msisdn, n.amount, n.get_expiry())
        return (Quota(key, self.per_number.get_expiry(), self.per_number.amount),)

    def unsigned_over_limit(self, ip: str) -> bool:
        """Count one webhook request that failed its signature check against `ip`; True once over the IP limit."""
        if not self.limiter.enabled:
            return False
        try:
            return not self.limiter.limiter.hit(self.per_ip, self.prefix, "unsigned", ip)
        except RedisError:
            return False  # the request is refused (403) anyway; no reason to turn that into an error

    def sign_in_over_limit(self, ip: str, name: str) -> bool:
        """Count one console sign-in attempt against the client IP and the operator name; True once over either
        (guessing one operator's password from many addresses is slowed as much as guessing from one)."""
        if not self.limiter.enabled:
            return False
        try:
            hits = [self.limiter.limiter.hit(self.sign_in, self.prefix, "signin", "ip", ip),
                    self.limiter.limiter.hit(self.sign_in, self.prefix, "signin", "name", name.lower()[:64])]
        except RedisError:
            return False  # no Redis, no console anyway: the attempt fails on the operator lookup
        return not all(hits)


def _skip_hooks(app: Flask, limiter: Limiter, blueprints: set[str]) -> None:
    """Guard the before/after/teardown hooks flask-limiter adds to every request so `blueprints` skip them.

    Its own request filter runs only after the hook has identified the endpoint and set up its request context:
    about a fifth of a webhook step's CPU (bench/webhook.py), for a blueprint that is never counted here.
    """
    guarded = 0
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        mine = [f for f in hooks.get(None, []) if _belongs_to(limiter, f)]
        hooks[None] = [_unless(blueprints, f) if f in mine else f for f in hooks.get(None, [])]
        guarded += len(mine)
    if limiter.enabled and guarded != HOOKS:  # a disabled limiter (RATELIMIT_ENABLED=False) adds none
        log.warning("flask-limiter added %d request hooks, not %d: webhooks may pay for them", guarded, HOOKS)


def _belongs_to(limiter: Limiter, hook: Callable) -> bool:
    owner = hook.args[0] if isinstance(hook, partial) and hook.args else getattr(hook, "__self__", None)
    return owner is limiter


def _unless(blueprints: set[str], hook: Callable) -> Callable:
    def guarded(*args: Any) -> Any:
        if request.blueprint in blueprints:
            return args[0] if args else None  # an after-request hook hands its response back; others ignore it
        return hook(*args)

    return guarded


def init_app(app: Flask) -> Limits:
    """Attach flask-limiter to `app`, on the connection pool of the app's Redis (embedded or not)."""
    runtime = app.extensions[RUNTIME]
    per_ip = str(app.config.get("TDBOT_RATE_LIMIT_IP") or DEFAULT_IP_LIMIT)
    prefix = runtime.keys.limits()
    limiter = Limiter(
        get_remote_address, app=app, application_limits=[per_ip], strategy="fixed-window", key_prefix=prefix,
        storage_uri="redis://", storage_options={"connection_pool": runtime.redis.connection_pool},
        # Redis down must not turn every request into a 500: the routes answer "busy" / 503 themselves.
        swallow_errors=True,
    )
    # Platform probes see the app as it is, never throttled; provider webhooks are counted after their signature
    # check, so neither pays for flask-limiter's per-request hooks.
    uncounted = {health.bp.name, *WEBHOOKS}
    _skip_hooks(app, limiter, uncounted)
    limiter.request_filter(lambda: request.blueprint in uncounted)  # the public way, should a new release elude us
    per_number = parse(str(app.config.get("TDBOT_RATE_LIMIT_SMS") or DEFAULT_SMS_LIMIT))
    sign_in = parse(str(app.config.get("TDBOT_RATE_LIMIT_SIGNIN") or DEFAULT_SIGN_IN_LIMIT))
    limits = Limits(limiter, runtime.keys, parse(per_ip), per_number, sign_in)
    app.extensions[EXTENSION] = limits
    return limits
