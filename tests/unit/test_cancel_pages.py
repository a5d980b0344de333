"""Cancelling many packages at once (issue 9, item 19): the confirmation a page at a time (`98` more, `0` back), every
page saying how many packages, the total and how to answer; the result in as many messages as its lines need. Every
page and message keeps its template's budget, and together they name every selected package exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers import POLICIES, CarrierPolicy
from dialogs import budgets
from dialogs.budgets import SMS, USSD, Screen
from dialogs.effects import CODE, CONFIRMATION, Reply, SendMessage
from dialogs.engine import Facts, Message, statement_for, step
from dialogs.messages import CATALOGUES, money, render, screen_template, when
from dialogs.model import CONFIRMING, IDLE, VERIFYING, DialogState, Subscriber, Subscription
from tests.support.imported import MAX_FEE_FEN, MAX_NAME, MAX_PACKAGES, fees, names, ordinary_fees, ordinary_names
from tests.support.profiles import examples

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
MSISDN = "+8613800138000"
FRESH = "424242"
TWILIO_MAX = 1600  # characters Twilio takes in one message body
CMCC = POLICIES["cmcc"]


def subscriber(items: list[tuple[str, int]], locale: str) -> Subscriber:
    subs = tuple(Subscription(f"p{i}", name, f"S{i}", fee, date(2026, 12, 7)) for i, (name, fee) in enumerate(items))
    return Subscriber(MSISDN, locale=locale, subscriptions=subs)


def facts(who: Subscriber, policy: CarrierPolicy) -> Facts:
    return Facts(who, policy, b"secret", FRESH)


# --- reading what was said --------------------------------------------------------------------------------------


def sections(text: str, template: str) -> tuple[str, list[str], str]:
    """A message rendered from `template`: the text before its lines, its lines, and the text after them (names
    never hold a line feed: the API refuses them)."""
    head, rest = template.split("{lines}")
    rows = text.split("\n")
    before, after = head.count("\n"), rest.count("\n")
    return "\n".join(rows[:before]), rows[before:len(rows) - after], "\n".join(rows[len(rows) - after:])


def shown_name(line: str, template: str, **values: object) -> str | None:
    """The name in `line` if `line` is `template` with `values`, else None."""
    before, after = (part.format(**values) for part in template.split("{name}"))
    if len(line) < len(before) + len(after) or not (line.startswith(before) and line.endswith(after)):
        return None
    return line[len(before):len(line) - len(after)]


def names_it(shown: str | None, name: str) -> bool:
    """`shown` is `name`, whole or cut short (as dialogs.budgets.fit_name cuts it)."""
    if shown == name:
        return True
    for cut in (budgets.CUT, budgets.GSM_CUT):
        kept = shown.removesuffix(cut) if shown else ""
        if shown and shown.endswith(cut) and 1 <= len(kept) < len(name) and name.startswith(kept):
            return True
    return False


@dataclass(frozen=True)
class Quoted:
    sub: Subscription
    amount_fen: int
    due_at: datetime


def quotes(who: Subscriber, policy: CarrierPolicy, ids: tuple[str, ...]) -> list[Quoted]:
    chosen = [who.subscription(i) for i in ids]
    return [Quoted(s, q.amount_fen, q.due_at) for s in chosen if s for q in [statement_for(facts(who, policy), s, NOW)]]


def assert_confirm_page(page: str, lang: str, policy: CarrierPolicy, quoted: list[Quoted], screen: Screen = SMS
                        ) -> list[str]:
    """A page of the confirmation: it says how many packages and the total, asks Y or N (on a USSD screen: 1 or 2, in
    the screen's own wording, unsigned); its package lines."""
    template = screen_template(lang, "confirm") if screen.chars else CATALOGUES[lang]["confirm"]
    head, body, tail = sections(page, template)
    total = money(lang, sum(q.amount_fen for q in quoted))
    signature = "" if screen.chars else policy.sender_id
    assert head == signature + template.split("{lines}")[0].rstrip("\n").format(count=len(quoted)), page
    assert tail == template.split("{pages}")[1].lstrip("\n").format(amount=total), page
    ways = {render(lang, "page_more"), render(lang, "page_back"),
            render(lang, "page_more") + " " + render(lang, "page_back")}
    return body[:-1] if body and body[-1] in ways else body


def confirm_line_names(line: str, lang: str, policy: CarrierPolicy, q: Quoted) -> bool:
    shown = shown_name(line, CATALOGUES[lang]["confirm_line"], fee=money(lang, q.sub.fee_fen),
                       amount=money(lang, q.amount_fen), deadline=when(lang, q.due_at, policy.timezone))
    return names_it(shown, q.sub.name)


def result_line_names(line: str, lang: str, policy: CarrierPolicy, q: Quoted) -> bool:
    if not q.amount_fen:
        return names_it(shown_name(line, CATALOGUES[lang]["done_line_free"]), q.sub.name)
    shown = shown_name(line, CATALOGUES[lang]["done_line"], amount=money(lang, q.amount_fen),
                       deadline=when(lang, q.due_at, policy.timezone))
    return names_it(shown, q.sub.name)


def assert_result_message(text: str, lang: str, policy: CarrierPolicy, part: int, parts: int) -> list[str]:
    """One of the result messages, numbered n/m when there are several; its package lines."""
    head, body, tail = sections(text, CATALOGUES[lang]["done"])
    template = CATALOGUES[lang]["done"]
    numbered = render(lang, "done_part", n=part, count=parts) if parts > 1 else ""
    assert head == policy.sender_id + template.split("{lines}")[0].rstrip("\n").format(part=numbered), text
    assert tail == template.split("{lines}")[1].lstrip("\n"), text
    return body


# --- driving the engine ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cancelled:
    selected: tuple[str, ...]
    pages: list[str]  # the confirmation, page by page
    results: list[str]  # the result messages, in the order they are sent
    screen: Screen = SMS  # what the confirmation was shown on


def only_reply(effects: list) -> str:
    [reply] = [e for e in effects if isinstance(e, Reply)]
    return reply.text


def has_more(page: str, lang: str) -> bool:
    return ("\n" + render(lang, "page_more")) in page


def cancel(command: str, who: Subscriber, policy: CarrierPolicy, screen: Screen = SMS, turn_pages: bool = True
           ) -> Cancelled:
    """`command`, `98` for as long as a page offers more, `Y`, then the code; each message checked against its
    template's budget on the carrier's route (a reply: on `screen`), and against Twilio's limit."""
    lang, see = who.locale or policy.locale, facts(who, policy)
    state, effects = step(DialogState(), Message(command, screen=screen), see, NOW)
    pages = [only_reply(effects)]
    while turn_pages and has_more(pages[-1], lang):
        assert len(pages) <= MAX_PACKAGES, "a page showed nothing new"
        state, effects = step(state, Message("98", screen=screen), see, NOW)
        pages.append(only_reply(effects))
    assert state.stage == CONFIRMING
    for page in pages:
        assert budgets.fits_screen(policy, "confirm", page, screen) and len(page) <= TWILIO_MAX, page
    selected = state.selected
    state, effects = step(state, Message("Y", screen=screen), see, NOW)
    assert state.stage == VERIFYING
    [code] = [e.text for e in effects if isinstance(e, SendMessage) and e.kind == CODE]
    assert budgets.fits_screen(policy, "code_sms", code) and budgets.fits_screen(policy, "code_sent", only_reply(
        effects), screen)
    state, effects = step(state, Message(FRESH, screen=screen), see, NOW)
    assert state.stage == IDLE
    results = [e.text for e in effects if isinstance(e, SendMessage)]
    assert all(e.kind == CONFIRMATION for e in effects if isinstance(e, SendMessage))
    for text in results:
        assert budgets.fits_screen(policy, "done", text) and len(text) <= TWILIO_MAX, text
    return Cancelled(selected, pages, results, screen)


def assert_each_named_once(done: Cancelled, who: Subscriber, policy: CarrierPolicy, ids: tuple[str, ...]) -> None:
    lang = who.locale or policy.locale
    assert done.selected == ids
    quoted = quotes(who, policy, ids)
    listed = [line for page in done.pages for line in assert_confirm_page(page, lang, policy, quoted, done.screen)]
    assert len(listed) == len(quoted), done.pages
    assert all(confirm_line_names(line, lang, policy, q) for line, q in zip(listed, quoted, strict=True)), listed
    told = [line for n, text in enumerate(done.results, 1)
            for line in assert_result_message(text, lang, policy, n, len(done.results))]
    assert len(told) == len(quoted), done.results
    assert all(result_line_names(line, lang, policy, q) for line, q in zip(told, quoted, strict=True)), told


# --- a hundred packages, as the API accepts them ----------------------------------------------------------------

LONGEST = "咪咕视频钻石会员尊享月包超长名称示例补足到四十个字符长度的名字啊啊啊啊啊啊"
HUNDRED = subscriber([((f"第{i}号" + LONGEST)[:MAX_NAME], MAX_FEE_FEN) for i in range(1, MAX_PACKAGES + 1)], "zh")
assert {len(s.name) for s in HUNDRED.subscriptions} == {MAX_NAME}
ALL_IDS = tuple(s.id for s in HUNDRED.subscriptions)
EVERY_NUMBER = "TD " + " ".join(str(n) for n in range(1, MAX_PACKAGES + 1))


@pytest.mark.parametrize("command", ["TD ALL", "全部退订", EVERY_NUMBER])
@pytest.mark.parametrize("policy", list(POLICIES.values()), ids=list(POLICIES))
def test_cancelling_a_hundred_packages_pages_the_confirmation_and_splits_the_result(command: str,
                                                                                    policy: CarrierPolicy) -> None:
    done = cancel(command, HUNDRED, policy)
    assert len(done.pages) > 1 and len(done.results) > 1
    assert_each_named_once(done, HUNDRED, policy, ALL_IDS)


def test_y_on_the_first_page_cancels_everything_its_total_counted() -> None:
    done = cancel("TD ALL", HUNDRED, CMCC, turn_pages=False)
    assert has_more(done.pages[0], "zh") and f"您将退订{MAX_PACKAGES}项" in done.pages[0]
    told = [line for n, text in enumerate(done.results, 1)
            for line in assert_result_message(text, "zh", CMCC, n, len(done.results))]
    assert len(told) == MAX_PACKAGES


def test_0_goes_back_a_page_of_the_confirmation_and_n_keeps_every_package() -> None:
    see = facts(HUNDRED, CMCC)
    state, effects = step(DialogState(), Message("TD ALL"), see, NOW)
    first = only_reply(effects)
    state, effects = step(state, Message("98"), see, NOW)
    assert only_reply(effects) != first and "0.返回" in only_reply(effects)
    state, effects = step(state, Message("0"), see, NOW)
    assert only_reply(effects) == first and state.stage == CONFIRMING and state.selected == ALL_IDS
    state, effects = step(state, Message("N"), see, NOW)
    assert state.stage == IDLE and only_reply(effects) == CMCC.sender_id + render("zh", "aborted")


def test_a_few_packages_still_take_one_page_and_one_result_message() -> None:
    few = subscriber([("视频会员", 1500), ("音乐包", 1000), ("流量包", 2000)], "zh")
    done = cancel("TD ALL", few, CMCC)
    assert len(done.pages) == 1 and len(done.results) == 1
    assert "98.更多" not in done.pages[0] and "（1/1）" not in done.results[0]
    assert_each_named_once(done, few, CMCC, ("p0", "p1", "p2"))


@pytest.mark.parametrize(("screen", "most"), [(USSD, USSD.chars), (Screen(120), 120)])
def test_on_a_screen_each_page_of_the_confirmation_fits_the_screen(screen: Screen, most: int) -> None:
    done = cancel("TD ALL", HUNDRED, CMCC, screen)
    assert all(len(page) <= most for page in done.pages)
    assert_each_named_once(done, HUNDRED, CMCC, ALL_IDS)


# --- any packages the API accepts, any carrier, either language -----------------------------------------------

# As many packages as the API takes, each count as likely as any other (hypothesis would mostly draw short lists).
packages = st.integers(1, MAX_PACKAGES).flatmap(lambda n: st.lists(st.tuples(names, fees), min_size=n, max_size=n))


@st.composite
def commands(draw: st.DrawFn, count: int) -> tuple[str, tuple[int, ...]]:
    """A cancel of several packages as a subscriber types it, and the list numbers it picks, in order."""
    kind = draw(st.sampled_from(["TD ALL", "全部退订", "numbers"]))
    if kind != "numbers":
        return kind, tuple(range(1, count + 1))
    picked = draw(st.lists(st.integers(1, count), min_size=1, max_size=count, unique=True))
    return "TD " + draw(st.sampled_from([" ", ",", "，"])).join(map(str, picked)), tuple(picked)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=packages, policy=st.sampled_from(list(POLICIES.values())), locale=st.sampled_from(["zh", "en"]),
       screen=st.sampled_from([SMS, USSD]), data=st.data())
def test_every_message_of_a_cancel_fits_and_names_every_package_once(items, policy, locale, screen, data) -> None:
    who = subscriber(items, locale)
    command, numbers = data.draw(commands(len(items)))
    done = cancel(command, who, policy, screen)
    assert_each_named_once(done, who, policy, tuple(who.subscriptions[n - 1].id for n in numbers))


@settings(max_examples=examples(60), deadline=None)
@given(items=st.lists(st.tuples(ordinary_names, ordinary_fees), min_size=1, max_size=3 * budgets.PACKAGES),
       policy=st.sampled_from(list(POLICIES.values())), locale=st.sampled_from(["zh", "en"]))
def test_each_page_and_result_message_holds_at_least_packages_ordinary_lines(items, policy, locale) -> None:
    """The rule the budgets are sized by (dialogs/budgets.py): every part but the last holds budgets.PACKAGES."""
    who = subscriber(items, locale)
    done = cancel("TD ALL", who, policy)
    quoted = quotes(who, policy, done.selected)
    pages = [len(assert_confirm_page(page, locale, policy, quoted)) for page in done.pages]
    results = [len(assert_result_message(text, locale, policy, n, len(done.results)))
               for n, text in enumerate(done.results, 1)]
    assert all(count >= budgets.PACKAGES for count in pages[:-1] + results[:-1]), (pages, results)
