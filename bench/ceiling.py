"""The ceiling for bench/webhook.py: one pipelined Redis GET+SET and a TwiML reply, nothing else.

`app` is a bare Flask route (the web framework the product is built on, so the ratio shows what the dialog step
costs on top of it); `raw_app` is the same without any framework, to show what Flask itself costs here.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs

from flask import Flask, Response, request
from redis import Redis

_redis = Redis.from_url(os.environ["REDIS_URL"])
_REPLY = b'<?xml version="1.0" encoding="UTF-8"?><Response><Message>OK</Message></Response>'

app = Flask(__name__)


def _touch(number: str, text: str) -> None:
    key = "bench:ceiling:" + number
    with _redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.set(key, text)
        pipe.execute()


@app.post("/webhooks/twilio/sms")
def sms() -> Response:
    _touch(request.form.get("From", "?"), request.form.get("Body", ""))
    return Response(_REPLY, mimetype="application/xml")


@app.get("/healthz")
def healthz() -> str:
    return "ok"


def raw_app(environ: dict, start_response) -> list[bytes]:
    size = int(environ.get("CONTENT_LENGTH") or 0)
    form = parse_qs(environ["wsgi.input"].read(size).decode())
    _touch(form.get("From", ["?"])[0], form.get("Body", [""])[0])
    start_response("200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(_REPLY)))])
    return [_REPLY]
