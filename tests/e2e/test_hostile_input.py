"""Hostile input on every route: never a 5xx, TwiML always well-formed, and nothing stored changes unless the
input was valid (for signed webhooks) or authorised and accepted (for the API). Verification codes: locked after
5 tries, stored hashed, compared in constant time.

Routes are taken from the app's URL map, so a new route is fuzzed without touching this file.
"""

from __future__ import annotations

import hmac
import itertools
import json
import re
from urllib.parse import parse_qsl, quote, urlencode
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug import formparser  # noqa: F401 (registers the werkzeug.url_quote codec error handler)
from werkzeug.datastructures import MultiDict

from carriers import to_e164
from dialogs.messages import render
from gateway import create_app
from gateway.state.demo import DEMO_NUMBERS
from gateway.state.keys import OUTBOX
from tests.support.kannel import TOKEN as KANNEL_TOKEN
from tests.support.kannel import kannel_settings
from tests.support.ops import signed_in
from tests.support.phone import API_TOKEN, SMS_PATH, Phone, api_headers, seed_demo, sign, twiml_messages
from tests.support.processes import free_port
from tests.support.ussd import USSD_PATH, USSD_TOKEN

NUMBER = "+8613800138000"
STATUS_PATH = "/webhooks/twilio/status"
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_sids = itertools.count(1)

NASTY = [
    "<Response><Message>owned</Message></Response>", "]]></Message><Message>x", "&amp;&lt;&#0;&#x1;", "<!--",
    "\r\nX-Injected: 1", "TD\r\nX-Injected: 1\r\n\r\n<html>", "\x00\x01\x08\x0b\x1b[31m\x7f", "\ufeff\ufffe\uffff",
    "e\u0301\u0301\u0301\u0301\u0301", "👨\u200d👩\u200d👧\u200d👦🇨🇳", "Z\u0364\u0354\u0367\u0311\u0313\u0489",
    "{lines}{0}{code}{__class__}", "%s%n%x%(amount)s", "TD " + "😀" * 500, "退订" * 3000, "A" * 10_000,
    "'; DROP TABLE subscribers; --", "../../../etc/passwd", "\u202eDT", "ＴＤ　１", "TD\tALL\v1\f2", "١٢٣٤٥٦",
]
TEXT = st.one_of(st.sampled_from(NASTY), st.text(max_size=300))
# Half a surrogate pair: a JSON escape ("\ud800") makes one, and no UTF-8 (Redis, a log line, a reply) carries it.
LONE_SURROGATES = ["\ud800", "\udfff", "TD\udc00", "视频\ud83d会员"]
JSON_TEXT = TEXT | st.sampled_from(LONE_SURROGATES) | st.text(st.characters(blacklist_categories=()), max_size=40)
CONTENT_TYPES = [
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-7", "application/json",
    "application/xml", "text/plain; charset=gbk", "multipart/form-data; boundary=xyz", "multipart/form-data", "",
    "application/octet-stream",
]


def _encodings(text: str) -> list[bytes]:
    return [text.encode("utf-8"), text.encode("utf-16"), text.encode("gb18030", "replace"), b"\xff\xfe\xc3\x28"]


RAW_BODIES = st.one_of(
    st.binary(max_size=2048),
    TEXT.flatmap(lambda t: st.sampled_from(_encodings(t))),
    st.just(b"\xc3\x28\xa0\xa1" * 2560),  # 10 KB of invalid UTF-8
    st.just(b'{"subscriptions": [' + b'{"id": "x"},' * 900 + b"{}]}"),
    st.just(b"Body=%FF%FE%C3%28&From=%2B8613800138000&Body=TD&MessageSid=SM1"),
)
PATH_VALUES = st.one_of(
    st.sampled_from([NUMBER, "13800138000", "%0D%0AX-Injected:%201", "..", "%00", "😀", "a" * 300, "-1", "+86"]),
    TEXT.map(lambda t: quote(t[:100], safe="")),
)


def snapshot(redis) -> dict[bytes, bytes]:
    """Every key with its serialised value: any write anywhere shows as a difference."""
    keys = sorted(redis.scan_iter(count=1000))
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.dump(key)
        return dict(zip(keys, pipe.execute(), strict=True))


def routes(app) -> list[tuple[str, str]]:
    """(method, URL rule) for every route but static files."""
    return sorted(
        (method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


def fill(rule: str, value: str) -> str:
    return re.sub(r"<[^>]+>", lambda _: value, rule)


def assert_sane(response) -> None:
    assert response.status_code < 500, response.data[:300]
    assert "X-Injected" not in response.headers


@pytest.fixture
def kannel_client(test_config):
    app = create_app({**test_config, **kannel_settings(f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms")})
    seed_demo(app)
    return app.test_client()


# --- every route, no credentials ------------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), body=RAW_BODIES, content_type=st.sampled_from(CONTENT_TYPES), path_value=PATH_VALUES,
       credentials=st.sampled_from([{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic Zm9vOmJhcg=="},
                                    {"X-Twilio-Signature": "Zm9vYmFy"}, {"X-Twilio-Signature": "é"}]))
def test_requests_without_valid_credentials_never_fail_and_change_nothing(
    client, seeded, redis, data, body: bytes, content_type: str, path_value: str, credentials: dict
) -> None:
    method, rule = data.draw(st.sampled_from(routes(seeded)), label="route")
    path = fill(rule, path_value)
    before = snapshot(redis)
    response = client.open(path, method=method, data=body, headers={**credentials, "Content-Type": content_type})
    assert_sane(response)
    if rule.startswith(("/webhooks/twilio/", "/webhooks/kannel/")):
        assert response.status_code == 403
    if rule.startswith("/api/") and response.status_code != 308:  # 308: %2F in a path, to the cleaner path
        assert response.status_code in (401, 404) and response.is_json
    if method in ("POST", "PUT") or rule.startswith(("/webhooks/", "/api/")):
        assert snapshot(redis) == before


@pytest.mark.parametrize("authorised", [False, True])
def test_a_1_mb_body_is_refused_with_413_on_every_route(client, seeded, redis, authorised: bool) -> None:
    before = snapshot(redis)
    megabyte = b"Body=" + b"x" * (1 << 20)
    for method, rule in routes(seeded):
        path = fill(rule, NUMBER)
        form = {"From": NUMBER, "Body": "TD"}
        headers = {**api_headers(), "X-Twilio-Signature": sign(path, form)} if authorised else {}
        for content_type in ("application/x-www-form-urlencoded", "application/json", "text/plain"):
            response = client.open(path, method=method, data=megabyte,
                                   headers={**headers, "Content-Type": content_type})
            assert response.status_code == 413, (method, path)
            assert response.is_json and "too large" in response.get_json()["error"]
    assert snapshot(redis) == before


# --- the API, with its token -----------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | JSON_TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(JSON_TEXT, children, max_size=5),
    max_leaves=20,
)
NEAR_VALID_SUBSCRIBER = st.fixed_dictionaries(
    {"subscriptions": st.lists(st.fixed_dictionaries({}, optional={
        "id": JSON_TEXT, "name": JSON_TEXT, "service_code": JSON_TEXT, "renews_on": JSON_TEXT | st.just("2026-12-07"),
        "fee_fen": st.integers() | st.floats() | JSON_TEXT | st.booleans(),
    }), max_size=3)},
    optional={"carrier": JSON_TEXT | st.sampled_from(["cmcc", "cucc", "ctcc"]), "locale": JSON_TEXT},
)
NEAR_VALID_PAYMENT = st.fixed_dictionaries({}, optional={
    "reference": JSON_TEXT, "amount_fen": st.integers() | st.floats() | JSON_TEXT, "paid_at": JSON_TEXT,
})


def _json_bytes(value: object) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True).encode()
    except UnicodeEncodeError:  # half a surrogate pair: only a \ud800 escape carries it
        return json.dumps(value, allow_nan=True).encode()


API_BODIES = st.one_of(
    RAW_BODIES, JSON_VALUES.map(_json_bytes), NEAR_VALID_SUBSCRIBER.map(_json_bytes),
    NEAR_VALID_PAYMENT.map(_json_bytes),
)


@FUZZ
@given(data=st.data(), body=API_BODIES, content_type=st.sampled_from(["application/json", *CONTENT_TYPES]),
       path_value=PATH_VALUES)
def test_api_answers_hostile_bodies_with_a_json_4xx_and_changes_nothing(
    client, seeded, redis, data, body: bytes, content_type: str, path_value: str
) -> None:
    method, rule = data.draw(st.sampled_from([r for r in routes(seeded) if r[1].startswith("/api/")]), label="route")
    before = snapshot(redis)
    response = client.open(fill(rule, path_value), method=method, data=body,
                           headers={**api_headers(), "Content-Type": content_type})
    assert_sane(response)
    if response.status_code >= 400:
        assert response.is_json and "error" in response.get_json()
    if response.status_code >= 300:  # a refusal, or a redirect to a cleaner path (%2F in the number)
        assert snapshot(redis) == before


# --- signed Twilio webhooks with hostile fields ---------------------------------------------------------------

SENDERS = st.one_of(
    st.sampled_from([NUMBER, "13800138000", "+86 138 0013 8000", "+8613800138001", "+14155550100", ""]), TEXT,
)
SMS_FORMS = st.fixed_dictionaries({}, optional={
    "From": SENDERS, "Body": TEXT | st.sampled_from(["TD", "1", "Y", "N", "0000", "HELP", "123456", "STOP"]),
    "MessageSid": TEXT | st.builds(lambda: f"SMhostile{next(_sids)}"), "To": TEXT, "OptOutType": TEXT,
    "NumMedia": TEXT, "AccountSid": TEXT,
})


def post_signed(client, path: str, body: bytes | dict[str, str]):
    """POST as Twilio would, signing the form as the app parses it (werkzeug keeps invalid UTF-8 %-quoted)."""
    raw = body if isinstance(body, bytes) else urlencode(body).encode()
    seen = MultiDict(parse_qsl(raw.decode(), keep_blank_values=True, errors="werkzeug.url_quote"))
    headers = {"X-Twilio-Signature": sign(path, seen), "Content-Type": "application/x-www-form-urlencoded"}
    return client.post(path, data=raw, headers=headers)


def assert_twiml(response) -> list[str]:
    assert_sane(response)
    assert response.status_code == 200, response.data[:300]
    root = ElementTree.fromstring(response.data)  # well-formed whatever came in
    assert root.tag == "Response" and all(child.tag == "Message" for child in root) and len(root) <= 1
    return twiml_messages(response.data)


def _a_subscriber_could_have_sent(form: dict[str, str]) -> bool:
    return to_e164(form.get("From", "")) in DEMO_NUMBERS and len(form.get("Body", "")) <= 1600


@FUZZ
@given(form=SMS_FORMS)
def test_signed_sms_with_hostile_fields_gets_well_formed_twiml(client, seeded, redis, form: dict[str, str]) -> None:
    before = snapshot(redis)
    response = post_signed(client, SMS_PATH, form)
    if response.status_code == 413:  # several huge fields add up to more than the 64 KiB a request may carry
        assert response.is_json and snapshot(redis) == before
        return
    assert_twiml(response)
    if not _a_subscriber_could_have_sent(form):
        assert snapshot(redis) == before


@FUZZ
@given(text=st.binary(max_size=300))
def test_signed_sms_in_invalid_utf8_gets_well_formed_twiml(client, seeded, text: bytes) -> None:
    raw = f"From={quote(NUMBER)}&To=10086&MessageSid=SMbytes{next(_sids)}&Body=".encode() + quote(text).encode()
    assert_twiml(post_signed(client, SMS_PATH, raw))


@FUZZ
@given(form=st.fixed_dictionaries({}, optional={"MessageSid": TEXT, "MessageStatus": TEXT, "ErrorCode": TEXT,
                                                 "To": SENDERS}))
def test_signed_status_callbacks_with_hostile_fields_change_nothing(client, seeded, redis, form) -> None:
    before = snapshot(redis)
    response = post_signed(client, STATUS_PATH, form)
    assert_sane(response)
    assert response.status_code in (200, 204, 400, 413)
    assert snapshot(redis) == before


FIELDS = ["From", "To", "Body", "MessageSid"]


@FUZZ
@given(change=st.sampled_from(["value", "added", "removed", "path", "query", "token", "host"]),
       field=st.sampled_from(FIELDS), text=TEXT)
def test_a_signature_for_anything_else_is_refused(client, seeded, redis, change: str, field: str, text: str) -> None:
    signed = {"From": NUMBER, "To": "10086", "Body": "TD ALL", "MessageSid": f"SMforged{next(_sids)}"}
    sent, path, how = dict(signed), SMS_PATH, {}
    if change == "value":
        sent[field] = text if text != signed[field] else text + "x"
    elif change == "added":
        sent["Extra"] = text
    elif change == "removed":
        del sent[field]
    elif change == "path":
        how = {"base": "https://tdbot.example.com/other"}
    elif change == "query":
        path = SMS_PATH + "?" + urlencode({"q": text or "x"})
    elif change == "token":
        how = {"token": "not-the-auth-token"}
    else:
        how = {"base": "https://evil.example.com"}
    before = snapshot(redis)
    response = client.post(path, data=sent, headers={"X-Twilio-Signature": sign(SMS_PATH, signed, **how)})
    assert response.status_code == 403
    assert snapshot(redis) == before


# --- Kannel's MO and delivery report URLs, with the right token and hostile values --------------------------------

KANNEL_VALUES = st.one_of(TEXT, st.binary(max_size=200), st.sampled_from(["0", "1", "2", "-1", "UTF-16BE", "8", ""]))
KANNEL_QUERIES = st.dictionaries(
    st.sampled_from(["from", "to", "text", "bytes", "coding", "charset", "id", "smsc", "type", "m", "reply"]),
    KANNEL_VALUES, max_size=11,
)


@FUZZ
@given(path=st.sampled_from(["/webhooks/kannel/mo", "/webhooks/kannel/dlr"]), fields=KANNEL_QUERIES,
       method=st.sampled_from(["GET", "POST"]), body=RAW_BODIES)
def test_kannel_requests_with_hostile_values_never_fail_and_a_refused_one_changes_nothing(
    kannel_client, redis, path: str, fields: dict, method: str, body: bytes
) -> None:
    before = snapshot(redis)
    response = kannel_client.open(f"{path}?{urlencode({'token': KANNEL_TOKEN, **fields})}", method=method, data=body)
    assert_sane(response)
    assert response.status_code in (200, 400, 413)
    if response.status_code != 200:
        assert snapshot(redis) == before


# --- verification codes ----------------------------------------------------------------------------------------


@pytest.fixture
def verifying(seeded, phone) -> Phone:
    for text in ("TD", "1", "Y"):
        phone.send(text)
    return phone


def _other_code(code: str, n: int = 1) -> str:
    return f"{(int(code) + n) % 10**6:06d}"


def test_five_wrong_codes_lock_the_flow_even_against_the_right_code(verifying) -> None:
    code = verifying.last_code()
    replies = [verifying.send(_other_code(code, n)) for n in range(1, 6)]
    assert render("zh", "locked") in replies[-1]
    assert render("zh", "still_locked") in verifying.send(code)
    assert all(s["status"] == "active" for s in verifying.subscriber()["subscriptions"])


def test_codes_are_stored_only_as_hashes(verifying, redis) -> None:
    code = verifying.last_code()  # delivered: the phone has it
    outbox = verifying.runtime.keys.shared(OUTBOX).encode()
    leaks = [key for key, value in _all_values(redis) if code.encode() in value and key != outbox]
    assert leaks == []


def _all_values(redis):
    read = {b"string": lambda k: [redis.get(k)], b"hash": lambda k: redis.hvals(k),
            b"list": lambda k: redis.lrange(k, 0, -1), b"set": lambda k: redis.smembers(k),
            b"zset": lambda k: redis.zrange(k, 0, -1), b"stream": lambda k: [repr(redis.xrange(k)).encode()]}
    for key in redis.scan_iter(count=1000):
        for value in read[redis.type(key)](key):
            yield key, value


def test_codes_are_compared_in_constant_time(verifying, monkeypatch) -> None:
    compared = []

    def spy(a, b):
        compared.append((a, b))
        return hmac_compare(a, b)

    hmac_compare = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", spy)
    stored = verifying.runtime.store.load_dialog(NUMBER).code_hash
    verifying.send(_other_code(verifying.last_code()))
    assert any(stored in (a, b) for a, b in compared)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_the_api_token_is_compared_in_constant_time(client, monkeypatch, scheme: str) -> None:
    compared = []
    hmac_compare = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or hmac_compare(a, b))
    client.get(f"/api/v1/subscribers/{NUMBER}", headers={"Authorization": f"{scheme} guess"})
    assert (b"guess", API_TOKEN.encode()) in compared


# --- half a surrogate pair, in every field that takes text --------------------------------------------------------

A_SUBSCRIPTION = {"id": "vid", "name": "视频会员", "service_code": "SPHY", "fee_fen": 1500, "renews_on": "2026-12-07",
                  "paid_fen": 0}
SUBSCRIBER_FIELDS = ["carrier", "locale", *(f"subscriptions[0].{name}" for name in A_SUBSCRIPTION)]
PAYMENT_FIELDS = ["reference", "amount_fen", "paid_at"]


def _with(field: str, value: str) -> dict:
    """The demo subscriber's record with `field` (`name` or `subscriptions[0].name`) set to `value`."""
    subscription = dict(A_SUBSCRIPTION)
    record = {"carrier": "cmcc", "locale": "zh", "subscriptions": [subscription]}
    where, _, name = field.rpartition(".")
    (subscription if where else record)[name] = value
    return record


@pytest.mark.parametrize("text", LONE_SURROGATES)
@pytest.mark.parametrize("field", SUBSCRIBER_FIELDS)
def test_half_a_surrogate_pair_in_any_field_of_a_subscriber_is_a_400_naming_it(client, seeded, redis, field, text):
    before = snapshot(redis)
    response = client.put(f"/api/v1/subscribers/{NUMBER}", data=json.dumps(_with(field, text)),
                          headers={**api_headers(), "Content-Type": "application/json"})
    assert response.status_code == 400 and field in response.get_json()["error"], response.data
    assert snapshot(redis) == before


@pytest.mark.parametrize("text", LONE_SURROGATES)
@pytest.mark.parametrize("field", PAYMENT_FIELDS)
def test_half_a_surrogate_pair_in_any_field_of_a_payment_is_a_400_naming_it(client, seeded, redis, field, text):
    before = snapshot(redis)
    payment = {"reference": "bank-1", "amount_fen": 100, "paid_at": "2026-11-25T09:30:00+08:00", field: text}
    response = client.post("/api/v1/statements/8613800138000-vid-20261107/payments", data=json.dumps(payment),
                           headers={**api_headers(), "Content-Type": "application/json"})
    assert response.status_code == 400 and field in response.get_json()["error"], response.data
    assert snapshot(redis) == before


# What a form or query string can carry of one: its UTF-8 bytes (ED A0 80), which are not UTF-8.
CESU_SURROGATE = "%ED%A0%80"


def test_half_a_surrogate_pair_from_a_phone_gets_a_polite_reply_and_every_later_read_works(app, seeded, redis):
    client = app.test_client()
    raw = f"From={quote(NUMBER)}&To=10086&MessageSid=SMhalf1&Body=TD{CESU_SURROGATE}".encode()
    assert assert_twiml(post_signed(client, SMS_PATH, raw))  # answered in words, as any text it cannot place
    ussd = (f"sessionId=s-half&serviceCode=*100%23&phoneNumber={quote(NUMBER)}&networkCode=46000"
            f"&text=2{CESU_SURROGATE}").encode()
    answer = client.post(f"{USSD_PATH}?token={USSD_TOKEN}", data=ussd,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200 and answer.get_data(as_text=True)[:4] in ("CON ", "END ")
    client.put(f"/api/v1/subscribers/{NUMBER}", data=json.dumps(_with("subscriptions[0].name", "\ud800")),
               headers={**api_headers(), "Content-Type": "application/json"})
    client.post("/api/v1/statements/8613800138000-vid-20261107/payments", headers=api_headers(),
                json={"reference": "bank-\udfff", "amount_fen": 100})

    assert client.get(f"/api/v1/subscribers/{NUMBER}", headers=api_headers()).status_code == 200
    assert client.get("/metrics").status_code == 200
    admin = signed_in(app, "zhao", "admin")
    timeline = admin.client.get(f"/ops/subscribers?number={quote(NUMBER)}", follow_redirects=True)
    assert timeline.status_code == 200 and "%ED%A0%80" in timeline.get_data(as_text=True)
    for page in ("/ops/", "/ops/escalations", "/ops/escalations?show=resolved", "/ops/audit"):
        admin.page(page)
