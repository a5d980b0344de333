"""The follow-up index: a message about to be recorded undelivered or failed is noted here first (its error code
with it), and the note is cleared once the follow-up that failure starts is done (a confirmation resent or a person
told, an opt-out recorded). A process killed between the two leaves the note for the recovery cron
(docs/delivery.md, "The follow-up survives a process killed half-way")."""

from __future__ import annotations

from typing import NamedTuple

from redis import Redis

from gateway.state import indexed
from gateway.state.keys import FOLLOW_UPS, Keys


class Note(NamedTuple):
    msisdn: str
    message_id: str
    error_code: str
    at: float  # when it was noted (epoch seconds)

    @property
    def member(self) -> str:
        return f"{self.msisdn}|{self.message_id}|{self.error_code}"


def key(keys: Keys) -> str:
    return keys.shared(FOLLOW_UPS)


def note(redis: Redis, keys: Keys, msisdn: str, message_id: str, error_code: str, at: float) -> Note:
    noted = Note(msisdn, message_id, error_code, at)
    redis.zadd(key(keys), {noted.member: at})
    return noted


def clear(redis: Redis, keys: Keys, noted: Note) -> None:
    indexed.forget(redis, key(keys), noted.member, noted.at)  # a note written again since is its writer's


def older_than(redis: Redis, keys: Keys, cutoff: float, count: int) -> list[Note]:
    """Up to `count` notes written before `cutoff`, oldest first."""
    found = redis.zrangebyscore(key(keys), "-inf", cutoff, 0, count, withscores=True)
    return [Note(*raw.decode().split("|", 2), at) for raw, at in found]
