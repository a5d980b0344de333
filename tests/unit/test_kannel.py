"""Kannel's wire formats as tables: MO parameters in, delivery report types, and what sendsms's answers mean."""

from __future__ import annotations

import contextlib
import re
import socket
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.channels.kannel import (
    MO,
    MO_FIELDS,
    BadEncoding,
    BadRequest,
    MissingField,
    link_id,
    parse_dlr,
    parse_mo,
    raw_query,
)
from gateway.delivery.receipts import KANNEL_TYPES
from gateway.delivery.senders import KannelSender, sendsms_refusal
from gateway.state.messages import DELIVERED, FAILED, SENT, UNDELIVERED

TD_UTF16 = "退订".encode("utf-16-be")
SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "kannel.conf"


def mo(**fields: str | bytes) -> dict[str, bytes]:
    base = {"from": b"13800138000", "to": b"10086", "text": b"TD", "coding": b"0", "charset": b"UTF-8", "id": b"i-1"}
    return {**base, **{k: v.encode() if isinstance(v, str) else v for k, v in fields.items()}}


# (name, parameters as smsbox sends them, the text read)
TEXTS = [
    ("UTF-8 text, coding 0", mo(text="退订".encode()), "退订"),
    ("UCS-2: the UTF-16BE bytes in bytes=", mo(text=TD_UTF16, bytes=TD_UTF16, coding="2", charset="UTF-16BE"),
     "退订"),
    ("UCS-2 with only text= carrying the bytes", mo(text=TD_UTF16, coding="2", charset="UTF-16BE"), "退订"),
    ("UCS-2 even if the charset says otherwise", mo(bytes=TD_UTF16, coding="2", charset="UTF-8"), "退订"),
    ("mo-recode: UCS-2 recoded to UTF-8, coding 0", mo(text="退订".encode(), bytes="退订".encode()), "退订"),
    ("a Latin-1 link", mo(text="caf\xe9".encode("latin-1"), charset="ISO-8859-1"), "café"),
    ("no charset: UTF-8", mo(text="全部退订".encode(), charset=""), "全部退订"),
    ("no coding: text", mo(coding=""), "TD"),
    ("an emoji over UCS-2 (a surrogate pair)", mo(bytes="TD 😀".encode("utf-16-be"), coding="2"), "TD 😀"),
    ("an empty message", mo(text=""), ""),
]


@pytest.mark.parametrize(("name", "args", "text"), TEXTS, ids=[t[0] for t in TEXTS])
def test_the_text_of_an_mo(name, args, text) -> None:
    assert parse_mo(args).text == text


NUMBERS = [
    ("national", "13800138000"), ("international", "8613800138000"), ("E.164", "+8613800138000"),
    ("with spaces around", " 13800138000 "),
]


@pytest.mark.parametrize(("name", "sender"), NUMBERS, ids=[n[0] for n in NUMBERS])
def test_the_number_of_an_mo_in_any_form_smsbox_gives(name, sender) -> None:
    assert parse_mo(mo(**{"from": sender})) == MO("+8613800138000", "10086", "TD", "i-1", "")


REFUSED = [
    ("no sender", mo(**{"from": ""}), MissingField, "from is required"),
    ("a sender that is no number", mo(**{"from": "tdbot"}), BadRequest, "from is not a phone number"),
    ("a short code as sender", mo(**{"from": "10086"}), BadRequest, "from is not a phone number"),
    ("an unknown coding", mo(coding="7"), BadEncoding, "unknown coding"),
    ("8-bit binary", mo(coding="1"), BadEncoding, "binary"),
    ("an unknown charset", mo(charset="EBCDIC-XYZ"), BadEncoding, "unknown charset"),
    ("a codec that is no text encoding", mo(charset="rot13"), BadEncoding, "unknown charset"),
    ("invalid UTF-8", mo(text=b"\xc3\x28"), BadEncoding, "not UTF-8"),
    ("odd UTF-16BE bytes", mo(bytes=b"\x90\x00\x8b", coding="2"), BadEncoding, "not utf-16-be"),
    ("a lone surrogate in UTF-16BE", mo(bytes=b"\xd8\x00", coding="2"), BadEncoding, "not utf-16-be"),
]


@pytest.mark.parametrize(("name", "args", "error", "says"), REFUSED, ids=[r[0] for r in REFUSED])
def test_an_mo_smsbox_would_not_send_is_refused_with_its_reason(name, args, error, says) -> None:
    with pytest.raises(error, match=says):
        parse_mo(args)


def test_the_raw_query_keeps_bytes_no_text_decoding_may_touch() -> None:
    query = urlencode({"from": "13800138000", "bytes": TD_UTF16, "text": "TD ALL"}).encode() + b"&from=other"
    assert raw_query(query) == {"from": b"13800138000", "bytes": TD_UTF16, "text": b"TD ALL"}
    assert raw_query(b"text=%00%2B+x&bare") == {"text": b"\x00+ x", "bare": b""}


@given(st.binary(max_size=200))
def test_any_query_parses_or_is_refused_cleanly(raw: bytes) -> None:
    with contextlib.suppress(BadRequest):
        parse_mo(raw_query(raw))


def test_kannels_id_is_the_dedupe_id_and_an_odd_one_is_hashed() -> None:
    assert link_id(parse_mo(mo(id="be53a01a-e715-4c91-b2a8-60aedc4dbd93"))) == (
        "kannel:be53a01a-e715-4c91-b2a8-60aedc4dbd93"
    )
    odd = link_id(parse_mo(mo(id="x" * 65)))
    assert odd.startswith("kannel:") and len(odd) == len("kannel:") + 32
    assert link_id(parse_mo(mo(id="a b"))) != link_id(parse_mo(mo(id="a+b")))


def test_without_an_id_the_link_gives_none_and_number_and_text_stand_in() -> None:
    assert link_id(parse_mo(mo(id=""))) is None


# --- delivery reports --------------------------------------------------------------------------------------------

# Kannel's %d and the status it means, the same as Twilio's callbacks would say.
DLR_TYPES = [(1, DELIVERED), (2, UNDELIVERED), (4, SENT), (8, SENT), (16, FAILED)]


@pytest.mark.parametrize(("kind", "status"), DLR_TYPES)
def test_each_kannel_report_type_maps_to_a_delivery_status(kind, status) -> None:
    assert KANNEL_TYPES[kind] == status
    report = parse_dlr({"type": str(kind), "m": "abc", "to": "+8613800138000", "reply": "ACK/"})
    assert (report.type, report.msisdn, report.message_id, report.reply) == (kind, "+8613800138000", "abc", "ACK/")


BAD_REPORTS = [
    ("no type", {"m": "abc", "to": "+8613800138000"}, "type is required"),
    ("no message", {"type": "1", "to": "+8613800138000"}, "m is required"),
    ("no number", {"type": "1", "m": "abc"}, "to is required"),
    ("a type Kannel has not", {"type": "3", "m": "abc", "to": "+8613800138000"}, "type must be one of"),
    ("a combined mask, not a type", {"type": "9", "m": "abc", "to": "+8613800138000"}, "type must be one of"),
    ("a type that is no number", {"type": "１", "m": "abc", "to": "+8613800138000"}, "type must be one of"),
    ("a number that is none", {"type": "1", "m": "abc", "to": "tdbot"}, "to is not a phone number"),
]


@pytest.mark.parametrize(("name", "args", "says"), BAD_REPORTS, ids=[b[0] for b in BAD_REPORTS])
def test_a_report_kannel_would_not_send_is_refused(name, args, says) -> None:
    with pytest.raises(BadRequest, match=says):
        parse_dlr(args)


# --- sendsms -----------------------------------------------------------------------------------------------------

# (name, HTTP status, body, None when taken, else (retryable, escalate, unreachable: the link is down))
ANSWERS = [
    ("accepted", 202, "0: Accepted for delivery", None),
    ("queued while no SMSC is connected", 202, "3: Queued for later delivery", None),
    ("an older Kannel's answer", 200, "Sent.", None),
    ("bearerbox could not take it", 500, "Sending failed.", (True, False, True)),
    ("busy", 503, "Service Unavailable", (True, False, True)),
    ("a full queue", 400, "4: Message rejected, queue full", (True, False, True)),
    ("too many requests", 429, "", (True, False, False)),
    ("wrong password", 403, "Authorization failed for sendsms", (False, True, False)),
    ("not allowed from here", 401, "Denied", (False, True, False)),
    ("a number on the black list", 400, "Number(s) has/have been denied by white- and/or black-lists.",
     (False, False, False)),
    ("a malformed request", 400, "Missing receiver number, rejected", (False, False, False)),
]


@pytest.mark.parametrize(("name", "status", "body", "refused"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_what_sendsmss_answer_means(name, status, body, refused) -> None:
    error = sendsms_refusal(status, body)
    assert (None if error is None else (error.retryable, error.escalate, error.unreachable)) == refused


def sender(**kwargs: str) -> KannelSender:
    settings = {"short_code": "10086", "callback": "http://tdbot.internal/webhooks/kannel/dlr?token=t0k3n", **kwargs}
    return KannelSender("http://127.0.0.1:13013/cgi-bin/sendsms", "tdbot", "pw", **settings)


def test_chinese_goes_as_ucs2_and_plain_text_as_gsm() -> None:
    chinese, plain = sender().params("+8613800138000", "您好", "m1"), sender().params("+8613800138000", "Hi", "m1")
    assert (chinese["coding"], chinese["charset"]) == ("2", "UTF-8")  # the charset alone would send ??? to phones
    assert "coding" not in plain and plain["charset"] == "UTF-8"


def test_a_send_names_the_carriers_short_code_its_smsc_and_where_reports_go() -> None:
    params = sender(smsc="cmcc").params("+8613800138000", "您好", "0123abcd")
    assert (params["from"], params["to"], params["smsc"], params["dlr-mask"]) == ("10086", "+8613800138000", "cmcc",
                                                                                  "31")
    assert params["dlr-url"] == (
        "http://tdbot.internal/webhooks/kannel/dlr?token=t0k3n&m=0123abcd&to=%2B8613800138000&type=%d&reply=%A"
    )
    assert "smsc" not in sender().params("+8613800138000", "您好", "m1")


def test_without_a_callback_no_report_is_asked_for() -> None:
    params = sender(callback="").params("+8613800138000", "您好", "m1")
    assert "dlr-url" not in params and "dlr-mask" not in params


def test_an_unreachable_sendsms_is_a_link_down_and_the_error_never_quotes_the_password() -> None:
    closed = KannelSender(f"http://127.0.0.1:{_closed_port()}/cgi-bin/sendsms", "tdbot", "s3cr3t-pw", "10086")
    with pytest.raises(Exception) as refused:
        closed.send("+8613800138000", "您好", None, reference="m1")
    assert refused.value.unreachable and "s3cr3t-pw" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_shipped_get_url_passes_every_field_the_channel_reads() -> None:
    get_url = re.search(r'^get-url = "(.*)"$', SHIPPED.read_text(), re.MULTILINE)[1]
    assert urlsplit(get_url).path == "/webhooks/kannel/mo"
    assert dict(parse_qsl(urlsplit(get_url).query)) == {
        "token": "CHANGE-ME-kannel-token", "from": "%p", "to": "%P", "text": "%a", "bytes": "%b", "coding": "%c",
        "charset": "%C", "id": "%I", "smsc": "%i",
    }
    assert list(MO_FIELDS) == ["from", "to", "text", "bytes", "coding", "charset", "id", "smsc"]
