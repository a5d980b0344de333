"""USSD positions as tables: what an answer means on each screen, where a step leaves the session (CON or END), and
every screen in every language within 182 characters with its hint, whatever the packages are called."""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers import POLICIES
from dialogs import budgets, codes
from dialogs.budgets import USSD
from dialogs.engine import Facts, Message, step
from dialogs.messages import LANGS, SCREENS, money, render_screen, when
from dialogs.model import (
    CANCEL,
    CHOOSING,
    CONFIRMING,
    IDLE,
    LOCKED,
    PAY,
    PLAN,
    VERIFYING,
    DialogState,
    Subscriber,
    Subscription,
)
from dialogs.segments import USSD_SCREEN
from gateway.channels.ussd import Request, inbound_id
from gateway.channels.ussd_screens import (
    CODE,
    CONFIRM,
    END,
    FIRST,
    INFO,
    LIST,
    MAIN_MENU,
    MENU,
    Position,
    command_for,
    hinted,
    position_after,
    wire,
)

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)

# --- where a step leaves the session ----------------------------------------------------------------------------


def state(stage: str = IDLE, intent: str = CANCEL, listing: str = "", options: int = 3) -> DialogState:
    return DialogState(stage=stage, intent=intent, listing=listing, options=tuple(f"p{i}" for i in range(options)),
                       lang="zh")


# (what happened, the command, the dialog state after it, the position: its kind)
AFTER = [
    ("a number we do not know", FIRST, None, END),
    ("the first screen: the menu", FIRST, state(), MENU),
    ("the first screen while a confirmation waits", FIRST, state(CONFIRMING), CONFIRM),
    ("the first screen while a code waits", FIRST, state(VERIFYING), CODE),
    ("the first screen while a payment waits: the menu", FIRST, state(CONFIRMING, PAY), MENU),
    ("the first screen while locked: the menu", FIRST, state(LOCKED), MENU),
    ("the first screen while choosing: the menu", FIRST, state(CHOOSING), MENU),
    ("TD lists the packages", "TD", state(CHOOSING, listing="list"), LIST),
    ("TD with nothing to cancel", "TD", state(), END),
    ("TD while locked", "TD", state(LOCKED), END),
    ("TD while a confirmation waits and nothing is active", "TD", state(CONFIRMING), END),
    ("0000 from idle: numbers choose", "0000", state(CHOOSING, listing="query"), LIST),
    ("0000 while a code waits: a listing to read", "0000", state(VERIFYING, listing="query"), INFO),
    ("0000 with no packages", "0000", state(), END),
    ("ZD: a listing to read", "ZD", state(listing="bill"), INFO),
    ("ZD with no statements", "ZD", state(), END),
    ("HELP", "HELP", state(), END),
    ("HELP while a code waits", "HELP", state(VERIFYING), END),
    ("98: the next page", "98", state(CHOOSING, listing="list"), LIST),
    ("0: the page before", "0", state(listing="bill"), INFO),
    ("a number: its confirmation", "2", state(CONFIRMING, listing="confirm"), CONFIRM),
    ("the first screen while a confirmation waits, a page of it", FIRST, state(CONFIRMING, listing="confirm"), CONFIRM),
    ("ZD while a confirmation waits: a listing to read", "ZD", state(CONFIRMING, listing="bill"), INFO),
    ("a number not offered (the packages changed meanwhile)", "5", state(CHOOSING), LIST),
    ("a number in a plan's list", "1", state(CHOOSING, PLAN), END),
    ("Y: the code is sent", "Y", state(VERIFYING), CODE),
    ("Y too soon after a code: the confirmation again", "Y", state(CONFIRMING), CONFIRM),
    ("Y and no code is needed: done", "Y", state(), END),
    ("N: abandoned", "N", state(), END),
    ("the right code: done", "123456", state(), END),
    ("a wrong code", "123456", state(VERIFYING), CODE),
    ("an expired code", "123456", state(CONFIRMING), CONFIRM),
    ("the fifth wrong code: locked", "123456", state(LOCKED), END),
    ("a code for a payment", "123456", state(VERIFYING, PAY), END),
    ("a person has the conversation", FIRST, replace(state(CONFIRMING), human=True), END),
    ("a person has it, whatever the key", "Y", replace(state(VERIFYING), human=True), END),
]


@pytest.mark.parametrize(("name", "command", "after", "kind"), AFTER, ids=[row[0] for row in AFTER])
def test_where_a_step_leaves_the_session(name: str, command: str, after: DialogState | None, kind: str) -> None:
    position = position_after(command, "screen", after)
    assert position.kind == kind
    assert wire(position).startswith("END " if kind == END else "CON ")


def test_a_listing_position_keeps_its_page_and_how_many_it_numbers() -> None:
    after = DialogState(stage=CHOOSING, listing="list", options=("a", "b", "c"), page_start=2, lang="en")
    assert position_after("98", "page", after) == Position(LIST, "page", "en", choices=3, paged=True, page=2)


# --- what an answer means on each screen ------------------------------------------------------------------------

LISTED = Position(LIST, "list", choices=8, paged=True)
PAGE_2 = Position(LIST, "list", choices=8, paged=True, page=4)
READ = Position(INFO, "bill", paged=True)
READ_2 = Position(INFO, "bill", paged=True, page=3)
CONFIRMING_PAGE = Position(CONFIRM, "c", paged=True)
CONFIRMING_PAGE_2 = Position(CONFIRM, "c", paged=True, page=2)
EXPIRED = Position(CONFIRM, "验证码已过期。\n1 重新获取\n2 放弃")  # no listing: no pages

# (screen, answer, the command it makes; None: the screen does not take it)
ANSWERS = [
    (Position(MENU, "menu"), "1", "0000"), (Position(MENU, "menu"), "2", "TD"), (Position(MENU, "menu"), "3", "ZD"),
    (Position(MENU, "menu"), "4", "HELP"), (Position(MENU, "menu"), "5", None), (Position(MENU, "menu"), "0", None),
    (Position(MENU, "menu"), " 2 ", "TD"), (Position(MENU, "menu"), "TD", None), (Position(MENU, "menu"), "", None),
    (LISTED, "1", "1"), (LISTED, "8", "8"), (LISTED, "08", "8"), (LISTED, "9", None), (LISTED, "0", MAIN_MENU),
    (LISTED, "98", "98"), (LISTED, "1,3", None), (LISTED, "１", None), (LISTED, "-1", None), (LISTED, "1000", None),
    (PAGE_2, "0", "0"), (PAGE_2, "5", "5"),
    (READ, "98", "98"), (READ, "0", MAIN_MENU), (READ_2, "0", "0"), (READ, "1", None),
    (CONFIRMING_PAGE, "1", "Y"), (CONFIRMING_PAGE, "2", "N"), (CONFIRMING_PAGE, "0", MAIN_MENU),
    (CONFIRMING_PAGE, "98", "98"), (CONFIRMING_PAGE_2, "0", "0"), (CONFIRMING_PAGE_2, "1", "Y"),
    (CONFIRMING_PAGE, "Y", None), (CONFIRMING_PAGE, "123456", None), (CONFIRMING_PAGE, "3", None),
    (EXPIRED, "1", "Y"), (EXPIRED, "98", None), (EXPIRED, "0", MAIN_MENU),
    (Position(CODE, "c"), "123456", "123456"), (Position(CODE, "c"), "012345", "012345"),
    (Position(CODE, "c"), "1", "Y"), (Position(CODE, "c"), "2", "N"), (Position(CODE, "c"), "0", MAIN_MENU),
    (Position(CODE, "c"), "98", None),
    (Position(CODE, "c"), "12345", None), (Position(CODE, "c"), "1234567", None),
    (Position(CODE, "c"), "１２３４５６", None), (Position(CODE, "c"), "12 34 56", None),
    (Position(END, "bye"), "1", None),
]


@pytest.mark.parametrize(("position", "given", "command"), ANSWERS,
                         ids=[f"{p.kind}{'-paged' * p.paged}-p{p.page}-{a!r}" for p, a, _ in ANSWERS])
def test_what_an_answer_means_on_each_screen(position: Position, given: str, command: str | None) -> None:
    assert command_for(position, given) == command


@given(position=st.sampled_from([p for p, _, _ in ANSWERS]), given=st.text(max_size=600))
def test_an_answer_is_a_command_only_when_the_screen_offers_it(position: Position, given: str) -> None:
    command = command_for(position, given)
    assert command is None or command == MAIN_MENU or command.isascii() and len(command) <= 6


# --- where a request's newest answer begins ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "readings"), [
    ("2", [("", "2")]),
    ("2*1", [("2", "1"), ("", "2*1")]),
    ("2*1***", [("2*1**", ""), ("2*1*", "*"), ("2*1", "**"), ("2", "1***"), ("", "2*1***")]),
])
def test_a_newest_answer_may_begin_after_any_of_the_last_stars(text: str, readings: list) -> None:
    assert Request("s", "*100#", "+8613800138000", "46000", text).readings() == readings


def test_only_the_last_stars_are_places_an_answer_may_begin() -> None:
    readings = Request("s", "", "+8613800138000", "", "*" * 1000).readings()
    assert len(readings) == 17 and readings[-1] == ("", "*" * 1000)


@pytest.mark.parametrize(("session", "text", "plain"), [
    ("ATUid_1", "2*1", True), ("ATUid_1", "", True), ("ATUid_1", "😀", False), ("a b", "1", False),
    ("ATUid_1", "1" * 41, False),
])
def test_a_request_id_reads_plainly_when_it_can(session: str, text: str, plain: bool) -> None:
    assert inbound_id(session, text).startswith(f"ussd:{session}:" if plain else "ussd:h")
    assert inbound_id(session, text) != inbound_id(session, text + "1")


# --- screens in every language, within 182 characters -----------------------------------------------------------

def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_languages_word_the_same_screens_with_the_same_fields() -> None:
    zh, en = SCREENS["zh"], SCREENS["en"]
    assert set(zh) == set(en)
    assert {k: fields(v) for k, v in zh.items()} == {k: fields(v) for k, v in en.items()}


@pytest.mark.parametrize("lang", LANGS)
def test_every_hint_fits_the_room_screens_leave_for_it(lang: str) -> None:
    assert len(render_screen(lang, "hint")) + 1 <= budgets.USSD_HINT
    assert USSD.chars + budgets.USSD_HINT == USSD_SCREEN


# Screens of a fixed shape; those naming packages (a line each, or the step they resume) are checked through the
# engine below, with the names the API accepts.
FIXED = [(lang, key) for lang in LANGS for key in sorted(SCREENS[lang])
         if "lines" not in fields(SCREENS[lang][key]) and "screen" not in fields(SCREENS[lang][key])]


@pytest.mark.parametrize(("lang", "key"), FIXED, ids=[f"{lang}-{key}" for lang, key in FIXED])
def test_every_fixed_screen_leaves_room_for_its_hint(lang: str, key: str) -> None:
    wait = "59分钟" if lang == "zh" else "59 min"
    worst = {"amount": money(lang, 99_999 * 100), "count": 100, "left": 4, "wait": wait}
    assert len(render_screen(lang, key, **worst)) <= USSD.chars


# Package names as the API accepts them (gateway/validation.py): 1-40 characters, no | or line breaks.
names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="|\n\r"), min_size=1, max_size=40) \
    .map(str.strip).filter(bool)
fees = st.one_of(st.integers(0, 10_000_000), st.sampled_from([500, 1500, 99_999]))


def subscriber(packages: list[tuple[str, int]], locale: str) -> Subscriber:
    subs = tuple(Subscription(f"p{i}", name, f"C{i}", fee, date(2026, 12, 7)) for i, (name, fee) in enumerate(packages))
    return Subscriber("+8613800138000", locale=locale, subscriptions=subs)


def screens_of(who: Subscriber, carrier: str, chosen: tuple[str, ...]) -> list[str]:
    """Every screen naming packages: the list, the confirmation (fresh, and resumed), the code, the result."""
    facts = Facts(who, POLICIES[carrier], b"secret", "424242")
    shown = []

    def press(state: DialogState, text: str, at: datetime = NOW) -> DialogState:
        state, effects = step(state, Message(text, screen=USSD), facts, at)
        shown.extend(e.text for e in effects if type(e).__name__ == "Reply")
        return state

    listed = press(DialogState(), "TD")
    confirming = press(listed, "TD " + ",".join(str(n) for n in range(1, len(chosen) + 1)))
    press(confirming, "")
    verifying = press(confirming, "Y")
    press(verifying, "")
    press(verifying, "", NOW + timedelta(seconds=codes.CODE_TTL))
    press(verifying, "424242")
    return shown


@settings(max_examples=60, deadline=None)
@given(packages=st.lists(st.tuples(names, fees), min_size=1, max_size=12), locale=st.sampled_from(LANGS),
       carrier=st.sampled_from(sorted(POLICIES)), chosen=st.integers(1, 12))
def test_every_screen_naming_packages_fits_with_its_hint(packages, locale, carrier, chosen) -> None:
    who = subscriber(packages, locale)
    shown = screens_of(who, carrier, tuple(s.id for s in who.subscriptions[:chosen]))
    assert len(shown) == 7
    for text in shown:
        assert len(hinted(Position(CONFIRM, text, locale)).hint) + 1 + len(text) <= USSD_SCREEN, text
        assert not text.startswith(POLICIES[carrier].sender_id)  # a screen is no SMS: never signed


def test_a_confirmation_too_long_for_a_screen_comes_a_page_at_a_time_each_with_the_total_and_the_keys() -> None:
    who = subscriber([(f"咪咕视频钻石会员尊享月包{i}", 99_999) for i in range(6)], "zh")
    confirm = screens_of(who, "cmcc", tuple(s.id for s in who.subscriptions))[1]
    assert confirm.startswith("您将退订6项：\n咪咕视频钻石会员尊享月包0（999.99元/月）")
    assert confirm.endswith("98.更多 0.返回\n合计需结清3799.98元。\n1 确认\n2 放弃")


def test_a_confirmation_states_the_amount_and_the_carriers_deadline() -> None:
    who = subscriber([("视频会员", 1500)], "zh")
    confirm = screens_of(who, "cucc", ("p0",))[1]
    deadline = when("zh", NOW + POLICIES["cucc"].settle_within, "Asia/Shanghai")
    assert f"截止{deadline}" in confirm and "1 确认\n2 放弃" in confirm


def test_hinted_and_wired() -> None:
    position = hinted(Position(CONFIRM, "您将退订：…\n1 确认\n2 放弃", "zh"))
    assert wire(position) == "CON 输入无效，请重新选择。\n您将退订：…\n1 确认\n2 放弃"
    assert wire(Position(END, "已放弃，业务未变更。")) == "END 已放弃，业务未变更。"


def test_a_position_survives_its_record() -> None:
    position = Position(LIST, "请选择…", "en", choices=8, page=4, hint="Invalid, try again.")
    assert Position.from_json(position.to_json()) == position
    with pytest.raises(ValueError):
        Position.from_json('{"kind": "list", "nonsense": 1}')
    with pytest.raises(ValueError):
        Position.from_json("CON hello")
