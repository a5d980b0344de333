"""Outbound pacing: one GCRA schedule per route (carrier link) in Redis, shared by every worker on every host.

Each send books the next free slot of its route, costing one interval per SMS segment (providers
meter segments: a 2-segment Chinese message costs 2), then sleeps until that slot if it is near; a slot further off
stays booked for the message, whose job comes back for it. Booking is one Lua call, so workers never book the same
slot twice, and there is no burst allowance: at 20 MPS sends are 50 ms apart from the first one on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import NamedTuple

from redis import Redis

DEFAULT_MPS = 1.0  # a Twilio long code
# A worker sleeps for a slot only when it is nearer than half a message's interval on the route (or than NEAR_ENOUGH:
# a fast link's next slot, which a job would take longer to give back and fetch again), and never longer than MAX_WAIT:
# a slot further off is booked for the message and its job comes back then. So a backlog, whose every next slot is a
# whole interval away, never holds a worker while other routes' messages queue behind it (docs/delivery.md).
MAX_WAIT = 1.0
NEAR_ENOUGH = 0.01
# A booked slot this long past when its job comes back (a backlog of jobs, a reminder held) is stale: book afresh.
STALE_AFTER = 60.0
_MICRO = 1_000_000

# KEYS[1]: the route's theoretical arrival time (TAT) in microseconds.
# ARGV: cost in microseconds, and `now` (empty: the Redis server's clock, the one clock all hosts share).
# Returns the slot booked and the `now` it was booked at, both in microseconds.
_BOOK = """
if redis.replicate_commands then redis.replicate_commands() end
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local slot = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local tat = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
return {string.format('%d', slot), string.format('%d', now)}
"""


class Slot(NamedTuple):
    wait: float  # seconds until the slot
    at: int  # the slot, in microseconds on the pacer's clock


class Pacer:
    def __init__(
        self,
        redis: Redis,
        key: str,
        mps: float,
        max_wait: float = MAX_WAIT,
        now: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if mps <= 0:
            raise ValueError(f"messages per second must be positive, not {mps}")
        self.key, self.mps, self.max_wait = key, mps, max_wait
        self._redis, self._now, self._sleep = redis, now, sleep
        self._book = redis.register_script(_BOOK)

    def book(self, segments: int) -> Slot:
        """Book the next slot for `segments` segments, however far off."""
        cost = round(max(segments, 1) * _MICRO / self.mps)
        now = "" if self._now is None else str(self._micros())
        slot, booked_at = map(int, self._book(keys=[self.key], args=[cost, now]))
        return Slot((slot - booked_at) / _MICRO, slot)

    def acquire(self, segments: int, booked: int = 0) -> Slot:
        """Take the slot booked before (`booked`, unless stale) or book the next one. Near (`near`): sleep until it and
        return Slot(0.0, 0), go. Further off: return it, booked, for the caller to come back then holding it, so that
        no worker is held asleep."""
        slot = self._held(booked) if booked else None
        if slot is None:
            slot = self.book(segments)
        if slot.wait > self.near:
            return slot
        if slot.wait > 0:
            self._sleep(slot.wait)
        return Slot(0.0, 0)

    @property
    def near(self) -> float:
        """The longest a worker sleeps for a slot: less than one message's interval (on a link slower than 50 MPS), so
        never once per message of a backlog."""
        return min(self.max_wait, max(NEAR_ENOUGH, 0.5 / self.mps))

    def _held(self, booked: int) -> Slot | None:
        wait = (booked - self._micros()) / _MICRO
        return Slot(wait, booked) if wait > -STALE_AFTER else None

    def _micros(self) -> int:
        if self._now is not None:
            return round(self._now() * _MICRO)
        seconds, micros = self._redis.time()
        return seconds * _MICRO + micros


def mps_for(config: dict, route: str) -> float:
    """`TDBOT_MPS_<ROUTE>` for this route (`TDBOT_MPS_KANNEL_CMCC`), else its channel's (`TDBOT_MPS_KANNEL`), else
    `TDBOT_SENDER_MPS`, else 1 (a long code)."""
    names = [route, route.split("-", 1)[0]]
    own = next((v for n in names if (v := config.get(f"TDBOT_MPS_{re.sub(r'[^A-Z0-9]', '_', n.upper())}"))), None)
    return float(own or config.get("TDBOT_SENDER_MPS") or DEFAULT_MPS)
