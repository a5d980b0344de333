"""Run one inbound message as one atomic step for its subscriber."""

from __future__ import annotations

import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dialogs import budgets
from dialogs.apply import apply
from dialogs.commands import masked_codes
from dialogs.effects import NOTICE, Effect, Escalate, ForAgent, IssueStatement, OrderPlan, Pay, Reply, SendMessage
from dialogs.engine import Facts, Message, heard, step
from dialogs.language import reply_lang
from dialogs.messages import render
from dialogs.model import DialogState, Subscriber
from dialogs.reasons import REQUESTED
from gateway import metrics
from gateway.delivery.routing import SMS, Channel
from gateway.jobs import outbox
from gateway.jobs.once import queue_once
from gateway.jobs.outbox import Pending
from gateway.runtime import Runtime
from gateway.state import audit, codec, escalations
from gateway.state.ids import digest
from gateway.state.messages import AGENT, REPLY, OutboundMessage
from gateway.state.quotas import OverQuota, Quota
from gateway.state.store import CONTENT_ID, PROVIDER_ID, Contention, Writes

log = logging.getLogger(__name__)

MAX_TEXT = 1600
MAX_TRIES = 50
MAX_BACKOFF = 0.05
# A reply to a number we have no record of is kept only while it is delivered: strangers must not fill Redis.
STRANGER_MESSAGE_TTL = 86400


@dataclass(frozen=True)
class Inbound:
    msisdn: str
    text: str
    inbound_id: str
    channel: Channel = SMS
    provider_answered: str = ""  # the keyword (dialogs.commands STOP, START, HELP) the provider already answered
    id_kind: str = PROVIDER_ID  # CONTENT_ID: the link gave no id, and sender + text stand in for seconds only
    screen: budgets.Screen = budgets.SMS  # what the reply is: an SMS, or a USSD screen of so many characters

    @classmethod
    def received(cls, msisdn: str, text: str, link_id: str | None, **fields: Any) -> Inbound:
        """A message known by its link's own id; when the link gives none, by its sender and text, which make it the
        same message for a few seconds only (a retried request), never days later (docs/delivery.md)."""
        if link_id:
            return cls(msisdn, text, link_id, **fields)
        return cls(msisdn, text, content_id(msisdn, text), id_kind=CONTENT_ID, **fields)


def notice(msisdn: str | None, text: str, name: str) -> str:
    """The notice `name` (too long, flooded, busy, unknown sender) answering `text` without a step: in the language
    its words ask for, else its number's country's. Worked out only when one is given: a step answers in the
    subscriber's own language."""
    return render(reply_lang(text[:MAX_TEXT], msisdn=msisdn), name)


def content_id(msisdn: str, text: str) -> str:
    """The id standing in for a link's own: the same sender and text give the same id."""
    return "h" + digest(f"{msisdn}\n{text}")


@dataclass(frozen=True)
class Result:
    reply: str
    messages: list[OutboundMessage] = field(default_factory=list)
    pending: Pending | None = None  # the after-commit work this step committed to its outbox
    duplicate: bool = False
    stranger: bool = False  # a number we have no record of: answered, never stored
    recorded: str = ""  # what the inbound's record keeps, when not the reply alone (a USSD screen and its place)

    @property
    def record(self) -> str:
        """The inbound's recorded answer: what a retry of it is answered from."""
        return self.recorded or self.reply


# A channel's own record of a step's answer, from the reply and the dialog state after the step (None: a number we
# have no record of). A USSD session keeps its screen with it, to read the session's next answer against.
Present = Callable[[str, DialogState | None], str]


@dataclass(frozen=True)
class Outcome:
    """A step's result plus what it writes back."""

    result: Result
    dialog: DialogState | None = None
    subscriber: Subscriber | None = None
    heard: str = ""  # what the conversation log keeps of the inbound text
    effects: list[Effect] = field(default_factory=list)
    before: DialogState = field(default_factory=DialogState)  # the dialog as the step found it


class Service:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.keys = runtime.keys

    def handle(self, inbound: Inbound, quotas: Sequence[Quota] = (), present: Present | None = None) -> Result:
        """Run `inbound` as one step. Over one of `quotas` (counted in the step's first read) it raises OverQuota
        and changes nothing else. `present`, if given, makes the inbound's record (`Result.record`)."""

        def work(subscriber: Subscriber | None, dialog: DialogState, now: datetime) -> Outcome:
            outcome = self._step(inbound, subscriber, dialog, now)
            if present is None:
                return outcome
            recorded = present(outcome.result.reply, outcome.dialog)
            return replace(outcome, result=replace(outcome.result, recorded=recorded))

        started = time.perf_counter()
        try:
            result = self._transact(inbound, work, quotas)
        except Exception as exc:
            metrics.inbound(self.runtime, inbound.channel.name, _failure(exc), time.perf_counter() - started)
            raise
        metrics.inbound(self.runtime, inbound.channel.name, _outcome(result), time.perf_counter() - started)
        self._after_commit(inbound, result)
        return result

    def _transact(self, inbound: Inbound, work: Callable[..., Outcome], quotas: Sequence[Quota] = ()) -> Result:
        """Read, step and write back as one compare-and-set: two round trips, retried when another step won."""
        msisdn, inbound_id, store = inbound.msisdn, inbound.inbound_id, self.runtime.store
        # The inbound record last: the read counts nothing against the quotas once it holds an answer.
        keys = (self.keys.subscriber(msisdn), self.keys.dialog(msisdn), self.keys.inbound(msisdn, inbound_id))
        lost: Result | None = None  # the result of a commit whose answer never came back
        for attempt in range(MAX_TRIES):
            raw_sub, raw_dialog, seen = values = self._read(keys, inbound_id, quotas if attempt == 0 else ())
            if seen is not None:
                own = lost is not None and self._committed(inbound, lost)
                return lost if own else Result(reply=seen.decode(), duplicate=True)
            now = self.runtime.clock()
            subscriber = codec.subscriber_from_json(raw_sub) if raw_sub else None
            outcome = work(subscriber, codec.dialog_from_json(raw_dialog), now)
            writes = Writes()
            self._write(writes, inbound, outcome, now)
            try:
                if not len(writes) or store.write_if_unchanged(dict(zip(keys, values, strict=True)), writes):
                    return outcome.result
            except (RedisConnectionError, RedisTimeoutError):
                # Redis may have run it: the next read tells (docs/delivery.md, "A commit whose answer is lost").
                log.warning("no answer to the commit of %s for %s: reading again", inbound_id, msisdn)
                lost = outcome.result
                continue
            lost = None
            _back_off(attempt)
        raise Contention(msisdn)

    def _committed(self, inbound: Inbound, result: Result) -> bool:
        """Was the commit on record for `inbound` the one that made `result`? Its outbox entry names the step's own
        new message ids; a step with no after-commit work answers the same from the record either way."""
        if result.pending is None:
            return False
        entry = self.runtime.redis.hget(outbox.key(self.runtime, inbound.msisdn), inbound.inbound_id)
        return entry == result.pending.to_json().encode()

    def _read(self, keys: Sequence[str], inbound_id: str, quotas: Sequence[Quota]) -> list[bytes | None]:
        """The values of `keys`, counting this inbound once against each of `quotas` in the same round trip (not at
        all when it was answered already: no places come back). Each quota remembers its first `allowed` ids and the
        one after them, which gets the notice (docs/delivery.md)."""
        counters = [(q.key, q.seconds, q.allowed + 1) for q in quotas]
        places, values = self.runtime.store.read(keys, inbound_id, counters)
        for quota, place in zip(quotas, places, strict=False):
            if place > quota.allowed:
                raise OverQuota(quota, place)
        return values

    def _step(self, inbound: Inbound, subscriber: Subscriber | None, dialog: DialogState, now: datetime) -> Outcome:
        if subscriber is None:
            return self._stranger(inbound, now)
        facts = Facts(
            subscriber=subscriber, policy=self.runtime.policy(subscriber),
            secret=self.runtime.secret, fresh_code=f"{secrets.randbelow(10**6):06d}",
        )
        state, effects = step(dialog, Message(inbound.text, inbound.provider_answered, inbound.screen), facts, now)
        updated = _came_by(apply(subscriber, effects, now), inbound.channel)
        route = self.runtime.routing.route(subscriber.msisdn, subscriber, answering=inbound.channel)
        reply = "\n".join(e.text for e in effects if isinstance(e, Reply))
        sent = [(e.text, e.kind) for e in effects if isinstance(e, SendMessage)]
        messages = [_message(subscriber.msisdn, text, kind, route, now) for text, kind in self._reply(inbound, reply)]
        messages += [_message(subscriber.msisdn, text, kind, route, now) for text, kind in sent]
        result = Result(reply=reply, messages=messages, pending=_pending(messages, effects, updated, now))
        return Outcome(result, state, updated if updated != subscriber else None, heard=heard(dialog, inbound.text),
                       effects=effects, before=dialog)

    def _stranger(self, inbound: Inbound, now: datetime) -> Outcome:
        if inbound.provider_answered:  # the provider's own answer is the only one a stranger gets
            return Outcome(Result(reply="", stranger=True))
        reply = notice(inbound.msisdn, inbound.text, "unknown_sender")
        route = self.runtime.routing.route(inbound.msisdn, answering=inbound.channel)
        messages = [_message(inbound.msisdn, text, kind, route, now) for text, kind in self._reply(inbound, reply)]
        pending = Pending(at=now.timestamp(), messages=[m.id for m in messages]) if messages else None
        return Outcome(Result(reply=reply, messages=messages, pending=pending, stranger=True))

    def _reply(self, inbound: Inbound, reply: str) -> list[tuple[str, str]]:
        """The reply as a message to send, for a channel whose HTTP answer cannot carry it."""
        return [(reply, REPLY)] if reply and not inbound.channel.replies_in_body else []

    def notify(self, inbound: Inbound, about: str, text: str) -> None:
        """Tell the sender of `inbound` something `about` it outside any step (over their quota, too long), by a
        message, for a channel that cannot answer in its HTTP response. Once per inbound id: a retry sends nothing."""
        now = self.runtime.clock()
        route = self.runtime.routing.route(inbound.msisdn, answering=inbound.channel)
        queue_once(self.runtime, replace(_message(inbound.msisdn, text, NOTICE, route, now),
                                         id=digest(f"{inbound.inbound_id}|{about}")))

    def _write(self, pipe: Writes, inbound: Inbound, outcome: Outcome, now: datetime) -> None:
        store, msisdn, result = self.runtime.store, inbound.msisdn, outcome.result
        if outcome.result.stranger:  # storing whatever unknown numbers send would let anyone fill Redis
            self._write_stranger(pipe, inbound, result)
            return
        if outcome.dialog is not None:
            store.save_dialog(msisdn, outcome.dialog, pipeline=pipe)
        if outcome.subscriber is not None:
            store.save_subscriber(outcome.subscriber, pipeline=pipe)
        for message in result.messages:
            store.save_message(message, pipeline=pipe)
        store.record_inbound(msisdn, inbound.inbound_id, result.record, pipeline=pipe, kind=inbound.id_kind)
        if result.pending is not None:  # in the same commit: the work cannot be lost once the step has happened
            outbox.record(self.runtime, msisdn, inbound.inbound_id, result.pending, pipe)
        _record(self.runtime, pipe, inbound, outcome, now)

    def _write_stranger(self, pipe: Writes, inbound: Inbound, result: Result) -> None:
        """Only a reply a stranger cannot have otherwise (a message), for a while; with the inbound's record and its
        outbox entry, so that a retry of the request sends nothing more (docs/delivery.md)."""
        if not result.messages:
            return
        store, msisdn = self.runtime.store, inbound.msisdn
        for message in result.messages:
            store.save_message(message, pipeline=pipe)
            pipe.expire(self.keys.message(msisdn, message.id), STRANGER_MESSAGE_TTL)
        store.record_inbound(msisdn, inbound.inbound_id, result.record, pipeline=pipe, kind=inbound.id_kind,
                             longest=STRANGER_MESSAGE_TTL)
        if result.pending is not None:
            outbox.record(self.runtime, msisdn, inbound.inbound_id, result.pending, pipe)

    def person_message(self, msisdn: str, text: str) -> OutboundMessage:
        """What a person in the ops console says to `msisdn`, made as a step's SendMessage is: the caller stores it
        and its outbox entry in one commit, and `outbox.run` queues it, through the same outbound path."""
        subscriber = self.runtime.store.load_subscriber(msisdn)
        signature = self.runtime.policy(subscriber).sender_id if subscriber else ""  # as the rules ask of any SMS
        # It answers no message in particular: the carrier's route, else the channel the subscriber last texted on.
        route = self.runtime.routing.route(msisdn, subscriber)
        return _message(msisdn, signature + text, AGENT, route, self.runtime.clock())

    def _after_commit(self, inbound: Inbound, result: Result) -> None:
        """Writes outside the subscriber's slot (global indexes, RQ), from the outbox entry the step committed. If
        they fail the step still stands and answers: the entry stays for a retry or the cron to finish."""
        msisdn, inbound_id = inbound.msisdn, inbound.inbound_id
        try:
            if result.duplicate:
                outbox.resume(self.runtime, msisdn, inbound_id)
            elif result.pending is not None:
                outbox.run(self.runtime, msisdn, inbound_id, result.pending)
        except Exception:
            log.exception("after-commit work of %s for %s failed; it stays in the outbox", inbound_id, msisdn)


def _record(runtime: Runtime, pipe: Writes, inbound: Inbound, outcome: Outcome, now: datetime) -> None:
    """In the step's commit: its audit entry, the escalations it opens, and what it keeps for a person (人工)."""
    msisdn = inbound.msisdn
    said = {"id": inbound.inbound_id, "channel": inbound.channel.name, "text": _shown(outcome.heard)}
    runtime.store.audit(msisdn, audit.step_entry(
        inbound.inbound_id, inbound.channel.name, outcome.heard, outcome.result.reply, outcome.result.messages,
        outcome.effects, outcome.before, outcome.dialog), now, pipeline=pipe)
    for effect in outcome.effects:
        if isinstance(effect, Escalate):
            escalations.open_in(pipe, runtime.keys, escalations.new(msisdn, effect.reason, now, said))
        elif isinstance(effect, ForAgent):
            entry = {"at": int(now.timestamp()), "from": "subscriber", **said, "text": _shown(effect.text)}
            escalations.add_to_log(pipe, runtime.keys, msisdn, REQUESTED, entry)


def _shown(heard: str) -> str:
    """What a person reads of a message in the console: anything like a code hidden, whatever the stage."""
    return masked_codes(heard[: audit.TEXT_CHARS])


def _message(msisdn: str, text: str, kind: str, route: str, now: datetime) -> OutboundMessage:
    return OutboundMessage(uuid.uuid4().hex, msisdn, text, kind, int(now.timestamp()), route=route)


def _came_by(subscriber: Subscriber, channel: Channel) -> Subscriber:
    """The subscriber as last seen on `channel`: an SMS channel is where their notices go by default."""
    if not channel.carries_sms or subscriber.sms_channel == channel.name:
        return subscriber
    return replace(subscriber, sms_channel=channel.name)


def _pending(
    messages: list[OutboundMessage], effects: list[Effect], updated: Subscriber, now: datetime
) -> Pending | None:
    """What must happen outside the subscriber's slot once the step commits; None when nothing."""
    pending = Pending(
        at=now.timestamp(), messages=[m.id for m in messages],
        escalations=[e.reason for e in effects if isinstance(e, Escalate)],
        payments=[[p.statement_id, p.amount_fen, p.reference] for p in _new_charges(updated, effects)],
        statements=[e.statement.id for e in effects if isinstance(e, IssueStatement)],
        ordered=any(isinstance(e, OrderPlan) for e in effects),  # a new package: its renewal needs reminders
    )
    return None if pending.empty else pending


def _new_charges(updated: Subscriber, effects: list[Effect]) -> list[Pay]:
    """Charges this step made pending; a charge already under way on a statement gets no second job."""
    return [
        e for e in effects
        if isinstance(e, Pay) and (s := updated.statement(e.statement_id)) and s.pending_reference == e.reference
    ]


def _outcome(result: Result) -> str:
    """How a step ended, for /metrics."""
    if result.duplicate or result.stranger:
        return metrics.DUPLICATE if result.duplicate else metrics.STRANGER
    return metrics.STEPPED[0] if result.reply else metrics.STEPPED[1]


def _failure(exc: Exception) -> str:
    return "over_quota" if isinstance(exc, OverQuota) else "contention" if isinstance(exc, Contention) else "error"


def _back_off(attempt: int) -> None:
    """Lost a race for this subscriber: wait a little, randomly, so racing steps stop colliding."""
    time.sleep(random.uniform(0, min(MAX_BACKOFF, 0.001 * 2**attempt)))
