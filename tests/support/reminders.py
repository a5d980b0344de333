"""Helpers for reminder, renewal and settlement tests: subscribers via the API, cancelling by SMS, sweeping."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from rq import SimpleWorker

from gateway.jobs import sweeper
from gateway.runtime import QUEUES
from gateway.state import due as due_index
from gateway.state.keys import OUTBOX
from tests.support.phone import Phone, api_headers

SHANGHAI = ZoneInfo("Asia/Shanghai")
CMCC, CUCC, CTCC = "+8613800138000", "+8618600000000", "+8618900000000"


def local(*parts: int) -> datetime:
    """A moment in Shanghai local time."""
    return datetime(*parts, tzinfo=SHANGHAI)


def put(client, msisdn: str, carrier: str, locale: str, *subs: tuple[str, str, int, str]) -> dict:
    """Upsert a subscriber through the API: each sub is (id, name, fee_fen, renews_on)."""
    body = {
        "carrier": carrier, "locale": locale,
        "subscriptions": [
            {"id": i, "name": name, "service_code": i.upper(), "fee_fen": fee, "renews_on": renews}
            for i, name, fee, renews in subs
        ],
    }
    response = client.put(f"/api/v1/subscribers/{msisdn}", json=body, headers=api_headers())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def cancel(phone: Phone, number: int = 1) -> str:
    """Cancel the `number`th active package the way a subscriber does: TD n, Y, then the code."""
    phone.send(f"TD {number}")
    phone.send("Y")
    return phone.send(phone.last_code())


def run_due(app) -> int:
    """One sweep by the app's clock, then a worker until the queues are empty; returns how many were claimed."""
    runtime = app.extensions["tdbot"]
    claimed = sweeper.sweep(runtime)
    SimpleWorker([runtime.queue(name) for name in QUEUES], connection=runtime.queue_redis).work(burst=True)
    return claimed


def outbox(app, msisdn: str) -> list[str]:
    """What the console sender has sent to `msisdn`, without running a worker."""
    runtime = app.extensions["tdbot"]
    raw = runtime.redis.lrange(runtime.keys.shared(OUTBOX), 0, -1)
    return [e["text"] for e in map(json.loads, raw) if e["to"] == msisdn]


def due(app, kind: str | None = None) -> dict[str, datetime]:
    """The due index as {member: local due time}, optionally of one kind."""
    runtime = app.extensions["tdbot"]
    entries = runtime.redis.zrange(due_index.due_key(runtime.keys), 0, -1, withscores=True)
    return {
        m.decode(): datetime.fromtimestamp(score, SHANGHAI)
        for m, score in entries
        if kind is None or m.decode().startswith(kind + "|")
    }
