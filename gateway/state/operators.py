"""Ops console operators: a name, a role and a werkzeug password hash, kept in one Redis hash."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from datetime import datetime

from redis import Redis
from werkzeug.security import check_password_hash, generate_password_hash

from gateway.state.keys import OPERATORS, Keys

VIEWER, AGENT, ADMIN = "viewer", "agent", "admin"
ROLES = (VIEWER, AGENT, ADMIN)  # each can do what the ones before it can


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    password_hash: str
    created_at: int

    def can(self, role: str) -> bool:
        """True when this operator's role includes `role`'s rights."""
        return ROLES.index(self.role) >= ROLES.index(role)


def new(name: str, role: str, password: str, now: datetime) -> Operator:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return Operator(name, role, generate_password_hash(password), int(now.timestamp()))


def key(keys: Keys) -> str:
    return keys.shared(OPERATORS)


def save(redis: Redis, keys: Keys, operator: Operator) -> None:
    redis.hset(key(keys), operator.name, json.dumps(asdict(operator)))


def load(redis: Redis, keys: Keys, name: str) -> Operator | None:
    raw = redis.hget(key(keys), name)
    return Operator(**json.loads(raw)) if raw else None


def every(redis: Redis, keys: Keys) -> list[Operator]:
    return sorted((Operator(**json.loads(raw)) for raw in redis.hvals(key(keys))), key=lambda o: o.name)


def remove(redis: Redis, keys: Keys, name: str) -> bool:
    return bool(redis.hdel(key(keys), name))


def signed_in(redis: Redis, keys: Keys, name: str, password: str) -> Operator | None:
    """The operator if `password` is theirs; None otherwise, taking as long either way."""
    nobody = _nobody()  # made by the first sign-in whatever its name, so no first attempt takes longer than others
    operator = load(redis, keys, name)
    matches = check_password_hash(operator.password_hash if operator else nobody, password)
    return operator if operator and matches else None


@functools.cache
def _nobody() -> str:
    """Checked against when the name is unknown, so a wrong name costs as long as a wrong password. Made on the first
    sign-in, not at import: every process imports this module (workers, the CLI), few sign anyone in."""
    return generate_password_hash("nobody has this password")
