"""The ceiling for bench/webhook.py: one pipelined Redis GET+SET and a TwiML reply, nothing else.

`app` is a bare Flask route (the web framework the product is built on, so the ratio shows what the dialog step
costs on top of it); `raw_app` is the same without any framework, to show what Flask itself costs here;
`two_calls` is the same Flask route making the two calls any read-then-compare-and-set step needs (an MGET, then a
script that writes only if what was read is unchanged) and nothing else: the best such a step could do here.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs

from flask import Flask, Response, request
from redis import Redis

_redis = Redis.from_url(os.environ["REDIS_URL"])
_REPLY = b'<?xml version="1.0" encoding="UTF-8"?><Response><Message>OK</Message></Response>'

# KEYS: the key read. ARGV: the value it must still hold, the value to write.
_COMPARE_AND_SET = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""
_compare_and_set = _redis.register_script(_COMPARE_AND_SET)

app = Flask(__name__)
two_calls = Flask(__name__)


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


@two_calls.post("/webhooks/twilio/sms")
def read_then_write() -> Response:
    key = "bench:two-calls:" + request.form.get("From", "?")
    seen = _redis.mget([key, key + ":dialog", key + ":in"])[0]
    _compare_and_set(keys=[key], args=[seen or b"", request.form.get("Body", "")])
    return Response(_REPLY, mimetype="application/xml")


@app.get("/healthz")
@two_calls.get("/healthz")
def healthz() -> str:
    return "ok"


def raw_app(environ: dict, start_response) -> list[bytes]:
    size = int(environ.get("CONTENT_LENGTH") or 0)
    form = parse_qs(environ["wsgi.input"].read(size).decode())
    _touch(form.get("From", ["?"])[0], form.get("Body", [""])[0])
    start_response("200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(_REPLY)))])
    return [_REPLY]
