"""Who may use the console: flask-login sessions for operators (gateway/state/operators.py), roles, idle sign-out,
CSRF on every form (flask-wtf), and cookies that scripts cannot read and only travel over https when the app is
served on https."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import Flask, abort, current_app, flash, redirect, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, logout_user
from flask_wtf.csrf import CSRFProtect

from gateway.runtime import runtime
from gateway.state import operators
from gateway.state.operators import Operator

csrf = CSRFProtect()
SEEN = "ops_seen"  # when the session last made a request (epoch seconds, by the app's clock)
OPEN_ENDPOINTS = {"ops.sign_in", "ops.static"}


class User(UserMixin):
    """An operator as flask-login sees one."""

    def __init__(self, operator: Operator) -> None:
        self.operator = operator

    def get_id(self) -> str:
        return self.operator.name

    @property
    def name(self) -> str:
        return self.operator.name

    @property
    def role(self) -> str:
        return self.operator.role

    def can(self, role: str) -> bool:
        return self.operator.can(role)


def init_app(app: Flask) -> None:
    config = app.config
    secret = str(config["TDBOT_SECRET_KEY"]).encode()
    # The session key is derived, not the code key itself: a leaked cookie secret must not let anyone forge codes.
    derived = hmac.new(secret, b"tdbot ops sessions", hashlib.sha256).hexdigest()
    config["SECRET_KEY"] = config.get("SECRET_KEY") or derived
    config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=str(config.get("PUBLIC_BASE_URL") or "").startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=idle_minutes(config)), SESSION_REFRESH_EACH_REQUEST=True,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked on the console's forms only: webhooks and the API have their own
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which idles out
    )
    csrf.init_app(app)
    manager = LoginManager(app)
    manager.login_view = "ops.sign_in"
    manager.login_message = "Sign in to use the console."
    manager.session_protection = "basic"
    manager.user_loader(_load)
    # The console never sets a remember-me cookie; this hook would open the session on every webhook request.
    app.after_request_funcs[None].remove(manager._update_remember_cookie)


def idle_minutes(config: dict) -> int:
    return int(config.get("TDBOT_OPS_IDLE_MINUTES") or 30)


def _load(name: str) -> User | None:
    operator = operators.load(runtime().redis, runtime().keys, name)
    return User(operator) if operator else None


def guard() -> Any:
    """Before every console request: CSRF on forms, a signed-in operator, and sign-out after the idle time."""
    if request.method == "POST":
        csrf.protect()
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    now = int(runtime().clock().timestamp())
    if now - int(session.get(SEEN, now)) > idle_minutes(current_app.config) * 60:
        logout_user()
        session.clear()
        flash(f"Signed out after {idle_minutes(current_app.config)} minutes without activity.")
        return redirect(url_for("ops.sign_in", next=request.full_path if request.method == "GET" else None))
    session[SEEN] = now
    session.permanent = True
    return None


def requires(role: str) -> Callable:
    """Refuse (403) operators whose role does not include `role`."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not current_user.can(role):
                abort(403, f"this needs the {role} role")
            return view(*args, **kwargs)

        return checked

    return decorate
