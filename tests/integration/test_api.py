"""PUT/GET /api/v1/subscribers/<E.164> against real Redis: auth, validation with a message each, upserts."""

from __future__ import annotations

import json

import pytest

from gateway import create_app
from tests.support.phone import API_TOKEN, Phone
from tests.support.reminders import cancel

NUMBER = "+8613800138000"
PATH = f"/api/v1/subscribers/{NUMBER}"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def package(**changes: object) -> dict:
    return {"id": "vid", "name": "视频会员", "service_code": "SPHY", "fee_fen": 1500, "renews_on": "2026-12-07",
            **changes}


def body(**changes: object) -> dict:
    return {"carrier": "cmcc", "locale": "zh", "subscriptions": [package()], **changes}


def put(client, data: object = None, path: str = PATH, headers: dict | None = None, **kw):
    return client.put(path, json=body() if data is None else data, headers=AUTH if headers is None else headers, **kw)


# --- auth -------------------------------------------------------------------------------------------------

AUTH_CASES = {
    "missing": {},
    "empty bearer": {"Authorization": "Bearer "},
    "wrong token": {"Authorization": "Bearer nope"},
    "not bearer": {"Authorization": f"Basic {API_TOKEN}"},
    "token without scheme": {"Authorization": API_TOKEN},
    "longer token": {"Authorization": f"Bearer {API_TOKEN}x"},
}


@pytest.mark.parametrize("how", sorted(AUTH_CASES))
@pytest.mark.parametrize("method", ["get", "put"])
def test_without_the_right_token_401_and_nothing_stored(client, redis, how: str, method: str) -> None:
    response = getattr(client, method)(PATH, json=body(), headers=AUTH_CASES[how])
    assert response.status_code == 401
    assert "token" in response.get_json()["error"]
    assert redis.dbsize() == 0


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR", "Bearer  "])
def test_the_scheme_is_read_in_any_case_the_token_exactly(client, redis, scheme: str) -> None:
    """RFC 9110 (11.1): the authentication scheme is case-insensitive, and one or more spaces follow it."""
    assert put(client, headers={"Authorization": f"{scheme} {API_TOKEN}"}).status_code == 200
    assert put(client, headers={"Authorization": f"{scheme} {API_TOKEN.upper()}"}).status_code == 401
    assert client.get(PATH, headers={"Authorization": f"{scheme.strip()}{API_TOKEN}"}).status_code == 401


def test_with_no_token_configured_the_api_is_off(test_config) -> None:
    client = create_app({**test_config, "TDBOT_API_TOKEN": None}).test_client()
    for headers in ({}, AUTH, {"Authorization": "Bearer "}):
        response = client.get(PATH, headers=headers)
        assert response.status_code == 503
        assert "TDBOT_API_TOKEN" in response.get_json()["error"]


# --- validation -------------------------------------------------------------------------------------------

INVALID = [
    # name, path, request kwargs, words expected in the error
    ("bad number", "/api/v1/subscribers/12345", {"json": body()}, "phone number"),
    ("letters for a number", "/api/v1/subscribers/abc", {"json": body()}, "phone number"),
    ("not JSON", PATH, {"data": "{nope", "content_type": "application/json"}, "not valid JSON"),
    ("JSON null", PATH, {"data": "null", "content_type": "application/json"}, "not valid JSON"),
    ("form content type", PATH, {"data": json.dumps(body()), "content_type": "application/x-www-form-urlencoded"},
     "Content-Type"),
    ("no content type", PATH, {"data": json.dumps(body())}, "Content-Type"),
    ("a list", PATH, {"json": [body()]}, "JSON object"),
    ("subscriptions not a list", PATH, {"json": body(subscriptions={"id": "vid"})}, "subscriptions must be a list"),
    ("too many subscriptions", PATH, {"json": body(subscriptions=[package(id=str(i)) for i in range(101)])},
     "at most 100"),
    ("subscription not an object", PATH, {"json": body(subscriptions=["vid"])}, "subscriptions[0] must be an object"),
    ("fee as float", PATH, {"json": body(subscriptions=[package(fee_fen=15.5)])}, "subscriptions[0].fee_fen"),
    ("fee as whole float", PATH, {"json": body(subscriptions=[package(fee_fen=1500.0)])}, "fee_fen"),
    ("fee negative", PATH, {"json": body(subscriptions=[package(fee_fen=-1)])}, "fee_fen"),
    ("fee huge", PATH, {"json": body(subscriptions=[package(fee_fen=10**12)])}, "fee_fen"),
    ("fee as yuan text", PATH, {"json": body(subscriptions=[package(fee_fen="15.00")])}, "fee_fen"),
    ("fee as superscript", PATH, {"json": body(subscriptions=[package(fee_fen="²")])}, "fee_fen"),
    ("fee boolean", PATH, {"json": body(subscriptions=[package(fee_fen=True)])}, "fee_fen"),
    ("fee missing", PATH, {"json": body(subscriptions=[{k: v for k, v in package().items() if k != "fee_fen"}])},
     "fee_fen"),
    ("bad date", PATH, {"json": body(subscriptions=[package(renews_on="2026-13-01")])}, "renews_on"),
    ("date in words", PATH, {"json": body(subscriptions=[package(renews_on="next month")])}, "renews_on"),
    ("no date", PATH, {"json": body(subscriptions=[package(renews_on=None)])}, "renews_on"),
    ("duplicate ids", PATH, {"json": body(subscriptions=[package(), package(name="又一个")])}, "unique"),
    ("empty name", PATH, {"json": body(subscriptions=[package(name="  ")])}, "subscriptions[0].name"),
    ("long name", PATH, {"json": body(subscriptions=[package(name="名" * 41)])}, "at most 40"),
    ("name with a newline", PATH, {"json": body(subscriptions=[package(name="a\nb")])}, "not allowed"),
    ("id a number", PATH, {"json": body(subscriptions=[package(id=7)])}, "subscriptions[0].id"),
    ("paid more than the fee", PATH, {"json": body(subscriptions=[package(paid_fen=1501)])},
     "subscriptions[0].paid_fen must be a whole number of fen between 0 and fee_fen (1500)"),
    ("paid negative", PATH, {"json": body(subscriptions=[package(paid_fen=-1)])}, "subscriptions[0].paid_fen"),
    ("paid as float", PATH, {"json": body(subscriptions=[package(paid_fen=7.5)])}, "subscriptions[0].paid_fen"),
    ("paid as yuan text", PATH, {"json": body(subscriptions=[package(paid_fen="7.00")])}, "subscriptions[0].paid_fen"),
    ("paid boolean", PATH, {"json": body(subscriptions=[package(paid_fen=True)])}, "subscriptions[0].paid_fen"),
    ("id with a slash", PATH, {"json": body(subscriptions=[package(id="vid/hd")])}, "subscriptions[0].id"),
    ("id with an escaped slash", PATH, {"json": body(subscriptions=[package(id="vid%2Fhd")])}, "subscriptions[0].id"),
    ("id with a space", PATH, {"json": body(subscriptions=[package(id="vid hd")])}, "subscriptions[0].id"),
    ("id in Chinese", PATH, {"json": body(subscriptions=[package(id="视频")])}, "subscriptions[0].id"),
    ("id with a colon", PATH, {"json": body(subscriptions=[package(id="vid:hd")])}, "subscriptions[0].id"),
    ("id with full-width letters", PATH, {"json": body(subscriptions=[package(id="ｖｉｄ")])}, "subscriptions[0].id"),
    ("id too long", PATH, {"json": body(subscriptions=[package(id="v" * 65)])}, "subscriptions[0].id"),
    ("id empty", PATH, {"json": body(subscriptions=[package(id="")])}, "subscriptions[0].id"),
    ("bad carrier", PATH, {"json": body(carrier="att")}, "carrier must be one of"),
    ("carrier a list", PATH, {"json": body(carrier=["cmcc"])}, "carrier must be one of"),
    ("bad locale", PATH, {"json": body(locale="fr")}, "locale must be one of"),
    ("locale an object", PATH, {"json": body(locale={"zh": 1})}, "locale must be one of"),
]


@pytest.mark.parametrize(("name", "path", "kwargs", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_bad_request_gets_400_with_a_message_and_stores_nothing(client, redis, name, path, kwargs, words) -> None:
    response = client.put(path, headers=AUTH, **kwargs)
    assert response.status_code == 400, response.data
    assert response.is_json
    assert words in response.get_json()["error"]
    assert redis.dbsize() == 0


def test_bad_request_changes_nothing_already_stored(client, redis) -> None:
    assert put(client).status_code == 200
    before = client.get(PATH, headers=AUTH).get_json()
    assert put(client, body(subscriptions=[package(fee_fen=-5)])).status_code == 400
    assert client.get(PATH, headers=AUTH).get_json() == before


def test_body_too_large_gets_json_413(client, redis) -> None:
    huge = json.dumps(body(padding="x" * 70_000))
    response = client.put(PATH, data=huge, content_type="application/json", headers=AUTH)
    assert response.status_code == 413
    assert "too large" in response.get_json()["error"]
    assert redis.dbsize() == 0


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/api/v1/subscribers/+8613900000001", 404),
    ("get", "/api/v1/subscribers/12345", 400),
    ("get", "/api/v1/nothing-here", 404),
    ("delete", PATH, 405),
    ("post", PATH, 405),
])
def test_other_errors_are_json_too(client, method: str, path: str, status: int) -> None:
    response = getattr(client, method)(path, headers=AUTH)
    assert response.status_code == status
    assert response.get_json()["error"]


# --- upsert and read back ---------------------------------------------------------------------------------


def test_put_then_get(client) -> None:
    response = put(client)
    assert response.status_code == 200
    record = client.get(PATH, headers=AUTH).get_json()
    assert record == response.get_json()
    assert record["msisdn"] == NUMBER and record["carrier"] == "cmcc" and record["locale"] == "zh"
    [sub] = record["subscriptions"]
    assert {k: sub[k] for k in package()} == package()
    assert (sub["status"], sub["cancelled_at"]) == ("active", None)
    assert record["statements"] == []


@pytest.mark.parametrize("spelling", ["13800138000", "+86 138 0013 8000", "008613800138000"])
def test_any_spelling_of_the_number_is_the_same_subscriber(client, spelling: str) -> None:
    put(client)
    assert client.get(f"/api/v1/subscribers/{spelling}", headers=AUTH).get_json()["msisdn"] == NUMBER


def test_fee_as_digit_string_is_accepted(client) -> None:
    assert put(client, body(subscriptions=[package(fee_fen="1500")])).get_json()["subscriptions"][0]["fee_fen"] == 1500


@pytest.mark.parametrize(("given", "stored"), [(700, 700), ("1500", 1500), (0, 0), (None, 0)])
def test_paid_fen_is_stored_as_given_or_0_when_absent(client, given: object, stored: int) -> None:
    sub = package() if given is None else package(paid_fen=given)
    assert put(client, body(subscriptions=[sub])).get_json()["subscriptions"][0]["paid_fen"] == stored


def test_carrier_and_locale_are_optional(client) -> None:
    record = put(client, {"subscriptions": [package()]}).get_json()
    assert record["carrier"] is None and record["locale"] is None


def test_upsert_adds_updates_and_keeps_what_it_does_not_mention(client) -> None:
    put(client, body(subscriptions=[package(), package(id="music", name="音乐包", fee_fen=1000)]))
    record = put(client, {"subscriptions": [package(fee_fen=1800), package(id="data", name="流量包")]}).get_json()
    fees = {s["id"]: s["fee_fen"] for s in record["subscriptions"]}
    assert fees == {"vid": 1800, "music": 1000, "data": 1500}
    assert record["carrier"] == "cmcc" and record["locale"] == "zh"


def test_upsert_keeps_a_cancelled_package_cancelled(client, app) -> None:
    put(client)
    phone = Phone(client, app, NUMBER)
    cancel(phone)
    cancelled = client.get(PATH, headers=AUTH).get_json()
    assert cancelled["subscriptions"][0]["status"] == "cancelled"

    record = put(client, body(subscriptions=[package(fee_fen=2000, renews_on="2027-01-07")])).get_json()
    [sub] = record["subscriptions"]
    assert sub["status"] == "cancelled" and sub["cancelled_at"] == cancelled["subscriptions"][0]["cancelled_at"]
    assert sub["fee_fen"] == 2000
    assert record["statements"] == cancelled["statements"]
    assert "没有可退订" in phone.send("TD")


def test_get_shows_statements_in_fen_with_due_date(client, app) -> None:
    put(client)
    phone = Phone(client, app, NUMBER)
    cancel(phone)
    [statement] = client.get(PATH, headers=AUTH).get_json()["statements"]
    assert statement["amount_fen"] == 950 and statement["owed_fen"] == 950
    assert statement["due_at"] == "2026-12-02T15:59:59+00:00"
    assert statement["status"] == "open"


def test_redis_down_gets_json_503(test_config) -> None:
    client = create_app({**test_config, "REDIS_URL": "redis://127.0.0.1:1/0"}).test_client()
    for response in (client.get(PATH, headers=AUTH), put(client)):
        assert response.status_code == 503
        assert "try again" in response.get_json()["error"]
