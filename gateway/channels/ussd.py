"""Africa's Talking USSD: the cancel, query and statement journeys as menus, over the same service and dialog state as
SMS, and the gateway's end-of-session notifications.

`POST /webhooks/ussd` takes the form fields sessionId, serviceCode, phoneNumber, networkCode and text (the session's
answers so far, joined by `*`) and answers text/plain: `CON ` (the session goes on) or `END ` (it ends), then at most
182 characters. Each request is one inbound message, known by its session and text: the newest answer is read against
the screen the request before it left (ussd_screens.py), turned into the command an SMS would carry, and stepped by
the service; its screen is recorded in the step's own commit, so an aggregator's retry gets the same screen and the
step never runs twice. `POST /webhooks/ussd/events` keeps the session's end (status, duration) on the subscriber's
audit trail. Africa's Talking signs nothing: a request must carry `?token=<TDBOT_USSD_TOKEN>` or come from an address in
`TDBOT_USSD_ALLOW`, else 403.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from redis.exceptions import RedisError

from carriers import to_e164
from dialogs.budgets import USSD
from dialogs.commands import masked_codes
from dialogs.language import reply_lang
from dialogs.messages import render
from dialogs.model import DialogState
from gateway import config as settings
from gateway.channels import ussd_screens as screens
from gateway.channels.ussd_screens import Position
from gateway.channels.wire import BadRequest, MissingField, plain, refuse, token_given
from gateway.delivery.routing import Channel
from gateway.runtime import Runtime, runtime
from gateway.service import Inbound, Service
from gateway.state import audit, session_ends
from gateway.state.ids import digest
from gateway.state.store import SESSION_ID, Contention

log = logging.getLogger(__name__)

bp = Blueprint("ussd", __name__, url_prefix="/webhooks/ussd")
# A session's screen is the HTTP answer, but a session carries no SMS: the code and the result it sends leave by the
# carrier's route, else the SMS channel the subscriber last texted on, else the default (gateway/delivery/routing.py).
CHANNEL = Channel("ussd", carries_sms=False)
ALLOWED = "tdbot.ussd.allowed"  # app.extensions: the networks of TDBOT_USSD_ALLOW

# Form field -> what it is.
FIELDS = {"sessionId": "session_id", "serviceCode": "service_code", "phoneNumber": "phone_number",
          "networkCode": "network_code", "text": "text"}
EVENT_FIELDS = {"sessionId": "session_id", "phoneNumber": "phone_number", "status": "status",
                "durationInMillis": "duration_ms", "hopsCount": "hops", "networkCode": "network_code",
                "serviceCode": "service_code", "cost": "cost", "input": "input", "errorMessage": "error"}
STATUSES = {"Success": "success", "Incomplete": "incomplete", "Failed": "failed"}
SESSION = re.compile(r"[\x21-\x7e]{1,128}")  # what a gateway's session id looks like: printable ASCII
SAFE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SAFE_TEXT = re.compile(r"[0-9*#]{0,40}")
SHORT = 40  # service and network codes, cost
# How far back a request's newest answer may begin: a phone's answer can itself hold `*`, so each of the last few stars
# is a place where it may begin, and the latest request we answered tells which (ussd_screens.py).
LOOKBACK = 16
LONG = 200  # an error message, the session's input, kept in the audit trail


@dataclass(frozen=True)
class Request:
    session_id: str
    service_code: str
    msisdn: str  # E.164; empty when phoneNumber is not a phone number
    network_code: str
    text: str

    def readings(self) -> list[tuple[str, str]]:
        """Where the newest answer may begin: (the text of the request before it, the answer), the longest first.
        The first answer of a session is the whole text, after the first request's empty one."""
        stars = [i for i, char in enumerate(self.text) if char == "*"][-LOOKBACK:]
        return [(self.text[:i], self.text[i + 1:]) for i in reversed(stars)] + [("", self.text)]


def parse(form: Mapping[str, str]) -> Request:
    fields = {name: form.get(param, "") for param, name in FIELDS.items()}
    _check_session(fields["session_id"])
    if not fields["phone_number"]:
        raise MissingField("phoneNumber")
    return Request(fields["session_id"], fields["service_code"][:SHORT], to_e164(fields["phone_number"]) or "",
                   fields["network_code"][:SHORT], fields["text"])


def _check_session(session_id: str) -> None:
    if not session_id:
        raise MissingField("sessionId")
    if not SESSION.fullmatch(session_id):
        raise BadRequest("sessionId must be 1-128 printable ASCII characters")


def session_ref(session_id: str) -> str:
    """The session as key names may carry it: as given when plain, else a hash of it."""
    return session_id if SAFE.fullmatch(session_id) else "h" + digest(session_id)


def inbound_id(session_id: str, text: str) -> str:
    """The request's id: its session and text (a retry repeats both), hashed when they would not read plainly."""
    if SAFE.fullmatch(session_id) and SAFE_TEXT.fullmatch(text):
        return f"ussd:{session_id}:{text}"
    return "ussd:h" + digest(f"{session_id}\n{text}")




# --- who may call ------------------------------------------------------------------------------------------------


@bp.record_once
def _read_allowed(state: BlueprintSetupState) -> None:
    """TDBOT_USSD_ALLOW, read once: a wrong value stops the app at start, naming it."""
    state.app.extensions[ALLOWED] = settings.ussd_allowed(state.app.config)


@bp.before_request
def require_caller() -> None:
    allowed = current_app.extensions[ALLOWED]
    if token_given("TDBOT_USSD_TOKEN") or _address_in(request.remote_addr, allowed):
        return
    if not current_app.config.get("TDBOT_USSD_TOKEN") and not allowed:
        log.error("neither TDBOT_USSD_TOKEN nor TDBOT_USSD_ALLOW is set; refusing USSD requests")
    refuse()


def _address_in(address: str | None, networks: tuple[settings.Network, ...]) -> bool:
    try:
        client = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(client in network for network in networks)


# --- a session's requests ----------------------------------------------------------------------------------------


@bp.post("")
def session() -> Response:
    try:
        req = parse(request.form)
    except BadRequest as exc:
        return plain(str(exc), 400)
    if not req.msisdn:
        return plain(screens.wire(Position(screens.END, render(reply_lang(), "unknown_sender"))))
    try:
        return plain(screens.wire(answer(runtime(), req)))
    except (RedisError, Contention):
        log.exception("could not step USSD session %s of %s; ending it politely", req.session_id, req.msisdn)
        return plain(screens.wire(Position(screens.END, render(reply_lang(msisdn=req.msisdn), "busy"))))


def answer(rt: Runtime, req: Request) -> Position:
    """The screen for `req`: the first screen, or what its newest answer leads to from the screen before it."""
    if not req.text:
        return _step(rt, req, screens.FIRST)
    found = _before(rt, req)
    if found is None:  # no screen of ours came before this text: start again, saying so
        return _step(rt, req, screens.FIRST, hint=True)
    before, given = found
    if screens.ends(before):  # the session was over: it stays over
        return before
    command = screens.command_for(before, given)
    if command is None:
        return _keep(rt, req, screens.hinted(before))
    if command == screens.MAIN_MENU:
        return _keep(rt, req, screens.main_menu(before.lang))
    return _step(rt, req, command)


def _before(rt: Runtime, req: Request) -> tuple[Position, str] | None:
    """The screen the newest answer answers, and the answer: the latest request of the session we answered is the
    longest text before it with a record (every screen shown is recorded). One round trip for every reading."""
    readings = req.readings()
    ids = [inbound_id(req.session_id, before) for before, _ in readings]
    for raw, (_, given) in zip(rt.store.recorded(req.msisdn, ids), readings, strict=True):
        position = _readable(raw)
        if position is not None:
            return position, given
    return None


def _readable(raw: str | None) -> Position | None:
    try:
        return Position.from_json(raw) if raw is not None else None
    except ValueError:
        log.warning("an unreadable USSD record: %r", raw[:80])
        return None


def _keep(rt: Runtime, req: Request, position: Position) -> Position:
    """A screen shown without a step (nothing in the dialog changes), recorded for the answer that comes next."""
    rt.store.record_inbound(req.msisdn, inbound_id(req.session_id, req.text), position.to_json(), kind=SESSION_ID)
    return position


def _step(rt: Runtime, req: Request, command: str, hint: bool = False) -> Position:
    inbound = Inbound(req.msisdn, command, inbound_id(req.session_id, req.text), channel=CHANNEL,
                      id_kind=SESSION_ID, screen=USSD)

    def present(reply: str, state: DialogState | None) -> str:
        position = screens.position_after(command, reply, state)
        return (screens.hinted(position) if hint and not screens.ends(position) else position).to_json()

    return Position.from_json(Service(rt).handle(inbound, present=present).record)


# --- end-of-session notifications ---------------------------------------------------------------------------------


@bp.post("/events")
def events() -> Response:
    try:
        msisdn, session_id, entry = parse_event(request.form)
    except BadRequest as exc:
        return plain(str(exc), 400)
    rt = runtime()
    try:
        session_ends.record(rt.store, msisdn, session_ref(session_id), entry, rt.clock())
    except RedisError:
        log.exception("Redis unavailable for the end of USSD session %s; asking for a retry", session_id)
        return plain("try again", 503)
    return plain("", 200)


def parse_event(form: Mapping[str, str]) -> tuple[str, str, dict]:
    """(number, session id, the audit entry) of an end-of-session notification; BadRequest when it is not one."""
    fields = {name: form.get(param, "") for param, name in EVENT_FIELDS.items()}
    _check_session(fields["session_id"])
    msisdn = to_e164(fields["phone_number"]) if fields["phone_number"] else None
    if msisdn is None:
        raise BadRequest("phoneNumber must be a phone number")
    if fields["status"] not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    entry = {
        "kind": audit.SESSION_END, "channel": CHANNEL.name, "session": fields["session_id"],
        "status": STATUSES[fields["status"]], "duration_ms": _count(fields, "duration_ms", "durationInMillis"),
        "hops": _count(fields, "hops", "hopsCount"), "network": fields["network_code"][:SHORT],
        "service_code": fields["service_code"][:SHORT], "cost": fields["cost"][:SHORT],
        # The answers may hold a code typed on the code screen: the audit trail never keeps one.
        "input": masked_codes(fields["input"][:LONG]), "error": fields["error"][:LONG],
    }
    return msisdn, fields["session_id"], entry


def _count(fields: dict[str, str], name: str, param: str) -> int | None:
    raw = fields[name]
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise BadRequest(f"{param} must be a whole number")
    return int(raw)
