"""The one place that wires real adapters (Redis, store, routes, billing, clock, queues) into a `Runtime`
(gateway/runtime.py) and hands it to Flask (`init_app`) and to this process's RQ jobs (`install`).

It imports what it wires (state/, the senders, pacing and routing of delivery/, config.py), and only the app factory,
the CLI, worker.py and rq cron's entry point (gateway/jobs/cron.py) import it; everything else reaches the wired
adapters through gateway/runtime.py."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask
from redis import Redis

from carriers import POLICIES
from gateway import config as settings
from gateway.delivery import routing
from gateway.delivery.pacing import Pacer, mps_for
from gateway.delivery.routing import CONSOLE, KANNEL, TWILIO
from gateway.delivery.senders import ConsoleSender, KannelSender, Sender, TwilioSender
from gateway.runtime import EXTENSION, Route, Runtime, install, utc_now
from gateway.state import audit
from gateway.state.connection import connect
from gateway.state.keys import OUTBOX, PACE, PREFIX, Keys
from gateway.state.ledger import backend_for
from gateway.state.store import Store


def bootstrap(config: dict) -> Runtime:
    settings.check(config)
    data_dir = str(config.get("TDBOT_DATA_DIR") or ".tdbot")
    redis = connect(config.get("REDIS_URL"), data_dir)
    queue_url = config.get("RQ_REDIS_URL")
    queue_redis = connect(queue_url, data_dir) if queue_url else redis
    keys = Keys(str(config.get("TDBOT_KEY_PREFIX") or PREFIX))
    clock = config.get("CLOCK") or utc_now
    routes = {
        name: Route(name, sender, Pacer(redis, keys.shared(PACE, name), mps_for(config, name)))
        for name, sender in _senders(config, redis, keys).items()
    }
    runtime = Runtime(
        config=config, redis=redis, queue_redis=queue_redis, keys=keys,
        store=Store(redis, keys, audit.retention_days(config), clock), routes=routes,
        routing=routing.from_config(config, frozenset(route.channel for route in routes.values())),
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


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = bootstrap(app.config)

