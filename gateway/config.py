"""Settings from the environment, overridable by `create_app(test_config)`."""

from __future__ import annotations

import functools
import hmac
import ipaddress
import math
import os
import re
from dataclasses import replace
from datetime import time

from carriers import POLICIES, CarrierPolicy, policy_of
from gateway.state.counters import FLUSH_EVERY
from gateway.state.keys import PREFIX

# Codes are HMACed with TDBOT_SECRET_KEY: this default is public, fit for tests and a laptop, never for real traffic.
DEFAULT_SECRET = "dev-secret-change-me"

DEFAULTS: dict[str, object] = {
    "REDIS_URL": None,
    "RQ_REDIS_URL": None,
    "TDBOT_KEY_PREFIX": PREFIX,
    "TDBOT_SECRET_KEY": DEFAULT_SECRET,
    "TDBOT_API_TOKEN": None,
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_FROM": None,
    "TWILIO_MESSAGING_SERVICE_SID": None,
    "TWILIO_API_BASE_URL": None,
    "PUBLIC_BASE_URL": None,
    "TDBOT_DATA_DIR": ".tdbot",
    "TDBOT_RATE_LIMIT_IP": None,  # per client IP, every route but health probes (gateway/web/limits.py)
    "TDBOT_RATE_LIMIT_SMS": None,  # per sending number, inbound SMS
    "TDBOT_BILLING": "ledger",
    "TDBOT_BILLING_FAILURES": None,
    "TDBOT_SENDER_MPS": None,
    "TDBOT_QUIET_HOURS": "",  # e.g. "21:00-09:00", or "off"; empty: each carrier's own (22:00-08:00)
    "TDBOT_SWEEP_INTERVAL": "5",  # seconds between reminder sweeps (gateway/jobs/cron.py)
    "TDBOT_PROXY_HOPS": "0",  # proxies in front of the app whose X-Forwarded-* headers are trusted (0: none)
    "TDBOT_USSD_TOKEN": None,  # the USSD gateway's callback URL carries ?token=<this> (gateway/channels/ussd.py)
    "TDBOT_USSD_ALLOW": "",  # comma-separated CIDRs the USSD gateway calls from, accepted without the token
    "TDBOT_AUDIT_DAYS": "180",  # how long the audit trail and resolved escalations are kept (gateway/state/audit.py)
    "TDBOT_OPS_IDLE_MINUTES": "30",  # an ops console session signs out after this long without a request
    "TDBOT_RATE_LIMIT_SIGNIN": None,  # ops sign-in attempts per client IP and per operator name (gateway/web/limits.py)
    # How long a web process keeps its messages-per-minute counts before writing them (0: at once; tests do).
    "TDBOT_TRAFFIC_FLUSH_SECONDS": "5",
    "TDBOT_ROUTE": None,  # the route of messages nothing else routes (gateway/delivery/routing.py)
    "TDBOT_KANNEL_TOKEN": None,  # Kannel's MO and delivery report URLs carry it (gateway/channels/kannel.py)
    "KANNEL_SENDSMS_URL": None,  # e.g. http://127.0.0.1:13013/cgi-bin/sendsms
    "KANNEL_USERNAME": None,
    "KANNEL_PASSWORD": None,
    "KANNEL_CALLBACK_URL": None,  # where smsbox reaches tdbot for delivery reports; default PUBLIC_BASE_URL
}
# Settings named for a route or carrier: TDBOT_MPS_KANNEL_CMCC=100 (pacing), TDBOT_ROUTE_CMCC=kannel (routing),
# KANNEL_SMSC_CMCC=cmcc (the smsc-id a carrier's messages go to).
PER_ROUTE_MPS = "TDBOT_MPS_"
PER_CARRIER_ROUTE = "TDBOT_ROUTE_"
PER_CARRIER_SMSC = "KANNEL_SMSC_"
PREFIXES = (PER_ROUTE_MPS, PER_CARRIER_ROUTE, PER_CARRIER_SMSC)
# The Kannel token goes into URLs Kannel rewrites (its %-escapes): only characters it leaves alone, and long enough.
KANNEL_TOKEN = re.compile(r"[A-Za-z0-9_.~-]{16,}")


def from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, object]:
    environ = os.environ if environ is None else environ
    config = {name: environ.get(name, default) for name, default in DEFAULTS.items()}
    config.update({name: value for name, value in environ.items() if name.startswith(PREFIXES)})
    return config


class ConfigError(ValueError):
    """Settings that contradict each other: the app and its workers refuse to start on them."""


class InsecureConfig(RuntimeError):
    """Settings the app refuses to serve real traffic with."""


def check(config: dict) -> None:
    """Refuse, before anything connects, settings no process can run with (the app, its workers, rq cron, the CLI):
    quiet hours or a traffic flush interval that cannot be read (InvalidSetting), contradicting Kannel settings
    (ConfigError). gateway/bootstrap.py calls it, once, for every process. The secret is the app's own check
    (`check_secret`, in create_app): only the app makes and verifies codes and signs console sessions with it."""
    check_quiet_hours(config)
    check_kannel(config)
    traffic_flush_seconds(config)


def check_secret(config: dict) -> None:
    """Refuse the public default secret once real traffic can arrive: a Twilio account, a Kannel token, a public URL or
    a way in for a USSD gateway is set."""
    if config.get("TESTING") or config.get("TDBOT_SECRET_KEY") != DEFAULT_SECRET:
        return
    exposed = [name for name in ("TWILIO_ACCOUNT_SID", "PUBLIC_BASE_URL", "TDBOT_KANNEL_TOKEN", *USSD_ACCESS)
               if config.get(name)]
    if exposed:
        raise InsecureConfig(
            f"TDBOT_SECRET_KEY is the built-in default while {' and '.join(exposed)} is set: anyone could forge "
            "verification codes. Set TDBOT_SECRET_KEY to a long random value, e.g. `python -c "
            "'import secrets; print(secrets.token_hex(32))'`."
        )


def secret_matches(config: dict, name: str, given: str) -> bool:
    """Whether `given` (a caller's token) is the secret setting `name`, compared in constant time; never when that
    setting is unset."""
    expected = str(config.get(name) or "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def check_kannel(config: dict) -> None:
    """Kannel is one channel both ways: MO in needs sendsms out for its replies, and sendsms needs the token its
    delivery reports come back with."""
    token, url = config.get("TDBOT_KANNEL_TOKEN"), config.get("KANNEL_SENDSMS_URL")
    if token and not url:
        raise ConfigError("TDBOT_KANNEL_TOKEN is set but KANNEL_SENDSMS_URL is not: replies to Kannel MO go out "
                          "through Kannel's sendsms")
    if not url:
        return
    missing = [n for n in ("KANNEL_USERNAME", "KANNEL_PASSWORD", "TDBOT_KANNEL_TOKEN") if not config.get(n)]
    if missing:
        raise ConfigError(f"KANNEL_SENDSMS_URL is set but {', '.join(missing)} is not")
    if not KANNEL_TOKEN.fullmatch(str(token)):
        raise ConfigError(
            "TDBOT_KANNEL_TOKEN must be at least 16 of A-Z a-z 0-9 _ . ~ - (Kannel rewrites %-escapes in the URLs "
            "that carry it), e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`"
        )


def carrier_policy(config: dict, msisdn: str, carrier: str | None) -> CarrierPolicy:
    """A subscriber's carrier policy, with the deployment's quiet hours when TDBOT_QUIET_HOURS sets them."""
    return _with_quiet_hours(config, policy_of(msisdn, carrier))


def _with_quiet_hours(config: dict, policy: CarrierPolicy) -> CarrierPolicy:
    quiet = quiet_hours(str(config.get("TDBOT_QUIET_HOURS") or ""))
    return replace(policy, quiet_start=quiet[0], quiet_end=quiet[1]) if quiet else policy


class InvalidSetting(ValueError):
    """A setting the app and the worker cannot run with; the message names it."""


USSD_ACCESS = ("TDBOT_USSD_TOKEN", "TDBOT_USSD_ALLOW")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def ussd_allowed(config: dict) -> tuple[Network, ...]:
    """The networks TDBOT_USSD_ALLOW names; InvalidSetting, naming it, if one is not a network."""
    setting = str(config.get("TDBOT_USSD_ALLOW") or "")
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in setting.split(",") if part.strip())
    except ValueError as exc:
        raise InvalidSetting(
            f"TDBOT_USSD_ALLOW={setting!r} is not usable: {exc}. Write networks in CIDR notation, comma-separated "
            "(e.g. 196.201.214.0/24,2001:db8::/32), or leave it unset and give the gateway the token."
        ) from exc


def traffic_flush_seconds(config: dict) -> float:
    """TDBOT_TRAFFIC_FLUSH_SECONDS as seconds (0: written at once); InvalidSetting, naming it, if it is not a finite
    number of seconds, 0 or more."""
    setting = config.get("TDBOT_TRAFFIC_FLUSH_SECONDS")
    if setting is None or setting == "":
        return FLUSH_EVERY
    try:
        seconds = float(setting)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidSetting(
            f"TDBOT_TRAFFIC_FLUSH_SECONDS={setting!r} is not usable: write how many seconds a web process keeps its "
            f"messages-per-minute counts before writing them (e.g. 5, or 0.5; 0 writes them at once), or leave it "
            f"unset for {FLUSH_EVERY:g}."
        )
    return seconds


_QUIET_HOURS = re.compile(r"\s*([0-9]{1,2}:[0-9]{2})\s*-\s*([0-9]{1,2}:[0-9]{2})\s*")


def check_quiet_hours(config: dict) -> None:
    """Refuse at start-up a TDBOT_QUIET_HOURS that every reminder job would otherwise fail on."""
    setting = str(config.get("TDBOT_QUIET_HOURS") or "")
    try:
        for policy in POLICIES.values():
            _with_quiet_hours(config, policy)  # each record checks that the window leaves room to remind in
    except ValueError as exc:
        raise InvalidSetting(
            f"TDBOT_QUIET_HOURS={setting!r} is not usable: {exc}. Write HH:MM-HH:MM (e.g. 22:00-08:00, which may "
            "wrap midnight), off for none, or leave it unset for each carrier's own."
        ) from exc


@functools.cache
def quiet_hours(setting: str) -> tuple[time, time] | None:
    """'22:00-08:00' → (22:00, 08:00); 'off' → none (start == end); '' → the carrier's own."""
    if not setting:
        return None
    if setting.strip().lower() == "off":
        return time(0), time(0)
    matched = _QUIET_HOURS.fullmatch(setting)
    if matched is None:
        raise ValueError("not HH:MM-HH:MM")
    start, end = (time.fromisoformat(part.zfill(5)) for part in matched.groups())
    if start == end:
        raise ValueError("start and end are the same")
    return start, end
