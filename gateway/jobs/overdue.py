"""Settlement deadlines: an open statement still owing at its deadline turns overdue, with the late fee once."""

from __future__ import annotations

from carriers import shift_out_of_quiet_hours
from dialogs.messages import money
from dialogs.model import OVERDUE, Subscriber
from dialogs.overdue import mark_overdue
from dialogs.reminders import LATE, Reminder
from gateway.bootstrap import Runtime
from gateway.jobs import reminders
from gateway.state import audit, due
from gateway.state.keys import OVERDUE as OVERDUE_INDEX

MARKED, SKIPPED = "overdue", "skipped"


def _turned(after: Subscriber, statement_id: str) -> dict:
    statement = after.statement(statement_id)
    late = statement.late_fee_fen if statement else 0
    return {"kind": audit.CHANGE, "changes": [f"statement {statement_id} overdue, late fee {money('en', late)}"]}


def handle(runtime: Runtime, reminder: Reminder) -> str:
    now = runtime.clock()
    def change(before: Subscriber | None) -> Subscriber | None:
        return mark_overdue(before, runtime.policy(before), reminder.ref, now) if before else None

    after = runtime.store.update_subscriber(reminder.msisdn, change, audited=lambda _, s: _turned(s, reminder.ref))
    statement = after.statement(reminder.ref) if after else None
    if statement is None or statement.status != OVERDUE:
        return SKIPPED
    # Listed for the console's dashboard until paid (gateway/jobs/charges.py).
    listed = {f"{reminder.msisdn}|{statement.id}": statement.due_at.timestamp()}
    runtime.redis.zadd(runtime.keys.shared(OVERDUE_INDEX), listed)
    # The deadline is often 23:59:59: the status changes on time, the notice waits for the end of quiet hours.
    notice = Reminder(LATE, reminder.msisdn, reminder.ref)
    send_at = shift_out_of_quiet_hours(runtime.policy(after), now)
    if send_at > now:
        due.schedule(runtime.redis, runtime.keys, [(notice, send_at)])
    else:
        reminders.notify(runtime, notice)
    return MARKED
