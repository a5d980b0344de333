"""Dialog edges through the signed Twilio webhook: a read-only command mid-verification, Twilio Advanced Opt-Out
having answered already, the language of replies chosen without a record, long listings a page at a time, and
typed codes kept out of the conversation log."""

from __future__ import annotations

import re

import pytest

from carriers import POLICIES
from dialogs import budgets
from dialogs.messages import render
from gateway import create_app
from tests.e2e.test_flooding import flood_app
from tests.support.phone import Phone, api_headers, seed_demo, twiml_messages

CMCC = "+8613800138000"  # demo subscriber, locale zh
STRANGER_CN = "+8613900000001"
STRANGER_US = "+14155550100"
SIGN = "【中国移动】"
TWILIO_MAX = 1600


@pytest.fixture
def phone(app) -> Phone:
    seed_demo(app)
    return Phone(app.test_client(), app, CMCC)


def replies(response) -> list[str]:
    assert response.status_code == 200, response.data
    return twiml_messages(response.data)


def statuses(phone: Phone) -> dict[str, str]:
    return {s["id"]: s["status"] for s in phone.subscriber()["subscriptions"]}


# --- 14: a read-only command in the middle of verifying -----------------------------------------------------


# 人工 is not among them: after it the code goes to the person (tests/integration/test_escalations.py).
@pytest.mark.parametrize("meanwhile", ["0000", "查询", "ZD", "HELP", "R"])
def test_a_read_only_command_while_verifying_leaves_the_code_valid(phone: Phone, meanwhile: str) -> None:
    phone.send("TD 1")
    phone.send("Y")
    assert phone.send(meanwhile)
    assert phone.send(phone.last_code()) == ""  # the result comes as its own message
    assert statuses(phone)["vid"] == "cancelled"
    assert "视频会员已退订" in phone.inbox()[-1]


def test_0000_then_a_number_still_picks_a_package(phone: Phone) -> None:
    assert "1.视频会员 15.00元/月" in phone.send("0000")
    assert "您将退订" in phone.send("2") and statuses(phone)["music"] == "active"


# --- 16: Twilio Advanced Opt-Out answered already ------------------------------------------------------------


@pytest.mark.parametrize(("text", "opt_out_type", "opted_out"), [
    ("STOP", "STOP", True), ("START", "START", False), ("UNSTOP", "START", False),
    ("HELP", "HELP", True), ("INFO", "HELP", True),
])
def test_when_twilio_answered_we_do_not_answer_again_but_the_opt_out_follows(
    phone: Phone, text: str, opt_out_type: str, opted_out: bool
) -> None:
    phone.send("R")  # opted out of reminders with our own keyword first
    assert replies(phone.post(text, OptOutType=opt_out_type)) == []
    assert phone.subscriber()["opted_out"] is opted_out


def test_without_opt_out_type_we_answer_as_usual(phone: Phone) -> None:
    [reply] = replies(phone.post("START"))
    assert reply == SIGN + render("zh", "start")


def test_yes_twilio_took_for_start_still_confirms_and_sends_the_code(phone: Phone) -> None:
    phone.send("TD 1")
    assert replies(phone.post("YES", OptOutType="START")) == []
    phone.send(phone.last_code())
    assert statuses(phone)["vid"] == "cancelled"


def test_a_stranger_twilio_answered_gets_nothing_more(app) -> None:
    stranger = Phone(app.test_client(), app, STRANGER_CN)
    assert replies(stranger.post("HELP", OptOutType="HELP")) == []


# --- 17: the language of a reply chosen without a subscriber record -----------------------------------------


@pytest.mark.parametrize(("number", "text", "reply"), [
    (STRANGER_CN, "TD", render("zh", "unknown_sender")),
    (STRANGER_CN, "0000", render("zh", "unknown_sender")),
    (STRANGER_CN, "HELP", render("en", "unknown_sender")),
    (STRANGER_US, "TD", render("en", "unknown_sender")),
    (STRANGER_US, "退订", render("zh", "unknown_sender")),
])
def test_an_unknown_number_is_answered_in_its_words_else_its_countrys_language(
    app, number: str, text: str, reply: str
) -> None:
    assert replies(Phone(app.test_client(), app, number).post(text)) == [reply]


def test_a_message_too_long_is_refused_in_the_numbers_language(phone: Phone) -> None:
    assert replies(phone.post("1" * 1601)) == [render("zh", "too_long")]
    assert replies(Phone(phone.client, phone.app, STRANGER_US).post("1" * 1601)) == [render("en", "too_long")]


def test_busy_is_said_in_the_numbers_language(test_config) -> None:
    app = create_app({**test_config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert replies(Phone(app.test_client(), app, CMCC).post("TD")) == [render("zh", "busy")]
    assert replies(Phone(app.test_client(), app, STRANGER_US).post("TD")) == [render("en", "busy")]


def test_the_flood_notice_is_said_in_the_numbers_language(test_config) -> None:
    app = flood_app(test_config, TDBOT_RATE_LIMIT_SMS="1/minute")
    phone = Phone(app.test_client(), app, CMCC)
    phone.send("TD")
    assert replies(phone.post("TD")) == [render("zh", "flooded")]


# --- 19: a hundred packages, a page at a time ----------------------------------------------------------------

HUNDRED = [f"第{i}号咪咕视频钻石会员尊享月包超长名称示例" for i in range(1, 101)]
NUMBERED = re.compile(r"^(\d+)\.第(\d+)号")


@pytest.fixture
def hundred(app) -> Phone:
    subscriptions = [{"id": f"p{i}", "name": name, "service_code": f"S{i}", "fee_fen": 99_999,
                      "renews_on": "2026-12-07"} for i, name in enumerate(HUNDRED, 1)]
    response = app.test_client().put(f"/api/v1/subscribers/{CMCC}", headers=api_headers(),
                                     json={"carrier": "cmcc", "locale": "zh", "subscriptions": subscriptions})
    assert response.status_code in (200, 201), response.data
    return Phone(app.test_client(), app, CMCC)


def pages_of(phone: Phone, command: str, key: str) -> list[str]:
    """`command`, then `98` for as long as a page offers more; each page checked against Twilio's limit and its
    segment budget on the carrier's route."""
    pages = [phone.send(command)]
    while "\n98.更多" in pages[-1]:
        assert len(pages) <= 100
        pages.append(phone.send("98"))
    for page in pages:
        assert len(page) <= TWILIO_MAX
        assert budgets.fits_screen(POLICIES["cmcc"], key, page), page
    return pages


def numbers_on(page: str) -> list[int]:
    shown = [NUMBERED.match(line) for line in page.split("\n")]
    assert all(int(m.group(1)) == int(m.group(2)) for m in shown if m), "each package keeps its number"
    return [int(m.group(1)) for m in shown if m]


@pytest.mark.parametrize(("command", "key"), [("TD", "list"), ("0000", "query")])
def test_a_hundred_packages_are_listed_a_page_at_a_time_each_within_budget(hundred: Phone, command: str,
                                                                            key: str) -> None:
    pages = pages_of(hundred, command, key)
    assert len(pages) > 1
    assert [n for page in pages for n in numbers_on(page)] == list(range(1, 101))
    assert HUNDRED[0] in pages[0], "a name is shown whole when its line fits"


def test_0_goes_back_and_a_number_on_page_two_means_the_package_shown_with_it(hundred: Phone) -> None:
    first = hundred.send("TD")
    second = hundred.send("98")
    assert hundred.send("0") == first
    assert hundred.send("98") == second
    number = numbers_on(second)[-1]
    confirm = hundred.send(str(number))
    assert f"第{number}号" in confirm and "您将退订" in confirm


# --- 20: typed codes stay out of the conversation log -------------------------------------------------------


def test_codes_typed_while_verifying_are_masked_in_the_log(phone: Phone) -> None:
    phone.send("TD 1")
    phone.send("Y")
    code = phone.last_code()
    wrong = "000000" if code != "000000" else "111111"
    phone.send(wrong)
    phone.send(code)
    logged = [entry["in"] for entry in phone.runtime.store.conversation(CMCC)]
    assert logged == ["TD 1", "Y", "******", "******"]
    assert not any(code in str(entry) for entry in phone.runtime.store.conversation(CMCC))


def test_six_digits_outside_verification_are_kept(phone: Phone) -> None:
    phone.send("TD")
    phone.send("123456")  # a wrong choice from the list, not a code
    assert [entry["in"] for entry in phone.runtime.store.conversation(CMCC)] == ["TD", "123456"]
