"""Dialog edges through the signed Twilio webhook: a read-only command mid-verification, Twilio Advanced Opt-Out
having answered already."""

from __future__ import annotations

import pytest

from dialogs.messages import render
from tests.support.phone import Phone, seed_demo, twiml_messages

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


@pytest.mark.parametrize("meanwhile", ["0000", "查询", "ZD", "HELP", "人工", "R"])
def test_a_read_only_command_while_verifying_leaves_the_code_valid(phone: Phone, meanwhile: str) -> None:
    phone.send("TD 1")
    phone.send("Y")
    assert phone.send(meanwhile)
    assert phone.send(phone.last_code()) == ""  # the result comes as its own message
    assert statuses(phone)["vid"] == "cancelled"
    assert "视频会员已退订" in phone.inbox()[-1]


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
