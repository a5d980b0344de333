"""Settlement deadlines: a statement still owing at its deadline turns overdue with the late fee, once, and the
subscriber is told; one held open by a `JF` charge confirmed in time waits for that charge (docs/billing.md)."""

from __future__ import annotations

from datetime import timedelta

from carriers import shift_out_of_quiet_hours
from dialogs.model import OVERDUE, Subscriber
from dialogs.overdue import awaiting_charge, mark_overdue
from dialogs.reminders import LATE, Reminder
from gateway.jobs import charges, reminders
from gateway.runtime import Runtime
from gateway.state import audit, due, overdue_list

MARKED, SKIPPED, WAITING = "overdue", "skipped", "waiting"
# How often the deadline check looks again at a statement a charge under way holds open.
RECHECK = timedelta(minutes=5)


def handle(runtime: Runtime, reminder: Reminder) -> str:
    if _waiting_for_charge(runtime, reminder):
        due.schedule(runtime.redis, runtime.keys, [(reminder, runtime.clock() + RECHECK)])
        return WAITING
    now = runtime.clock()

    def change(before: Subscriber | None) -> Subscriber | None:
        return mark_overdue(before, runtime.policy(before), reminder.ref, now) if before else None

    after = runtime.store.update_subscriber(reminder.msisdn, change, audited=audit.turned_overdue)
    statement = after.statement(reminder.ref) if after else None
    if after is None or statement is None or statement.status != OVERDUE:
        return SKIPPED
    overdue_list.add(runtime.redis, runtime.keys, reminder.msisdn, statement.id, statement.due_at)
    # The deadline is often 23:59:59: the status changes on time, the notice waits for the end of quiet hours.
    notice = Reminder(LATE, reminder.msisdn, reminder.ref)
    send_at = shift_out_of_quiet_hours(runtime.policy(after), now)
    if send_at > now:
        due.schedule(runtime.redis, runtime.keys, [(notice, send_at)])
    else:
        reminders.notify(runtime, notice)
    return MARKED


def _waiting_for_charge(runtime: Runtime, reminder: Reminder) -> bool:
    """True while a charge confirmed before the deadline may still go through; one that cannot is ended here (its
    last try's work horse may have been killed, which RQ reports to no callback)."""
    subscriber = runtime.store.load_subscriber(reminder.msisdn)
    statement = subscriber.statement(reminder.ref) if subscriber else None
    now = runtime.clock()
    if statement is None or now < statement.due_at or not awaiting_charge(statement):
        return False
    if charges.in_flight(runtime, statement, now):
        return True
    charges.end(runtime, reminder.msisdn, statement.id, statement.pending_reference)
    return False
