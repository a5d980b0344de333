"""Sorted-set indexes whose members may be written again while someone works on them (the outbox, follow-ups)."""

from __future__ import annotations

from redis import Redis

# KEYS: the index. ARGV: member, the score it was seen with. One written again since (a later step, a later failure
# report) is its writer's to remove.
_FORGET = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


def forget(redis: Redis, index: str, member: str, seen: float) -> bool:
    """Remove `member` from `index` unless it was written again after it was `seen` (with that score)."""
    return bool(redis.register_script(_FORGET)(keys=[index], args=[member, seen]))
