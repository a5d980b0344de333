"""Routes (carrier links) found unreachable, until a send on them succeeds: `tdbot:routes-down`, route -> when it was
found down (epoch seconds). While a route is down one message a while tries it (a probe, `tdbot:routes-down:probe:
<route>`: when the next may go), the others wait without asking it (docs/delivery.md, "A route that is down")."""

from __future__ import annotations

from redis import Redis

from gateway.state.keys import ROUTES_DOWN, Keys

PROBE = "probe"

# KEYS: the route's probe: when the next one may go. ARGV: now, seconds between probes. 1: this caller probes now.
_PROBE = """
local next = tonumber(redis.call('GET', KEYS[1]))
if next and next > tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), 'EX', 86400)
return 1
"""


def key(keys: Keys) -> str:
    return keys.shared(ROUTES_DOWN)


def went_down(redis: Redis, keys: Keys, route: str, at: float) -> bool:
    """Mark `route` down since `at`; True when this call began the outage (it was up)."""
    return bool(redis.hsetnx(key(keys), route, at))


def came_back(redis: Redis, keys: Keys, route: str) -> bool:
    """Mark `route` up; True when it had been down."""
    return bool(redis.hdel(key(keys), route))


def may_try(redis: Redis, keys: Keys, route: str, now: float, every: int) -> bool:
    """Whether a message may ask `route` at `now`: always while it is up; while it is down, one caller every `every`
    seconds (of the app's clock, as the outage's start)."""
    if not redis.hexists(key(keys), route):
        return True
    return bool(redis.register_script(_PROBE)(keys=[keys.shared(ROUTES_DOWN, PROBE, route)], args=[now, every]))


def down(redis: Redis, keys: Keys) -> dict[str, float]:
    """Every route marked down, with since when."""
    return {name.decode(): float(since) for name, since in redis.hgetall(key(keys)).items()}
