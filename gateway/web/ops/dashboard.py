"""What the dashboard shows, read from Redis: messages per minute for the last hour by channel, queues, reminders
due per hour for the next 48 h, open escalations by age, overdue statements by days overdue."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup

from gateway import metrics
from gateway.runtime import Runtime
from gateway.state import counters, due, escalations, overdue_list
from gateway.web import metrics as scrape
from gateway.web.ops import charts

HOUR_MINUTES = 60
AHEAD_HOURS = 48
ESCALATION_AGES = ((3600, "< 1 h"), (4 * 3600, "1–4 h"), (86400, "4–24 h"), (3 * 86400, "1–3 d"), (None, "> 3 d"))
OVERDUE_AGES = ((86400, "< 1 d"), (7 * 86400, "1–7 d"), (30 * 86400, "7–30 d"), (None, "> 30 d"))


@dataclass(frozen=True)
class Dashboard:
    traffic: Markup
    queues: Markup
    failed: int
    reminders: Markup
    escalations: Markup
    open_escalations: int
    overdue: Markup
    overdue_count: int
    worker_seen: int | None


def build(runtime: Runtime) -> Dashboard:
    metrics.flush_traffic(runtime)
    now = runtime.clock()
    depths = scrape.queue_depths(runtime)
    escalated = _by_age(runtime, escalations.index_key(runtime.keys), now, ESCALATION_AGES)
    overdue = _by_age(runtime, overdue_list.key(runtime.keys), now, OVERDUE_AGES)
    return Dashboard(
        traffic=_traffic(runtime, now),
        queues=charts.bars("Jobs by queue and state", [
            (f"{queue} {state}", n) for queue, states in depths.items() for state, n in states.items() if n
        ] or [("all queues empty", 0)]),
        failed=sum(states["failed"] for states in depths.values()),
        reminders=_reminders(runtime, now),
        escalations=charts.bars("Open escalations by age", escalated),
        open_escalations=sum(n for _, n in escalated),
        overdue=charts.bars("Overdue statements by days past the deadline", overdue),
        overdue_count=sum(n for _, n in overdue),
        worker_seen=scrape.worker_seen_seconds(runtime),
    )


def _traffic(runtime: Runtime, now: datetime) -> Markup:
    last = counters.minute(now)
    starts = [last - 60 * i for i in range(HOUR_MINUTES - 1, -1, -1)]
    tallies = counters.traffic(runtime.redis, runtime.keys, starts)
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(starts))
    for i, start in enumerate(starts):
        for (direction, channel), n in tallies[start].items():
            series[f"{direction} {channel}"][i] += n
    labels = [f"-{HOUR_MINUTES - 1 - i} min" if i < len(starts) - 1 else "now" for i in range(len(starts))]
    return charts.lines("Messages per minute, last hour, by direction and channel", labels,
                        dict(series) or {"no messages": [0] * len(starts)}, label_every=10)


def _reminders(runtime: Runtime, now: datetime) -> Markup:
    start = now.replace(minute=0, second=0, microsecond=0)
    hours = [start + timedelta(hours=h) for h in range(AHEAD_HOURS)]
    with runtime.redis.pipeline(transaction=False) as pipe:
        for hour in hours:
            pipe.zcount(due.due_key(runtime.keys), hour.timestamp(), (hour + timedelta(hours=1)).timestamp() - 0.001)
        counts = pipe.execute()
    values = [(f"{hour:%d %H}h", n) for hour, n in zip(hours, counts, strict=True)]
    return charts.bars("Reminders due per hour, next 48 h (UTC)", values, label_every=6)


def _by_age(runtime: Runtime, key: str, now: datetime, buckets: tuple[tuple[int | None, str], ...]
            ) -> list[tuple[str, int]]:
    """(label, how many) for each of `buckets` (the age each is under, None for the rest) of the sorted set `key`,
    scored by when each thing happened: counted by Redis (ZCOUNT), so that however many there are, none is read. One
    "in the future" (another host's clock) is in the first bucket."""
    spans, until = [], float("inf")
    for limit, _ in buckets:
        after = float("-inf") if limit is None else now.timestamp() - limit
        spans.append((after, until))
        until = after
    with runtime.redis.pipeline(transaction=False) as pipe:
        for after, until in spans:
            pipe.zcount(key, f"({after}", until)
        counts = pipe.execute()
    return [(label, n) for (_, label), n in zip(buckets, counts, strict=True)]
