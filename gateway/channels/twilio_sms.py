"""Twilio Programmable Messaging: inbound SMS webhook and delivery status callbacks."""

from __future__ import annotations

import hashlib
import logging

from flask import Blueprint, Response, abort, current_app, request
from redis.exceptions import RedisError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from carriers import to_e164
from dialogs.messages import render
from dialogs.normalize import has_cjk
from gateway import delivery
from gateway.service import MAX_TEXT, Inbound, Service

log = logging.getLogger(__name__)

bp = Blueprint("twilio_sms", __name__, url_prefix="/webhooks/twilio")


def signed_url() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return request.url
    query = request.query_string.decode("latin-1")
    return str(base).rstrip("/") + request.path + (f"?{query}" if query else "")


@bp.before_request
def require_signature() -> None:
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token:
        log.error("TWILIO_AUTH_TOKEN is not set; refusing Twilio webhooks")
        abort(403)
    if not signature or not RequestValidator(str(token)).validate(signed_url(), request.form, signature):
        abort(403)


def twiml(text: str) -> Response:
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), mimetype="application/xml")


@bp.post("/sms")
def inbound() -> Response:
    form = request.form
    body = form.get("Body", "")
    lang = "zh" if has_cjk(body) else "en"
    msisdn = to_e164(form.get("From", ""))
    if msisdn is None:
        return twiml(render(lang, "unknown_sender"))
    if len(body) > MAX_TEXT:
        return twiml(render(lang, "too_long"))
    message = Inbound(
        msisdn=msisdn, text=body, inbound_id=form.get("MessageSid") or _fallback_id(msisdn, body),
        channel="twilio", provider_opted_out=form.get("OptOutType", "").upper() == "STOP",
    )
    try:
        result = Service(current_app.extensions["tdbot"]).handle(message)
    except RedisError:
        log.exception("Redis unavailable; asking %s to retry", msisdn)
        return twiml(render(lang, "busy"))
    return twiml(result.reply)


def _fallback_id(msisdn: str, body: str) -> str:
    return "h" + hashlib.sha256(f"{msisdn}\n{body}".encode()).hexdigest()[:32]


@bp.post("/status")
def status() -> tuple[str, int]:
    form = request.form
    sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if not sid or not state:
        return "MessageSid and MessageStatus are required", 400
    try:
        delivery.record_status(current_app.extensions["tdbot"], sid, state, form.get("ErrorCode", ""))
    except RedisError:
        log.exception("Redis unavailable for status callback %s", sid)
        return "try again", 503
    return "", 204
