"""Kannel (smsbox): carriers' short-code messages in (MO), and delivery reports for what sendsms took out.

smsbox's sms-service calls `/webhooks/kannel/mo` with its get-url (deploy/kannel.conf):
    ?token=…&from=%p&to=%P&text=%a&bytes=%b&coding=%c&charset=%C&id=%I&smsc=%i
and each send's dlr-url calls `/webhooks/kannel/dlr` (gateway/delivery/senders.py):
    ?token=…&m=<our message id>&to=<number>&type=%d&reply=%A
Both answer 200 with an empty body: a reply goes out as a message through sendsms, paced and tracked like any other.
smsbox asks again (http-request-retry, the same %I) after anything but a 2xx: a retry answers the same and changes
nothing, and while Redis is away the answer is 503 so that the message comes back rather than being lost. A link that
gives no %I has the number and text stand in for it, for seconds only (docs/delivery.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import unquote_to_bytes

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError

from carriers import to_e164
from gateway.channels.wire import BadRequest, MissingField, plain, refuse, token_given
from gateway.delivery import receipts
from gateway.delivery.receipts import KANNEL_TYPES
from gateway.delivery.routing import KANNEL, Channel
from gateway.runtime import runtime
from gateway.service import MAX_TEXT, Inbound, Service, notice
from gateway.state.ids import digest
from gateway.state.quotas import OverQuota
from gateway.state.store import Contention
from gateway.web import limits
from gateway.web.limits import Limits

log = logging.getLogger(__name__)

bp = Blueprint("kannel", __name__, url_prefix="/webhooks/kannel")
CHANNEL = Channel(KANNEL, replies_in_body=False)

# Our query parameter -> what it carries (the Kannel escape in the shipped get-url).
MO_FIELDS = {
    "from": "sender",  # %p
    "to": "receiver",  # %P, the short code
    "text": "text",  # %a, in %C
    "bytes": "data",  # %b, the raw bytes: UTF-16BE when coding is 2
    "coding": "coding",  # %c
    "charset": "charset",  # %C
    "id": "id",  # %I, the same on every retry of one message
    "smsc": "smsc",  # %i
}
# %c: 0 is 7-bit (Kannel hands the text over in %C, UTF-8 unless told otherwise), 1 is 8-bit binary, 2 is UCS-2.
CODINGS = {"": "text", "-1": "text", "0": "text", "1": "binary", "2": "ucs2"}
DLR_FIELDS = {"type": "type", "m": "message_id", "to": "msisdn", "reply": "reply"}
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class BadEncoding(BadRequest):
    """Text that cannot be read as the coding and charset it came with."""


@dataclass(frozen=True)
class MO:
    msisdn: str
    receiver: str
    text: str
    id: str
    smsc: str


@dataclass(frozen=True)
class DeliveryReport:
    type: int
    msisdn: str
    message_id: str
    reply: str


def raw_query(query: bytes) -> dict[str, bytes]:
    """The query's parameters as bytes, the first of each name: %b carries raw bytes no text decoding may touch."""
    args: dict[str, bytes] = {}
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        args.setdefault(_unquote(name).decode("latin-1"), _unquote(value))
    return args


def _unquote(raw: bytes) -> bytes:
    return unquote_to_bytes(raw.replace(b"+", b" "))


def parse_mo(args: Mapping[str, bytes]) -> MO:
    """An MO from smsbox's get-url parameters; BadRequest when it is not one."""
    fields = {name: args.get(param, b"") for param, name in MO_FIELDS.items()}
    if not fields["sender"]:
        raise MissingField("from")
    msisdn = phone_number(fields["sender"].decode("latin-1"))
    if msisdn is None:
        raise BadRequest("from is not a phone number")
    return MO(msisdn, _ascii(fields["receiver"]), _text(fields), _ascii(fields["id"]), _ascii(fields["smsc"]))


def _text(fields: Mapping[str, bytes]) -> str:
    coding = CODINGS.get(_ascii(fields["coding"]))
    if coding is None:
        raise BadEncoding(f"unknown coding {_ascii(fields['coding'])!r}")
    if coding == "binary":
        raise BadEncoding("an 8-bit binary message carries no text")
    if coding == "ucs2":
        return _decode(fields["data"] or fields["text"], "utf-16-be")
    return _decode(fields["text"], _ascii(fields["charset"]) or "utf-8")


def _decode(raw: bytes, charset: str) -> str:
    try:
        text = raw.decode(charset)  # text encodings only: not rot13, base64 or zlib
        text.encode()  # half a surrogate pair (UTF-7 decodes one) is nothing Redis, JSON or a reply can carry
        return text
    except LookupError as exc:
        raise BadEncoding(f"unknown charset {charset[:40]!r}") from exc
    except ValueError as exc:  # undecodable bytes, a lone surrogate, or a name no codec can have
        raise BadEncoding(f"the text is not {charset[:40]}") from exc


def _ascii(raw: bytes) -> str:
    return raw.decode("ascii", "replace")


def phone_number(raw: str) -> str | None:
    """E.164 for what smsbox gives as a number: national (13800138000), international with or without '+'."""
    raw = raw.strip()
    return to_e164(raw) or (to_e164("+" + raw) if raw.isdigit() else None)


def parse_dlr(args: Mapping[str, str]) -> DeliveryReport:
    """A delivery report from its dlr-url's parameters; BadRequest when it is not one."""
    fields = {name: args.get(param, "") for param, name in DLR_FIELDS.items()}
    for param, name in DLR_FIELDS.items():
        if name != "reply" and not fields[name]:
            raise MissingField(param)
    kind = int(fields["type"]) if fields["type"].isascii() and fields["type"].isdigit() else None
    if kind not in KANNEL_TYPES:
        raise BadRequest(f"type must be one of {', '.join(map(str, KANNEL_TYPES))}")
    msisdn = phone_number(fields["msisdn"])
    if msisdn is None:
        raise BadRequest("to is not a phone number")
    return DeliveryReport(kind, msisdn, fields["message_id"], fields["reply"])


def link_id(mo: MO) -> str | None:
    """Kannel's %I as our dedupe id (one that is not a plain token is hashed); None when the link gave none."""
    if not mo.id:
        return None
    return "kannel:" + (mo.id if SAFE_ID.fullmatch(mo.id) else digest(mo.id))


@bp.before_request
def require_token() -> None:
    if token_given("TDBOT_KANNEL_TOKEN"):
        return
    if not current_app.config.get("TDBOT_KANNEL_TOKEN"):
        log.error("TDBOT_KANNEL_TOKEN is not set; refusing Kannel requests")
    refuse()


@bp.route("/mo", methods=["GET", "POST"])
def mo() -> Response:
    try:
        message = parse_mo(raw_query(request.query_string))
    except BadRequest as exc:
        return plain(str(exc), 400)
    service = Service(runtime())
    # Answered on the carrier link it came in on (docs/delivery.md, "Routes").
    channel = replace(CHANNEL, link=message.smsc)
    inbound = Inbound.received(message.msisdn, message.text, link_id(message), channel=channel)
    try:
        _handle(service, inbound)
    except RedisError:
        log.exception("Redis unavailable; smsbox will retry the message from %s", inbound.msisdn)
        return plain("try again", 503)
    except Contention:
        log.warning("too many racing messages from %s; smsbox will retry", inbound.msisdn)
        return plain("try again", 503)
    return plain("", 200)


def _handle(service: Service, inbound: Inbound) -> None:
    if len(inbound.text) > MAX_TEXT:
        service.notify(inbound, "too_long", notice(inbound.msisdn, inbound.text, "too_long"))
        return
    try:
        service.handle(inbound, _limits().sms_quotas(inbound.msisdn))
    except OverQuota as over:
        if over.first:  # one notice per window, then silence: never an SMS war
            service.notify(inbound, "flooded", notice(inbound.msisdn, inbound.text, "flooded"))


@bp.route("/dlr", methods=["GET", "POST"])
def dlr() -> Response:
    try:
        report = parse_dlr(request.args)
    except BadRequest as exc:
        return plain(str(exc), 400)
    try:
        receipts.record_kannel(runtime(), report.type, report.msisdn, report.message_id, report.reply)
    except RedisError:
        log.exception("Redis unavailable for Kannel report on %s; smsbox will retry", report.message_id)
        return plain("try again", 503)
    return plain("", 200)


def _limits() -> Limits:
    return current_app.extensions[limits.EXTENSION]
