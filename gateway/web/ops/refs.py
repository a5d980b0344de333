"""Subscribers in console URLs: an opaque reference (keyed HMAC of the number), so that a masked page does not show
the number in its address bar; the console remembers which number each reference stands for."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from gateway.runtime import Runtime
from gateway.state.keys import OPS_REFS


def ref(runtime: Runtime, msisdn: str) -> str:
    return "s" + hmac.new(runtime.secret, msisdn.encode(), hashlib.sha256).hexdigest()[:20]


def remember(runtime: Runtime, msisdns: Iterable[str]) -> dict[str, str]:
    """Number → reference for `msisdns`, kept so the references can be followed."""
    refs = {msisdn: ref(runtime, msisdn) for msisdn in set(msisdns)}
    if refs:
        runtime.redis.hset(runtime.keys.shared(OPS_REFS), mapping={r: m for m, r in refs.items()})
    return refs


def number(runtime: Runtime, reference: str) -> str | None:
    raw = runtime.redis.hget(runtime.keys.shared(OPS_REFS), reference)
    return raw.decode() if raw else None
