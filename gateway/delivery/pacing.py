"""Outbound pacing: one GCRA schedule per route (carrier link) in Redis, shared by every worker on every host.

Each send books the next free slot of its route, costing one interval per SMS segment (providers
meter segments: a 2-segment Chinese message costs 2), then sleeps until that slot. Booking is one Lua
call, so workers never book the same slot twice, and there is no burst allowance: at 20 MPS sends are
50 ms apart from the first one on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import NamedTuple

from redis import Redis

DEFAULT_MPS = 1.0  # a Twilio long code
# Longer than this and the job gives its worker back and comes again later, booking nothing now.
MAX_WAIT = 10.0
_MICRO = 1_000_000

# KEYS[1]: the route's theoretical arrival time (TAT) in microseconds.
# ARGV: cost in microseconds, the longest wait to book, and `now` (empty: the Redis server's clock,
# the one clock all hosts share).
_BOOK = """
if redis.replicate_commands then redis.replicate_commands() end
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local slot = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local wait = slot - now
if wait > tonumber(ARGV[2]) then return {0, wait} end
local tat = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
return {1, wait}
"""


class Slot(NamedTuple):
    booked: bool
    wait: float  # seconds until the slot (booked) or until the schedule has room (not booked)


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
        self._now, self._sleep = now, sleep
        self._book = redis.register_script(_BOOK)

    def book(self, segments: int) -> Slot:
        """Book the next slot for `segments` segments, unless it is more than max_wait away."""
        cost = round(max(segments, 1) * _MICRO / self.mps)
        now = "" if self._now is None else str(round(self._now() * _MICRO))
        booked, wait = self._book(keys=[self.key], args=[cost, round(self.max_wait * _MICRO), now])
        return Slot(bool(booked), wait / _MICRO)

    def acquire(self, segments: int) -> float:
        """Wait for and take a slot: 0.0. Or, when the schedule is full beyond max_wait, take nothing and
        return the seconds after which to come back, so a worker is not held asleep."""
        slot = self.book(segments)
        if not slot.booked:
            return slot.wait
        if slot.wait > 0:
            self._sleep(slot.wait)
        return 0.0


def mps_for(config: dict, route: str) -> float:
    """`TDBOT_MPS_<ROUTE>` for this route (`TDBOT_MPS_KANNEL_CMCC`), else its channel's (`TDBOT_MPS_KANNEL`), else
    `TDBOT_SENDER_MPS`, else 1 (a long code)."""
    names = [route, route.split("-", 1)[0]]
    own = next((v for n in names if (v := config.get(f"TDBOT_MPS_{re.sub(r'[^A-Z0-9]', '_', n.upper())}"))), None)
    return float(own or config.get("TDBOT_SENDER_MPS") or DEFAULT_MPS)
