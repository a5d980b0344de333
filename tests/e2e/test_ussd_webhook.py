"""The USSD channel over HTTP, on Africa's Talking's contract: the journeys as menus, every request replayed, the same
cancel finished by SMS and the other way round, garbage answers, who is refused, and end-of-session notifications."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers import policy_of, to_e164
from dialogs import reminders
from dialogs.effects import CODE as CODE_KIND
from dialogs.model import CANCELLED, CONFIRMING, VERIFYING, Subscriber, Subscription
from dialogs.reminders import SETTLE, Reminder
from gateway import create_app
from gateway.config import InvalidSetting
from gateway.state import audit
from gateway.state.demo import DEMO_NUMBERS
from gateway.state.keys import OUTBOX
from gateway.state.subscribers import upsert
from tests.e2e.test_hostile_input import CONTENT_TYPES, FUZZ, RAW_BODIES, SENDERS, TEXT, snapshot
from tests.integration.test_routing import both, texted  # noqa: F401 (both is a fixture)
from tests.support.phone import Phone, seed_demo
from tests.support.ussd import EVENTS_PATH, USSD_PATH, USSD_TOKEN, Screen, Session, form

NUMBER = "+8613800138000"  # China Mobile, zh: 视频会员, 音乐包, 流量包
UNICOM = "+8618600000000"  # no locale of its own: the carrier's, zh
TELECOM = "+8618900000000"  # en: Cloud Storage, Video VIP
EIGHT = "+8613800138001"  # eight packages with long names

CON, END = False, True
DIAL, CODE, WRONG = "<dial>", "<code>", "<wrong>"


@dataclass(frozen=True)
class Wait:
    seconds: int


@pytest.fixture
def seeded(seeded):
    """The demo subscribers and one with eight packages."""
    runtime = seeded.extensions["tdbot"]
    names = [f"咪咕视频钻石会员{i}号" for i in range(1, 9)]
    packages = tuple(Subscription(f"p{i}", name, f"C{i}", 1500, date(2026, 12, 7)) for i, name in enumerate(names, 1))
    upsert(runtime, Subscriber(EIGHT, locale="zh", subscriptions=packages))
    return seeded


def dialled(client, number: str = NUMBER) -> Session:
    return Session(client, number)


def play(app, client, clock, number: str, steps: list) -> Session:
    """Dial and press keys as `steps` say, checking each screen: (key, words it shows, whether it ends)."""
    session, phone = dialled(client, number), Phone(client, app, number)
    for step in steps:
        if isinstance(step, Wait):
            phone.deliver()  # what was sent reaches the phone at once, as a worker sends it, not after the wait
            clock.advance(seconds=step.seconds)
            continue
        key, words, ends = step
        screen = session.dial() if key == DIAL else session.answer(_key(key, phone))
        assert words in screen.text, (key, screen.text)
        assert screen.ends is ends, (key, screen.text)
    return session


def _key(key: str, phone: Phone) -> str:
    if key == CODE:
        return phone.last_code()
    if key == WRONG:
        return f"{(int(phone.last_code()) + 1) % 10**6:06d}"
    return key


def statuses(app, number: str) -> dict[str, str]:
    subscriber = app.extensions["tdbot"].store.load_subscriber(number)
    return {s.id: s.status for s in subscriber.subscriptions}


def cancelled(app, number: str) -> set[str]:
    return {i for i, status in statuses(app, number).items() if status == CANCELLED}


def sent_to(app, number: str) -> list[str]:
    Phone(app.test_client(), app, number).deliver()
    runtime = app.extensions["tdbot"]
    return [e["text"] for e in map(json.loads, runtime.redis.lrange(runtime.keys.shared(OUTBOX), 0, -1))
            if e["to"] == number]


# --- the journeys ------------------------------------------------------------------------------------------------

TO_CODE = [
    (DIAL, "请选择：\n1 我的业务\n2 退订\n3 账单\n4 帮助", CON),
    ("2", "请选择要退订的业务：\n1.视频会员 15.00元/月\n2.音乐包 10.00元/月\n3.流量包 20.00元/月\n0.返回", CON),
    ("1", "您将退订1项：\n视频会员（15.00元/月），结清9.50元，截止12月2日23:59\n"
          "0.返回\n合计需结清9.50元。\n1 确认\n2 放弃", CON),
    ("1", "验证码已短信发送，请输入6位验证码：\n1 重新获取\n2 放弃", CON),
]
DONE = (CODE, "退订结果：\n视频会员已退订，结清9.50元，截止12月2日23:59", END)

# (journey, subscriber, steps, the packages cancelled at the end)
JOURNEYS = [
    ("query", NUMBER, [
        (DIAL, "1 我的业务", CON),
        ("1", "您的业务：\n1.视频会员 15.00元/月，12月7日续订\n2.音乐包", CON),
    ], set()),
    ("query, then cancel what it numbers", NUMBER, [
        (DIAL, "", CON),
        ("1", "您的业务", CON),
        ("3", "流量包（20.00元/月）", CON),
        ("1", "验证码已短信发送", CON),
        (CODE, "流量包已退订", END),
    ], {"data"}),
    ("cancel one", NUMBER, [*TO_CODE, DONE], {"vid"}),
    ("abandon at the confirmation", NUMBER, [*TO_CODE[:3], ("2", "已放弃，业务未变更。", END)], set()),
    ("abandon at the code", NUMBER, [*TO_CODE, ("2", "已放弃，业务未变更。", END)], set()),
    ("wrong code, then the right one", NUMBER, [
        *TO_CODE,
        (WRONG, "验证码错误，还可尝试4次，请重新输入：", CON),
        DONE,
    ], {"vid"}),
    ("locked after 5 wrong codes", NUMBER, [
        *TO_CODE,
        (WRONG, "还可尝试4次", CON),
        (WRONG, "还可尝试3次", CON),
        (WRONG, "还可尝试2次", CON),
        (WRONG, "还可尝试1次", CON),
        (WRONG, "验证码错误次数过多，退订已暂停并转人工处理", END),
    ], set()),
    ("expired code: a new one", NUMBER, [
        *TO_CODE,
        Wait(301),
        (CODE, "验证码已过期。\n1 重新获取\n2 放弃", CON),
        ("1", "验证码已短信发送", CON),
        DONE,
    ], {"vid"}),
    ("a new code too soon, then once a minute has passed", NUMBER, [
        *TO_CODE,
        ("1", "验证码获取过于频繁，请1分钟后重试。\n1 重试\n2 放弃", CON),
        Wait(61),
        ("1", "验证码已短信发送", CON),
        DONE,
    ], {"vid"}),
    ("back from the list to the menu, then statements", NUMBER, [
        (DIAL, "", CON),
        ("2", "请选择要退订的业务", CON),
        ("0", "请选择：\n1 我的业务", CON),
        ("3", "您当前没有结算单。", END),
    ], set()),
    ("back from the query to the menu, then help", NUMBER, [
        (DIAL, "", CON),
        ("1", "您的业务", CON),
        ("0", "请选择：", CON),
        ("4", "选2退订包月业务", END),
    ], set()),
    ("the menu from a confirmation", NUMBER, [
        *TO_CODE[:3],
        ("0", "请选择：\n1 我的业务", CON),
        ("2", "请选择要退订的业务", CON),
    ], set()),
    ("eight packages a page at a time", EIGHT, [
        (DIAL, "", CON),
        ("2", "1.咪咕视频钻石会员1号 15.00元/月", CON),
        ("98", "8.咪咕视频钻石会员8号", CON),
        ("98", "8.咪咕视频钻石会员8号", CON),  # no page after the last: the same page
        ("0", "1.咪咕视频钻石会员1号", CON),
        ("8", "咪咕视频钻石会员8号（15.00元/月）", CON),  # a number means its package on any page
        ("1", "验证码已短信发送", CON),
        (CODE, "咪咕视频钻石会员8号已退订", END),
    ], {"p8"}),
    ("back page by page to the menu", EIGHT, [
        (DIAL, "", CON),
        ("2", "98.更多 0.返回", CON),
        ("98", "0.返回", CON),
        ("0", "98.更多 0.返回", CON),
        ("0", "请选择：", CON),
    ], set()),
    ("English", TELECOM, [
        (DIAL, "Choose:\n1 My packages\n2 Cancel a package\n3 Statements\n4 Help", CON),
        ("2", "Choose a package to cancel:\n1. Cloud Storage CNY 8.00/month\n2. Video VIP CNY 15.00/month", CON),
        ("2", "To cancel (1):\nVideo VIP CNY 15.00/mo: pay", CON),
        ("1", "Code sent by SMS. Enter the 6 digits:", CON),
        (CODE, "Result:\nVideo VIP cancelled; settle", END),
    ], {"vid"}),
    ("a subscriber with no locale of their own: the carrier's", UNICOM, [
        (DIAL, "请选择：", CON),
        ("2", "1.手机报 5.00元/月", CON),
        ("1", "截止11月26日10:00", CON),
        ("1", "验证码已短信发送", CON),
        (CODE, "手机报已退订", END),
    ], {"news"}),
]


@pytest.mark.parametrize(("name", "number", "steps", "gone"), JOURNEYS, ids=[j[0] for j in JOURNEYS])
def test_journey(seeded, client, clock, name: str, number: str, steps: list, gone: set[str]) -> None:
    play(seeded, client, clock, number, steps)
    assert cancelled(seeded, number) == gone


def test_the_eight_packages_take_more_than_one_page_and_each_fits(seeded, client) -> None:
    session = dialled(client, EIGHT)
    session.dial()
    first = session.answer("2")
    assert "98.更多 0.返回" in first.text and "\n8." not in first.text
    assert all(len(screen.text) <= 162 for _, screen in session.screens)  # room left for a hint


def test_several_packages_cancelled_one_session_after_another(seeded, client, clock) -> None:
    play(seeded, client, clock, NUMBER, [*TO_CODE, DONE])
    clock.advance(seconds=61)  # at most one code a minute, as over SMS
    play(seeded, client, clock, NUMBER, [
        (DIAL, "请选择：", CON), ("2", "请选择要退订的业务：\n1.音乐包 10.00元/月\n2.流量包 20.00元/月", CON),
        ("2", "流量包（20.00元/月）", CON), ("1", "验证码已短信发送", CON), (CODE, "流量包已退订", END)])
    clock.advance(seconds=61)
    play(seeded, client, clock, NUMBER, [(DIAL, "", CON), ("2", "1.音乐包", CON), ("1", "音乐包", CON),
                                         ("1", "验证码", CON), (CODE, "音乐包已退订", END)])
    play(seeded, client, clock, NUMBER, [(DIAL, "", CON), ("2", "您当前没有可退订的包月业务。", END)])
    play(seeded, client, clock, NUMBER, [(DIAL, "", CON), ("3", "您的结算单：", CON)])
    assert cancelled(seeded, NUMBER) == {"vid", "music", "data"}


def test_the_code_and_the_confirmation_go_out_as_tracked_messages(seeded, client, clock) -> None:
    play(seeded, client, clock, NUMBER, [*TO_CODE, DONE])
    texts = sent_to(seeded, NUMBER)
    assert len(texts) == 2 and "验证码" in texts[0] and texts[0].startswith("【中国移动】")
    assert texts[1].startswith("【中国移动】退订结果：\n视频会员已退订")
    log = seeded.extensions["tdbot"].store.conversation(NUMBER)
    assert [(e["channel"], e["in"]) for e in log] == [("ussd", ""), ("ussd", "TD"), ("ussd", "1"), ("ussd", "Y"),
                                                      ("ussd", "******")]  # the code never reaches the log


# --- every request replayed -----------------------------------------------------------------------------------


def test_every_request_again_gets_the_same_screen_and_changes_nothing(seeded, client, clock, redis) -> None:
    session = play(seeded, client, clock, NUMBER, [*TO_CODE, ("x", "输入无效", CON), (WRONG, "还可尝试4次", CON),
                                                   ("0", "请选择", CON), ("2", "请选择要退订的业务", CON)])
    session.answer("1")
    session.answer("1")  # too soon for another code
    clock.advance(seconds=61)
    session.answer("1")
    final = session.answer(Phone(client, seeded, NUMBER).last_code())
    assert final.ends and "视频会员已退订" in final.text
    sent = sent_to(seeded, NUMBER)
    before = snapshot(redis)
    for text, screen in session.screens:
        again = session.post(text)
        assert again.get_data(as_text=True) == ("END " if screen.ends else "CON ") + screen.text, text
    assert snapshot(redis) == before  # no step ran again: nothing written, nothing queued
    assert sent_to(seeded, NUMBER) == sent


def test_a_retry_arriving_at_once_gets_the_same_screen(seeded, client, clock) -> None:
    session = dialled(client)
    session.dial()
    for key in ("2", "1", "1"):
        first = session.answer(key)
        assert session.request(session.text) == first
    code = Phone(client, seeded, NUMBER).last_code()
    done = session.answer(code)
    assert session.request(session.text) == done
    assert len(sent_to(seeded, NUMBER)) == 2 and cancelled(seeded, NUMBER) == {"vid"}


def test_the_same_keys_in_a_new_session_are_a_new_request(seeded, client, clock) -> None:
    play(seeded, client, clock, NUMBER, [*TO_CODE, ("2", "已放弃", END)])
    clock.advance(seconds=61)
    play(seeded, client, clock, NUMBER, TO_CODE)
    assert len([t for t in sent_to(seeded, NUMBER) if "验证码" in t]) == 2


# --- one dialog, whatever the channel ------------------------------------------------------------------------


def test_a_cancel_begun_on_ussd_is_finished_by_texting_the_code(seeded, client, clock, phone) -> None:
    play(seeded, client, clock, NUMBER, TO_CODE)  # and the session times out
    assert phone.send(phone.last_code()) == ""  # the confirmation comes as its own message
    assert cancelled(seeded, NUMBER) == {"vid"}
    assert "视频会员已退订" in phone.inbox()[-1]


def test_a_code_texted_for_is_typed_on_the_first_ussd_screen(seeded, client, clock, phone) -> None:
    for text in ("TD", "1", "Y"):
        phone.send(text)
    play(seeded, client, clock, NUMBER, [
        (DIAL, "您有退订未完成。\n请输入短信中的6位验证码：\n1 重新获取\n2 放弃\n0 主菜单", CON), DONE])
    assert cancelled(seeded, NUMBER) == {"vid"}


def test_a_confirmation_asked_by_sms_is_given_on_ussd(seeded, client, clock, phone) -> None:
    phone.send("TD")
    phone.send("2")
    play(seeded, client, clock, NUMBER, [
        (DIAL, "您将退订1项：\n音乐包（10.00元/月），结清", CON), ("0", "请选择：", CON)])
    assert seeded.extensions["tdbot"].store.load_dialog(NUMBER).stage == CONFIRMING  # the menu left it waiting
    play(seeded, client, clock, NUMBER, [(DIAL, "您将退订1项：", CON), ("1", "验证码已短信发送", CON),
                                         (CODE, "音乐包已退订", END)])


def test_an_expired_code_is_offered_anew_on_the_first_screen(seeded, client, clock, phone) -> None:
    for text in ("TD", "1", "Y"):
        phone.send(text)
    clock.advance(seconds=301)
    play(seeded, client, clock, NUMBER, [(DIAL, "您有退订未完成。\n验证码已过期。\n1 重新获取\n2 放弃\n0 主菜单", CON),
                                         ("1", "验证码已短信发送", CON), DONE])


def test_wrong_codes_count_across_channels(seeded, client, clock, phone) -> None:
    play(seeded, client, clock, NUMBER, [*TO_CODE, (WRONG, "还可尝试4次", CON), (WRONG, "还可尝试3次", CON)])
    wrong = f"{(int(phone.last_code()) + 7) % 10**6:06d}"
    assert "还可尝试2次" in phone.send(wrong)
    play(seeded, client, clock, NUMBER, [(DIAL, "请输入短信中的6位验证码", CON), (WRONG, "还可尝试1次", CON)])


def code_route(app) -> str:
    """The route the subscriber's verification code was given."""
    runtime = app.extensions["tdbot"]
    prefix = runtime.keys.message(NUMBER, "")
    ids = [key.decode()[len(prefix):] for key in runtime.redis.scan_iter(match=prefix + "*")]
    [code] = [m for m in (runtime.store.load_message(NUMBER, i) for i in ids) if m and m.kind == CODE_KIND]
    return code.route


@pytest.mark.parametrize(("settings", "last", "route"), [
    ({}, None, "twilio"),  # no route of its own, no SMS channel used: the default
    ({"TDBOT_ROUTE": "kannel"}, None, "kannel-cmcc"),
    ({}, "kannel", "kannel-cmcc"),  # the SMS channel the subscriber last texted on
    ({}, "twilio", "twilio"),
    ({"TDBOT_ROUTE_CMCC": "kannel"}, "twilio", "kannel-cmcc"),  # the carrier's route first
])
def test_a_code_asked_for_on_ussd_goes_by_the_carriers_route_else_the_last_sms_channel_else_the_default(
    both, clock, settings: dict, last: str | None, route: str  # noqa: F811 (the fixture)
) -> None:
    app = create_app({**both, **settings})
    seed_demo(app)
    texted(app, last)
    play(app, app.test_client(), clock, NUMBER, TO_CODE[:-1] + [("1", "验证码已短信发送", CON)])
    assert code_route(app) == route
    assert app.extensions["tdbot"].store.load_subscriber(NUMBER).sms_channel == (last or "")  # USSD is no SMS


def test_opted_out_of_reminders_a_subscriber_still_gets_screens_and_codes(seeded, client, clock, phone) -> None:
    phone.send("STOP")
    play(seeded, client, clock, NUMBER, [*TO_CODE, DONE])
    subscriber = seeded.extensions["tdbot"].store.load_subscriber(NUMBER)
    assert subscriber.opted_out  # USSD screens did not undo the STOP
    [statement] = subscriber.statements
    reminder = Reminder(SETTLE, NUMBER, statement.id)
    assert reminders.text(subscriber, policy_of(NUMBER), reminder, clock()) is None  # and reminders honour it


def test_while_a_person_has_the_conversation_the_menu_says_so_and_moves_nothing(seeded, client, clock, phone):
    for text in ("TD", "1", "人工"):
        phone.send(text)
    store = seeded.extensions["tdbot"].store
    before = store.load_dialog(NUMBER)
    assert before.human and before.stage == CONFIRMING
    play(seeded, client, clock, NUMBER, [(DIAL, "客服正在处理您的问题，将通过短信回复您。", END)])
    after = store.load_dialog(NUMBER)
    assert (after.human, after.stage, after.selected) == (True, CONFIRMING, before.selected)
    assert cancelled(seeded, NUMBER) == set()


# --- answers a screen does not take -------------------------------------------------------------------------------

GARBAGE = ["abc", "", "*", "**", "x" * 500, "😀", "\x00\x01\xff\ufffe", "1 3", "TD", "99", "1" * 50, "Y", "#"]
# Where a screen stands: the keys pressed to reach it, the words it shows.
PLACES = {
    "menu": ([], "请选择："),
    "list": (["2"], "请选择要退订的业务"),
    "confirmation": (["2", "1"], "您将退订"),
    "code": (["2", "1", "1"], "请输入6位验证码"),
}


# An empty first answer is no answer: the session's first request again, which gets the menu as it was.
GARBAGE_CASES = [(place, garbage) for place in sorted(PLACES) for garbage in GARBAGE
                 if (place, garbage) != ("menu", "")]


@pytest.mark.parametrize(("place", "garbage"), GARBAGE_CASES, ids=[f"{p}-{g!r}" for p, g in GARBAGE_CASES])
def test_garbage_gets_the_same_screen_with_a_hint_and_keeps_the_place(seeded, client, place: str, garbage: str) -> None:
    keys, words = PLACES[place]
    session = dialled(client)
    session.dial()
    shown = session.answer(*keys) if keys else session.screens[-1][1]
    dialog = seeded.extensions["tdbot"].store.load_dialog(NUMBER)
    screen = session.answer(garbage)
    assert not screen.ends
    assert screen.text == "输入无效，请重新选择。\n" + shown.text and words in screen.text
    assert seeded.extensions["tdbot"].store.load_dialog(NUMBER) == dialog


def test_after_garbage_the_next_answer_is_read_against_the_same_screen(seeded, client, clock) -> None:
    play(seeded, client, clock, NUMBER, [*TO_CODE, ("**", "输入无效", CON), ("😀", "输入无效", CON),
                                         ("12345", "输入无效，请重新选择。\n验证码已短信发送", CON), DONE])


@pytest.mark.parametrize("text", ["1" * 3000, "*" * 3000, "2*" + "9" * 2000, "😀" * 1000])
def test_an_oversized_text_gets_a_screen_with_a_hint(seeded, client, text: str) -> None:
    session = dialled(client)
    session.dial()
    screen = session.request(text)
    assert not screen.ends and screen.text.startswith("输入无效，请重新选择。\n")


def test_an_oversized_body_is_refused_with_413(seeded, client, redis) -> None:
    before = snapshot(redis)
    response = client.post(f"{USSD_PATH}?token={USSD_TOKEN}", data=form(NUMBER, "s1", "1" * 70_000))
    assert response.status_code == 413 and snapshot(redis) == before


# --- numbers, forms, Redis -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "words"), [
    ("+8613912345678", "未查询到本号码订购的包月业务"), ("+14155550100", "We found no monthly packages"),
    ("not a number", "We found no monthly packages"),
])
def test_an_unknown_number_gets_an_end_in_its_language_and_nothing_is_stored(seeded, client, redis, number: str,
                                                                                words: str) -> None:
    before = snapshot(redis)
    session = Session(client, number)
    for text in ("", "2", "2*1"):
        screen = session.request(text)
        assert screen.ends and words in screen.text
    assert snapshot(redis) == before


@pytest.mark.parametrize(("drop", "words"), [("sessionId", "sessionId is required"),
                                              ("phoneNumber", "phoneNumber is required")])
def test_a_form_without_its_ids_is_a_clear_400(seeded, client, redis, drop: str, words: str) -> None:
    data = {k: v for k, v in form(NUMBER, "s1", "").items() if k != drop}
    before = snapshot(redis)
    response = client.post(f"{USSD_PATH}?token={USSD_TOKEN}", data=data)
    assert response.status_code == 400 and words in response.get_data(as_text=True)
    assert snapshot(redis) == before


@pytest.mark.parametrize("session_id", ["a b", "会话", "x" * 129, "\x00"])
def test_a_session_id_no_gateway_sends_is_a_400(seeded, client, session_id: str) -> None:
    response = client.post(f"{USSD_PATH}?token={USSD_TOKEN}", data=form(NUMBER, session_id, ""))
    assert response.status_code == 400 and b"sessionId" in response.data


def test_sessions_with_long_ids_are_kept_apart(seeded, client) -> None:
    first, second = Session(client, NUMBER, session_id="A" * 128), Session(client, NUMBER, session_id="A" * 127 + "B")
    first.dial()
    second.dial()
    assert "请选择要退订的业务" in first.answer("2").text
    assert "您的业务" in second.answer("1").text


def test_redis_down_ends_the_session_politely(test_config) -> None:
    client = create_app({**test_config, "REDIS_URL": "redis://127.0.0.1:1/0"}).test_client()
    for number, words in ((NUMBER, "系统繁忙"), ("+14155550100", "busy")):
        response = Session(client, number).post("2*1")
        assert response.status_code == 200 and response.get_data(as_text=True).startswith("END ")
        assert words in response.get_data(as_text=True)


# --- who may call ------------------------------------------------------------------------------------------------

REFUSED = {
    "no token": {"query": ""},
    "a wrong token": {"query": "?token=guess"},
    "the token one character short": {"query": f"?token={USSD_TOKEN[:-1]}"},
    "the token in the form, not the URL": {"query": "", "extra": {"token": USSD_TOKEN}},
    "an empty token": {"query": "?token="},
}


@pytest.mark.parametrize("how", sorted(REFUSED))
@pytest.mark.parametrize("path", [USSD_PATH, EVENTS_PATH])
def test_a_request_without_the_token_is_refused_and_changes_nothing(seeded, client, redis, how: str, path: str):
    way = REFUSED[how]
    before = snapshot(redis)
    response = client.post(path + way["query"], data={**form(NUMBER, "s1", ""), **way.get("extra", {})})
    assert response.status_code == 403 and snapshot(redis) == before


def test_with_neither_a_token_nor_an_allow_list_every_request_is_refused(test_config, redis) -> None:
    app = create_app({**test_config, "TDBOT_USSD_TOKEN": None})
    seed_demo(app)
    client = app.test_client()
    for query in ("", "?token=", "?token=None"):
        assert client.post(USSD_PATH + query, data=form(NUMBER, "s1", "")).status_code == 403


@pytest.mark.parametrize(("allow", "address", "status"), [
    ("10.0.0.0/8", "10.1.2.3", 200), ("10.0.0.0/8", "127.0.0.1", 403), ("10.0.0.0/8, 192.0.2.7/32", "192.0.2.7", 200),
    ("192.0.2.0/24", "192.0.3.1", 403), ("2001:db8::/32", "2001:db8::1", 200), ("2001:db8::/32", "10.0.0.1", 403),
])
def test_an_address_in_the_allow_list_needs_no_token(test_config, allow: str, address: str, status: int) -> None:
    app = create_app({**test_config, "TDBOT_USSD_TOKEN": None, "TDBOT_USSD_ALLOW": allow})
    seed_demo(app)
    response = app.test_client().post(USSD_PATH, data=form(NUMBER, "s1", ""), environ_base={"REMOTE_ADDR": address})
    assert response.status_code == status


def test_with_both_either_way_in_is_enough(test_config) -> None:
    app = create_app({**test_config, "TDBOT_USSD_ALLOW": "10.0.0.0/8"})
    seed_demo(app)
    client = app.test_client()
    assert client.post(USSD_PATH, data=form(NUMBER, "s1", ""), environ_base={"REMOTE_ADDR": "10.0.0.9"}) \
        .status_code == 200
    assert client.post(f"{USSD_PATH}?token={USSD_TOKEN}", data=form(NUMBER, "s2", "")).status_code == 200
    assert client.post(USSD_PATH, data=form(NUMBER, "s3", "")).status_code == 403


@pytest.mark.parametrize("allow", ["10.0.0.1/8", "not-a-network", "10.0.0.0/33", "10.0.0.0/8;192.0.2.0/24"])
def test_an_allow_list_that_is_not_networks_stops_the_app_naming_it(test_config, allow: str) -> None:
    with pytest.raises(InvalidSetting, match="TDBOT_USSD_ALLOW"):
        create_app({**test_config, "TDBOT_USSD_ALLOW": allow})


def test_only_refused_requests_count_against_the_address(test_config) -> None:
    app = create_app({**test_config, "RATELIMIT_ENABLED": True, "TDBOT_RATE_LIMIT_IP": "3/minute"})
    seed_demo(app)
    session = Session(app.test_client(), NUMBER)
    for _ in range(5):  # the gateway calls for every subscriber from a few addresses
        assert session.post("").status_code == 200
    refused = [session.client.post(USSD_PATH, data=form(NUMBER, "s1", "")).status_code for _ in range(5)]
    assert refused == [403, 403, 403, 429, 429]


def test_the_token_is_compared_in_constant_time(seeded, client, monkeypatch) -> None:
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    client.post(f"{USSD_PATH}?token=guess", data=form(NUMBER, "s1", ""))
    assert any(USSD_TOKEN.encode() in pair for pair in compared)


# --- end-of-session notifications -------------------------------------------------------------------------------


def event(number: str = NUMBER, session_id: str = "ATUid_end1", **extra: str) -> dict[str, str]:
    return {"sessionId": session_id, "phoneNumber": number, "serviceCode": "*100#", "networkCode": "46000",
            "status": "Success", "durationInMillis": "14230", "hopsCount": "5", "cost": "CNY 0.0000",
            "input": "2*1*1*123456", "lastAppResponse": "END 退订结果：…", "errorMessage": "", **extra}


def post_event(client, data: dict[str, str]):
    return client.post(f"{EVENTS_PATH}?token={USSD_TOKEN}", data=data)


def session_ends(app, number: str = NUMBER) -> list[dict]:
    runtime = app.extensions["tdbot"]
    entries = audit.read_all(runtime.redis, runtime.keys.audit(number))
    return [{k: v for k, v in e.items() if k != "seq"} for e in entries if e["kind"] == audit.SESSION_END]


def test_a_sessions_end_is_kept_in_the_subscribers_audit_trail_once(seeded, client, clock) -> None:
    assert post_event(client, event()).status_code == 200
    assert post_event(client, event()).status_code == 200  # the gateway's retry
    assert session_ends(seeded) == [{
        "at": int(clock().timestamp()), "kind": "session_end", "channel": "ussd", "session": "ATUid_end1",
        "status": "success", "duration_ms": 14230, "hops": 5, "network": "46000", "service_code": "*100#",
        "cost": "CNY 0.0000", "input": "2*1*1*******", "error": "",
    }]


def test_each_sessions_end_is_kept(seeded, client) -> None:
    for n in range(3):
        post_event(client, event(session_id=f"s{n}", status="Incomplete", errorMessage="timeout"))
    assert [(e["session"], e["status"], e["error"]) for e in session_ends(seeded)] == [
        ("s0", "incomplete", "timeout"), ("s1", "incomplete", "timeout"), ("s2", "incomplete", "timeout")]


def test_the_console_shows_a_sessions_end_on_the_timeline(seeded, client) -> None:
    from flask import render_template_string

    post_event(client, event())
    with seeded.test_request_context():
        html = render_template_string('{% from "ops/_timeline.html" import timeline %}{{ timeline(entries) }}',
                                      entries=session_ends(seeded))
    assert "USSD session ended</b>: success, 14.2 s, 5 screens" in html


def test_the_end_of_an_unknown_numbers_session_is_not_kept(seeded, client, redis) -> None:
    before = snapshot(redis)
    assert post_event(client, event("+8613912345678")).status_code == 200
    assert snapshot(redis) == before


@pytest.mark.parametrize(("change", "words"), [
    ({"sessionId": ""}, "sessionId is required"), ({"phoneNumber": "nobody"}, "phoneNumber"),
    ({"status": "Exploded"}, "status must be one of Success, Incomplete, Failed"),
    ({"durationInMillis": "fast"}, "durationInMillis"), ({"hopsCount": "-1"}, "hopsCount"),
    ({"durationInMillis": "9" * 40}, "durationInMillis"),
])
def test_a_notification_that_is_not_one_is_a_clear_400(seeded, client, redis, change: dict, words: str) -> None:
    before = snapshot(redis)
    response = post_event(client, event(**change))
    assert response.status_code == 400 and words in response.get_data(as_text=True)
    assert snapshot(redis) == before


def test_dialog_state_after_a_ussd_code_is_the_sms_one(seeded, client, clock) -> None:
    play(seeded, client, clock, NUMBER, TO_CODE)
    assert seeded.extensions["tdbot"].store.load_dialog(NUMBER).stage == VERIFYING


# --- hostile fields, with the token -------------------------------------------------------------------------------

USSD_FORMS = st.fixed_dictionaries({}, optional={
    "sessionId": TEXT | st.sampled_from(["ATUid_hostile", "s1"]), "phoneNumber": SENDERS, "networkCode": TEXT,
    "serviceCode": TEXT, "text": TEXT | st.lists(st.sampled_from(["", "0", "1", "2", "98", "123456", "**"]),
                                                 max_size=6).map("*".join),
})


@FUZZ
@given(data=USSD_FORMS)
def test_hostile_fields_get_a_screen_or_a_clear_400_and_strangers_change_nothing(seeded, client, redis, data) -> None:
    before = snapshot(redis)
    response = client.post(f"{USSD_PATH}?token={USSD_TOKEN}", data=data)
    assert response.status_code in (200, 400, 413), response.data[:300]
    if response.status_code == 200:
        assert response.mimetype == "text/plain"
        Screen.parse(response.get_data(as_text=True))
    if response.status_code != 200 or to_e164(data.get("phoneNumber", "")) not in DEMO_NUMBERS:
        assert snapshot(redis) == before


@FUZZ
@given(body=RAW_BODIES, content_type=st.sampled_from(CONTENT_TYPES), path=st.sampled_from([USSD_PATH, EVENTS_PATH]))
def test_hostile_bodies_with_the_token_never_fail(seeded, client, body: bytes, content_type: str, path: str) -> None:
    response = client.post(f"{path}?token={USSD_TOKEN}", data=body, headers={"Content-Type": content_type})
    assert response.status_code in (200, 400, 413), response.data[:300]


@FUZZ
@given(data=st.fixed_dictionaries({}, optional={name: TEXT for name in event()}))
def test_hostile_notifications_never_fail(seeded, client, data) -> None:
    assert post_event(client, data).status_code in (200, 400, 413)
