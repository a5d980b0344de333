"""Logging for every tdbot process (web, worker, cron): JSON lines on stderr, set up once, with phone numbers masked
and never a verification code, token or secret, whoever logs them (tdbot, RQ, Twilio's client, gunicorn)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from gateway.masking import mask_text

# Settings whose values must never reach a log line.
SECRET_SETTINGS = ("TDBOT_SECRET_KEY", "TWILIO_AUTH_TOKEN", "TDBOT_API_TOKEN")
REDACTED = "[redacted]"
# Credentials as libraries print them: an Authorization header, a token or password in a query or form.
_CREDENTIAL = re.compile(r"(?i)(\b(?:bearer|basic)\s+|\b(?:token|password|signature|secret)[\"']?\s*[=:]\s*[\"']?)"
                         r"[^\s\"'&,;]+")
_secrets: set[str] = set()


def clean(text: str) -> str:
    """`text` as it may be logged: secrets and credentials redacted, numbers masked, codes hidden."""
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return mask_text(_CREDENTIAL.sub(lambda m: m.group(1) + REDACTED, text))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (cleaned), and the traceback (cleaned) if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": clean(record.getMessage()),
        }
        if record.exc_info:
            entry["error"] = clean(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def never_log(*values: object) -> None:
    """Redact these values (secrets of this deployment) wherever they would appear in a log line."""
    _secrets.update(str(v) for v in values if v and len(str(v)) >= 8)


def setup(level: int = logging.INFO, config: dict | None = None) -> None:
    """Log JSON lines to stderr; leaves alone a process whose logging is configured already (gunicorn's, through
    gunicorn.conf.py, uses the same formatter). The secrets in `config` are redacted either way."""
    never_log(*((config or {}).get(name) for name in SECRET_SETTINGS))
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
