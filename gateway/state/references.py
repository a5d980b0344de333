"""Payment references claimed across all subscribers: one reference names one payment, credited to one statement for
one amount (docs/billing.md, Payments, rule 1). Each subscriber's record knows only its own references."""

from __future__ import annotations

from redis import Redis

from gateway.state.keys import PAYMENT_REFERENCES, Keys

# Claim a reference unless it is claimed already. KEYS: the index. ARGV: the reference, its terms. Answers nil when
# this call claimed it, else the terms it holds (maybe the same).
_CLAIM = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  return false
end
return redis.call('HGET', KEYS[1], ARGV[1])
"""

# Let a claim go, only if it still holds these terms. KEYS: the index. ARGV: the reference, its terms.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

Terms = tuple[str, int]  # the statement id and the amount in fen


def claim(redis: Redis, keys: Keys, reference: str, terms: Terms) -> Terms | None:
    """Claim `reference` for `terms`: None when this call claimed it, else the terms it was claimed for before."""
    held = redis.register_script(_CLAIM)(keys=[keys.shared(PAYMENT_REFERENCES)], args=[reference, _text(terms)])
    if held is None:
        return None
    statement_id, amount = (held.decode() if isinstance(held, bytes) else held).rsplit("|", 1)
    return statement_id, int(amount)


def release(redis: Redis, keys: Keys, reference: str, terms: Terms) -> None:
    """Let go of a claim of `reference` for `terms` that recorded nothing."""
    redis.register_script(_RELEASE)(keys=[keys.shared(PAYMENT_REFERENCES)], args=[reference, _text(terms)])


def _text(terms: Terms) -> str:
    return f"{terms[0]}|{terms[1]}"
