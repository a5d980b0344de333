"""Paying statements, pure: applying a payment once per reference, and the `JF` dialog that charges by code."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from carriers import POLICIES, CarrierPolicy
from dialogs import codes, payments
from dialogs.apply import apply
from dialogs.effects import CODE, Escalate, Pay, Reply, SendMessage
from dialogs.engine import Facts, Message, step
from dialogs.messages import render
from dialogs.model import (
    CANCEL,
    CONFIRMING,
    IDLE,
    LOCKED,
    OPEN,
    OVERDUE,
    PAID,
    PAY,
    VERIFYING,
    DialogState,
    Payment,
    Statement,
    Subscriber,
    Subscription,
)
from dialogs.reasons import CODE_ATTEMPTS
from gateway.state import codec

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
CLOCK = int(NOW.timestamp())
SECRET = b"payments-test-secret"
FRESH = "424242"
MSISDN = "+8613800138000"
VID = "8613800138000-vid-20261107"
MUSIC = "8613800138000-music-20261107"


def statement(sid: str = VID, amount: int = 1000, **kw: object) -> Statement:
    return Statement(id=sid, subscription_id=sid.split("-")[1], name="视频会员", amount_fen=amount,
                     issued_at=NOW - timedelta(days=1), due_at=NOW + timedelta(days=6), **kw)


def subscriber(*statements: Statement) -> Subscriber:
    subs = (Subscription("vid", "视频会员", "SPHY", 1500, date(2026, 12, 7), status="cancelled"),)
    return Subscriber(msisdn=MSISDN, locale="zh", subscriptions=subs, statements=statements)


def paid(reference: str, amount: int) -> Payment:
    return Payment(reference, amount, NOW)


def record(who: Subscriber | None, statement_id: str, payment: Payment) -> payments.Settled:
    """Record `payment` now, days before the statement's deadline."""
    return payments.record_payment(who, statement_id, payment, POLICIES["cmcc"], NOW)


# --- statement ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement_id", "msisdn"),
    [
        (VID, MSISDN),
        ("8613800138000-sphy-20261125-2-20261125", MSISDN),  # a subscription id with dashes
        ("8613800138000-vid-2026110", None),
        ("8613800138000--20261107", None),
        ("+8613800138000-vid-20261107", None),
        ("vid-20261107", None),
        ("", None),
        ("../../etc-x-20261107", None),
        # the ids the engine issues are ASCII digits; `\d` took any script's (and phonenumbers reads them all)
        ("٨٦١٣٨٠٠١٣٨٠٠٠-vid-20261107", None),
        ("８６１３８００１３８０００-vid-２０２６１１０７", None),
        ("8613800138000-vid-٢٠٢٦١١٠٧", None),
        ("𝟖𝟔𝟏𝟑𝟖𝟎𝟎𝟏𝟑𝟖𝟎𝟎𝟎-vid-20261107", None),
    ],
)
def test_a_statement_id_names_its_subscriber(statement_id: str, msisdn: str | None) -> None:
    assert payments.statement_msisdn(statement_id) == msisdn


# --- recording a payment ------------------------------------------------------------------------

PENDING = statement(pending_reference="JF-1", pending_fen=1000)
OVERDUE_WITH_FEE = statement(status=OVERDUE, late_fee_fen=50)


@pytest.mark.parametrize(
    ("before", "payment", "status", "paid_fen", "overpaid"),
    [
        (statement(), paid("r1", 1000), PAID, 1000, 0),
        (statement(), paid("r1", 400), OPEN, 400, 0),
        (statement(paid_fen=400, payments=(paid("r0", 400),)), paid("r1", 600), PAID, 1000, 0),
        (OVERDUE_WITH_FEE, paid("r1", 1050), PAID, 1050, 0),
        (OVERDUE_WITH_FEE, paid("r1", 1000), OVERDUE, 1000, 0),  # the late fee is still owed
        (statement(), paid("r1", 1300), PAID, 1300, 300),
        (statement(status=PAID, paid_fen=1000, payments=(paid("r0", 1000),)), paid("r1", 10), PAID, 1010, 10),
    ],
)
def test_a_payment_settles_what_it_covers(
    before: Statement, payment: Payment, status: str, paid_fen: int, overpaid: int
) -> None:
    settled = record(subscriber(before), VID, payment)
    assert settled.outcome == payments.RECORDED
    assert (settled.statement.status, settled.statement.paid_fen, settled.overpaid_fen) == (status, paid_fen, overpaid)
    assert settled.statement.payments[-1] == payment
    assert settled.subscriber.statement(VID) == settled.statement


@pytest.mark.parametrize(
    ("payment", "outcome"),
    [
        (paid("r1", 400), payments.DUPLICATE),
        (replace(paid("r1", 400), paid_at=NOW + timedelta(hours=1)), payments.DUPLICATE),
        (paid("r1", 401), payments.CONFLICT),
    ],
)
def test_a_reference_is_applied_once(payment: Payment, outcome: str) -> None:
    before = subscriber(statement(paid_fen=400, payments=(paid("r1", 400),)))
    settled = record(before, VID, payment)
    assert settled.outcome == outcome
    assert settled.subscriber == before
    assert settled.payment == paid("r1", 400)


def test_a_reference_used_on_another_statement_of_the_subscriber_conflicts() -> None:
    before = subscriber(statement(paid_fen=400, payments=(paid("r1", 400),)), statement(MUSIC))
    settled = record(before, MUSIC, paid("r1", 400))
    assert (settled.outcome, settled.statement.id, settled.subscriber) == (payments.CONFLICT, VID, before)


@pytest.mark.parametrize("who", [None, subscriber(statement())])
def test_an_unknown_statement_takes_no_payment(who: Subscriber | None) -> None:
    settled = record(who, MUSIC, paid("r1", 100))
    assert (settled.outcome, settled.subscriber) == (payments.NO_STATEMENT, who)


def test_a_statement_takes_a_bounded_number_of_payments() -> None:
    full = tuple(paid(f"r{i}", 1) for i in range(payments.MAX_PAYMENTS))
    before = subscriber(statement(paid_fen=len(full), payments=full))
    assert record(before, VID, paid("one-more", 1)).outcome == payments.TOO_MANY


@pytest.mark.parametrize(
    ("payment", "pending_after"),
    [
        (paid("JF-1", 1000), ""),  # the pending charge itself settles
        (paid("elsewhere", 1000), ""),  # paid in full elsewhere: the pending charge must not go through too
        (paid("elsewhere", 100), "JF-1"),  # a part paid elsewhere leaves the charge under way
    ],
)
def test_a_payment_clears_a_pending_charge_it_makes_pointless(payment: Payment, pending_after: str) -> None:
    settled = record(subscriber(PENDING), VID, payment)
    assert settled.statement.pending_reference == pending_after


@pytest.mark.parametrize(("reference", "pending_after"), [("JF-1", ""), ("JF-other", "JF-1")])
def test_only_the_failed_charge_is_released(reference: str, pending_after: str) -> None:
    after = payments.release_pending(subscriber(PENDING), VID, reference)
    assert after.statement(VID).pending_reference == pending_after


def test_payable_statements_owe_something_and_have_no_charge_under_way() -> None:
    who = subscriber(statement(), statement(MUSIC, status=PAID, paid_fen=1000), PENDING)
    assert [s.id for s in payments.payable(who)] == [VID]
    assert payments.pending(who) == (PENDING,)


def test_a_pay_effect_marks_one_charge_pending_and_never_a_second() -> None:
    who = subscriber(statement())
    first = apply(who, [Pay(VID, 1000, "JF-1")], NOW)
    second = apply(first, [Pay(VID, 1000, "JF-2")], NOW + timedelta(minutes=1))
    pending = first.statement(VID)
    assert (pending.pending_reference, pending.pending_fen, pending.pending_since) == ("JF-1", 1000, NOW)
    assert second == first


# --- the JF dialog ------------------------------------------------------------------------------


def facts(who: Subscriber, policy: CarrierPolicy = POLICIES["cmcc"]) -> Facts:
    return Facts(subscriber=who, policy=policy, secret=SECRET, fresh_code=FRESH)


def run(state: DialogState, text: str, who: Subscriber, now: datetime = NOW,
        policy: CarrierPolicy = POLICIES["cmcc"]) -> tuple[DialogState, list]:
    return step(state, Message(text), facts(who, policy), now)


def replies(effects: list) -> str:
    return "\n".join(e.text for e in effects if isinstance(e, Reply))


def confirming(*amounts: int, ids: tuple[str, ...] = (VID,)) -> DialogState:
    return DialogState(stage=CONFIRMING, intent=PAY, selected=ids, amounts=amounts, updated_at=CLOCK - 60, lang="zh")


def verifying(*amounts: int, ids: tuple[str, ...] = (VID,)) -> DialogState:
    return replace(confirming(*amounts, ids=ids), stage=VERIFYING, code_hash=codes.hash_code(SECRET, MSISDN, FRESH),
                   code_expires_at=CLOCK + 200, codes_sent=(CLOCK - 100,))


@pytest.mark.parametrize(("text", "who", "template"), [
    ("JF", subscriber(), "pay_nothing"),
    ("缴费", subscriber(statement(MUSIC, status=PAID, paid_fen=1000)), "pay_nothing"),
    ("JF", subscriber(PENDING), "pay_pending"),
])
def test_jf_with_nothing_to_charge_says_why(text: str, who: Subscriber, template: str) -> None:
    state, effects = run(DialogState(), text, who)
    assert state.stage == IDLE
    assert replies(effects) == "【中国移动】" + render("zh", template)


def test_jf_lists_what_is_owed_and_asks_to_confirm() -> None:
    who = subscriber(statement(), replace(OVERDUE_WITH_FEE, id=MUSIC, name="音乐包"))
    state, effects = run(DialogState(), "缴费", who)
    assert (state.stage, state.intent, state.selected, state.amounts) == (CONFIRMING, PAY, (VID, MUSIC), (1000, 1050))
    text = replies(effects)
    assert "视频会员 10.00元（待缴）" in text and "音乐包 10.50元（已逾期）" in text and "合计20.50元" in text


@pytest.mark.parametrize("policy", [POLICIES["cmcc"], replace(POLICIES["cmcc"], cancel_needs_code=False)])
def test_paying_always_needs_a_code(policy: CarrierPolicy) -> None:
    state, effects = run(confirming(1000), "Y", subscriber(statement()), policy=policy)
    assert state.stage == VERIFYING and state.intent == PAY
    sms = [e for e in effects if isinstance(e, SendMessage)]
    assert [e.kind for e in sms] == [CODE]
    assert FRESH in sms[0].text and "缴费" in sms[0].text
    assert "完成缴费" in replies(effects)


def test_the_right_code_charges_the_confirmed_amounts() -> None:
    who = subscriber(statement(), statement(MUSIC, amount=500))
    state, effects = run(verifying(1000, 500, ids=(VID, MUSIC)), FRESH, who)
    assert state.stage == IDLE and state.intent != PAY
    assert [e for e in effects if isinstance(e, Pay)] == [
        Pay(VID, 1000, f"JF-{VID}-{CLOCK}"), Pay(MUSIC, 500, f"JF-{MUSIC}-{CLOCK}"),
    ]
    assert replies(effects) == "【中国移动】" + render("zh", "pay_started", amount="15.00元")


@pytest.mark.parametrize(
    ("now_owed", "charged"),
    [
        (statement(amount=1000, late_fee_fen=50, status=OVERDUE), 1000),  # a late fee since: not what was confirmed
        (statement(paid_fen=600, payments=(paid("r", 600),)), 400),  # part paid elsewhere since
    ],
)
def test_a_charge_never_exceeds_what_was_confirmed_nor_what_is_owed(now_owed: Statement, charged: int) -> None:
    _, effects = run(verifying(1000), FRESH, subscriber(now_owed))
    assert [e.amount_fen for e in effects if isinstance(e, Pay)] == [charged]


@pytest.mark.parametrize("now_statement", [statement(status=PAID, paid_fen=1000), PENDING])
def test_nothing_is_charged_when_the_statement_was_settled_or_is_being_charged(now_statement: Statement) -> None:
    _, effects = run(verifying(1000), FRESH, subscriber(now_statement))
    assert not [e for e in effects if isinstance(e, Pay)]
    assert "没有待缴费用" in replies(effects)


def test_five_wrong_codes_lock_paying_and_call_a_person() -> None:
    state, who = verifying(1000), subscriber(statement())
    for _ in range(codes.MAX_ATTEMPTS):
        state, effects = run(state, "111111", who)
    assert state.stage == LOCKED
    assert Escalate(CODE_ATTEMPTS) in effects
    assert "缴费已暂停" in replies(effects)
    _, effects = run(state, "JF", who)
    assert "暂停" in replies(effects) and not [e for e in effects if isinstance(e, Pay)]


@pytest.mark.parametrize(("text", "template"), [
    ("N", "aborted"), ("hello", "pay_code_waiting"),
])
def test_a_pay_flow_can_be_left_or_is_explained(text: str, template: str) -> None:
    state, effects = run(verifying(1000), text, subscriber(statement()))
    assert replies(effects) == "【中国移动】" + render("zh", template)
    assert not [e for e in effects if isinstance(e, Pay)]


def test_an_expired_code_asks_for_a_new_one_and_stays_a_payment() -> None:
    state, effects = run(verifying(1000), FRESH, subscriber(statement()), now=NOW + timedelta(seconds=300))
    assert (state.stage, state.intent) == (CONFIRMING, PAY)
    assert replies(effects) == "【中国移动】" + render("zh", "pay_code_expired")


# --- stored records -----------------------------------------------------------------------------


def test_records_written_before_payments_and_pay_flows_still_load() -> None:
    old_dialog = '{"stage":"verifying","options":[],"selected":["vid"],"code_hash":"h","code_expires_at":1,' \
                 '"attempts":0,"codes_sent":[1],"lang":"zh","updated_at":1,"locked_until":0}'
    assert codec.dialog_from_json(old_dialog).intent == CANCEL
    old_statement = {"id": VID, "subscription_id": "vid", "name": "视频会员", "amount_fen": 950,
                     "issued_at": NOW.isoformat(), "due_at": NOW.isoformat(), "status": "open", "paid_fen": 0}
    loaded = codec.statement_from_dict(old_statement)
    assert (loaded.payments, loaded.pending_reference, loaded.pending_fen, loaded.pending_since) == ((), "", 0, None)
    pending_before_pending_since = {**old_statement, "pending_reference": "JF-1", "pending_fen": 950}
    assert codec.statement_from_dict(pending_before_pending_since).pending_since is None


def test_payments_and_pay_flows_round_trip() -> None:
    who = subscriber(statement(paid_fen=400, payments=(paid("r1", 400),), pending_reference="JF-1", pending_fen=600,
                               pending_since=NOW))
    assert codec.subscriber_from_json(codec.subscriber_to_json(who)) == who
    assert codec.dialog_from_json(codec.dialog_to_json(verifying(1000, 500, ids=(VID, MUSIC)))) == verifying(
        1000, 500, ids=(VID, MUSIC))


def test_a_receipt_of_our_own_ledger_is_recorded_past_the_cap_on_posted_payments() -> None:
    """docs/billing.md, Payments and charges rule 4: the cap bounds what others post, never money we took."""
    who = subscriber(statement(amount=10_000))
    for n in range(payments.MAX_PAYMENTS):
        who = record(who, VID, paid(f"bank-{n}", 1)).subscriber
    posted = record(who, VID, paid("bank-extra", 1))
    taken = payments.record_payment(who, VID, paid("JF-taken", 500), POLICIES["cmcc"], NOW, capped=False)
    assert posted.outcome == payments.TOO_MANY and posted.subscriber == who
    assert taken.outcome == payments.RECORDED and taken.statement.paid_fen == payments.MAX_PAYMENTS + 500
