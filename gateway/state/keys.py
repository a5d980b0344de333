"""Redis key names. Per-subscriber keys carry the MSISDN in a hash tag so they share a Cluster slot."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "tdbot"  # TDBOT_KEY_PREFIX unless set

SUBSCRIBER = "subscriber"
DIALOG = "dialog"
INBOUND = "in"
MESSAGE = "msg"
LOG = "log"  # the previous release's per-subscriber log list, read for what it wrote (the audit stream replaced it)
AUDIT = "audit"  # per subscriber: the audit stream; shared: the stream of operator actions
ESCALATION = "escalation"  # per subscriber and reason: the open escalation, its log, and resolved ones
USSD_END = "ussd-end"  # a USSD session's end-of-session notification, once recorded (by session id)
LEDGER = "ledger"  # ledger.RedisLedger: payment reference -> receipt
BILLING_DRILL = "billing-drill"  # ledger.FailingBilling: charge attempts so far, shared (Keys.shared)

ESCALATIONS = "escalations"
PAYMENT_REFERENCES = "payment-references"  # state.references: reference -> "statement id|amount", all subscribers
OUTBOX = "outbox"
SENT = "sent"  # beside a console outbox: which send a reference made (console senders.ConsoleSender)
PENDING = "pending"  # a step's after-commit work, until done (gateway/jobs/outbox.py); also the global index of it
PROVIDER_SID = "sid"
ROUTES_DOWN = "routes-down"  # routes found unreachable, until a send on them succeeds (gateway/state/routes_down.py)
FOLLOW_UPS = "followups"  # messages about to be recorded undelivered or failed, until their follow-up is done
# Hash-tagged so the due index and its claimed set share a Cluster slot: one Lua script moves between them.
DUE = "{due}"
PACE = "pace"
OPERATORS = "operators"  # ops console operators: name -> record
OPS_REFS = "ops:refs"  # opaque subscriber references in console URLs -> number
RESOLVED = "resolved"  # under ESCALATIONS: resolved escalations by resolution time
REASONS = "reasons"  # beside ESCALATIONS, in its Cluster slot: open escalations counted by reason
OVERDUE = "overdue"  # overdue statements (msisdn|statement id) by deadline, for the console
COUNTERS = "counters"  # counts the jobs keep (metrics no single process sees whole)
TRAFFIC = "traffic"  # messages per minute, for the console's charts
WORKER_SEEN = "worker:seen"  # when a worker last ran a cron job
LIMITS = "limits"  # flood control: flask-limiter's counters under it, and the per-number SMS quotas
SMS_IDS = "sms-ids"  # under LIMITS, per number and window: the inbound SMS ids counted (gateway/web/limits.py)
REMINDERS_MISSED = "reminders_missed"  # a counter: reminders that quiet hours kept from going out before their deadline


@dataclass(frozen=True)
class Keys:
    prefix: str = PREFIX

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

    def audit(self, msisdn: str) -> str:
        return self.of(msisdn, AUDIT)

    def escalation(self, msisdn: str, reason: str, *rest: str) -> str:
        return self.of(msisdn, ESCALATION, reason, *rest)

    def shared(self, name: str, *rest: str) -> str:
        return ":".join((self.prefix, name, *rest))

    def beside(self, key: str, name: str) -> str:
        """A key named for `key` and `name` in `key`'s Cluster slot, for a key of no hash tag of its own (the whole
        name is then its hash): so that one script may change both."""
        return f"{key}:{name}{{{key}}}"

    def limits(self) -> str:
        """The prefix of flask-limiter's own keys (it names the rest)."""
        return self.shared(LIMITS)

    def sms_quota(self, msisdn: str, allowed: int, seconds: int) -> str:
        """A number's inbound SMS counted in one window, hash-tagged like its own keys: counted in the same script
        that reads them (Cluster slot), and named for the limit so that a new limit starts a new count."""
        return f"{self.limits()}:{{{msisdn}}}:{SMS_IDS}:{allowed}/{seconds}s"


def sent(outbox: str, reference: str) -> str:
    """Beside the console sender's outbox list `outbox`: the send `reference` made."""
    return ":".join((outbox, SENT, reference))
