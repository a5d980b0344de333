"""Verification codes: stored as HMACs, compared in constant time, sent within the platforms' limits."""

from __future__ import annotations

import hashlib
import hmac

CODE_TTL = 300
MAX_ATTEMPTS = 5
# (window seconds, codes allowed): the Chinese SMS platforms' per-number limits.
SEND_LIMITS = ((60, 1), (3600, 5), (86400, 10))


def hash_code(secret: bytes, msisdn: str, code: str) -> str:
    return hmac.new(secret, f"{msisdn}:{code}".encode(), hashlib.sha256).hexdigest()


def code_matches(secret: bytes, msisdn: str, code: str, stored: str) -> bool:
    return bool(stored) and hmac.compare_digest(hash_code(secret, msisdn, code), stored)


def recent_sends(sent: tuple[int, ...], now: int) -> tuple[int, ...]:
    return tuple(t for t in sent if now - t < SEND_LIMITS[-1][0])


def wait_before_send(sent: tuple[int, ...], now: int) -> int:
    """Seconds until another code may be sent; 0 when one may go now."""
    wait = 0
    for window, allowed in SEND_LIMITS:
        inside = sorted(t for t in sent if now - t < window)
        if len(inside) >= allowed:
            wait = max(wait, inside[-allowed] + window - now)
    return wait
