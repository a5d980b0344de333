"""USSD end-of-session notifications on the subscriber's conversation log, for the ops view: once each, bounded."""

from __future__ import annotations

from gateway.state import codec
from gateway.state.keys import USSD_END
from gateway.state.store import INBOUND_TTL, LOG_LENGTH, Store

# One script, so the entry is added once or not at all, and only to a subscriber we have: unknown numbers must not be
# able to fill Redis. KEYS: the subscriber, the notification's record, the log. ARGV: the record's TTL, the entry, the
# log's length.
_LOG_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
return 1
"""


def record(store: Store, msisdn: str, session_id: str, entry: dict) -> bool:
    """Add `entry` (the session's end) to `msisdn`'s log unless it is there already or the number is unknown to us;
    True when added. A retried notification names the same session: kept as long as any inbound id."""
    keys = store.keys
    script = store.redis.register_script(_LOG_ONCE)
    added = script(keys=[keys.subscriber(msisdn), keys.of(msisdn, USSD_END, session_id), keys.log(msisdn)],
                   args=[INBOUND_TTL, codec.dumps(entry), LOG_LENGTH])
    return added == 1
