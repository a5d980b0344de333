"""Twilio Programmable Messaging: inbound SMS webhook and delivery status callbacks."""

from __future__ import annotations

import hmac
import logging
import re
from functools import lru_cache
from urllib.parse import urlparse
from xml.sax.saxutils import escape

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError
from twilio.request_validator import RequestValidator, add_port, remove_port
from werkzeug.datastructures import MultiDict

from carriers import to_e164
from dialogs import commands as cmds
from gateway.channels.wire import refuse
from gateway.delivery import receipts
from gateway.delivery.routing import TWILIO, Channel
from gateway.runtime import runtime
from gateway.service import MAX_TEXT, Inbound, Service, notice
from gateway.state.quotas import OverQuota
from gateway.state.store import Contention
from gateway.web import limits

log = logging.getLogger(__name__)

bp = Blueprint("twilio_sms", __name__, url_prefix="/webhooks/twilio")
CHANNEL = Channel(TWILIO)  # replies in TwiML; notices can go back by Twilio's REST API


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
    elif signature and signature_matches(str(token), signed_url(), request.form, signature):
        return
    refuse()  # Twilio's own requests come from addresses shared by all its customers: only refused ones count


def signature_matches(token: str, url: str, form: MultiDict, signature: str) -> bool:
    """Twilio's check, computing the common case once: the URL as configured, then with/without its port."""
    validator = _validator(token)
    given = signature.encode()
    if hmac.compare_digest(validator.compute_signature(url, form).encode(), given):
        return True
    parsed = urlparse(url)
    other = remove_port(parsed) if parsed.port else add_port(parsed)
    return hmac.compare_digest(validator.compute_signature(other, form).encode(), given)


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
# Characters XML 1.0 cannot carry at all (most C0 controls, lone surrogates, U+FFFE/FFFF): dropped, not escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def twiml(text: str) -> Response:
    """A TwiML reply with at most one <Message>, always well-formed whatever the text holds."""
    body = f"<Response><Message>{escape(_NOT_XML.sub('', text))}</Message></Response>" if text else "<Response />"
    return Response(_XML_DECLARATION + body, mimetype="application/xml")


# Twilio Advanced Opt-Out's OptOutType: which of its keywords it has already answered the subscriber for.
OPT_OUT_TYPES = {"STOP": cmds.STOP, "START": cmds.START, "HELP": cmds.HELP}


@bp.post("/sms")
def inbound() -> Response:
    form = request.form
    body = form.get("Body", "")
    msisdn = to_e164(form.get("From", ""))
    if msisdn is None:
        return twiml(notice(msisdn, body, "unknown_sender"))
    if len(body) > MAX_TEXT:
        return twiml(notice(msisdn, body, "too_long"))
    message = Inbound.received(
        msisdn, body, form.get("MessageSid"),
        channel=CHANNEL, provider_answered=OPT_OUT_TYPES.get(form.get("OptOutType", "").strip().upper(), ""),
    )
    flood = current_app.extensions[limits.EXTENSION]
    try:
        result = Service(runtime()).handle(message, flood.sms_quotas(msisdn))
    except OverQuota as over:
        # One notice per window, then silence: never an SMS war with a flooding phone.
        return twiml(notice(msisdn, body, "flooded") if over.first else "")
    except RedisError:
        log.exception("Redis unavailable; asking %s to retry", msisdn)
        return twiml(notice(msisdn, body, "busy"))
    except Contention:
        log.warning("too many racing messages from %s; asking to retry", msisdn)
        return twiml(notice(msisdn, body, "busy"))
    return twiml(result.reply)


@bp.post("/status")
def status() -> tuple[str, int]:
    form = request.form
    sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if not sid or not state:
        return "MessageSid and MessageStatus are required", 400
    try:
        receipts.record_status(
            runtime(), sid, state, form.get("ErrorCode", ""),
            to=form.get("To", ""), message_id=request.args.get("m", ""),
        )
    except RedisError:
        log.exception("Redis unavailable for status callback %s", sid)
        return "try again", 503
    return "", 204
