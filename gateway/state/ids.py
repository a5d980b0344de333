"""Ids made from what a thing is about: a retried message's dedupe id, a message or job made again by a run that
runs twice. The same text gives the same id in every process and release: ids already stored, and jobs already
queued, are found again by it."""

from __future__ import annotations

import hashlib


def digest(text: str, length: int = 32, algorithm: str = "sha256") -> str:
    """`length` hex digits of `text`'s hash; half a surrogate pair is hashed as it is, not refused."""
    return hashlib.new(algorithm, text.encode("utf-8", "surrogatepass")).hexdigest()[:length]
