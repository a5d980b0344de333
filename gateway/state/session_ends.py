"""USSD end-of-session notifications in the subscriber's audit trail, for the ops view: once each, trimmed by age as
the trail is (gateway/state/audit.py)."""

from __future__ import annotations

from datetime import datetime

from gateway.state import audit, codec
from gateway.state.keys import USSD_END
from gateway.state.store import INBOUND_TTL, Store

# One script, so the entry is added once or not at all, and only for a subscriber we have: unknown numbers must not be
# able to fill Redis. KEYS: the subscriber, the notification's record, the audit stream. ARGV: the record's TTL, the
# stream's field, the entry, the oldest stream ID the trail keeps.
_AUDIT_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
redis.call('XADD', KEYS[3], 'MINID', ARGV[4], '*', ARGV[2], ARGV[3])
return 1
"""


def record(store: Store, msisdn: str, session_ref: str, entry: dict, now: datetime) -> bool:
    """Add `entry` (a session's end, kind audit.SESSION_END) to `msisdn`'s audit trail unless it is there already or
    the number is unknown to us; True when added. A retried notification names the same session."""
    keys = store.keys
    script = store.redis.register_script(_AUDIT_ONCE)
    added = script(
        keys=[keys.subscriber(msisdn), keys.of(msisdn, USSD_END, session_ref), keys.audit(msisdn)],
        args=[INBOUND_TTL, audit.FIELD, codec.dumps({"at": int(now.timestamp()), **entry}),
              audit.min_id(now, store.audit_days)],
    )
    return added == 1
