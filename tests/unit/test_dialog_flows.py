"""Multi-message dialogs as tables (messages in → stage and effects out, fixed clock, code and ids), and the rule that
a read-only command never moves a pending confirmation or code."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers import POLICIES
from dialogs import codes
from dialogs import commands as cmds
from dialogs.engine import IDLE_TIMEOUT, Facts, Message, heard, step
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
    Statement,
)
from tests.unit.test_engine import (
    CLOCK,
    FRESH,
    IDS,
    MSISDN,
    NOW,
    PACKAGES,
    SECRET,
    describe,
    facts,
    subscriber,
    texts,
    worlds,
)

# The commands that only show or record something: they leave any flow where it was.
READ_ONLY = (cmds.QUERY, cmds.BILL, cmds.HELP, cmds.HUMAN, cmds.STOP, cmds.START)
READ_ONLY_WORDS = sorted(word for word, name in cmds.KEYWORDS.items() if name in READ_ONLY)
# What a flow has pending; the page shown, the language and the clock are not part of it.
PENDING = ("stage", "intent", "options", "selected", "amounts", "due_ats", "code_hash", "code_expires_at", "attempts",
           "codes_sent", "locked_until", "plan_offer", "offer_expires_at")
OWED = Statement("s1", "vid", "视频会员", 950, NOW, NOW + timedelta(days=7))


def pending(state: DialogState) -> dict[str, object]:
    return {name: getattr(state, name) for name in PENDING}


@dataclass(frozen=True)
class Turn:
    text: str
    stage: str
    effects: list[str]
    provider: str = ""  # the keyword Twilio Advanced Opt-Out already answered (OptOutType)


@dataclass(frozen=True)
class Flow:
    name: str
    turns: list[Turn]
    state: DialogState = field(default_factory=DialogState)
    facts: Facts = field(default_factory=facts)


def cancel_verifying(**kw: object) -> DialogState:
    values: dict[str, object] = {
        "stage": VERIFYING, "selected": ("vid",), "amounts": (950,),
        "code_hash": codes.hash_code(SECRET, MSISDN, FRESH), "code_expires_at": CLOCK + 200,
        "codes_sent": (CLOCK - 100,), "updated_at": CLOCK - 100, "lang": "zh",
    }
    return DialogState(**{**values, **kw})


PAY_VERIFYING = cancel_verifying(intent=PAY, selected=("s1",))
CANCELLED_ALL = subscriber(subs=tuple(replace(s, status="cancelled") for s in PACKAGES), statements=(OWED,))
CANCELLED = ["cancel:vid", "statement:vid", "send:done"]

FLOWS = [
    # 14: a read-only command in the middle of verifying leaves the code where it was
    Flow("TD 1, Y, 0000, then the code cancels", [
        Turn("TD 1", CONFIRMING, ["reply:confirm"]),
        Turn("Y", VERIFYING, ["send:code_sms", "reply:code_sent"]),
        Turn("0000", VERIFYING, ["reply:query"]),
        Turn(FRESH, IDLE, CANCELLED),
    ]),
    # (人工 is no read-only command: the code that follows it goes to the person; tests/unit/test_engine.py)
    Flow("ZD and HELP while verifying, then the code cancels", [
        Turn("ZD", VERIFYING, ["reply:bill_empty"]),
        Turn("HELP", VERIFYING, ["reply:help"]),
        Turn(FRESH, IDLE, CANCELLED),
    ], state=cancel_verifying()),
    Flow("0000 while confirming, then Y still sends the code", [
        Turn("TD 2", CONFIRMING, ["reply:confirm"]),
        Turn("查询", CONFIRMING, ["reply:query"]),
        Turn("Y", VERIFYING, ["send:code_sms", "reply:code_sent"]),
    ]),
    Flow("JF with nothing to pay leaves a cancel code where it was", [
        Turn("JF", VERIFYING, ["reply:pay_nothing"]),
        Turn(FRESH, IDLE, CANCELLED),
    ], state=cancel_verifying()),
    Flow("BG with no plans leaves a cancel code where it was", [
        Turn("BG", VERIFYING, ["reply:plans_none"]),
        Turn(FRESH, IDLE, CANCELLED),
    ], state=cancel_verifying(), facts=facts(policy=POLICIES["default"])),
    Flow("TD with nothing left to cancel leaves a pay code where it was", [
        Turn("TD", VERIFYING, ["reply:none_active"]),
        Turn(FRESH, IDLE, ["Pay", "reply:pay_started"]),
    ], state=PAY_VERIFYING, facts=facts(CANCELLED_ALL)),
    Flow("a query from the first listing still lets you pick", [
        Turn("0000", CHOOSING, ["reply:query"]),
        Turn("2", CONFIRMING, ["reply:confirm"]),
    ]),
    # 15: TD after BG is a cancel, whatever number it carries
    Flow("BG, TD 9, 1 picks the first package to cancel", [
        Turn("BG", CHOOSING, ["reply:plans"]),
        Turn("TD 9", CHOOSING, ["reply:invalid_choice"]),
        Turn("1", CONFIRMING, ["reply:confirm"]),
    ], facts=facts(subscriber(subs=PACKAGES[:1]))),
    Flow("BG, a TD name not found, then TD 1 cancels", [
        Turn("BG", CHOOSING, ["reply:plans"]),
        Turn("TD 彩铃", CHOOSING, ["reply:not_found"]),
        Turn("TD 1", CONFIRMING, ["reply:confirm"]),
        Turn("Y", VERIFYING, ["send:code_sms", "reply:code_sent"]),
        Turn(FRESH, IDLE, CANCELLED),
    ], facts=facts(subscriber(subs=PACKAGES[:1]))),
    # 16: Twilio Advanced Opt-Out answered already: the state changes, we stay quiet
    Flow("STOP answered by Twilio", [Turn("STOP", IDLE, ["optout:True"], provider=cmds.STOP)]),
    Flow("START answered by Twilio", [Turn("START", IDLE, ["optout:False"], provider=cmds.START)]),
    Flow("HELP answered by Twilio", [Turn("HELP", IDLE, [], provider=cmds.HELP)]),
    Flow("INFO answered by Twilio", [Turn("INFO", IDLE, [], provider=cmds.HELP)]),
    Flow("a STOP word of Twilio's we do not know still opts out", [
        Turn("ARRET", IDLE, ["optout:True"], provider=cmds.STOP),
    ]),
    Flow("YES taken by Twilio as START still confirms, quietly", [
        Turn("TD 1", CONFIRMING, ["reply:confirm"]),
        Turn("YES", VERIFYING, ["send:code_sms"], provider=cmds.START),
        Turn(FRESH, IDLE, CANCELLED),
    ]),
    Flow("STOP answered by Twilio mid-flow: the flow goes on", [
        Turn("STOP", VERIFYING, ["optout:True"], provider=cmds.STOP),
        Turn(FRESH, IDLE, CANCELLED),
    ], state=cancel_verifying()),
]


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_each_conversation_goes_as_the_table_says(flow: Flow) -> None:
    state, now = flow.state, NOW
    for turn in flow.turns:
        state, effects = step(state, Message(turn.text, provider_answered=turn.provider), flow.facts, now)
        said = (turn.text, state.stage, describe(effects, flow.facts.policy))
        assert said == (turn.text, turn.stage, turn.effects), texts(effects)
        now += timedelta(seconds=20)


def test_after_bg_a_cancel_list_means_cancelling() -> None:
    state, _ = step(DialogState(), Message("BG"), facts(), NOW)
    state, _ = step(state, Message("TD 9"), facts(), NOW)
    assert (state.stage, state.intent, state.options) == (CHOOSING, CANCEL, IDS)


@pytest.mark.parametrize("word", READ_ONLY_WORDS)
@pytest.mark.parametrize("state", [
    cancel_verifying(), PAY_VERIFYING, replace(cancel_verifying(), stage=CONFIRMING, code_hash=""),
    replace(cancel_verifying(), stage=LOCKED, locked_until=CLOCK + 3600, code_hash=""),
    DialogState(stage=CHOOSING, intent=PLAN, options=("YYB", "LLB"), updated_at=CLOCK - 60, lang="zh"),
    DialogState(stage=CHOOSING, options=IDS, updated_at=CLOCK - 60, lang="zh"),
], ids=["verifying", "paying", "confirming", "locked", "choosing a plan", "choosing"])
def test_every_read_only_word_from_every_stage_leaves_the_flow_where_it_was(word: str, state: DialogState) -> None:
    who = subscriber(statements=(OWED,))
    after, effects = step(state, Message(word), facts(who), NOW)
    assert pending(after) == pending(state), texts(effects)


# --- the rule, over any state ---------------------------------------------------------------------------

read_only_words = st.sampled_from(READ_ONLY_WORDS)
# OFFERED is left out on purpose: under 二次确认 any reply but 是/Y to a plan's stated fee means no order.
flows = st.builds(
    DialogState, stage=st.sampled_from([IDLE, CHOOSING, CONFIRMING, VERIFYING, LOCKED]),
    intent=st.sampled_from([CANCEL, PAY, PLAN]),
    options=st.lists(st.sampled_from("abcdez"), max_size=5).map(tuple),
    selected=st.lists(st.sampled_from("abcdez"), max_size=5).map(tuple),
    code_hash=st.sampled_from(["", codes.hash_code(SECRET, MSISDN, FRESH)]),
    code_expires_at=st.integers(-300, 300).map(lambda d: CLOCK + d), attempts=st.integers(0, codes.MAX_ATTEMPTS - 1),
    codes_sent=st.lists(st.integers(-86400, 0).map(lambda d: CLOCK + d), max_size=10).map(tuple),
    lang=st.sampled_from(["", "zh", "en"]),
    # Inside the idle timeout and the lock: a flow that had already lapsed has nothing pending to keep.
    updated_at=st.integers(-IDLE_TIMEOUT, 0).map(lambda d: CLOCK + d),
    locked_until=st.integers(1, 86400).map(lambda d: CLOCK + d),
)


@settings(max_examples=300, deadline=None)
@given(state=flows, world=worlds(list(POLICIES.values())), word=read_only_words)
def test_a_read_only_command_changes_nothing_pending(state: DialogState, world, word: str) -> None:
    """From any stage but IDLE nothing pending moves; from IDLE, 0000 may open the choice of active packages."""
    policy, who = world
    after, _ = step(state, Message(word), Facts(who, policy, SECRET, FRESH), NOW)
    if state.stage == IDLE and after.stage == CHOOSING:
        assert cmds.KEYWORDS[word] == cmds.QUERY
        assert (after.intent, after.options) == (CANCEL, tuple(s.id for s in who.active()))
    else:
        assert pending(after) == pending(state)


def test_a_lapsed_flow_is_still_dropped_by_a_read_only_command() -> None:
    lapsed = cancel_verifying(updated_at=CLOCK - IDLE_TIMEOUT - 1)
    after, _ = step(lapsed, Message("ZD"), facts(), NOW)
    assert after.stage == IDLE and not after.code_hash


def test_the_clock_still_moves_for_a_read_only_command() -> None:
    after, _ = step(cancel_verifying(), Message("HELP"), facts(), NOW + timedelta(seconds=5))
    assert after.updated_at == int((NOW + timedelta(seconds=5)).timestamp())


def test_a_read_only_command_is_answered_in_the_language_it_was_written_in() -> None:
    after, effects = step(cancel_verifying(), Message("HELP"), facts(subscriber(locale=None)), NOW)
    assert after.lang == "en" and "Reply TD" in texts(effects)


# --- what the conversation log keeps --------------------------------------------------------------------------

HEARD = [
    # stage the message arrived in, text, what the log keeps
    (VERIFYING, "424242", "******"),
    (VERIFYING, "４２４２４２", "******"),  # full-width digits are a code too
    # not a code in these digits, but the code all the same to anyone who reads the log
    (VERIFYING, "④②④②④②", "******"),
    (VERIFYING, "⁴²⁴²⁴²", "******"),
    (VERIFYING, "𝟒𝟐𝟒 𝟐𝟒𝟐", "*** ***"),
    (VERIFYING, "424 242", "*** ***"),
    (VERIFYING, "code: 424-242.", "code: ***-***."),
    (VERIFYING, "12345678", "********"),
    (VERIFYING, "0000", "0000"),
    (VERIFYING, "TD 2", "TD 2"),
    (VERIFYING, "N", "N"),
    (CHOOSING, "123456", "123456"),  # not awaiting a code: a wrong choice, kept as typed
    (IDLE, "424242", "424242"),
]


@pytest.mark.parametrize(("stage", "text", "kept"), HEARD)
def test_a_code_typed_while_verifying_is_starred_out_of_the_log(stage: str, text: str, kept: str) -> None:
    assert heard(DialogState(stage=stage), text) == kept
