"""Settings from the environment, overridable by `create_app(test_config)`."""

from __future__ import annotations

import os

DEFAULTS: dict[str, object] = {
    "REDIS_URL": None,
    "RQ_REDIS_URL": None,
    "TDBOT_KEY_PREFIX": "tdbot",
    "TDBOT_SECRET_KEY": "dev-secret-change-me",
    "TDBOT_API_TOKEN": None,
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_FROM": None,
    "TWILIO_MESSAGING_SERVICE_SID": None,
    "TWILIO_API_BASE_URL": None,
    "PUBLIC_BASE_URL": None,
    "TDBOT_DATA_DIR": ".tdbot",
    "TDBOT_RATE_LIMIT_IP": None,  # per client IP, every route but health probes (gateway/limits.py)
    "TDBOT_RATE_LIMIT_SMS": None,  # per sending number, inbound SMS
    "TDBOT_BILLING": "ledger",
    "TDBOT_BILLING_FAILURES": None,
    "TDBOT_SENDER_MPS": None,
}
# Per-sender pacing overrides, e.g. TDBOT_MPS_TWILIO=10 (see gateway/pacing.py).
PER_SENDER_MPS = "TDBOT_MPS_"


def from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, object]:
    environ = os.environ if environ is None else environ
    config = {name: environ.get(name, default) for name, default in DEFAULTS.items()}
    config.update({name: value for name, value in environ.items() if name.startswith(PER_SENDER_MPS)})
    return config
