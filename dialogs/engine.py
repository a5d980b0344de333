"""One dialog step: (state, message, facts, now) -> (state, effects). Pure: no IO, no clock, no randomness."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from carriers import CarrierPolicy, period_bounds, settlement_deadline
from dialogs import bills, codes, pages, payments, plans
from dialogs import commands as cmds
from dialogs.budgets import QUERY_CHARS, SMS, Screen, fit_name, fits_screen, short_name
from dialogs.effects import (
    CODE,
    CONFIRMATION,
    CancelSubscription,
    Effect,
    Escalate,
    ForAgent,
    IssueStatement,
    OrderPlan,
    Pay,
    Reply,
    SendMessage,
    SetOptOut,
)
from dialogs.language import reply_lang
from dialogs.messages import day, money, render, render_screen, when
from dialogs.model import (
    CANCEL,
    CHOOSING,
    CONFIRMING,
    IDLE,
    LOCKED,
    OFFERED,
    OPEN,
    PAID,
    PAY,
    PLAN,
    VERIFYING,
    DialogState,
    Statement,
    Subscriber,
    Subscription,
)
from dialogs.normalize import normalize
from dialogs.reasons import CODE_ATTEMPTS, REQUESTED

IDLE_TIMEOUT = 600
LOCK_SECONDS = 86400


@dataclass(frozen=True)
class Message:
    text: str
    # The keyword (cmds.STOP, START or HELP) the provider already answered, as Twilio Advanced Opt-Out does.
    provider_answered: str = ""
    screen: Screen = SMS  # how much a reply may hold on the channel the message came in on


@dataclass(frozen=True)
class Facts:
    subscriber: Subscriber
    policy: CarrierPolicy
    secret: bytes
    fresh_code: str  # used only if this step sends a code


@dataclass(frozen=True)
class Turn:
    state: DialogState
    facts: Facts
    now: datetime
    lang: str
    screen: Screen = SMS

    @property
    def clock(self) -> int:
        return int(self.now.timestamp())

    @property
    def on_screen(self) -> bool:
        """The message came from a USSD session: the reply is a screen, not an SMS."""
        return bool(self.screen.chars)

    def say(self, key: str, **values: object) -> str:
        """An SMS: the carrier's signature and the SMS wording."""
        return self.facts.policy.sender_id + render(self.lang, key, **values)

    def text(self, key: str, **values: object) -> str:
        """Template `key` in the wording of the surface the message came in on, unsigned (a line, a fragment)."""
        return render_screen(self.lang, key, **values) if self.on_screen else render(self.lang, key, **values)

    def show(self, key: str, **values: object) -> str:
        """The answer to the message: an SMS, or a USSD screen (its own wording, unsigned: a screen is no SMS)."""
        return self.text(key, **values) if self.on_screen else self.say(key, **values)

    def reply(self, key: str, **values: object) -> Reply:
        return Reply(self.show(key, **values))


Outcome = tuple[DialogState, list[Effect]]


def step(state: DialogState, message: Message, facts: Facts, now: datetime) -> Outcome:
    text = normalize(message.text)
    if state.human:  # no flow moves on, nor times out, nor pages, while a person has the conversation
        turn = Turn(state, facts, now, _lang(state, facts, text), message.screen)
        new_state, effects = _handed_over(turn, cmds.parse(text), message)
    else:
        turn = Turn(_expire(state, int(now.timestamp())), facts, now, _lang(state, facts, text), message.screen)
        new_state, effects = _answer(turn, text)
    return replace(new_state, lang=turn.lang, updated_at=turn.clock), _unless_answered(message, effects)


def _answer(turn: Turn, text: str) -> Outcome:
    """A message while the bot has the conversation: a page turned, or a command; on a USSD session's first
    request (nothing answered yet), its first screen."""
    if turn.on_screen and not text:
        return _first_screen(_off_page(turn))
    turned = _turn_page(turn, text)
    return turned if turned is not None else _dispatch(_off_page(turn), cmds.parse(text))


def _lang(state: DialogState, facts: Facts, text: str) -> str:
    return reply_lang(text, locale=facts.subscriber.locale, earlier=state.lang, policy=facts.policy)


def _expire(state: DialogState, clock: int) -> DialogState:
    if state.stage == LOCKED:
        if clock < state.locked_until:
            return state
        return DialogState(codes_sent=state.codes_sent)
    # A plan offer has its own 24 h window (checked when 是/Y comes), not the 10-minute idle timeout.
    if state.stage not in (IDLE, OFFERED) and clock - state.updated_at > IDLE_TIMEOUT:
        return _idle(state)
    return state


def _unless_answered(message: Message, effects: list[Effect]) -> list[Effect]:
    """When the provider already answered (Twilio Advanced Opt-Out), a reply of ours would be a second one: only
    what the step does stays. Its STOP stands whatever we make of the word; its START for a `YES` confirming a
    cancel is not taken as asking for reminders again."""
    if not message.provider_answered:
        return effects
    kept = [e for e in effects if not isinstance(e, Reply)]
    if message.provider_answered == cmds.STOP and SetOptOut(True) not in kept:
        return [SetOptOut(True), *kept]
    return kept


def _dispatch(turn: Turn, command: cmds.Command) -> Outcome:
    if turn.state.stage == OFFERED and command != cmds.Keyword(cmds.YES):
        return _no_order(turn, command)
    if isinstance(command, cmds.Keyword):
        return _keyword(turn, command.name)
    if turn.state.stage == LOCKED and isinstance(command, (cmds.Cancel, cmds.Code, cmds.Numbers)):
        return turn.state, [turn.reply("still_locked")]
    if isinstance(command, cmds.Cancel):
        return _cancel_command(turn, command)
    if isinstance(command, cmds.Code) and turn.state.stage == VERIFYING:
        return _check_code(turn, command.digits)
    if isinstance(command, (cmds.Numbers, cmds.Code)) and turn.state.stage == CHOOSING:
        digits = command.values if isinstance(command, cmds.Numbers) else (int(command.digits),)
        if turn.state.intent == PLAN:
            return _choose_plan(turn, digits)
        return _choose(turn, turn.state.options, digits)
    if turn.state.stage == VERIFYING:
        return turn.state, [turn.reply(_flow(turn, "code_waiting"))]
    if turn.state.stage == CHOOSING:
        key = "plan_invalid_choice" if turn.state.intent == PLAN else "invalid_choice"
        return turn.state, [turn.reply(key, count=len(turn.state.options))]
    return turn.state, [turn.reply("unknown")]


def _keyword(turn: Turn, name: str) -> Outcome:
    state = turn.state
    match name:
        case cmds.YES:
            return _yes(turn)
        case cmds.NO if state.stage in (CHOOSING, CONFIRMING, VERIFYING):
            return _idle(state), [turn.reply("aborted")]
        case cmds.QUERY:
            return _query(turn)
        case cmds.BILL:
            return _bill(turn)
        case cmds.HUMAN:
            return replace(state, human=True, human_noticed=False), [Escalate(REQUESTED), turn.reply("human")]
        case cmds.STOP:
            return state, [SetOptOut(True), turn.reply("stop")]
        case cmds.START:
            return state, [SetOptOut(False), turn.reply("start")]
        case cmds.HELP:
            return state, [turn.reply("help")]
        case cmds.PAY:
            return _pay(turn)
        case cmds.PLANS:
            return _plans(turn)
    return state, [turn.reply("nothing_pending" if name == cmds.NO else "help")]


def _idle(state: DialogState) -> DialogState:
    """Out of any flow. Wrong code tries stay counted: starting over must not be a way round the 5-try lock."""
    return DialogState(codes_sent=state.codes_sent, lang=state.lang, attempts=state.attempts)


def _done(state: DialogState) -> DialogState:
    """Out of a flow that succeeded: a right code clears the wrong tries."""
    return replace(_idle(state), attempts=0)


def _cannot_start(turn: Turn, key: str) -> Outcome:
    """A command whose flow has nothing to start with: a confirmation or code in hand stays where it was (the
    subscriber may still answer it); a bare choice ends."""
    keep = turn.state.stage in (CONFIRMING, VERIFYING, LOCKED)
    return (turn.state if keep else _idle(turn.state)), [turn.reply(key)]


# --- choosing -------------------------------------------------------------------------------


def _cancel_command(turn: Turn, command: cmds.Cancel) -> Outcome:
    active = turn.facts.subscriber.active()
    options = tuple(s.id for s in active)
    if not active:
        return _cannot_start(turn, "none_active")
    if command.everything:
        return _confirm(turn, options)
    if command.numbers:
        return _choose(turn, options, command.numbers)
    if command.query:
        return _find(turn, active, command.query)
    return _list(turn, active)


def _list(turn: Turn, active: tuple[Subscription, ...]) -> Outcome:
    state = replace(_idle(turn.state), stage=CHOOSING, options=tuple(s.id for s in active))
    return _show(turn, state, LIST)


def _choose(turn: Turn, options: tuple[str, ...], numbers: tuple[int, ...]) -> Outcome:
    if not options or any(n < 1 or n > len(options) for n in numbers):
        count = len(options)
        # A fresh cancel choice: whatever flow came before (a BG list, a code) is not what these numbers are for.
        state = replace(_idle(turn.state), stage=CHOOSING, options=options) if options else turn.state
        return state, [turn.reply("invalid_choice" if count else "none_active", count=count)]
    return _confirm(turn, tuple(options[n - 1] for n in numbers))


def _find(turn: Turn, active: tuple[Subscription, ...], query: str) -> Outcome:
    wanted = query.upper()
    found = tuple(s.id for s in active if s.service_code.upper() == wanted or wanted in s.name.upper())
    if not found:
        return turn.state, [turn.reply("not_found", query=query[:QUERY_CHARS])]
    return _confirm(turn, found)


# --- confirming -----------------------------------------------------------------------------


def _confirm(turn: Turn, selected: tuple[str, ...]) -> Outcome:
    subs = _selected(turn, selected)
    quotes = [statement_for(turn.facts, s, turn.now) for s in subs]
    # The quote is kept so that the code, even past midnight or a renewal, settles exactly what was shown here.
    state = replace(_idle(turn.state), stage=CONFIRMING, selected=tuple(s.id for s in subs),
                    amounts=tuple(q.amount_fen for q in quotes), due_ats=tuple(_epoch(q.due_at) for q in quotes),
                    periods=tuple(s.renews_on.isoformat() for s in subs),
                    period_starts=tuple(bills.current_period(s)[0].isoformat() for s in subs), quoted_at=turn.clock)
    return _show(turn, state, CONFIRM)


def _confirm_lines(turn: Turn, state: DialogState) -> Lines:
    """The packages as quoted, a line each; every page states how many there are, the total and how to answer, so
    that Y on any page confirms what the subscriber was told."""
    lang, tz = turn.lang, turn.facts.policy.timezone
    quoted = [(sub, *_quoted(turn, state, sub)) for sub in _selected(turn, state.selected)]
    lines = [
        _line(lang, "confirm_line", s.name, fee=money(lang, s.fee_fen), amount=money(lang, fen),
              deadline=when(lang, due_at, tz))
        for s, fen, due_at in quoted
    ]
    return lines, {"count": len(lines), "amount": money(lang, sum(fen for _, fen, _ in quoted))}


def _quoted(turn: Turn, state: DialogState, sub: Subscription) -> tuple[int, datetime]:
    """The amount and deadline quoted for `sub`; what the flow did not keep, as the rules say now."""
    i = state.selected.index(sub.id)
    if i < len(state.amounts) and i < len(state.due_ats):
        return state.amounts[i], datetime.fromtimestamp(state.due_ats[i], UTC)
    fresh = statement_for(turn.facts, sub, turn.now)
    return fresh.amount_fen, fresh.due_at


def _epoch(moment: datetime) -> int:
    return math.ceil(moment.timestamp())  # rounded up: a deadline kept must never come earlier than the one shown


def _selected(turn: Turn, ids: tuple[str, ...]) -> list[Subscription]:
    subscriber = turn.facts.subscriber
    return [s for s in (subscriber.subscription(i) for i in ids) if s is not None]


def _yes(turn: Turn) -> Outcome:
    state = turn.state
    if state.stage == OFFERED:
        return _order(turn)
    if state.stage not in (CONFIRMING, VERIFYING):
        return state, [turn.reply("nothing_pending")]
    if state.intent == CANCEL and not turn.facts.policy.cancel_needs_code:
        return _complete(turn)
    return _send_code(turn)  # paying always needs a code


def _send_code(turn: Turn) -> Outcome:
    sent = codes.recent_sends(turn.state.codes_sent, turn.clock)
    wait = codes.wait_before_send(sent, turn.clock)
    if wait:
        return replace(turn.state, codes_sent=sent), [turn.reply("rate_limited", wait=_duration(turn.lang, wait))]
    msisdn, code = turn.facts.subscriber.msisdn, turn.facts.fresh_code
    # Wrong tries count across codes; they are forgotten only with a right code, the lock, or a day without codes.
    attempts = turn.state.attempts if sent else 0
    state = replace(
        turn.state, stage=VERIFYING, attempts=attempts, codes_sent=sent + (turn.clock,),
        code_hash=codes.hash_code(turn.facts.secret, msisdn, code), code_expires_at=turn.clock + codes.CODE_TTL,
    )
    text = turn.say(_flow(turn, "code_sms"), code=code)
    return state, [SendMessage(text, CODE), turn.reply(_flow(turn, "code_sent"))]


def _duration(lang: str, seconds: int) -> str:
    minutes = -(-seconds // 60)
    if minutes < 60:
        return f"{minutes}分钟" if lang == "zh" else f"{minutes} min"
    hours = -(-minutes // 60)
    return f"{hours}小时" if lang == "zh" else f"{hours} h"


# --- verifying ------------------------------------------------------------------------------


def _check_code(turn: Turn, digits: str) -> Outcome:
    state = turn.state
    if _code_expired(turn):
        return replace(state, stage=CONFIRMING, code_hash=""), [turn.reply(_flow(turn, "code_expired"))]
    if codes.code_matches(turn.facts.secret, turn.facts.subscriber.msisdn, digits, state.code_hash):
        return _complete_payment(turn) if state.intent == PAY else _complete(turn)
    attempts = state.attempts + 1
    if attempts >= codes.MAX_ATTEMPTS:
        locked = replace(_idle(state), stage=LOCKED, locked_until=turn.clock + LOCK_SECONDS, attempts=attempts)
        return locked, [Escalate(CODE_ATTEMPTS), turn.reply(_flow(turn, "locked"))]
    left = codes.MAX_ATTEMPTS - attempts
    return replace(state, attempts=attempts), [turn.reply("code_wrong", left=left)]


def _code_expired(turn: Turn) -> bool:
    return turn.clock >= turn.state.code_expires_at


def _complete(turn: Turn) -> Outcome:
    effects: list[Effect] = []
    lines = [_cancel_line(turn, sub, effects) for sub in _selected(turn, turn.state.selected)]
    sent = [SendMessage(text, CONFIRMATION) for text in _result(turn, lines)]
    # Over SMS the confirmation is the answer; a USSD session ends on a screen saying the same.
    return _done(turn.state), effects + sent + ([Reply(_result_screen(turn, lines))] if turn.on_screen else [])


def _result(turn: Turn, lines: list[pages.Line]) -> list[str]:
    """The result of a cancel: one message, or as many as its lines need (an SMS, whatever channel asked), each
    numbered and within the budget, every package in exactly one."""

    def compose(shown: list[str], part: int, parts: int) -> str:
        numbered = render(turn.lang, "done_part", n=part, count=parts) if parts > 1 else ""
        return turn.say("done", lines="\n".join(shown), part=numbered)

    return pages.split(lines, compose, lambda text: fits_screen(turn.facts.policy, "done", text))


def _result_screen(turn: Turn, lines: list[pages.Line]) -> str:
    """The result on a screen: the packages named whole if that fits, else short (NAME_CHARS), else counted."""
    for shorten in (False, True):
        shown = "\n".join(line.text(short_name(line.name) if shorten else line.name) for line in lines)
        text = turn.show("done", lines=shown)
        if fits_screen(turn.facts.policy, "done", text, turn.screen):
            return text
    return turn.show("done_many", count=len(lines))


def _cancel_line(turn: Turn, sub: Subscription, effects: list[Effect]) -> pages.Line:
    lang = turn.lang
    if not sub.active:
        return _line(lang, "done_line_already", sub.name)
    statement, cancel = _as_quoted(turn, sub)
    effects += [cancel, IssueStatement(statement)]
    if statement.status == PAID:
        return _line(lang, "done_line_free", sub.name)
    deadline = when(lang, statement.due_at, turn.facts.policy.timezone)
    return _line(lang, "done_line", sub.name, amount=money(lang, statement.amount_fen), deadline=deadline)


def statement_for(facts: Facts, sub: Subscription, now: datetime) -> Statement:
    """The settlement statement cancelling `sub` at `now` would issue, per the carrier's rules."""
    bill = _period_bill(facts, sub, bills.current_period(sub), now)
    return _statement(facts, sub, bill, bill.amount_fen, now, settlement_deadline(facts.policy, now))


def _period_bill(facts: Facts, sub: Subscription, period: tuple[date, date], at: datetime) -> bills.Bill:
    return bills.on_cancel(facts.policy, facts.subscriber, sub, period, at.astimezone(facts.policy.tz).date())


def _statement(facts: Facts, sub: Subscription, bill: bills.Bill, amount: int, now: datetime, due_at: datetime
               ) -> Statement:
    return Statement(
        id=f"{facts.subscriber.msisdn.lstrip('+')}-{sub.id}-{bill.period[0]:%Y%m%d}",
        subscription_id=sub.id, name=sub.name, amount_fen=amount, issued_at=now, due_at=due_at,
        status=OPEN if amount else PAID,
    )


@dataclass(frozen=True)
class Quote:
    """What the subscriber confirmed for one package: the period ([start, end) days), billed as of `at`, for
    `amount_fen` by `due_at`."""

    period: tuple[date, date]
    at: datetime
    amount_fen: int | None
    due_at: datetime


def _as_quoted(turn: Turn, sub: Subscription) -> tuple[Statement, CancelSubscription]:
    """Cancel `sub` as quoted: the quoted period re-rated as of the quote, for no more than the quoted amount (less if
    a payment or a lower fee arrived since), due by the later of the quoted deadline and the carrier rule now; charge
    lines credited so the period is billed once (docs/billing.md)."""
    facts, quote = turn.facts, _quote(turn, sub)
    bill = _period_bill(facts, sub, quote.period, quote.at)
    amount = bill.amount_fen if quote.amount_fen is None else min(quote.amount_fen, bill.amount_fen)
    due_at = max(quote.due_at, settlement_deadline(facts.policy, turn.now))
    statement = _statement(facts, sub, bill, amount, turn.now, due_at)
    credited = bills.credits(facts.policy, facts.subscriber, sub, bill, statement.id)
    return statement, CancelSubscription(sub.id, quote.period[1], credited)


def _quote(turn: Turn, sub: Subscription) -> Quote:
    """The quote the flow kept for `sub`; what it did not keep (a flow confirmed by an earlier release) is what the
    rules say now, for the package's current period."""
    state, i = turn.state, turn.state.selected.index(sub.id)
    end = date.fromisoformat(state.periods[i]) if i < len(state.periods) else sub.renews_on
    # A flow stored before quotes kept their period's start: the period began on the anchor's date before its end.
    start = (date.fromisoformat(state.period_starts[i]) if i < len(state.period_starts)
             else period_bounds(end, sub.anchor_day)[0])
    return Quote(
        period=(start, end),
        at=datetime.fromtimestamp(state.quoted_at, UTC) if state.quoted_at else turn.now,
        amount_fen=state.amounts[i] if i < len(state.amounts) else None,
        due_at=datetime.fromtimestamp(state.due_ats[i], UTC) if i < len(state.due_ats) else turn.now,
    )


# --- read-only commands ---------------------------------------------------------------------
# Whatever flow is under way (a choice, a confirmation, a code, a lock) stays exactly where it was. Only from IDLE
# does a query open the choice its numbers offer, as TD's list does.


def _query(turn: Turn) -> Outcome:
    subscriber, state = turn.facts.subscriber, turn.state
    if not subscriber.subscriptions:
        return state, [turn.reply("query_empty")]
    active = subscriber.active()
    if state.stage == IDLE and active:
        state = replace(_idle(state), stage=CHOOSING, options=tuple(s.id for s in active))
    return _show(turn, state, QUERY)


def _query_lines(turn: Turn, state: DialogState) -> Lines:
    subscriber, lang = turn.facts.subscriber, turn.lang
    numbers = {s.id: n for n, s in enumerate(subscriber.active(), 1)}  # the numbers TD n and the choice go by
    lines = [
        _line(lang, "query_line_active", s.name, n=numbers[s.id], fee=money(lang, s.fee_fen),
              renews=day(lang, s.renews_on))
        if s.active else _line(lang, "query_line_cancelled", s.name)
        for s in subscriber.subscriptions
    ]
    owed = sum(s.owed_fen for s in subscriber.open_statements())
    owed_text = turn.text("query_owed", amount=money(lang, owed)) if owed else turn.text("query_nothing_owed")
    return lines, {"owed": owed_text}


def _bill(turn: Turn) -> Outcome:
    if not turn.facts.subscriber.statements:
        return turn.state, [turn.reply("bill_empty")]
    return _show(turn, turn.state, BILL)


def _bill_lines(turn: Turn, state: DialogState) -> Lines:
    lang, tz = turn.lang, turn.facts.policy.timezone
    lines = [
        _line(lang, "bill_line", s.name, amount=money(lang, s.owed_fen or s.amount_fen),
              status=render(lang, f"status_{s.status}"), deadline=when(lang, s.due_at, tz))
        for s in reversed(turn.facts.subscriber.statements)  # the newest first
    ]
    return lines, {}


# --- paying (JF) ----------------------------------------------------------------------------

# Code-flow templates that name what the code is for.
_PAY_TEMPLATES = frozenset({"code_sms", "code_sent", "code_waiting", "code_expired", "locked"})


def _flow(turn: Turn, key: str) -> str:
    return f"pay_{key}" if turn.state.intent == PAY and key in _PAY_TEMPLATES else key


def _pay(turn: Turn) -> Outcome:
    subscriber = turn.facts.subscriber
    if turn.state.stage == LOCKED:
        return turn.state, [turn.reply("still_locked")]
    due = payments.payable(subscriber)
    if not due:
        return _cannot_start(turn, "pay_pending" if payments.pending(subscriber) else "pay_nothing")
    state = replace(_idle(turn.state), stage=CONFIRMING, intent=PAY, selected=tuple(s.id for s in due),
                    amounts=tuple(s.owed_fen for s in due))
    return _show(turn, state, PAY_CONFIRM)


def _pay_lines(turn: Turn, state: DialogState) -> Lines:
    """The statements as confirmed: what Y charges at most, whatever page it is said on."""
    lang, subscriber = turn.lang, turn.facts.subscriber
    confirmed = [(subscriber.statement(i), fen) for i, fen in zip(state.selected, state.amounts, strict=False)]
    lines = [
        _line(lang, "pay_line", s.name, amount=money(lang, fen), status=render(lang, f"status_{s.status}"))
        for s, fen in confirmed if s is not None
    ]
    return lines, {"amount": money(lang, sum(state.amounts))}


def _complete_payment(turn: Turn) -> Outcome:
    """Charge what was confirmed, or less if part was paid meanwhile; never more than the subscriber saw."""
    subscriber, effects = turn.facts.subscriber, []
    for statement_id, confirmed in zip(turn.state.selected, turn.state.amounts, strict=True):
        statement = subscriber.statement(statement_id)
        if statement is None or statement.pending_reference:
            continue
        amount = min(confirmed, statement.owed_fen)
        if amount:
            effects.append(Pay(statement_id, amount, payments.charge_reference(statement_id, turn.clock)))
    if not effects:
        return _done(turn.state), [turn.reply("pay_nothing")]
    total = money(turn.lang, sum(e.amount_fen for e in effects))
    return _done(turn.state), [*effects, turn.reply("pay_started", amount=total)]


# --- next plan (BG) -------------------------------------------------------------------------


def _plans(turn: Turn) -> Outcome:
    if turn.state.stage == LOCKED:
        return turn.state, [turn.reply("still_locked")]
    offer = plans.available(turn.facts.policy, turn.facts.subscriber)
    if not offer:
        return _cannot_start(turn, "plans_none")
    state = replace(_idle(turn.state), stage=CHOOSING, intent=PLAN, options=tuple(p.code for p in offer))
    return _show(turn, state, PLANS)


def _plan_lines(turn: Turn, state: DialogState) -> Lines:
    lang, policy = turn.lang, turn.facts.policy
    offered = [(n, plans.find(policy, code)) for n, code in enumerate(state.options, 1)]
    lines = [_line(lang, "plan_line", p.name(lang), n=n, fee=money(lang, p.fee_fen)) for n, p in offered if p]
    return lines, {}


def _choose_plan(turn: Turn, numbers: tuple[int, ...]) -> Outcome:
    options, lang = turn.state.options, turn.lang
    number = numbers[0] if len(numbers) == 1 else 0  # one plan at a time: each order is confirmed on its own
    plan = plans.find(turn.facts.policy, options[number - 1]) if 1 <= number <= len(options) else None
    if plan is None:
        return turn.state, [turn.reply("plan_invalid_choice", count=len(options))]
    expires = turn.now + timedelta(seconds=plans.OFFER_SECONDS)
    state = replace(_idle(turn.state), stage=OFFERED, intent=PLAN, plan_offer=plan.code,
                    offer_expires_at=int(expires.timestamp()))
    deadline = when(lang, expires, turn.facts.policy.timezone)
    return state, [Reply(_named(turn, "plan_confirm", plan.name(lang), fee=money(lang, plan.fee_fen),
                                deadline=deadline))]


def _order(turn: Turn) -> Outcome:
    """是/Y to a stated fee: order only inside the 24 h window and only a plan still on offer."""
    facts, lang = turn.facts, turn.lang
    if turn.clock >= turn.state.offer_expires_at:
        return _idle(turn.state), [turn.reply("plan_expired")]
    plan = next((p for p in plans.available(facts.policy, facts.subscriber) if p.code == turn.state.plan_offer), None)
    if plan is None:
        return _idle(turn.state), [turn.reply("plan_unavailable")]
    today = turn.now.astimezone(facts.policy.tz).date()
    sub = plans.subscription_for(facts.subscriber, plan, lang, today)
    text = _named(turn, "plan_ordered", sub.name, fee=money(lang, sub.fee_fen), renews=day(lang, sub.renews_on))
    return _idle(turn.state), [OrderPlan(sub), SendMessage(text, CONFIRMATION)]


def _no_order(turn: Turn, command: cmds.Command) -> Outcome:
    """二次确认: anything but 是/Y to an offer means no order; a real command is then handled as usual."""
    turn = replace(turn, state=_idle(turn.state))
    if isinstance(command, (cmds.Unknown, cmds.Numbers, cmds.Code)) or command == cmds.Keyword(cmds.NO):
        return turn.state, [turn.reply("plan_not_ordered")]
    return _dispatch(turn, command)


# --- listings, a page at a time -------------------------------------------------------------------------------

LIST, QUERY, BILL, CONFIRM, PAY_CONFIRM, PLANS = "list", "query", "bill", "confirm", "pay_confirm", "plans"
Lines = tuple[list[pages.Line], dict[str, object]]


def _list_lines(turn: Turn, state: DialogState) -> Lines:
    lang, subscriber = turn.lang, turn.facts.subscriber
    listed = [(n, subscriber.subscription(i)) for n, i in enumerate(state.options, 1)]
    lines = [_line(lang, "list_line", s.name, n=n, fee=money(lang, s.fee_fen)) for n, s in listed if s is not None]
    return lines, {"count": len(state.options)}


# What each listing shows, from the facts and the state that offers it (its options, its confirmed amounts).
_LINES: dict[str, Callable[[Turn, DialogState], Lines]] = {
    LIST: _list_lines, QUERY: _query_lines, BILL: _bill_lines, CONFIRM: _confirm_lines, PAY_CONFIRM: _pay_lines,
    PLANS: _plan_lines,
}


def _line(lang: str, key: str, name: str, **values: object) -> pages.Line:
    return pages.Line(name, lambda shown: render(lang, key, name=shown, **values))


def _listing(turn: Turn, state: DialogState, key: str) -> pages.Listing:
    lines, values = _LINES[key](turn, state)

    def compose(shown: list[str], back: bool, more: bool) -> str:
        # On a screen `0` always leads somewhere: the page before, or from the first page the session's menu.
        pages = _nav(turn.lang, back or turn.on_screen, more)
        return turn.show(key, lines="\n".join(shown), pages=pages, **values)

    return pages.Listing(lines, compose, lambda text: fits_screen(turn.facts.policy, key, text, turn.screen))


def _nav(lang: str, back: bool, more: bool) -> str:
    """The line offering the pages after and before, if any: `98` more, `0` back, as USSD menus do."""
    ways = [render(lang, key) for key, offered in (("page_more", more), ("page_back", back)) if offered]
    return "\n" + " ".join(ways) if ways else ""


def _show(turn: Turn, state: DialogState, key: str, start: int = 0) -> Outcome:
    """Listing `key` from line `start`, remembered so that `98` and `0` can turn its pages."""
    page = _listing(turn, state, key).page(start)
    return replace(state, listing=key, page_start=page.start), [Reply(page.text)]


def _turn_page(turn: Turn, text: str) -> Outcome | None:
    """`98` or `0` answering the listing just shown, if it has a page that way; None when the text means anything
    else (then `98` is package 98, if there is one)."""
    state = turn.state
    if text not in (pages.MORE, pages.BACK) or state.listing not in _LINES:
        return None
    if turn.clock - state.updated_at > IDLE_TIMEOUT:  # a listing long left is not what a 98 now answers
        return None
    listing = _listing(turn, state, state.listing)
    if text == pages.BACK and state.page_start:
        return _show(turn, state, state.listing, listing.previous(state.page_start))
    following = listing.page(state.page_start).end
    if text == pages.MORE and following < len(listing.lines):
        return _show(turn, state, state.listing, following)
    # No page that way. A screen shows its page again (a number there has a key of its own); an SMS means the number.
    return _show(turn, state, state.listing, state.page_start) if turn.on_screen else None


def _off_page(turn: Turn) -> Turn:
    """Any other message leaves the listing: `98` then means the next page only right after a page was shown."""
    return replace(turn, state=replace(turn.state, listing="", page_start=0))


def _named(turn: Turn, key: str, name: str, **values: object) -> str:
    """Template `key` naming `name`, whole unless the message's budget needs it cut."""

    def text_for(shown: str) -> str:
        return turn.say(key, name=shown, **values)

    return text_for(fit_name(name, text_for, lambda text: fits_screen(turn.facts.policy, key, text, turn.screen)))


# --- a USSD session's first screen -----------------------------------------------------------------------------


def _first_screen(turn: Turn) -> Outcome:
    """The menu; or, while a cancel waits for its confirmation or its code, that step again with the way to the menu:
    the same cancel, whether it began by SMS or in another session."""
    state = turn.state
    if state.intent != CANCEL or state.stage not in (CONFIRMING, VERIFYING):
        return state, [turn.reply("menu")]
    if state.stage == VERIFYING:
        waiting = turn.show("code_expired" if _code_expired(turn) else "code_waiting")
        return state, [turn.reply("resume", screen=waiting)]
    return _show(turn, state, CONFIRM)  # the confirmation as quoted, a page at a time, `0` to the menu


# --- the conversation log -----------------------------------------------------------------------------------


def heard(state: DialogState, text: str) -> str:
    """What the conversation log may keep of `text` arriving in `state`: while a code is awaited, anything like one
    is starred out, as the codes we send never reach the log."""
    return cmds.masked_codes(text) if state.stage == VERIFYING else text


# --- handed over to a person (人工) -----------------------------------------------------------


def _handed_over(turn: Turn, command: cmds.Command, message: Message) -> Outcome:
    """Every message is for the person; STOP and START still take effect, and the bot says once that the person
    will answer. Only ops resolving the escalation hands the number back."""
    if turn.on_screen:  # a menu key is for no person: the screen says who has the conversation, and where
        return turn.state, [turn.reply("human_waiting")]
    kept: list[Effect] = [ForAgent(heard(turn.state, message.text))]
    if command in (cmds.Keyword(cmds.STOP), cmds.Keyword(cmds.START)):
        state, effects = _keyword(turn, command.name)  # type: ignore[union-attr]
        return state, kept + effects
    if turn.state.human_noticed:
        return turn.state, kept
    return replace(turn.state, human_noticed=True), kept + [turn.reply("human_waiting")]
