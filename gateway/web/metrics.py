"""/metrics in Prometheus text format: every web process's own metrics (all gunicorn workers, in multiprocess mode),
the jobs' counts kept in Redis, and gauges read from Redis when scraped (queues, reminders due, escalations open,
overdue statements, the last time a worker was seen). Also what the console's dashboard and /readyz read."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Sample
from redis.exceptions import RedisError
from rq import Worker

from gateway import metrics
from gateway.runtime import QUEUES, Runtime
from gateway.state import counters, due, escalations, overdue_list, routes_down

log = logging.getLogger(__name__)

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


def exposition(runtime: Runtime) -> bytes:
    return generate_latest(_Scrape(runtime))  # type: ignore[arg-type]


@dataclass
class _Scrape:
    """A registry of one scrape: collect() is all generate_latest asks of it."""

    runtime: Runtime

    def collect(self) -> Iterator[Metric]:
        try:
            jobs = counters.read(self.runtime.redis, self.runtime.keys)
            gauges = list(_gauges(self.runtime))
            up = 1
        except RedisError as exc:
            log.warning("metrics without Redis: %s", exc)
            jobs, gauges, up = [], [], 0
        yield from _merge(_process_metrics(), jobs)
        yield from gauges
        yield _gauge("tdbot_redis_up", "Whether Redis answered this scrape", up)


def _process_metrics() -> list[Metric]:
    if os.environ.get(MULTIPROCESS):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return list(registry.collect())
    return list(REGISTRY.collect())


def _merge(families: list[Metric], jobs: Iterable[tuple[str, dict[str, str], int]]) -> list[Metric]:
    """The process families with the jobs' counts added in (one family per name; equal label sets summed)."""
    by_name = {family.name: family for family in families}
    for name, labels, value in jobs:
        family = by_name.setdefault(name, CounterMetricFamily(name, metrics.HELP.get(name, name), labels=labels))
        family.samples.append(Sample(f"{name}_total", labels, value))
    for family in by_name.values():
        summed: dict[tuple, Sample] = {}
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            seen = summed.get(key)
            summed[key] = sample._replace(value=seen.value + sample.value) if seen else sample
        family.samples = list(summed.values())
    return list(by_name.values())


def _gauge(name: str, documentation: str, value: float, labels: dict[str, list[str]] | None = None) -> Metric:
    gauge = GaugeMetricFamily(name, documentation, labels=list(labels or {}))
    gauge.add_metric([], value)
    return gauge


def _gauges(runtime: Runtime) -> Iterator[Metric]:
    jobs = GaugeMetricFamily("tdbot_queue_jobs", "RQ jobs by queue and state", labels=["queue", "state"])
    for queue, states in queue_depths(runtime).items():
        for state, n in states.items():
            jobs.add_metric([queue, state], n)
    yield jobs
    due_now, scheduled = reminders_due(runtime)
    yield _gauge("tdbot_reminders_due", "Reminders due now and not yet claimed by a sweep", due_now)
    yield _gauge("tdbot_reminders_scheduled", "Reminders in the due index", scheduled)
    open_ones = GaugeMetricFamily("tdbot_escalations_open", "Open escalations by reason", labels=["reason"])
    for reason, n in escalations.open_counts(runtime.redis, runtime.keys).items():
        open_ones.add_metric([reason], n)
    yield open_ones
    down = GaugeMetricFamily("tdbot_route_down_seconds", "Routes (carrier links) found unreachable: seconds since",
                             labels=["route"])
    for route, since in routes_down.down(runtime.redis, runtime.keys).items():
        down.add_metric([route], max(0.0, runtime.clock().timestamp() - since))
    yield down
    overdue = overdue_list.count(runtime.redis, runtime.keys)
    yield _gauge("tdbot_statements_overdue", "Statements overdue and unpaid", overdue)
    seen = worker_seen_seconds(runtime)
    if seen is not None:
        yield _gauge("tdbot_worker_last_seen_seconds", "Seconds since a worker last ran the reminder sweep", seen)
    yield _gauge("tdbot_workers", "RQ workers registered (each heartbeats within RQ's worker TTL)",
                 len(Worker.all(connection=runtime.queue_redis)))


def queue_depths(runtime: Runtime) -> dict[str, dict[str, int]]:
    depths = {}
    for name in QUEUES:
        queue = runtime.queue(name)
        depths[name] = {
            "queued": queue.count, "started": queue.started_job_registry.count,
            "scheduled": queue.scheduled_job_registry.count, "failed": queue.failed_job_registry.count,
        }
    return depths


def reminders_due(runtime: Runtime) -> tuple[int, int]:
    """(due now, in the index)."""
    key = due.due_key(runtime.keys)
    return runtime.redis.zcount(key, "-inf", runtime.clock().timestamp()), runtime.redis.zcard(key)


def worker_seen_seconds(runtime: Runtime) -> int | None:
    """Seconds since a worker last ran the reminder sweep; None if none did in the last day."""
    seen = counters.worker_seen(runtime.redis, runtime.keys)
    return None if seen is None else max(0, int(runtime.clock().timestamp()) - seen)
