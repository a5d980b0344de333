"""Liveness, readiness (reflects Redis, and tells whether a worker was seen lately) and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError

from gateway.runtime import runtime
from gateway.web import metrics

bp = Blueprint("health", __name__)

# A worker runs the reminder sweep every TDBOT_SWEEP_INTERVAL seconds (5 by default): a minute is many missed sweeps.
WORKER_RECENT = 60


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Redis answers. A missing worker is reported, not failed on: this process can still take messages
    (their work waits in the queues), and a restart of the web would not bring a worker back."""
    try:
        runtime().redis.ping()
        seen = metrics.worker_seen_seconds(runtime())
    except RedisError as exc:
        return jsonify(status="unavailable", redis=str(exc)), 503
    worker = {"seen_seconds_ago": seen, "recent": seen is not None and seen <= WORKER_RECENT}
    return jsonify(status="ready", worker=worker), 200


@bp.get("/metrics")
def prometheus() -> Response:
    return Response(metrics.exposition(runtime()), mimetype=CONTENT_TYPE_LATEST)
