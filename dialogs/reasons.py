"""Why a person must look: every escalation reason, named once (docs/ops.md, "Escalations"). Pure data.

The engine raises the first two; the shell the others, where money or a message can go wrong in ways only a person
can settle. Each is the name of an escalation record and of its line in the ops console, so a value never changes.
"""

from __future__ import annotations

# The subscriber asked for a person (人工/KF/客服): the bot stays quiet for the number until this one is resolved.
REQUESTED = "requested"
# The fifth wrong code in a row locked the flow.
CODE_ATTEMPTS = "code_attempts"
# Raised wherever money reaches a statement: a `JF` charge, a payment posted, an import reporting money paid.
PAYMENT_FAILED = "payment_failed"  # a `JF` charge failed every try
PAYMENT_UNRECORDED = "payment_unrecorded"  # money paid that no statement could take
OVERPAID = "overpaid"  # money recorded beyond what the statement owed: to be refunded
PAID_REPORTED_LOWER = "paid_reported_lower"  # a statement was credited from money the carrier no longer reports paid
# Outbound (docs/delivery.md).
CONFIRMATION_UNDELIVERED = "confirmation_undelivered"  # a cancel's confirmation, resent, still not delivered
SEND_UNCERTAIN = "send_uncertain"  # a send that may or may not have gone out: never resent on a guess
SEND_REFUSED = "send_refused"  # the provider refused us (credentials): nothing goes out until a person looks
ROUTE_DOWN = "route_down"  # a route (carrier link) unreachable: its messages wait for it; told once per outage
# A step's after-commit work (gateway/jobs/outbox.py).
OUTBOX_STUCK = "outbox_stuck"  # an entry that keeps failing; the cron keeps trying
OUTBOX_UNREADABLE = "outbox_unreadable"  # an entry recovery could not read, set aside
