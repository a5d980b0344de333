"""The carrier back office's JSON API: bearer token, JSON in and out, a message for every error."""

from __future__ import annotations

import logging
from dataclasses import asdict

from flask import Blueprint, Response, current_app, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from carriers import to_e164
from dialogs import payments
from dialogs.model import Subscriber
from gateway import validation
from gateway.config import secret_matches
from gateway.jobs import charges
from gateway.runtime import runtime
from gateway.state import subscribers
from gateway.state.store import Contention

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


@bp.before_request
def require_token() -> tuple[Response, int] | None:
    expected = current_app.config.get("TDBOT_API_TOKEN")
    given = bearer_token(request.headers.get("Authorization", ""))
    if not expected:
        return error(503, "the API is disabled: TDBOT_API_TOKEN is not set")
    if not secret_matches(current_app.config, "TDBOT_API_TOKEN", given):
        return error(401, "missing or wrong bearer token")
    return None


def bearer_token(header: str) -> str:
    """The token of `Authorization: Bearer <token>`, "" for any other scheme. The scheme is case-insensitive and
    one or more spaces follow it (RFC 9110 11.1, RFC 6750 2.1); the token is compared exactly, by the caller."""
    scheme, _, token = header.partition(" ")
    return token.lstrip(" ") if scheme.lower() == "bearer" else ""


@bp.errorhandler(validation.Invalid)
def invalid(exc: validation.Invalid) -> tuple[Response, int]:
    return error(400, str(exc))


@bp.errorhandler(Contention)
def contended(exc: Contention) -> tuple[Response, int]:
    log.warning("%s", exc)
    return error(503, "too many concurrent changes to this subscriber, try again shortly")


@bp.errorhandler(RedisError)
def unavailable(exc: RedisError) -> tuple[Response, int]:
    log.error("Redis unavailable: %s", exc)
    return error(503, "storage unavailable, try again shortly")


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Response, int]:
    return error(exc.code or 500, exc.description or exc.name)


def json_body() -> object:
    if not request.is_json:
        raise validation.Invalid("send Content-Type: application/json")
    data = request.get_json(silent=True)
    if data is None:
        raise validation.Invalid("body is not valid JSON")
    return data


@bp.put("/subscribers/<number>")
def put_subscriber(number: str) -> tuple[Response, int]:
    msisdn = validation.msisdn(number)
    saved = subscribers.upsert(runtime(), validation.subscriber(msisdn, json_body()))
    return jsonify(view(saved)), 200


@bp.get("/subscribers/<number>")
def get_subscriber(number: str) -> tuple[Response, int]:
    msisdn = validation.msisdn(number)
    subscriber = runtime().store.load_subscriber(msisdn)
    if subscriber is None:
        return error(404, f"no subscriber {msisdn}")
    return jsonify(view(subscriber)), 200


@bp.post("/statements/<statement_id>/payments")
def post_payment(statement_id: str) -> tuple[Response, int]:
    """Record a payment made elsewhere; the payer's reference makes a retried request change nothing."""
    msisdn = to_e164(payments.statement_msisdn(statement_id) or "")
    if msisdn is None:
        return error(404, f"no statement {statement_id}")
    rt = runtime()
    settled = charges.settle(rt, msisdn, statement_id, validation.payment(json_body(), rt.clock()))
    statement, payment = settled.statement, settled.payment
    if settled.outcome == payments.TOO_MANY:
        return error(409, f"statement {statement_id} has {payments.MAX_PAYMENTS} payments already; ask ops")
    if settled.outcome == payments.CONFLICT and payment is not None:
        where = f"statement {statement.id}" if statement else "another statement"
        return error(409, f"reference {payment.reference} was already used for {payment.amount_fen} fen on {where}")
    if statement is None or payment is None:
        return error(404, f"no statement {statement_id}")
    return jsonify(statement={**asdict(statement), "owed_fen": statement.owed_fen}, payment=payment), 200


def view(subscriber: Subscriber | None) -> dict:
    data = asdict(subscriber) if subscriber else {}
    for statement, record in zip(data.get("statements", []), subscriber.statements if subscriber else (), strict=True):
        statement["owed_fen"] = record.owed_fen
    return data  # dates become ISO 8601 in jsonify (gateway/__init__.py's JSON provider)
