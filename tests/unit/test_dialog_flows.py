"""Multi-message dialogs as tables (messages in → stage and effects out, fixed clock, code and ids)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from dialogs import codes
from dialogs import commands as cmds
from dialogs.engine import Facts, Message, step
from dialogs.model import (
    CANCEL,
    CHOOSING,
    CONFIRMING,
    IDLE,
    VERIFYING,
    DialogState,
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
)


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


CANCELLED = ["cancel:vid", "statement:vid", "send:done"]

FLOWS = [
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
def test_flow(flow: Flow) -> None:
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
