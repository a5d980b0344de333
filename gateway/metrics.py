"""What tdbot counts for Prometheus.

A web process's own counts (inbound steps, their latency, delivery receipts, operator actions) are prometheus-client
metrics, in multiprocess mode under gunicorn (`PROMETHEUS_MULTIPROC_DIR`, set up by gunicorn.conf.py), so /metrics
adds up every worker. What jobs count is kept in Redis (gateway/state/counters.py): RQ runs each job in a child
process of its own, on any number of hosts, and one prometheus file per job would pile up. /metrics merges both
(gateway/web/metrics.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

from gateway.state import counters
from gateway.state.counters import IN, OUT

if TYPE_CHECKING:
    from gateway.runtime import Runtime

MESSAGES = "tdbot_messages"
REMINDERS = "tdbot_reminders"
HELP = {
    MESSAGES: "Messages by channel, direction (in: steps run, out: sends and receipts) and outcome",
    REMINDERS: "Due reminders acted on, by outcome (sent, skipped, deferred, duplicate; overdue, renewed, ...)",
}
SENT, FAILED, RETRIED = "sent", "failed", "retried"
DUPLICATE, STRANGER = "duplicate", "stranger"
STEPPED = ("answered", "quiet")  # a subscriber's message run as a step: answered, or passed to a person (人工)

messages = Counter(MESSAGES, HELP[MESSAGES], ["channel", "direction", "outcome"])
step_seconds = Histogram(
    "tdbot_step_seconds", "Time to run one inbound message as a step (read, dialog, compare-and-set), by channel",
    ["channel"], buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
ops_actions = Counter("tdbot_ops_actions", "Operator actions in the ops console", ["action"])

def inbound(runtime: Runtime, channel: str, outcome: str, seconds: float) -> None:
    """One inbound message stepped (or refused: over its quota, contention, an error) in `seconds`."""
    messages.labels(channel, IN, outcome).inc()
    step_seconds.labels(channel).observe(seconds)
    if outcome in STEPPED:  # the console's chart: no retry, stranger or refused message, which must store nothing
        runtime.traffic.add(IN, channel, runtime.clock())


def receipt(channel: str, status: str) -> None:
    """A delivery receipt moved a message to `status` (delivered, undelivered, failed)."""
    messages.labels(channel, OUT, status).inc()


def flush_traffic(runtime: Runtime) -> None:
    """Write this process's buffered per-minute counts now (the dashboard wants them current)."""
    runtime.traffic.flush()


def outbound(runtime: Runtime, channel: str, outcome: str) -> None:
    """A job's send ended with `outcome` (sent, failed, retried)."""
    with runtime.redis.pipeline(transaction=False) as pipe:
        counters.add(pipe, runtime.keys, MESSAGES, {"channel": channel, "direction": OUT, "outcome": outcome})
        if outcome == SENT:
            counters.add_traffic(pipe, runtime.keys, {(counters.minute(runtime.clock()), OUT, channel): 1})
        pipe.execute()


def reminders(runtime: Runtime, outcomes: Mapping[str, int]) -> None:
    """A batch of due reminders was acted on."""
    with runtime.redis.pipeline(transaction=False) as pipe:
        for outcome, n in outcomes.items():
            counters.add(pipe, runtime.keys, REMINDERS, {"outcome": outcome}, n)
        pipe.execute()
