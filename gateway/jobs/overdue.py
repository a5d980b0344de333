"""Settlement deadlines: an open statement still owing at its deadline turns overdue, with the late fee once."""

from __future__ import annotations

from carriers import shift_out_of_quiet_hours
from dialogs.model import OVERDUE, Subscriber
from dialogs.overdue import mark_overdue
from dialogs.reminders import LATE, Reminder
from gateway.bootstrap import Runtime
from gateway.jobs import reminders
from gateway.state import due

MARKED, SKIPPED = "overdue", "skipped"


def handle(runtime: Runtime, reminder: Reminder) -> str:
    now = runtime.clock()
    def change(before: Subscriber | None) -> Subscriber | None:
        return mark_overdue(before, runtime.policy(before), reminder.ref, now) if before else None

    after = runtime.store.update_subscriber(reminder.msisdn, change)
    statement = after.statement(reminder.ref) if after else None
    if statement is None or statement.status != OVERDUE:
        return SKIPPED
    # The deadline is often 23:59:59: the status changes on time, the notice waits for the end of quiet hours.
    notice = Reminder(LATE, reminder.msisdn, reminder.ref)
    send_at = shift_out_of_quiet_hours(runtime.policy(after), now)
    if send_at > now:
        due.schedule(runtime.redis, runtime.keys, [(notice, send_at)])
    else:
        reminders.notify(runtime, notice)
    return MARKED
