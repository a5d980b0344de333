"""The imperative shell: Flask app factory, channels, store, service, outbound, CLI."""

from __future__ import annotations

from flask import Flask, Response, abort, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import bootstrap, config, logs, runtime
from gateway.state import codec
from gateway.web import limits, ops

# A process that imports any part of gateway runs this first: RQ jobs in a process nothing installed a runtime in
# (an `rq worker` of its own) get one wired from the environment.
runtime.wire_with(bootstrap.bootstrap)


class _JSON(DefaultJSONProvider):
    """jsonify() writes dates and dataclasses as the store does (ISO 8601, objects of their fields)."""

    default = staticmethod(codec.json_default)


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(config.from_env())
    if test_config:
        app.config.from_mapping(test_config)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    config.check_secret(app.config)  # the app's own: the rest of its settings are checked where it is wired
    logs.setup(config=app.config)
    app.json = _JSON(app)
    _trust_proxies(app, int(app.config.get("TDBOT_PROXY_HOPS") or 0))
    bootstrap.init_app(app)
    _register(app)
    limits.init_app(app)
    ops.init_app(app)
    return app


def _trust_proxies(app: Flask, hops: int) -> None:
    """Behind `hops` proxies, take the client IP (for per-IP limits) and URL from their X-Forwarded-* headers.

    Off by default: without a proxy that overwrites them, those headers are whatever the client chose to send.
    """
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]


def _register(app: Flask) -> None:
    from gateway.channels import kannel, twilio_sms, ussd
    from gateway.web import api, health

    app.before_request(_refuse_oversized)  # first, so no hook or route spends anything on such a body
    for blueprint in (health.bp, api.bp, twilio_sms.bp, kannel.bp, ussd.bp):
        app.register_blueprint(blueprint)
    app.register_error_handler(413, lambda e: (jsonify(error="request body too large"), 413))
    app.register_error_handler(429, lambda e: (jsonify(error="too many requests, slow down"), 429))
    app.register_error_handler(404, lambda e: (jsonify(error="not found"), 404))
    app.register_error_handler(405, lambda e: (jsonify(error="method not allowed"), 405))


def _refuse_oversized() -> None:
    """413 on a declared oversized body whoever sends it, before authentication reads (or skips) it."""
    if (request.content_length or 0) > current_app.config["MAX_CONTENT_LENGTH"]:
        abort(413)


__all__ = ["create_app", "Response"]
