"""What every role reaches its adapters through: the `Runtime` (Redis, store, routes, routing, billing, clock,
queues), `runtime()` inside a request, `current()` in an RQ job.

It sits below delivery/, jobs/, the service, channels/ and web/ (they all use it) and above state/ and config.py (it
holds them); gateway/bootstrap.py wires a real one from the settings. Nothing here opens a connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import current_app
from redis import Redis
from rq import Queue

from carriers import CarrierPolicy
from dialogs.model import Subscriber
from gateway import config as settings
from gateway.state.connection import url_of
from gateway.state.counters import TrafficBuffer
from gateway.state.keys import Keys
from gateway.state.ledger import Billing
from gateway.state.messages import OutboundMessage
from gateway.state.store import Store

if TYPE_CHECKING:  # the adapters a route holds are delivery's, wired by gateway/bootstrap.py
    from gateway.delivery.pacing import Pacer
    from gateway.delivery.routing import Routing
    from gateway.delivery.senders import Sender

log = logging.getLogger(__name__)

OUTBOUND_QUEUE = "outbound"
REMINDER_QUEUE = "reminders"
DEFAULT_QUEUE = "default"
QUEUES = (OUTBOUND_QUEUE, REMINDER_QUEUE, DEFAULT_QUEUE)
EXTENSION = "tdbot"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Route:
    """One way out (a carrier link): who sends, and the pace all workers share."""

    name: str
    sender: Sender
    pacer: Pacer

    @property
    def channel(self) -> str:
        """The channel it belongs to (kannel-cmcc: kannel), as inbound traffic is counted."""
        return self.name.split("-", 1)[0]


@dataclass
class Runtime:
    config: dict
    redis: Redis
    queue_redis: Redis
    keys: Keys
    store: Store
    routes: dict[str, Route]
    routing: Routing
    billing: Billing
    clock: Callable[[], datetime] = utc_now
    _queues: dict[str, Queue] = field(default_factory=dict)
    traffic: TrafficBuffer = field(init=False)  # this process's messages per minute, on their way to Redis

    def __post_init__(self) -> None:
        self.traffic = TrafficBuffer(self.redis, self.keys, settings.traffic_flush_seconds(self.config))

    def queue(self, name: str) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.queue_redis)
        return self._queues[name]

    def route(self, message: OutboundMessage) -> Route:
        """The route `message` leaves by: its own, or (a record of the previous release, a route no longer configured)
        the one a message that answers nothing would take."""
        route = self.routes.get(message.route)
        if route is None:
            if message.route:
                log.warning("route %s of message %s is not configured; sending by the default", message.route,
                            message.id)
            route = self.routes[self.routing.route(message.msisdn)]
        return route

    @property
    def queue_url(self) -> str:
        """Where the queues live, as a URL another process (rq cron, rq-dashboard) can use: an embedded Redis
        listens on a socket."""
        return str(self.config.get("RQ_REDIS_URL") or self.config.get("REDIS_URL") or url_of(self.queue_redis))

    @property
    def secret(self) -> bytes:
        return str(self.config["TDBOT_SECRET_KEY"]).encode()

    def policy(self, subscriber: Subscriber) -> CarrierPolicy:
        """The subscriber's carrier policy, with this deployment's quiet hours when TDBOT_QUIET_HOURS sets them."""
        return settings.carrier_policy(self.config, subscriber.msisdn, subscriber.carrier)


_current: Runtime | None = None
_wire: Callable[[dict], Runtime] | None = None


def install(runtime: Runtime) -> None:
    """Make `runtime` the one RQ jobs in this process use."""
    global _current
    _current = runtime


def wire_with(wire: Callable[[dict], Runtime]) -> None:
    """How `current()` wires a runtime when none is installed: gateway/__init__.py names gateway.bootstrap's, so that
    any process that imports a job (which imports the gateway package first) has it."""
    global _wire
    _wire = wire


def current() -> Runtime:
    """The runtime of this process's RQ jobs: the one installed (worker.py, the app), else one wired from the
    environment (and installed)."""
    if _current is None:
        if _wire is None:
            raise RuntimeError("no runtime installed and none to wire: import gateway first")
        return _wire(settings.from_env())
    return _current


def runtime() -> Runtime:
    """The app's wired adapters (store, sender, queues, clock), inside a request or app context."""
    return current_app.extensions[EXTENSION]
