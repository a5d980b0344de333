"""Redis key names. Per-subscriber keys carry the MSISDN in a hash tag so they share a Cluster slot."""

from __future__ import annotations

from dataclasses import dataclass

SUBSCRIBER = "subscriber"
DIALOG = "dialog"
INBOUND = "in"
MESSAGE = "msg"
LOG = "log"
LEDGER = "ledger"  # billing.RedisLedger: payment reference -> receipt
BILLING_DRILL = "billing-drill"  # billing.FailingBilling: charge attempts so far, shared (Keys.shared)

ESCALATIONS = "escalations"
PAYMENT_REFERENCES = "payment-references"  # state.references: reference -> "statement id|amount", all subscribers
OUTBOX = "outbox"
PENDING = "pending"  # a step's after-commit work, until done (gateway/outbox.py); also the global index of it
PROVIDER_SID = "sid"
# Hash-tagged so the due index and its claimed set share a Cluster slot: one Lua script moves between them.
DUE = "{due}"
PACE = "pace"
REMINDERS_MISSED = "reminders_missed"  # a counter: reminders that quiet hours kept from going out before their deadline


@dataclass(frozen=True)
class Keys:
    prefix: str = "tdbot"

    def of(self, msisdn: str, kind: str, *rest: str) -> str:
        return ":".join((f"{self.prefix}:{{{msisdn}}}", kind, *rest))

    def subscriber(self, msisdn: str) -> str:
        return self.of(msisdn, SUBSCRIBER)

    def dialog(self, msisdn: str) -> str:
        return self.of(msisdn, DIALOG)

    def inbound(self, msisdn: str, inbound_id: str) -> str:
        return self.of(msisdn, INBOUND, inbound_id)

    def message(self, msisdn: str, message_id: str) -> str:
        return self.of(msisdn, MESSAGE, message_id)

    def log(self, msisdn: str) -> str:
        return self.of(msisdn, LOG)

    def shared(self, name: str, *rest: str) -> str:
        return ":".join((self.prefix, name, *rest))
