"""Subscription ids, over the whole alphabet the API takes: each one imported can be cancelled and its statement paid
through the payments URL; anything else is refused before it is stored."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.phone import Phone, api_headers
from tests.support.profiles import examples
from tests.support.reminders import cancel

NUMBER = "+8613800138000"
ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Each example starts from an empty database itself; generation speed depends on the machine, not the code.
FIXTURES_PER_TEST = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

ids = st.from_regex(ID, fullmatch=True)
# What a back office might send instead: anything, and near misses (a URL's separators, escapes, other scripts).
not_ids = st.one_of(
    st.text(max_size=70),
    st.tuples(ids, st.sampled_from("/?#% :|\\\n\u3000ｖ视\u200b"), ids).map("".join),
).filter(lambda text: not ID.fullmatch(text.strip()))


def put(client, subscription_id: str):
    package = {"id": subscription_id, "name": "视频会员", "service_code": "SPHY", "fee_fen": 1500,
               "renews_on": "2026-12-07"}
    body = {"carrier": "cmcc", "locale": "zh", "subscriptions": [package]}
    return client.put(f"/api/v1/subscribers/{NUMBER}", json=body, headers=api_headers())


@settings(max_examples=examples(25), deadline=None, suppress_health_check=FIXTURES_PER_TEST)
@given(subscription_id=ids)
def test_every_id_the_api_takes_can_be_cancelled_and_paid(client, app, redis, subscription_id: str) -> None:
    redis.flushdb()
    assert put(client, subscription_id).status_code == 200
    cancel(Phone(client, app, NUMBER))
    [statement] = client.get(f"/api/v1/subscribers/{NUMBER}", headers=api_headers()).get_json()["statements"]
    assert statement["subscription_id"] == subscription_id

    paid = client.post(f"/api/v1/statements/{statement['id']}/payments", headers=api_headers(),
                       json={"amount_fen": statement["owed_fen"], "reference": "bank-1"})
    assert paid.status_code == 200, paid.get_json()
    assert (paid.get_json()["statement"]["status"], paid.get_json()["statement"]["owed_fen"]) == ("paid", 0)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=FIXTURES_PER_TEST)
@given(subscription_id=not_ids)
def test_any_other_id_is_a_400_naming_the_field_and_stores_nothing(client, redis, subscription_id: str) -> None:
    redis.flushdb()
    response = put(client, subscription_id)
    assert response.status_code == 400
    assert "subscriptions[0].id" in response.get_json()["error"]
    assert redis.dbsize() == 0, list(redis.scan_iter())
