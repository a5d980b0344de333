"""The billing port: charge a statement through a payment backend. A Redis ledger, and a failing one for drills."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol

from redis import Redis

from gateway.state.codec import dumps
from gateway.state.keys import BILLING_DRILL, LEDGER, Keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaymentReceipt:
    reference: str
    msisdn: str
    statement_id: str
    amount_fen: int
    charged_at: datetime


class PaymentFailed(Exception):
    """The backend did not take the money. `retryable`: trying the same reference again may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Billing(Protocol):
    def charge(self, msisdn: str, statement_id: str, amount_fen: int, reference: str) -> PaymentReceipt:
        """Take `amount_fen` once per `reference`: a repeated call returns the first receipt. Raise PaymentFailed."""

    def receipt(self, msisdn: str, reference: str) -> PaymentReceipt | None:
        """The money taken under `reference`, if any: the truth a retried charge goes by."""


class RedisLedger:
    """Charges recorded in a per-subscriber hash (reference → receipt), in the subscriber's Cluster slot."""

    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], datetime]) -> None:
        self.redis, self.keys, self.clock = redis, keys, clock

    def charge(self, msisdn: str, statement_id: str, amount_fen: int, reference: str) -> PaymentReceipt:
        if amount_fen <= 0:
            raise PaymentFailed(f"cannot charge {amount_fen} fen", retryable=False)
        receipt = PaymentReceipt(reference, msisdn, statement_id, amount_fen, self.clock())
        key = self.keys.of(msisdn, LEDGER)
        if self.redis.hsetnx(key, reference, dumps(asdict(receipt))):
            return receipt
        earlier = self.receipt(msisdn, reference)
        if earlier is None or (earlier.statement_id, earlier.amount_fen) != (statement_id, amount_fen):
            raise PaymentFailed(f"reference {reference} was already used for another charge", retryable=False)
        return earlier

    def receipt(self, msisdn: str, reference: str) -> PaymentReceipt | None:
        raw = self.redis.hget(self.keys.of(msisdn, LEDGER), reference)
        return _receipt(raw) if raw else None

    def receipts(self, msisdn: str) -> list[PaymentReceipt]:
        return [_receipt(raw) for raw in self.redis.hvals(self.keys.of(msisdn, LEDGER))]


def _receipt(raw: bytes | str) -> PaymentReceipt:
    data = json.loads(raw)
    return PaymentReceipt(data["reference"], data["msisdn"], data["statement_id"], int(data["amount_fen"]),
                          datetime.fromisoformat(data["charged_at"]))


class FailingBilling:
    """A backend that is down, for drills: the first `failures` charge attempts fail (all of them when None), then
    `inner` takes over. Attempts are counted in Redis at `key`: RQ runs every try in a fresh work horse, and every
    worker of the deployment shares the drill."""

    def __init__(self, inner: Billing, redis: Redis, key: str, failures: int | None = None, *,
                 retryable: bool = True) -> None:
        self.inner, self.redis, self.key, self.failures, self.retryable = inner, redis, key, failures, retryable

    def charge(self, msisdn: str, statement_id: str, amount_fen: int, reference: str) -> PaymentReceipt:
        attempt = self.redis.incr(self.key)
        if self.failures is None or attempt <= self.failures:
            raise PaymentFailed("payment backend unavailable", retryable=self.retryable)
        return self.inner.charge(msisdn, statement_id, amount_fen, reference)

    def receipt(self, msisdn: str, reference: str) -> PaymentReceipt | None:
        return self.inner.receipt(msisdn, reference)

    @property
    def attempts(self) -> int:
        return int(self.redis.get(self.key) or 0)


def backend_for(config: dict, redis: Redis, keys: Keys, clock: Callable[[], datetime]) -> Billing:
    """TDBOT_BILLING: "ledger" (default) or "failing" (TDBOT_BILLING_FAILURES failures first, default all)."""
    ledger = RedisLedger(redis, keys, clock)
    choice = config.get("TDBOT_BILLING") or "ledger"
    if choice == "ledger":
        return ledger
    if choice == "failing":
        failures = config.get("TDBOT_BILLING_FAILURES")
        log.warning("billing backend is the failing drill (%s failures)", failures or "all")
        return FailingBilling(ledger, redis, keys.shared(BILLING_DRILL),
                              int(failures) if failures not in (None, "") else None)
    raise ValueError(f"TDBOT_BILLING must be 'ledger' or 'failing', not {choice!r}")
