"""The one place that wires real adapters (Redis, store, sender, billing, clock, queues) and hands them to Flask:
`init_app(app)` wires them, `runtime()` / `get_redis()` reach them inside a request (the only way blueprints do)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Flask, current_app
from redis import Redis
from rq import Queue

from carriers import CarrierPolicy
from dialogs.model import Subscriber
from gateway import config as settings
from gateway.delivery.pacing import Pacer, mps_for
from gateway.delivery.senders import ConsoleSender, Sender, TwilioSender
from gateway.jobs.billing import Billing, backend_for
from gateway.state import audit, counters
from gateway.state.connection import connect
from gateway.state.counters import TrafficBuffer
from gateway.state.keys import OUTBOX, PACE, Keys
from gateway.state.store import Store

OUTBOUND_QUEUE = "outbound"
REMINDER_QUEUE = "reminders"
DEFAULT_QUEUE = "default"
QUEUES = (OUTBOUND_QUEUE, REMINDER_QUEUE, DEFAULT_QUEUE)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    config: dict
    redis: Redis
    queue_redis: Redis
    keys: Keys
    store: Store
    sender: Sender
    pacer: Pacer
    billing: Billing
    clock: Callable[[], datetime] = utc_now
    _queues: dict[str, Queue] = field(default_factory=dict)
    traffic: TrafficBuffer = field(init=False)  # this process's messages per minute, on their way to Redis

    def __post_init__(self) -> None:
        every = self.config.get("TDBOT_TRAFFIC_FLUSH_SECONDS")
        self.traffic = TrafficBuffer(self.redis, self.keys, counters.FLUSH_EVERY if every is None else float(every))

    def queue(self, name: str) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.queue_redis)
        return self._queues[name]

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
    sender = _sender(config, redis, keys)
    pacer = Pacer(redis, keys.shared(PACE, sender.name), mps_for(config, sender.name))
    runtime = Runtime(
        config=config, redis=redis, queue_redis=queue_redis, keys=keys,
        store=Store(redis, keys, audit.retention_days(config), clock), sender=sender, pacer=pacer,
        billing=backend_for(config, redis, keys, clock), clock=clock,
    )
    install(runtime)
    return runtime


def _sender(config: dict, redis: Redis, keys: Keys) -> Sender:
    if config.get("SENDER"):
        return config["SENDER"]
    sid, token = config.get("TWILIO_ACCOUNT_SID"), config.get("TWILIO_AUTH_TOKEN")
    origin = config.get("TWILIO_MESSAGING_SERVICE_SID"), config.get("TWILIO_FROM")
    if not (sid and token and any(origin)):
        return ConsoleSender(redis, keys.shared(OUTBOX))
    who = {"messaging_service_sid": origin[0]} if origin[0] else {"from_": origin[1]}
    return TwilioSender(sid, token, who, config.get("TWILIO_API_BASE_URL"))


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
