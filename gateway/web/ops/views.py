"""The console's pages: sign-in, dashboard, escalations (take, reply, resolve), a subscriber's timeline (search by
number, reveal for admins) and the stream of operator actions. Every number is shown masked unless revealed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from dialogs.reasons import REQUESTED
from gateway import validation
from gateway.masking import mask
from gateway.runtime import Runtime, runtime
from gateway.state import audit, escalations, operators
from gateway.state.escalations import Refused
from gateway.state.operators import ADMIN, AGENT
from gateway.web import limits
from gateway.web.ops import actions, auth, dashboard, refs
from gateway.web.ops.auth import User, requires

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__, url_prefix="/ops", template_folder="templates", static_folder="static")
bp.before_request(auth.guard)
TIMELINE = 100
NOTE_CHARS = 1000


@bp.app_template_filter("masked")
def masked(msisdn: str) -> str:
    return mask(msisdn)


@bp.app_template_filter("when")
def when(epoch: int | float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if epoch else "—"


@bp.errorhandler(CSRFError)
def csrf_refused(exc: CSRFError) -> tuple[str, int]:
    return render_template("ops/error.html", status=400, message="This form expired or did not come from the "
                           "console. Go back, reload the page and try again."), 400


@bp.errorhandler(HTTPException)
def refused(exc: HTTPException) -> tuple[str, int]:
    return render_template("ops/error.html", status=exc.code, message=exc.description), exc.code or 500


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    if request.method == "GET":
        return render_template("ops/sign_in.html")
    name, password = request.form.get("name", "").strip(), request.form.get("password", "")
    if current_app.extensions[limits.EXTENSION].sign_in_over_limit(request.remote_addr or "unknown", name):
        return render_template("ops/sign_in.html", error="Too many attempts: wait a minute and try again."), 429
    operator = operators.signed_in(runtime().redis, runtime().keys, name, password) if name and password else None
    if operator is None:
        log.warning("failed console sign-in for %r from %s", name[:40], request.remote_addr)
        return render_template("ops/sign_in.html", error="Wrong name or password."), 401
    session.clear()  # a fresh session: nothing from before signing in carries over
    login_user(User(operator))
    session[auth.SEEN] = int(runtime().clock().timestamp())
    session.permanent = True
    return redirect(_next_page())


def _next_page() -> str:
    """Where to go after signing in: the page asked for, if it is a console page of this site."""
    wanted = request.args.get("next") or ""
    parts = urlparse(wanted)
    inside = not parts.scheme and not parts.netloc and parts.path.startswith("/ops/") and "\\" not in wanted
    return wanted if inside else url_for("ops.home")


@bp.post("/sign-out")
def sign_out() -> Response:
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("ops.sign_in"))


@bp.get("/")
def home() -> str:
    return render_template("ops/dashboard.html", board=dashboard.build(runtime()))


@bp.get("/escalations")
def escalation_list() -> str:
    rt = runtime()
    resolved = request.args.get("show") == "resolved"
    found = escalations.resolved(rt.redis, rt.keys) if resolved else escalations.listing(rt.redis, rt.keys)
    return render_template("ops/escalations.html", escalations=found, resolved=resolved, now=rt.clock().timestamp(),
                           refs=refs.remember(rt, (e.msisdn for e in found)))


@bp.get("/escalations/<ref>/<reason>")
@bp.get("/escalations/<ref>/<reason>/<stamp>")
def escalation(ref: str, reason: str, stamp: str = "") -> str:
    rt = runtime()
    msisdn = _number(rt, ref)
    found = escalations.load(rt.redis, rt.keys, msisdn, reason, stamp if stamp.isdigit() else "")
    if found is None:
        abort(404, "No such escalation: it may have been resolved.")
    # Resolving a 人工 escalation hands the number back to the bot: the page says so.
    return render_template("ops/escalation.html", escalation=found, ref=ref, stamp=stamp,
                           entries=_timeline(rt, msisdn, 30), hands_back=found.reason == REQUESTED)


@bp.post("/escalations/<ref>/<reason>/take")
@requires(AGENT)
def take(ref: str, reason: str) -> Response:
    rt = runtime()
    actions.take(rt, _number(rt, ref), reason, current_user.name, force=current_user.can(ADMIN))
    return _back_to(ref, reason, "You have taken this escalation.")


@bp.post("/escalations/<ref>/<reason>/reply")
@requires(AGENT)
def reply(ref: str, reason: str) -> Response:
    rt = runtime()
    actions.reply(rt, _number(rt, ref), reason, current_user.name, request.form.get("text", ""),
                  force=current_user.can(ADMIN))
    return _back_to(ref, reason, "Reply queued: it goes out as a normal message (see its delivery status in the "
                    "timeline).")


@bp.post("/escalations/<ref>/<reason>/resolve")
@requires(AGENT)
def resolve(ref: str, reason: str) -> Response:
    note = request.form.get("note", "").strip()[:NOTE_CHARS]
    if not note:
        return _back_to(ref, reason, "Say in a note how it was resolved.")
    rt = runtime()
    done = actions.resolve(rt, _number(rt, ref), reason, current_user.name, note)
    return _back_to(ref, reason, "Resolved." + (" The bot answers this number again." if reason == REQUESTED else ""),
                    stamp=done.stamp)


def _back_to(ref: str, reason: str, said: str, **where: str) -> Response:
    """After an action on an escalation: what was done, on the escalation's page (a resolved one's, with `stamp`)."""
    flash(said)
    return redirect(url_for("ops.escalation", ref=ref, reason=reason, **where))


@bp.errorhandler(Refused)
def refused_action(exc: Refused) -> Response:
    flash(f"Not done: {exc}.")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("ops.escalation_list"))


def _same_site(url: str | None) -> bool:
    return bool(url) and urlparse(url).netloc == request.host


@bp.get("/subscribers")
def search() -> Any:
    number = request.args.get("number", "").strip()
    if not number:
        return render_template("ops/search.html")
    try:
        msisdn = validation.msisdn(number)
    except validation.Invalid as exc:
        return render_template("ops/search.html", error=str(exc), number=number), 400
    rt = runtime()
    if rt.store.load_subscriber(msisdn) is None and not rt.redis.exists(rt.keys.audit(msisdn)):
        return render_template("ops/search.html", error="No subscriber with that number.", number=number), 404
    return redirect(url_for("ops.subscriber", ref=refs.remember(rt, [msisdn])[msisdn]))


@bp.get("/subscribers/<ref>")
def subscriber(ref: str, revealed: bool = False) -> str:
    rt = runtime()
    msisdn = _number(rt, ref)
    return render_template(
        "ops/subscriber.html", ref=ref, msisdn=msisdn, revealed=revealed, record=rt.store.load_subscriber(msisdn),
        dialog=rt.store.load_dialog(msisdn), open_escalations=escalations.for_subscriber(rt.redis, rt.keys, msisdn),
        entries=_timeline(rt, msisdn, TIMELINE),
    )


@bp.post("/subscribers/<ref>/reveal")
@requires(ADMIN)
def reveal(ref: str) -> str:
    rt = runtime()
    actions.reveal(rt, _number(rt, ref), current_user.name)
    return subscriber(ref, revealed=True)


@bp.get("/audit")
def operator_actions() -> str:
    rt = runtime()
    entries = audit.read(rt.redis, audit.operators_key(rt.keys), count=200)
    return render_template("ops/audit.html", entries=entries,
                           refs=refs.remember(rt, (e["msisdn"] for e in entries if e.get("msisdn"))))


def _number(rt: Runtime, ref: str) -> str:
    msisdn = refs.number(rt, ref)
    if msisdn is None:
        abort(404, "No such subscriber in the console: search for the number.")
    return msisdn


def _timeline(rt: Runtime, msisdn: str, count: int) -> list[dict]:
    """The subscriber's audit trail, newest first, each message sent with its delivery status as of now."""
    entries = audit.read(rt.redis, rt.keys.audit(msisdn), count=count)
    sent = [m for e in entries for m in e.get("sent", [])]
    with rt.redis.pipeline(transaction=False) as pipe:
        for message in sent:
            pipe.hget(rt.keys.message(msisdn, message["id"]), "status")
        statuses = pipe.execute()
    for message, status in zip(sent, statuses, strict=True):
        message["status"] = status.decode() if status else "expired"
    return entries
