"""Open escalations counted by reason as they open and close (docs/ops.md, "Escalations"): /metrics and the console's
dashboard read the counts, never the escalations, however many are open; the dashboard counts overdue statements by
age the same way."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from dialogs.reasons import CODE_ATTEMPTS, PAYMENT_FAILED, REQUESTED
from gateway import create_app
from gateway.state import escalations, operators, overdue_list
from tests.support.metrics import samples
from tests.support.ops import signed_in
from tests.support.redis_proxy import FreezingProxy

NUMBER = "+8613800138000"
OTHER = "+8613800138001"
DAYS = 180
OPEN = "tdbot_escalations_open"
MANY = 100_000
REASONS = (REQUESTED, PAYMENT_FAILED, CODE_ATTEMPTS)
READ_AT_MOST = 64 * 1024  # bytes from Redis for a scrape or the dashboard; 100,000 index members are ~3 MB


def open_by_reason(client) -> dict[str, float]:
    counted = samples(client.get("/metrics").get_data(as_text=True), OPEN)
    return {labels.removeprefix('reason="').removesuffix('"'): n for labels, n in counted.items()}


def test_counts_follow_escalations_opened_resolved_and_left_by_the_previous_release(app, client, clock) -> None:
    runtime = app.extensions["tdbot"]
    store, redis, keys = runtime.store, runtime.redis, runtime.keys
    store.escalate(NUMBER, PAYMENT_FAILED, clock())
    store.escalate(NUMBER, PAYMENT_FAILED, clock())  # one open per number and reason: not counted twice
    store.escalate(OTHER, REQUESTED, clock())
    redis.zadd(escalations.index_key(keys), {f"{OTHER}|{CODE_ATTEMPTS}": 1_700_000_000})  # the previous release's
    assert open_by_reason(client) == {PAYMENT_FAILED: 1, REQUESTED: 1, CODE_ATTEMPTS: 1}

    redis.zadd(escalations.index_key(keys), {f"{NUMBER}|{CODE_ATTEMPTS}": 1_700_000_000})
    for msisdn, reason in ((OTHER, CODE_ATTEMPTS), (NUMBER, CODE_ATTEMPTS), (NUMBER, PAYMENT_FAILED)):
        escalations.resolve(redis, keys, msisdn, reason, "wang", "done", clock(), DAYS)
    assert open_by_reason(client) == {REQUESTED: 1}
    store.escalate(NUMBER, PAYMENT_FAILED, clock())  # resolved, then open again
    assert open_by_reason(client) == {PAYMENT_FAILED: 1, REQUESTED: 1}


@pytest.fixture
def proxied(test_config, redis_url):
    """The app reaching Redis through a proxy that counts what Redis sends back."""
    proxy = FreezingProxy(redis_url)
    yield create_app({**test_config, "REDIS_URL": proxy.url}), proxy
    proxy.close()


def test_with_a_hundred_thousand_open_a_scrape_and_the_dashboard_read_counts_only(proxied, clock) -> None:
    app, proxy = proxied
    runtime = app.extensions["tdbot"]
    now = clock()
    with runtime.redis.pipeline(transaction=False) as pipe:
        for n in range(MANY):  # one a second, going back from now, the reasons in turn; overdue: one a minute
            escalations.index(pipe, runtime.keys, f"+86139{n:08d}", REASONS[n % 3], now - timedelta(seconds=n))
            overdue_list.add(pipe, runtime.keys, f"+86139{n:08d}", f"s{n}", now - timedelta(minutes=n))
        pipe.execute()
    expected = Counter(REASONS[n % 3] for n in range(MANY))

    before = proxy.replied
    assert open_by_reason(app.test_client()) == expected
    assert proxy.replied - before < READ_AT_MOST

    admin = signed_in(app, "zhao", operators.ADMIN)
    before = proxy.replied
    page = admin.page("/ops/")
    assert proxy.replied - before < READ_AT_MOST
    assert f'<strong id="open-escalations">{MANY}</strong>' in page
    hour, day = 3600, 86400
    ages = {"&lt; 1 h": hour, "1–4 h": 3 * hour, "4–24 h": day - 4 * hour, "1–3 d": MANY - day, "&gt; 3 d": 0}
    for label, count in ages.items():
        assert f"<title>{label}: {count}</title>" in page, label
    days = {"&lt; 1 d": 24 * 60, "1–7 d": 6 * 24 * 60, "7–30 d": 23 * 24 * 60, "&gt; 30 d": MANY - 30 * 24 * 60}
    for label, count in days.items():
        assert f"<title>{label}: {count}</title>" in page, label
