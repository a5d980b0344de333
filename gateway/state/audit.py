"""The audit trail: an append-only Redis Stream per subscriber, in the subscriber's Cluster slot, of what happened to
them (each step: the message in, the reply, messages sent, state changes; reminders, payments, escalations, operator
actions), and one stream of every operator action. A verification code's text is never written here.

Entries are written in the same commit as what they record, and trimmed by age as they are written (XADD MINID,
`TDBOT_AUDIT_DAYS`; exact, since a subscriber's stream loses at most an entry or two a write). Stream IDs are Redis's
clock; the bound comes from the app's clock, which on real hosts agrees to within seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from redis import Redis

from dialogs.effects import (
    CODE,
    CancelSubscription,
    Effect,
    Escalate,
    IssueStatement,
    OrderPlan,
    Pay,
    SetOptOut,
)
from dialogs.messages import money
from dialogs.model import OVERDUE, DialogState, Subscriber
from gateway.state import codec
from gateway.state.keys import AUDIT, Keys
from gateway.state.messages import OutboundMessage

if TYPE_CHECKING:  # the store reads the audit trail: no import cycle at run time
    from gateway.state.store import Batch

DEFAULT_DAYS = 180
FIELD = "e"
TEXT_CHARS = 200
READ_COUNT = 500

STEP, REMINDER, PAYMENT, ESCALATED, OPERATOR, CHANGE = "step", "reminder", "payment", "escalated", "operator", "change"
SESSION_END = "session_end"  # a USSD session's end, as its gateway told it (gateway/state/session_ends.py)


def retention_days(config: dict) -> int:
    return int(config.get("TDBOT_AUDIT_DAYS") or DEFAULT_DAYS)


def min_id(now: datetime, days: int) -> str:
    """The oldest stream ID `days` of retention keep at `now`."""
    return f"{max(0, int(now.timestamp() * 1000) - days * 86_400_000)}-0"


def record(conn: Batch | Redis, keys: Keys, msisdn: str, entry: dict, now: datetime, days: int) -> None:
    """Append `entry` (a dict with a `kind`) to the subscriber's stream, on `conn`: the caller's commit."""
    _append(conn, keys.audit(msisdn), {"at": int(now.timestamp()), **entry}, now, days)


def record_operator(conn: Batch | Redis, keys: Keys, entry: dict, now: datetime, days: int) -> None:
    """Append `entry` to the stream of every operator action (outside any subscriber's slot)."""
    _append(conn, operators_key(keys), {"at": int(now.timestamp()), **entry}, now, days)


def _append(conn: Batch | Redis, key: str, entry: dict, now: datetime, days: int) -> None:
    conn.xadd(key, {FIELD: codec.dumps(entry)}, minid=min_id(now, days), approximate=False)


def operators_key(keys: Keys) -> str:
    return keys.shared(AUDIT, "operators")


def read(redis: Redis, key: str, count: int = READ_COUNT, before: str = "+") -> list[dict]:
    """Up to `count` entries of the stream at `key`, newest first, before stream ID `before`; each with its `seq`."""
    return [_entry(seq, fields) for seq, fields in redis.xrevrange(key, before, "-", count=count)]


def read_all(redis: Redis, key: str) -> list[dict]:
    """Every entry of the stream at `key`, oldest first."""
    return [_entry(seq, fields) for seq, fields in redis.xrange(key)]


def _entry(seq: bytes, fields: dict[bytes, bytes]) -> dict:
    return {**json.loads(fields[FIELD.encode()]), "seq": seq.decode()}


def step_entry(
    inbound_id: str, channel: str, text: str, reply: str, messages: Iterable[OutboundMessage], effects: list[Effect],
    before: DialogState, after: DialogState | None,
) -> dict:
    """What one step did, in the order the subscriber lived it. `text` is the message as heard (a code typed while
    one is awaited is starred out: dialogs.engine.heard); a code sent never appears."""
    entry: dict = {"kind": STEP, "id": inbound_id, "channel": channel, "in": text[:TEXT_CHARS],
                   "reply": reply, "sent": [sent(m) for m in messages]}
    changed = changes(effects, before, after)
    if changed:
        entry["changes"] = changed
    return entry


def turned_overdue(before: Subscriber | None, after: Subscriber) -> dict | None:
    """The statements a commit turned overdue, each with its late fee: recorded in that commit, so once whichever job
    turns it (docs/billing.md, Late fees, rule 3)."""
    was = {s.id: s.status for s in before.statements} if before else {}
    turned = [f"statement {s.id} overdue, late fee {money('en', s.late_fee_fen)}"
              for s in after.statements if s.status == OVERDUE and was.get(s.id) != OVERDUE]
    return {"kind": CHANGE, "changes": turned} if turned else None


def charged(before: Subscriber | None, after: Subscriber) -> dict | None:
    """The charge lines a commit wrote, and those it cut short (docs/billing.md, One period, one bill): recorded in
    that commit, so a replayed renewal, which writes none, records none."""
    was = {(c.subscription_id, c.period_start): c for c in before.charges} if before else {}
    lines = []
    for line in after.charges:
        earlier = was.get((line.subscription_id, line.period_start))
        what = f"charge {line.subscription_id} {line.period_start} to {line.period_end}"
        if earlier is None:
            lines.append(f"{what}: {money('en', line.amount_fen)}")
        elif earlier.period_end != line.period_end:
            lines.append(f"{what} (cut from {earlier.period_end}): {money('en', line.billed_fen)}")
    return {"kind": CHANGE, "changes": lines} if lines else None


def sent(message: OutboundMessage) -> dict:
    """A message as the audit keeps it: a code's text never."""
    return {"id": message.id, "kind": message.kind, "text": "" if message.kind == CODE else message.text}


def changes(effects: list[Effect], before: DialogState, after: DialogState | None) -> list[str]:
    """The step's state changes in a person's words."""
    found = []
    if after is not None and after.stage != before.stage:
        found.append(f"dialog {before.stage} → {after.stage}")
    if after is not None and after.human and not before.human:
        found.append("handed to a person (the bot stays quiet)")
    found += [text for effect in effects if (text := _effect(effect))]
    return found


def _effect(effect: Effect) -> str:
    match effect:
        case CancelSubscription(subscription_id=sid):
            return f"cancelled {sid}"
        case IssueStatement(statement=st):
            return f"statement {st.id}: {money('en', st.amount_fen)} due {st.due_at:%Y-%m-%d %H:%M} UTC"
        case SetOptOut(opted_out=off):
            return "reminders refused" if off else "reminders resumed"
        case Pay(statement_id=sid, amount_fen=fen):
            return f"charge of {money('en', fen)} on {sid} started"
        case OrderPlan(subscription=sub):
            return f"ordered {sub.id} ({money('en', sub.fee_fen)}/month)"
        case Escalate(reason=reason):
            return f"escalated: {reason}"
    return ""
