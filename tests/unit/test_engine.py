"""The dialog engine as tables: (state, message, facts, now) → (stage, effects), with a fixed clock, code and secret."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers import POLICIES, CarrierPolicy
from dialogs import budgets, codes
from dialogs import commands as cmds
from dialogs.apply import apply
from dialogs.effects import (
    CODE,
    CONFIRMATION,
    CancelSubscription,
    Effect,
    Escalate,
    ForAgent,
    IssueStatement,
    Reply,
    SendMessage,
    SetOptOut,
)
from dialogs.engine import IDLE_TIMEOUT, LOCK_SECONDS, Facts, Message, statement_for, step
from dialogs.messages import CATALOGUES
from dialogs.model import (
    CANCELLED,
    CHOOSING,
    CONFIRMING,
    IDLE,
    LOCKED,
    VERIFYING,
    DialogState,
    Payment,
    Statement,
    Subscriber,
    Subscription,
)
from dialogs.normalize import normalize
from dialogs.overdue import mark_overdue
from dialogs.payments import record_payment
from dialogs.reasons import CODE_ATTEMPTS, REQUESTED
from dialogs.segments import fits
from tests.support.digits import ASCII, DIGIT_SCRIPTS, FULL_WIDTH, SCRIPT_NAMES, in_script
from tests.support.imported import MAX_FEE_FEN, packages
from tests.support.profiles import examples

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CLOCK = int(NOW.timestamp())
SECRET = b"engine-test-secret"
FRESH = "424242"
# The escalation effects as `describe` writes them.
HANDED_OVER, LOCKED_OUT = f"escalate:{REQUESTED}", f"escalate:{CODE_ATTEMPTS}"
WRONG = "111111"
MSISDN = "+8613800138000"
RENEWS = date(2026, 12, 7)
PACKAGES = (
    Subscription("vid", "视频会员", "SPHY", 1500, RENEWS),
    Subscription("music", "音乐包", "YYB", 1000, RENEWS),
    Subscription("data", "流量包", "LLB", 2000, RENEWS),
)
IDS = tuple(s.id for s in PACKAGES)
NO_CODE = replace(POLICIES["cmcc"], key="nocode", cancel_needs_code=False)


def subscriber(locale: str | None = "zh", subs: tuple[Subscription, ...] = PACKAGES, **kw: object) -> Subscriber:
    return Subscriber(msisdn=MSISDN, locale=locale, subscriptions=subs, **kw)


def facts(sub: Subscriber | None = None, policy: CarrierPolicy = POLICIES["cmcc"], code: str = FRESH) -> Facts:
    return Facts(subscriber=sub or subscriber(), policy=policy, secret=SECRET, fresh_code=code)


def verifying(code: str = FRESH, **kw: object) -> DialogState:
    values: dict[str, object] = {
        "stage": VERIFYING, "selected": ("vid",), "code_hash": codes.hash_code(SECRET, MSISDN, code),
        "code_expires_at": CLOCK + 200, "codes_sent": (CLOCK - 100,), "updated_at": CLOCK - 100, "lang": "zh",
    }
    return DialogState(**{**values, **kw})


IDLE_STATE = DialogState()
CHOOSING_STATE = DialogState(stage=CHOOSING, options=IDS, updated_at=CLOCK - 60, lang="zh")
CONFIRMING_STATE = DialogState(stage=CONFIRMING, selected=("vid",), updated_at=CLOCK - 60, lang="zh")
LOCKED_STATE = DialogState(stage=LOCKED, locked_until=CLOCK + 3600, updated_at=CLOCK - 60, lang="zh")


# --- naming what the engine said --------------------------------------------------------------------------


def _pattern(sender: str, template: str) -> re.Pattern[str]:
    parts = [re.escape(literal) + ("(.*?)" if name is not None else "")
             for literal, name, _, _ in string.Formatter().parse(template)]
    return re.compile(re.escape(sender) + "".join(parts), re.DOTALL)


def is_fragment(key: str) -> bool:
    """A piece rendered into a bigger message (a line, a status), never sent alone."""
    return "_line" in key or key.startswith(("status_", "page_")) or key in ("query_owed", "query_nothing_owed",
                                                                              "done_part")


def template_key(text: str, policy: CarrierPolicy) -> str:
    """Which whole-message template (either language) produced `text`; the most specific when several match."""
    found = [
        (len(template) - template.count("{") * 4, key)
        for catalogue in CATALOGUES.values()
        for key, template in catalogue.items()
        if not is_fragment(key) and _pattern(policy.sender_id, template).fullmatch(text)
    ]
    assert found, f"not rendered from any template: {text!r}"
    return max(found)[1]


def describe(effects: list[Effect], policy: CarrierPolicy) -> list[str]:
    """Effects as short tokens: reply:list, send:code_sms, cancel:vid, statement:vid, escalate:…, optout:True."""
    tokens = []
    for effect in effects:
        match effect:
            case Reply(text=text):
                tokens.append(f"reply:{template_key(text, policy)}")
            case SendMessage(text=text):
                tokens.append(f"send:{template_key(text, policy)}")
            case CancelSubscription(subscription_id=sid):
                tokens.append(f"cancel:{sid}")
            case IssueStatement(statement=statement):
                tokens.append(f"statement:{statement.subscription_id}")
            case Escalate(reason=reason):
                tokens.append(f"escalate:{reason}")
            case SetOptOut(opted_out=value):
                tokens.append(f"optout:{value}")
            case ForAgent():
                tokens.append("for_agent")
            case _:
                tokens.append(type(effect).__name__)
    return tokens


def texts(effects: list[Effect]) -> str:
    return "\n".join(e.text for e in effects if isinstance(e, (Reply, SendMessage)))


# --- the transition table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    state: DialogState
    text: str
    stage: str
    effects: list[str]
    says: tuple[str, ...] = ()  # substrings expected in what was said
    facts: Facts = field(default_factory=facts)
    now: datetime = NOW
    selected: tuple[str, ...] | None = None
    provider_answered: str = ""  # the keyword Twilio Advanced Opt-Out already answered


def later(**delta: float) -> datetime:
    return NOW + timedelta(**delta)


SOME_CANCELLED = subscriber(subs=(replace(PACKAGES[0], status=CANCELLED), *PACKAGES[1:]))
STATEMENT = Statement("s1", "vid", "视频会员", 950, NOW, NOW + timedelta(days=7))

CASES = [
    # choosing
    Case("TD lists active packages", IDLE_STATE, "TD", CHOOSING, ["reply:list"],
         ("1.视频会员 15.00元/月", "2.音乐包 10.00元/月", "3.流量包 20.00元/月")),
    Case("退订 lists too", IDLE_STATE, "退订", CHOOSING, ["reply:list"]),
    Case("full-width ＴＤ１ picks the first", IDLE_STATE, "ＴＤ１", CONFIRMING, ["reply:confirm"], ("视频会员",),
         selected=("vid",)),
    Case("TD n picks directly", IDLE_STATE, "TD 2", CONFIRMING, ["reply:confirm"], ("音乐包",), selected=("music",)),
    Case("TD n,m picks several", IDLE_STATE, "TD 1,3", CONFIRMING, ["reply:confirm"], selected=("vid", "data")),
    Case("TD ALL picks all", IDLE_STATE, "TD ALL", CONFIRMING, ["reply:confirm"], selected=IDS),
    Case("全部退订 picks all", IDLE_STATE, "全部退订", CONFIRMING, ["reply:confirm"], selected=IDS),
    Case("TD by name", IDLE_STATE, "TD 视频", CONFIRMING, ["reply:confirm"], selected=("vid",)),
    Case("TD by service code", IDLE_STATE, "td yyb", CONFIRMING, ["reply:confirm"], selected=("music",)),
    Case("TD with an unknown name", IDLE_STATE, "TD 彩铃", IDLE, ["reply:not_found"], ("彩铃",)),
    Case("TD n out of range", IDLE_STATE, "TD 4", CHOOSING, ["reply:invalid_choice"], ("1-3",)),
    Case("only active packages are listed", IDLE_STATE, "TD", CHOOSING, ["reply:list"], ("1.音乐包",),
         facts=facts(SOME_CANCELLED)),
    Case("TD with nothing active", IDLE_STATE, "TD", IDLE, ["reply:none_active"],
         facts=facts(subscriber(subs=tuple(replace(s, status=CANCELLED) for s in PACKAGES)))),
    Case("TD with no packages at all", IDLE_STATE, "TD", IDLE, ["reply:none_active"], facts=facts(subscriber(subs=()))),
    Case("a number picks from the list", CHOOSING_STATE, "2", CONFIRMING, ["reply:confirm"], selected=("music",)),
    Case("numbers with a Chinese comma", CHOOSING_STATE, "1，3", CONFIRMING, ["reply:confirm"],
         selected=("vid", "data")),
    Case("numbers with spaces", CHOOSING_STATE, "3 1", CONFIRMING, ["reply:confirm"], selected=("data", "vid")),
    Case("a number too big", CHOOSING_STATE, "4", CHOOSING, ["reply:invalid_choice"], ("1-3",)),
    Case("zero", CHOOSING_STATE, "0", CHOOSING, ["reply:invalid_choice"]),
    Case("one of several out of range", CHOOSING_STATE, "1,9", CHOOSING, ["reply:invalid_choice"]),
    Case("six digits while choosing", CHOOSING_STATE, "123456", CHOOSING, ["reply:invalid_choice"]),
    Case("chatter while choosing", CHOOSING_STATE, "你好", CHOOSING, ["reply:invalid_choice"]),
    Case("N while choosing", CHOOSING_STATE, "否", IDLE, ["reply:aborted"]),
    Case("a number with no list", IDLE_STATE, "1", IDLE, ["reply:unknown"]),
    # confirming
    Case("confirm states fee, amount and deadline", IDLE_STATE, "TD 1", CONFIRMING, ["reply:confirm"],
         ("视频会员（15.00元/月）", "结清9.50元", "截止12月2日23:59", "合计需结清9.50元")),
    Case("Y sends a code", CONFIRMING_STATE, "Y", VERIFYING, ["send:code_sms", "reply:code_sent"], (FRESH,)),
    Case("是 sends a code", CONFIRMING_STATE, "是", VERIFYING, ["send:code_sms", "reply:code_sent"]),
    Case("N keeps the packages", CONFIRMING_STATE, "N", IDLE, ["reply:aborted"]),
    Case("TD mid-flow starts again", CONFIRMING_STATE, "TD 3", CONFIRMING, ["reply:confirm"], selected=("data",)),
    Case("no code needed: Y cancels", CONFIRMING_STATE, "Y", IDLE,
         ["cancel:vid", "statement:vid", "send:done"], facts=facts(policy=NO_CODE)),
    # code send limits: 1 a minute, 5 an hour, 10 a day
    Case("second code within a minute", replace(CONFIRMING_STATE, codes_sent=(CLOCK - 30,)), "Y", CONFIRMING,
         ["reply:rate_limited"], ("1分钟",)),
    Case("second code after a minute", replace(CONFIRMING_STATE, codes_sent=(CLOCK - 61,)), "Y", VERIFYING,
         ["send:code_sms", "reply:code_sent"]),
    Case("sixth code within an hour", replace(CONFIRMING_STATE, codes_sent=tuple(CLOCK - 600 * i for i in range(1, 6))),
         "Y", CONFIRMING, ["reply:rate_limited"], ("10分钟",)),
    Case("fifth code within an hour", replace(CONFIRMING_STATE, codes_sent=tuple(CLOCK - 600 * i for i in range(1, 5))),
         "Y", VERIFYING, ["send:code_sms", "reply:code_sent"]),
    Case("eleventh code within a day",
         replace(CONFIRMING_STATE, codes_sent=tuple(CLOCK - 7200 * i for i in range(1, 11))),
         "Y", CONFIRMING, ["reply:rate_limited"], ("4小时",)),
    Case("tenth code within a day",
         replace(CONFIRMING_STATE, codes_sent=tuple(CLOCK - 7200 * i for i in range(1, 10))),
         "Y", VERIFYING, ["send:code_sms", "reply:code_sent"]),
    Case("sends older than a day are forgotten",
         replace(CONFIRMING_STATE, codes_sent=tuple(CLOCK - 86400 - 60 * i for i in range(1, 11))),
         "Y", VERIFYING, ["send:code_sms", "reply:code_sent"]),
    # verifying
    Case("the right code cancels", verifying(), FRESH, IDLE, ["cancel:vid", "statement:vid", "send:done"],
         ("视频会员已退订，结清9.50元，截止12月2日23:59",)),
    Case("the right code in full-width digits", verifying(), "４２４２４２", IDLE,
         ["cancel:vid", "statement:vid", "send:done"]),
    Case("several packages, one result line each", verifying(selected=IDS), FRESH, IDLE,
         ["cancel:vid", "statement:vid", "cancel:music", "statement:music", "cancel:data", "statement:data",
          "send:done"], ("视频会员已退订", "音乐包已退订", "流量包已退订")),
    Case("a package cancelled meanwhile", verifying(selected=("vid", "music")), FRESH, IDLE,
         ["cancel:music", "statement:music", "send:done"], ("视频会员此前已退订", "音乐包已退订"),
         facts=facts(SOME_CANCELLED)),
    Case("nothing left to pay", verifying(), FRESH, IDLE, ["cancel:vid", "statement:vid", "send:done"],
         ("视频会员已退订，无需结算",), facts=facts(subscriber(subs=(replace(PACKAGES[0], paid_fen=1500),)))),
    Case("a wrong code, 4 tries left", verifying(), WRONG, VERIFYING, ["reply:code_wrong"], ("4次",)),
    Case("a wrong code, 1 try left", verifying(attempts=3), WRONG, VERIFYING, ["reply:code_wrong"], ("1次",)),
    Case("the fifth wrong code locks and escalates", verifying(attempts=4), WRONG, LOCKED,
         [LOCKED_OUT, "reply:locked"]),
    Case("an expired code", verifying(code_expires_at=CLOCK), FRESH, CONFIRMING, ["reply:code_expired"]),
    Case("not a code while verifying", verifying(), "12345", VERIFYING, ["reply:code_waiting"]),
    Case("chatter while verifying", verifying(), "hello", VERIFYING, ["reply:code_waiting"]),
    Case("N while verifying", verifying(), "N", IDLE, ["reply:aborted"]),
    Case("Y while verifying sends another code", verifying(codes_sent=(CLOCK - 120,)), "Y", VERIFYING,
         ["send:code_sms", "reply:code_sent"]),
    Case("TD while verifying starts again", verifying(), "TD", CHOOSING, ["reply:list"]),
    Case("STOP mid-flow opts out, flow goes on", verifying(), "STOP", VERIFYING, ["optout:True", "reply:stop"]),
    Case("STOP the provider already confirmed", verifying(), "STOP", VERIFYING, ["optout:True"],
         provider_answered=cmds.STOP),
    Case("人工 mid-flow escalates", verifying(), "人工", VERIFYING, [HANDED_OVER, "reply:human"]),
    Case("KF escalates", IDLE_STATE, "KF", IDLE, [HANDED_OVER, "reply:human"]),
    # locked
    Case("TD while locked", LOCKED_STATE, "TD", LOCKED, ["reply:still_locked"]),
    Case("a code while locked", LOCKED_STATE, FRESH, LOCKED, ["reply:still_locked"]),
    Case("a number while locked", LOCKED_STATE, "1", LOCKED, ["reply:still_locked"]),
    Case("a query is no way out of a lock", LOCKED_STATE, "0000", LOCKED, ["reply:query"]),
    Case("Y while locked", LOCKED_STATE, "Y", LOCKED, ["reply:nothing_pending"]),
    Case("the lock ends", LOCKED_STATE, "TD", CHOOSING, ["reply:list"], now=later(seconds=3600)),
    # idle timeout
    Case("a reply just inside the idle timeout", replace(CHOOSING_STATE, updated_at=CLOCK - IDLE_TIMEOUT), "2",
         CONFIRMING, ["reply:confirm"]),
    Case("a reply after the idle timeout", replace(CHOOSING_STATE, updated_at=CLOCK - IDLE_TIMEOUT - 1), "2",
         IDLE, ["reply:unknown"]),
    Case("Y after the idle timeout", replace(CONFIRMING_STATE, updated_at=CLOCK - IDLE_TIMEOUT - 1), "Y",
         IDLE, ["reply:nothing_pending"]),
    Case("a code after the idle timeout", verifying(updated_at=CLOCK - IDLE_TIMEOUT - 1), FRESH, IDLE,
         ["reply:unknown"]),
    # read-only and other commands
    Case("0000 shows packages and lets you pick", IDLE_STATE, "0000", CHOOSING, ["reply:query"],
         ("视频会员 15.00元/月，12月7日续订", "无待结清费用")),
    Case("查询 shows what is owed", IDLE_STATE, "查询", CHOOSING, ["reply:query"], ("待结清9.50元",),
         facts=facts(subscriber(statements=(STATEMENT,)))),
    Case("0000 with nothing", IDLE_STATE, "0000", IDLE, ["reply:query_empty"], facts=facts(subscriber(subs=()))),
    Case("ZD with no statements", IDLE_STATE, "ZD", IDLE, ["reply:bill_empty"]),
    Case("账单 lists statements", IDLE_STATE, "账单", IDLE, ["reply:bill"], ("视频会员 9.50元 待缴，截止12月2日10:00",),
         facts=facts(subscriber(statements=(STATEMENT,)))),
    Case("HELP", IDLE_STATE, "HELP", IDLE, ["reply:help"]),
    Case("帮助", IDLE_STATE, "帮助", IDLE, ["reply:help"]),
    Case("?", IDLE_STATE, "?", IDLE, ["reply:help"]),
    Case("START", IDLE_STATE, "START", IDLE, ["optout:False", "reply:start"]),
    Case("R refuses reminders", IDLE_STATE, "R", IDLE, ["optout:True", "reply:stop"]),
    Case("Y with nothing pending", IDLE_STATE, "Y", IDLE, ["reply:nothing_pending"]),
    Case("N with nothing pending", IDLE_STATE, "N", IDLE, ["reply:nothing_pending"]),
    Case("STOP PLEASE is not a STOP", IDLE_STATE, "STOP PLEASE", IDLE, ["reply:unknown"]),
    Case("chatter", IDLE_STATE, "你好", IDLE, ["reply:unknown"]),
    Case("an empty message", IDLE_STATE, "", IDLE, ["reply:unknown"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_message_in_each_state_moves_the_dialog_and_answers_as_the_table_says(case: Case) -> None:
    message = Message(case.text, provider_answered=case.provider_answered)
    state, effects = step(case.state, message, case.facts, case.now)
    assert (state.stage, describe(effects, case.facts.policy)) == (case.stage, case.effects), texts(effects)
    said = texts(effects)
    for fragment in case.says:
        assert fragment in said
    if case.selected is not None:
        assert state.selected == case.selected
    assert state.updated_at == int(case.now.timestamp())


# --- 人工: a person has the conversation ------------------------------------------------------------------

WITH_PERSON = replace(IDLE_STATE, human=True, lang="zh", updated_at=CLOCK - 60)
NOTICED = replace(WITH_PERSON, human_noticed=True)
VERIFYING_WITH_PERSON = verifying(human=True, human_noticed=True)


@dataclass(frozen=True)
class Handover:
    name: str
    state: DialogState
    text: str
    effects: list[str]
    human: bool = True
    noticed: bool = True
    stage: str = IDLE
    passed_on: str | None = None  # what the person is given of the text; None: the text as typed


HANDOVERS = [
    Handover("人工 hands over and says so", IDLE_STATE, "人工", [HANDED_OVER, "reply:human"], noticed=False),
    Handover("客服 too", IDLE_STATE, "客服", [HANDED_OVER, "reply:human"], noticed=False),
    Handover("人工 keeps a lock", LOCKED_STATE, "人工", [HANDED_OVER, "reply:human"], noticed=False,
             stage=LOCKED),
    Handover("the first message after is passed on, with one notice", WITH_PERSON, "还在吗",
             ["for_agent", "reply:human_waiting"]),
    Handover("later messages are passed on in silence", NOTICED, "你好？", ["for_agent"]),
    Handover("TD is for the person too", NOTICED, "TD", ["for_agent"]),
    Handover("a code is for the person too, starred as the log keeps it", VERIFYING_WITH_PERSON, FRESH, ["for_agent"],
             stage=VERIFYING, passed_on="******"),
    Handover("Y opens no flow", NOTICED, "Y", ["for_agent"]),
    Handover("人工 again opens nothing new", NOTICED, "人工", ["for_agent"]),
    Handover("STOP still opts out", NOTICED, "STOP", ["for_agent", "optout:True", "reply:stop"]),
    Handover("START still opts in", NOTICED, "START", ["for_agent", "optout:False", "reply:start"]),
    Handover("STOP before the notice leaves it for later", WITH_PERSON, "R", ["for_agent", "optout:True",
                                                                             "reply:stop"], noticed=False),
    Handover("no idle timeout while waiting", replace(VERIFYING_WITH_PERSON, updated_at=CLOCK - 86400), "hi",
             ["for_agent"], stage=VERIFYING),
]


@pytest.mark.parametrize("case", HANDOVERS, ids=[c.name for c in HANDOVERS])
def test_while_a_person_has_the_conversation_messages_are_theirs_and_stop_still_works(case: Handover) -> None:
    state, effects = step(case.state, Message(case.text), facts(), NOW)
    assert describe(effects, POLICIES["cmcc"]) == case.effects
    assert (state.human, state.human_noticed, state.stage) == (case.human, case.noticed, case.stage)
    passed_on = case.text if case.passed_on is None else case.passed_on
    assert [e.text for e in effects if isinstance(e, ForAgent)] in ([], [passed_on])


def test_a_number_handed_back_answers_again() -> None:
    state, _ = step(IDLE_STATE, Message("人工"), facts(), NOW)
    handed_back = replace(state, human=False, human_noticed=False)
    _, effects = step(handed_back, Message("TD"), facts(), NOW)
    assert describe(effects, POLICIES["cmcc"]) == ["reply:list"]


def test_a_code_is_stored_hashed_and_expires_in_five_minutes() -> None:
    state, effects = step(CONFIRMING_STATE, Message("Y"), facts(), NOW)
    assert FRESH not in repr(state)
    assert codes.code_matches(SECRET, MSISDN, FRESH, state.code_hash)
    assert state.code_expires_at == CLOCK + 300
    assert state.codes_sent == (CLOCK,)
    code_message = next(e for e in effects if isinstance(e, SendMessage))
    assert code_message.kind == CODE
    assert FRESH not in texts([e for e in effects if isinstance(e, Reply)])


def test_the_code_is_valid_until_its_last_second() -> None:
    state, effects = step(verifying(code_expires_at=CLOCK + 1), Message(FRESH), facts(), NOW)
    assert "cancel:vid" in describe(effects, POLICIES["cmcc"])


def test_a_new_code_replaces_the_old_one() -> None:
    state, _ = step(verifying(code="999999", codes_sent=(CLOCK - 120,)), Message("Y"), facts(), NOW)
    _, effects = step(state, Message("999999"), facts(), NOW)
    assert describe(effects, POLICIES["cmcc"]) == ["reply:code_wrong"]


def test_the_confirmation_is_a_separate_message_of_its_own_kind() -> None:
    _, effects = step(verifying(), Message(FRESH), facts(), NOW)
    sent = [e for e in effects if isinstance(e, SendMessage)]
    assert [m.kind for m in sent] == [CONFIRMATION]
    assert not [e for e in effects if isinstance(e, Reply)]


def test_lock_lasts_a_day() -> None:
    state, _ = step(verifying(attempts=4), Message(WRONG), facts(), NOW)
    assert state.locked_until == CLOCK + LOCK_SECONDS
    still, _ = step(state, Message("TD"), facts(), NOW + timedelta(seconds=LOCK_SECONDS - 1))
    assert still.stage == LOCKED


@pytest.mark.parametrize(("script", "digits", "code", "choice"), DIGIT_SCRIPTS, ids=SCRIPT_NAMES)
def test_a_code_is_typed_in_ascii_or_full_width_digits_only(script: str, digits: str, code: bool, choice: bool) -> None:
    """The subscriber's own characters decide, not their NFKC fold: 𝟒𝟐𝟒𝟐𝟒𝟐 or ④②④②④② is no code, and no wrong try."""
    state, effects = step(verifying(), Message(in_script(digits, FRESH)), facts(), NOW)
    expected = ["cancel:vid", "statement:vid", "send:done"] if code else ["reply:code_waiting"]
    assert describe(effects, POLICIES["cmcc"]) == expected
    assert state.attempts == 0


@pytest.mark.parametrize(("script", "digits", "code", "choice"), DIGIT_SCRIPTS, ids=SCRIPT_NAMES)
def test_a_choice_is_typed_in_ascii_full_width_or_circled_digits(script: str, digits: str, code: bool,
                                                                 choice: bool) -> None:
    state, effects = step(CHOOSING_STATE, Message(in_script(digits, "2")), facts(), NOW)
    assert describe(effects, POLICIES["cmcc"]) == (["reply:confirm"] if choice else ["reply:invalid_choice"])
    assert state.selected == (("music",) if choice else ())


# --- settlement per carrier -------------------------------------------------------------------------------

SHANGHAI_DEADLINES = [
    # carrier, amount (fen) for 视频会员 at 15.00元 cancelled 25 Nov of a 7 Nov–7 Dec period, due at
    ("cmcc", 950, datetime(2026, 12, 2, 15, 59, 59, tzinfo=UTC)),  # end of day, 7 days later, Shanghai
    ("cucc", 1500, NOW + timedelta(hours=24)),  # exactly 24 h after the confirmation, whole month
    ("ctcc", 950, datetime(2026, 12, 10, 15, 59, 59, tzinfo=UTC)),  # end of day, 15 days later
]


@pytest.mark.parametrize(("carrier", "amount", "due_at"), SHANGHAI_DEADLINES)
def test_statement_follows_the_carrier(carrier: str, amount: int, due_at: datetime) -> None:
    _, effects = step(verifying(), Message(FRESH), facts(policy=POLICIES[carrier]), NOW)
    statement = next(e.statement for e in effects if isinstance(e, IssueStatement))
    assert (statement.amount_fen, statement.due_at, statement.issued_at) == (amount, due_at, NOW)
    assert isinstance(statement.amount_fen, int)


def test_the_deadline_promised_is_the_deadline_issued() -> None:
    policy = POLICIES["cucc"]
    _, confirm = step(IDLE_STATE, Message("TD 1"), facts(policy=policy), NOW)
    assert "11月26日10:00" in texts(confirm)
    _, done = step(verifying(), Message(FRESH), facts(policy=policy), NOW)
    assert "11月26日10:00" in texts(done)


def test_crossing_midnight_between_confirm_and_code_settles_what_was_quoted() -> None:
    """China Mobile prorates by day: the code entered after midnight must not add a day; the deadline is the later of
    the quoted one and the rule applied when the cancel completes (docs/billing.md, "Deadlines")."""
    before_midnight = datetime(2026, 11, 25, 15, 58, tzinfo=UTC)  # 23:58 in Shanghai
    state, confirm = step(IDLE_STATE, Message("TD 1"), facts(), before_midnight)
    assert "9.50元" in texts(confirm) and "12月2日" in texts(confirm)
    state, _ = step(state, Message("Y"), facts(), before_midnight)
    after_midnight = before_midnight + timedelta(minutes=3)
    assert statement_for(facts(), PACKAGES[0], after_midnight).amount_fen == 1000  # what a fresh quote would say
    _, done = step(state, Message(FRESH), facts(), after_midnight)
    statement = next(e.statement for e in done if isinstance(e, IssueStatement))
    assert (statement.amount_fen, statement.due_at) == (950, datetime(2026, 12, 3, 15, 59, 59, tzinfo=UTC))
    assert "9.50元" in texts(done) and "12月3日" in texts(done)


def test_a_flow_confirmed_before_quotes_were_kept_settles_by_the_rules() -> None:
    _, effects = step(verifying(amounts=(), due_ats=()), Message(FRESH), facts(), NOW)
    statement = next(e.statement for e in effects if isinstance(e, IssueStatement))
    assert statement == statement_for(facts(), PACKAGES[0], NOW)


def test_wrong_tries_add_up_across_new_codes_until_the_lock() -> None:
    state, now = verifying(attempts=0), NOW
    for _ in range(4):  # one wrong try per code, each code a fresh one
        state, effects = step(state, Message(WRONG), facts(), now)
        now += timedelta(minutes=1)
        state, _ = step(state, Message("Y"), facts(), now)
    assert describe(effects, POLICIES["cmcc"]) == ["reply:code_wrong"]
    state, effects = step(state, Message(WRONG), facts(), now)
    assert state.stage == LOCKED
    assert describe(effects, POLICIES["cmcc"]) == [LOCKED_OUT, "reply:locked"]


# --- language ---------------------------------------------------------------------------------------------

LANGUAGE = [
    # record locale, previous lang, text, expected
    ("en", "", "退订", "en"),
    ("zh", "", "TD", "zh"),
    (None, "", "退订", "zh"),
    (None, "zh", "HELP", "en"),
    (None, "en", "帮助", "zh"),
    (None, "zh", "1", "zh"),
    (None, "en", "1", "en"),
    (None, "", "0000", "zh"),  # no letters, no history: the carrier's language
    (None, "", "TD", "zh"),  # pinyin initials are not English
    (None, "", "TD 1", "zh"),
    (None, "en", "Y", "en"),
    (None, "zh", "HELP", "en"),
]


@pytest.mark.parametrize(("locale", "previous", "text", "expected"), LANGUAGE)
def test_the_reply_is_in_the_stored_locale_else_the_words_else_the_conversations_language(
    locale: str | None, previous: str, text: str, expected: str,
) -> None:
    state = replace(CHOOSING_STATE, lang=previous)
    new, effects = step(state, Message(text), facts(subscriber(locale=locale)), NOW)
    assert new.lang == expected
    said = texts(effects)
    key = template_key(said, POLICIES["cmcc"])
    assert _pattern(POLICIES["cmcc"].sender_id, CATALOGUES[expected][key]).fullmatch(said), said


def test_english_journey_reads_english() -> None:
    sub = subscriber(locale="en")
    state, effects = step(IDLE_STATE, Message("TD"), facts(sub), NOW)
    assert "1. 视频会员 CNY 15.00/mo" in texts(effects)
    state, effects = step(state, Message("1"), facts(sub), NOW)
    assert "pay CNY 9.50 by 02 Dec 23:59" in texts(effects)
    state, effects = step(state, Message("Y"), facts(sub), NOW)
    assert f"Code {FRESH}" in texts(effects)
    state, effects = step(state, Message(FRESH), facts(sub), NOW)
    assert "视频会员 cancelled" in texts(effects)


# --- properties -------------------------------------------------------------------------------------------
# Strategies draw only what production makes: records as the API's validation takes them (gateway/validation.py),
# statements as the engine issues them and payments and deadlines change them, codes as gateway/service.py draws them
# (`f"{secrets.randbelow(10**6):06d}"`). What a subscriber types is anything at all.

COMMANDS = ["TD", "退订", "TD 1", "TD 2,3", "TD ALL", "全部退订", "TD 视频", "1", "2", "1，3", "4", "0", "Y", "是", "N",
            "否", "0000", "查询", "ZD", "HELP", "?", "人工", "STOP", "R", "START", "STOP PLEASE", "123456", "JF", "BG"]
POLICY_CHOICES = [*POLICIES.values(), NO_CODE]
imported = packages(ids=st.sampled_from(["a", "b", "c", "d", "e"]),
                    renews_on=st.dates(date(2026, 11, 1), date(2027, 2, 28)))


@st.composite
def cancelled_earlier(draw: st.DrawFn, sub: Subscriber, policy: CarrierPolicy, package: Subscription) -> Subscriber:
    """`package` cancelled some time before NOW, its statement issued, maybe paid in part or in full, overdue if due."""
    at = NOW - timedelta(seconds=draw(st.integers(0, 40 * 86400)))
    statement = statement_for(facts(sub, policy), package, at)
    sub = apply(sub, [CancelSubscription(package.id), IssueStatement(statement)], at)
    paid = draw(st.sampled_from([0, 0, statement.owed_fen, statement.owed_fen + 100]) | st.integers(0, MAX_FEE_FEN))
    if paid:
        sub = record_payment(sub, statement.id, Payment(f"bank-{package.id}", paid, at), policy, at).subscriber
    return mark_overdue(sub, policy, statement.id, NOW)


@st.composite
def worlds(draw: st.DrawFn, policies: list[CarrierPolicy]) -> tuple[CarrierPolicy, Subscriber]:
    """A carrier and one of its subscribers, as imports, earlier cancels and payments leave them."""
    policy = draw(st.sampled_from(policies))
    packages = draw(st.lists(imported, max_size=budgets.PACKAGES + 2, unique_by=lambda s: s.id))
    sub = subscriber(locale=draw(st.sampled_from([None, "zh", "en"])), subs=tuple(packages))
    for package in packages:
        if draw(st.booleans()):
            sub = draw(cancelled_earlier(sub, policy, package))
    return policy, sub


clock_offsets = st.integers(-2 * 86400, 2 * 86400)
states = st.builds(
    DialogState, stage=st.sampled_from([IDLE, CHOOSING, CONFIRMING, VERIFYING, LOCKED]),
    options=st.lists(st.sampled_from("abcdez"), max_size=5).map(tuple),
    selected=st.lists(st.sampled_from("abcdez"), max_size=5).map(tuple),
    code_hash=st.sampled_from(["", codes.hash_code(SECRET, MSISDN, FRESH), codes.hash_code(SECRET, MSISDN, "000000")]),
    code_expires_at=clock_offsets.map(lambda d: CLOCK + d), attempts=st.integers(0, codes.MAX_ATTEMPTS - 1),
    codes_sent=st.lists(st.integers(-86400, 0).map(lambda d: CLOCK + d), max_size=12).map(tuple),
    lang=st.sampled_from(["", "zh", "en"]), updated_at=st.integers(-1200, 0).map(lambda d: CLOCK + d),
    locked_until=clock_offsets.map(lambda d: CLOCK + d),
)
service_codes = st.integers(0, 10**6 - 1).map("{:06d}".format)
fresh_codes = st.one_of(st.just(FRESH), service_codes)
# A code as a subscriber types it back: in ASCII, or full-width from a Chinese input method.
typed_codes = st.tuples(st.sampled_from([ASCII, FULL_WIDTH]), service_codes).map(lambda t: in_script(*t))
# Mostly commands and the code that is usually sent, so that sessions get far enough to cancel; also anything at all,
# and six digits of any script (only ASCII and full-width ones are a code).
messages = st.integers(0, 9).flatmap(
    lambda i: st.text(max_size=80) if i < 2 else st.from_regex(r"\A\d{6}\Z") | typed_codes if i == 2
    else st.sampled_from([*COMMANDS, FRESH, FRESH, in_script(FULL_WIDTH, FRESH)])
)
pauses = st.one_of(st.sampled_from([0, 5, 61, 299, 301, 601]), st.integers(0, 4000))
turns = st.tuples(messages, pauses, fresh_codes)


def _journey(texts: list[str]) -> st.SearchStrategy[list[tuple[str, int, str]]]:
    """The happy path TD → 1 → Y → code, with a little noise before each step."""
    steps = [st.tuples(st.lists(turns, max_size=2), st.tuples(st.just(t), st.integers(0, 120), fresh_codes))
             for t in texts]
    return st.tuples(*steps).map(lambda pairs: [turn for noise, main in pairs for turn in (*noise, main)])


journeys = st.tuples(
    st.sampled_from(["TD", "退订", "0000"]), st.sampled_from(["1", "1，3", "2 3"]), st.sampled_from(["Y", "是"]),
).flatmap(lambda t: _journey([*t, FRESH]))
sessions = st.one_of(st.lists(turns, min_size=1, max_size=16), journeys)


@given(fresh_codes)
def test_the_codes_drawn_are_codes_the_service_makes(code: str) -> None:
    assert code == f"{int(code):06d}" and code.isascii()


def assert_fits_budget(effects: list[Effect], policy: CarrierPolicy) -> None:
    for effect in effects:
        if isinstance(effect, (Reply, SendMessage)):
            key = template_key(effect.text, policy)
            assert fits(effect.text, budgets.budget(policy, key)), (key, policy.key, effect.text)


def cancels(effects: list[Effect]) -> bool:
    return any(isinstance(e, CancelSubscription) for e in effects)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=states, world=worlds(POLICY_CHOICES), session=sessions)
def test_any_session_from_any_state_is_safe(
    state: DialogState, world: tuple[CarrierPolicy, Subscriber], session: list[tuple[str, int, str]]
) -> None:
    (policy, sub), now = world, NOW
    for text, pause, fresh in session:
        now += timedelta(seconds=pause)
        before = state
        state, effects = step(state, Message(text), facts(sub, policy, fresh), now)
        if cancels(effects):
            typed = normalize(text)
            by_code = codes.code_matches(SECRET, MSISDN, typed, before.code_hash) and before.stage == VERIFYING
            without_code = not policy.cancel_needs_code and typed in ("Y", "是")
            assert by_code or without_code, (before, text)
        assert_fits_budget(effects, policy)
        # Never silence, but while a person has the conversation (人工), once the bot has said so.
        said = any(isinstance(e, (Reply, SendMessage)) for e in effects)
        assert said or (before.human_noticed and state.human), "never silence"
        sub = apply(sub, effects, now)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds(list(POLICIES.values())), session=sessions)
def test_from_a_fresh_start_only_a_code_that_was_sent_cancels(
    world: tuple[CarrierPolicy, Subscriber], session: list[tuple[str, int, str]]
) -> None:
    (policy, sub), state, now, sent_codes = world, DialogState(), NOW, []
    for text, pause, fresh in session:
        now += timedelta(seconds=pause)
        state, effects = step(state, Message(text), facts(sub, policy, fresh), now)
        if cancels(effects):
            assert sent_codes and normalize(text) == sent_codes[-1]
        sent_codes += [fresh for e in effects if isinstance(e, SendMessage) and e.kind == CODE]
        sub = apply(sub, effects, now)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds(list(POLICIES.values())), wrong=st.lists(
    typed_codes.filter(lambda c: normalize(c) != FRESH), min_size=5, max_size=5))
def test_five_wrong_codes_lock_whatever_they_are(world: tuple[CarrierPolicy, Subscriber], wrong: list[str]) -> None:
    (policy, sub), state = world, verifying(lang="")
    for code in wrong:
        state, effects = step(state, Message(code), facts(sub, policy), NOW)
        assert not cancels(effects)
    assert state.stage == LOCKED
    assert LOCKED_OUT in describe(effects, policy)


def test_a_dialog_nobody_handed_over_is_written_as_the_previous_release_wrote_it() -> None:
    from gateway.state import codec

    assert "human" not in codec.dialog_to_json(IDLE_STATE)
    handed = replace(IDLE_STATE, human=True)
    assert codec.dialog_from_json(codec.dialog_to_json(handed)) == handed


def test_a_dialog_written_by_a_later_release_is_read_without_the_fields_this_one_does_not_know() -> None:
    from gateway.state import codec

    later = codec.dialog_to_json(replace(IDLE_STATE, stage=CHOOSING, options=("vid",)))[:-1] + ',"mood":"happy"}'
    assert codec.dialog_from_json(later) == replace(IDLE_STATE, stage=CHOOSING, options=("vid",))


@given(states)
def test_a_dialog_reads_back_as_it_was_written(state: DialogState) -> None:
    from gateway.state import codec

    assert codec.dialog_from_json(codec.dialog_to_json(state)) == state
