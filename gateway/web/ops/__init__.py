"""The ops console at /ops: sign-in with roles (viewer < agent < admin), dashboard, escalations handled by a person,
subscribers' timelines and audit, the stream of operator actions, and rq-dashboard at /ops/rq."""

from __future__ import annotations

from flask import Flask

from gateway.web.ops import auth, rq, views


def init_app(app: Flask) -> None:
    auth.init_app(app)
    app.register_blueprint(views.bp)
    rq.init_app(app)
