"""rq-dashboard at /ops/rq, behind the console's sign-in: every signed-in operator may look; only admins may act
(requeue, delete, empty), and only from the console's own pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import rq_dashboard
from flask import Flask, abort, current_app, request
from flask_login import current_user

from gateway.runtime import EXTENSION, Runtime
from gateway.state.operators import ADMIN

PREFIX = "/ops/rq"
READ_ONLY = ("GET", "HEAD")
# rq-dashboard's one route that changes something on GET.
ACTS_ON_GET = "requeue_all"


def init_app(app: Flask) -> None:
    runtime: Runtime = app.extensions[EXTENSION]
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", [runtime.queue_url])
    app.redis_conn = runtime.queue_redis  # type: ignore[attr-defined]  # where rq-dashboard looks for its Redis
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    # On the app, not on rq-dashboard's blueprint: that one object is shared by every app this process creates.
    app.before_request(_guard)


def _guard() -> Any:
    if request.blueprint != rq_dashboard.blueprint.name:
        return None
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    acts = request.method not in READ_ONLY or (request.endpoint or "").endswith(ACTS_ON_GET)
    if acts and not current_user.can(ADMIN):
        abort(403, "Only admins may change queues.")
    if acts and not _from_here():
        abort(403, "Queue actions are taken from the console's own pages.")
    return None


def _from_here() -> bool:
    """rq-dashboard's forms carry no CSRF token: an action must come from this site's pages (with SameSite=Lax
    cookies a cross-site form post would not be signed in anyway)."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    return urlparse(source).netloc == request.host
