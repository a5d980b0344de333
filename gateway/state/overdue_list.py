"""The console's list of overdue statements (`tdbot:overdue`): `msisdn|statement id` scored by its deadline, from the
deadline check that turns a statement overdue until nothing is owed on it (a payment, a charge, an import). Read by
the dashboard and /metrics; it lists, it decides nothing (the statement's status does)."""

from __future__ import annotations

from datetime import datetime

from redis import Redis
from redis.client import Pipeline

from gateway.state.keys import OVERDUE, Keys


def key(keys: Keys) -> str:
    return keys.shared(OVERDUE)


def add(conn: Redis | Pipeline, keys: Keys, msisdn: str, statement_id: str, deadline: datetime) -> None:
    conn.zadd(key(keys), {f"{msisdn}|{statement_id}": deadline.timestamp()})


def remove(conn: Redis | Pipeline, keys: Keys, msisdn: str, statement_id: str) -> None:
    conn.zrem(key(keys), f"{msisdn}|{statement_id}")


def count(redis: Redis, keys: Keys) -> int:
    return redis.zcard(key(keys))
