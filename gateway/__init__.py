"""The imperative shell: Flask app factory, channels, store, service, outbound, CLI."""

from __future__ import annotations

import logging

from flask import Flask, Response, abort, current_app, jsonify, request

from gateway import config, db, limits


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(config.from_env())
    if test_config:
        app.config.from_mapping(test_config)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db.init_app(app)
    _register(app)
    limits.init_app(app)
    return app


def _register(app: Flask) -> None:
    from gateway import api, health
    from gateway.channels import twilio_sms

    app.before_request(_refuse_oversized)  # first, so no hook or route spends anything on such a body
    for blueprint in (health.bp, api.bp, twilio_sms.bp):
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
