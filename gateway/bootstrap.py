"""The one place that wires real adapters (Redis, store, routes, billing, clock, queues) and hands them to Flask:
`init_app(app)` wires them, `runtime()` / `get_redis()` reach them inside a request (the only way blueprints do)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Flask, current_app
from redis import Redis
from rq import Queue

from carriers import POLICIES, CarrierPolicy
from dialogs.model import Subscriber
from gateway import config as settings
from gateway.delivery.messages import OutboundMessage
from gateway.delivery.pacing import Pacer, mps_for
from gateway.delivery.routing import CONSOLE, KANNEL, TWILIO, Routing
from gateway.delivery.senders import ConsoleSender, KannelSender, Sender, TwilioSender
from gateway.jobs.billing import Billing, backend_for
from gateway.state import audit
from gateway.state.connection import connect, url_of
from gateway.state.counters import TrafficBuffer
from gateway.state.keys import OUTBOX, PACE, Keys
from gateway.state.store import Store

log = logging.getLogger(__name__)

OUTBOUND_QUEUE = "outbound"
REMINDER_QUEUE = "reminders"
DEFAULT_QUEUE = "default"
QUEUES = (OUTBOUND_QUEUE, REMINDER_QUEUE, DEFAULT_QUEUE)


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


EXTENSION = "tdbot"

_current: Runtime | None = None


def bootstrap(config: dict) -> Runtime:
    data_dir = str(config.get("TDBOT_DATA_DIR") or ".tdbot")
    redis = connect(config.get("REDIS_URL"), data_dir)
    queue_url = config.get("RQ_REDIS_URL")
    queue_redis = connect(queue_url, data_dir) if queue_url else redis
    keys = Keys(str(config.get("TDBOT_KEY_PREFIX") or "tdbot"))
    clock = config.get("CLOCK") or utc_now
    settings.check_kannel(config)
    routes = {
        name: Route(name, sender, Pacer(redis, keys.shared(PACE, name), mps_for(config, name)))
        for name, sender in _senders(config, redis, keys).items()
    }
    runtime = Runtime(
        config=config, redis=redis, queue_redis=queue_redis, keys=keys,
        store=Store(redis, keys, audit.retention_days(config), clock), routes=routes,
        routing=settings.routing(config, frozenset(route.channel for route in routes.values())),
        billing=backend_for(config, redis, keys, clock), clock=clock,
    )
    install(runtime)
    return runtime


def _senders(config: dict, redis: Redis, keys: Keys) -> dict[str, Sender]:
    """A sender per route: the console always (the development default), Twilio when its account is set, and a Kannel
    link per carrier when sendsms is. `SENDER` (tests, benches) stands in for the route its name names."""
    senders: dict[str, Sender] = {CONSOLE: ConsoleSender(redis, keys.shared(OUTBOX))}
    twilio = _twilio(config)
    if twilio is not None:
        senders[TWILIO] = twilio
    if config.get("KANNEL_SENDSMS_URL"):
        senders |= {f"{KANNEL}-{carrier}": _kannel(config, carrier) for carrier in POLICIES}
    if config.get("SENDER"):
        senders[config["SENDER"].name] = config["SENDER"]
    return senders


def _twilio(config: dict) -> TwilioSender | None:
    sid, token = config.get("TWILIO_ACCOUNT_SID"), config.get("TWILIO_AUTH_TOKEN")
    origin = config.get("TWILIO_MESSAGING_SERVICE_SID"), config.get("TWILIO_FROM")
    if not (sid and token and any(origin)):
        return None
    who = {"messaging_service_sid": origin[0]} if origin[0] else {"from_": origin[1]}
    return TwilioSender(sid, token, who, config.get("TWILIO_API_BASE_URL"))


def _kannel(config: dict, carrier: str) -> KannelSender:
    base = config.get("KANNEL_CALLBACK_URL") or config.get("PUBLIC_BASE_URL")
    token = urlencode({"token": config["TDBOT_KANNEL_TOKEN"]})
    smsc = config.get(settings.PER_CARRIER_SMSC + carrier.upper())
    return KannelSender(
        str(config["KANNEL_SENDSMS_URL"]), str(config["KANNEL_USERNAME"]), str(config["KANNEL_PASSWORD"]),
        short_code=POLICIES[carrier].short_code, smsc=str(smsc or ""), name=f"{KANNEL}-{carrier}",
        callback=f"{str(base).rstrip('/')}/webhooks/kannel/dlr?{token}" if base else "",
    )


def install(runtime: Runtime) -> None:
    """Make `runtime` the one RQ jobs in this process use."""
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        return bootstrap(settings.from_env())
    return _current


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = bootstrap(app.config)


def runtime() -> Runtime:
    """The app's wired adapters (store, sender, queues, clock), inside a request or app context."""
    return current_app.extensions[EXTENSION]


def get_redis() -> Redis:
    return runtime().redis
