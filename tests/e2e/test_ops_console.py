"""The ops console through the Flask test client: every page, every role's refusals, CSRF, sign-in limits, idle
sign-out, masked numbers and audited reveals, and the whole escalation loop of an SMS 人工."""

from __future__ import annotations

import re

import pytest

from dialogs.reasons import PAYMENT_FAILED, REQUESTED
from gateway import create_app
from gateway.state import audit, escalations, operators
from tests.support.ops import PASSWORD, Operator, csrf_token, signed_in

NUMBER = "+8613800138000"
WHOLE = ("+8613800138000", "13800138000")
PAGES = ["/ops/", "/ops/escalations", "/ops/escalations?show=resolved", "/ops/audit", "/ops/subscribers",
         "/ops/rq/", "/ops/rq/0/view/workers", "/ops/rq/0/data/queues.json"]


@pytest.fixture
def phone(seeded, phone):
    return phone


@pytest.fixture
def viewer(app) -> Operator:
    return signed_in(app, "li", operators.VIEWER)


@pytest.fixture
def agent(app) -> Operator:
    return signed_in(app, "wang", operators.AGENT)


@pytest.fixture
def admin(app) -> Operator:
    return signed_in(app, "zhao", operators.ADMIN)


def escalation_link(operator: Operator, reason: str = REQUESTED) -> str:
    found = re.search(rf'href="(/ops/escalations/s[0-9a-f]+/{reason})"', operator.page("/ops/escalations"))
    assert found, "the escalation is not listed"
    return found.group(1)


def subscriber_link(operator: Operator) -> str:
    response = operator.get(f"/ops/subscribers?number={NUMBER}")
    assert response.status_code == 302
    return response.headers["Location"]


# --- signing in -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES + ["/ops/subscribers/s0000", "/ops/escalations/s0000/requested"])
def test_every_page_needs_a_signed_in_operator(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 302 and "/ops/sign-in" in response.headers["Location"]


def test_a_wrong_password_or_name_signs_nobody_in(app) -> None:
    operator = Operator(app, "wang", operators.AGENT)
    assert operator.sign_in("wrong password").status_code == 401
    assert operator.get("/ops/").status_code == 302
    nobody = Operator(app, "wang", operators.AGENT)
    nobody.name = "nobody"
    assert nobody.sign_in().status_code == 401


def test_signing_in_goes_to_the_page_asked_for_but_never_off_the_console(app) -> None:
    operator = Operator(app, "wang", operators.AGENT)

    def sign_in_then(wanted: str) -> str:
        form = {"name": "wang", "password": PASSWORD, "csrf_token": csrf_token(operator.page("/ops/sign-in"))}
        return operator.client.post(f"/ops/sign-in?next={wanted}", data=form).headers["Location"]

    assert sign_in_then("/ops/audit") == "/ops/audit"
    for elsewhere in ("https://evil.example/ops/", "//evil.example/ops/", "/api/v1/subscribers/x"):
        assert sign_in_then(elsewhere) == "/ops/"


def test_sign_out_ends_the_session(agent) -> None:
    assert agent.post("/ops/sign-out", page="/ops/").status_code == 302
    assert agent.get("/ops/").status_code == 302


def test_the_session_cookie_is_http_only_lax_and_secure_on_https(app) -> None:
    operator = Operator(app, "wang", operators.AGENT)
    cookie = operator.sign_in().headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie  # PUBLIC_BASE_URL is https


def test_the_session_cookie_is_not_secure_on_plain_http(test_config) -> None:
    app = create_app({**test_config, "PUBLIC_BASE_URL": "http://ops.internal"})
    operator = Operator(app, "wang", operators.AGENT)
    assert "Secure" not in operator.sign_in().headers["Set-Cookie"]


def test_an_idle_session_is_signed_out(agent, clock) -> None:
    clock.advance(minutes=29)
    assert agent.get("/ops/").status_code == 200
    clock.advance(minutes=31)
    response = agent.get("/ops/escalations")
    assert response.status_code == 302 and "/ops/sign-in" in response.headers["Location"]
    assert agent.get("/ops/").status_code == 302
    assert "Signed out after 30 minutes" in agent.page("/ops/sign-in")


def test_a_removed_operator_is_signed_out(app, agent) -> None:
    runtime = app.extensions["tdbot"]
    operators.remove(runtime.redis, runtime.keys, "wang")
    assert agent.get("/ops/").status_code == 302


def test_sign_in_attempts_are_limited_per_name_and_address(test_config) -> None:
    app = create_app({**test_config, "RATELIMIT_ENABLED": True, "TDBOT_RATE_LIMIT_SIGNIN": "3/minute"})
    operator = Operator(app, "wang", operators.AGENT)
    assert [operator.sign_in("wrong").status_code for _ in range(3)] == [401, 401, 401]
    assert operator.sign_in().status_code == 429  # even the right password, until the minute is over


# --- CSRF -------------------------------------------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused(app, agent, phone) -> None:
    phone.send("人工")
    link = escalation_link(agent)
    assert agent.client.post(f"{link}/take").status_code == 400
    assert agent.client.post(f"{link}/take", data={"csrf_token": "forged"}).status_code == 400
    assert escalations.listing(agent.app.extensions["tdbot"].redis, agent.app.extensions["tdbot"].keys)[0].agent == ""
    stranger = Operator(app, "li", operators.VIEWER)
    response = stranger.client.post("/ops/sign-in", data={"name": "li", "password": PASSWORD})
    assert response.status_code == 400 and stranger.get("/ops/").status_code == 302


# --- every page, every role -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_shows_for_a_viewer(viewer, phone, path) -> None:
    phone.send("人工")
    assert viewer.get(path).status_code == 200


def test_the_dashboard_draws_its_charts(viewer, phone) -> None:
    phone.send("人工")
    phone.send("0000")
    page = viewer.page("/ops/")
    assert page.count("<svg") == 5 and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert 'id="open-escalations">1<' in page
    assert "in twilio (2)" in page  # two messages in over the last hour


def test_a_viewer_sees_escalations_and_timelines_but_changes_nothing(viewer, phone) -> None:
    phone.send("人工")
    link = escalation_link(viewer)
    assert "人工" in viewer.page(link)
    assert "Take it" not in viewer.page(link)
    for action in ("take", "reply", "resolve"):
        assert viewer.post(f"{link}/{action}", {"text": "x", "note": "x"}, page=link).status_code == 403
    assert viewer.post(f"{subscriber_link(viewer)}/reveal", page=subscriber_link(viewer)).status_code == 403


def test_only_an_admin_may_act_on_queues(viewer, admin) -> None:
    assert viewer.client.post("/ops/rq/queue/default/failed/empty").status_code == 403
    assert viewer.get("/ops/rq/requeue/default").status_code == 403
    assert admin.client.post("/ops/rq/queue/default/failed/empty").status_code == 403  # not from the console's pages
    origin = {"Origin": "http://localhost"}
    assert admin.client.post("/ops/rq/queue/default/failed/empty", headers=origin).status_code == 200


# --- masked numbers ---------------------------------------------------------------------------------------------


def test_numbers_are_masked_on_every_page_and_in_every_link(agent, phone) -> None:
    phone.send("人工")
    link = escalation_link(agent)
    agent.post(f"{link}/take", page=link)
    for path in ["/ops/", "/ops/escalations", link, subscriber_link(agent), "/ops/audit"]:
        page = agent.page(path)
        assert not any(whole in page for whole in WHOLE), path
        assert "+86 138****8000" in page or path == "/ops/"
    assert not any(whole in subscriber_link(agent) for whole in WHOLE)


def test_an_admin_reveal_shows_the_number_and_is_audited(admin, phone) -> None:
    phone.send("0000")
    page = subscriber_link(admin)
    assert NUMBER not in admin.page(page)
    revealed = admin.post(f"{page}/reveal", page=page)
    assert revealed.status_code == 200 and f'<span id="number">{NUMBER}</span>' in revealed.get_data(as_text=True)
    runtime = admin.app.extensions["tdbot"]
    [trail] = [e for e in audit.read_all(runtime.redis, runtime.keys.audit(NUMBER)) if e["kind"] == "operator"]
    assert (trail["operator"], trail["action"]) == ("zhao", "reveal")
    [action] = audit.read(runtime.redis, audit.operators_key(runtime.keys))
    assert (action["operator"], action["action"], action["msisdn"]) == ("zhao", "reveal", NUMBER)
    assert "reveal" in admin.page("/ops/audit")


# --- search -----------------------------------------------------------------------------------------------------


def test_search_by_number_finds_the_subscriber_however_it_is_written(agent, phone) -> None:
    phone.send("TD")
    for written in (NUMBER, "13800138000", "+86 138 0013 8000"):
        response = agent.get(f"/ops/subscribers?number={written.replace('+', '%2B')}")
        assert response.status_code == 302, written
    page = agent.page(subscriber_link(agent))
    assert "视频会员" in page and "in</b> (twilio): TD" in page


def test_search_for_an_unknown_or_invalid_number_says_so(agent) -> None:
    assert agent.get("/ops/subscribers?number=%2B8613900000001").status_code == 404
    assert agent.get("/ops/subscribers?number=hello").status_code == 400
    assert agent.get("/ops/subscribers/s0123456789").status_code == 404


# --- the escalation loop ----------------------------------------------------------------------------------------


def test_an_agent_takes_replies_and_resolves_a_human_request(agent, phone) -> None:
    assert "人工" in phone.send("人工")
    assert "客服会在此回复" in phone.send("我的账单不对")
    assert phone.send("还在吗？") == ""
    link = escalation_link(agent)
    page = agent.page(link)
    assert "我的账单不对" in page and "还在吗？" in page and "The bot is quiet" in page
    agent.post(f"{link}/take", page=link)
    agent.post(f"{link}/reply", {"text": "您好，我是客服小王，马上为您核对。"}, page=link)
    assert phone.inbox()[-1] == "【中国移动】您好，我是客服小王，马上为您核对。"
    assert phone.send("谢谢") == ""
    page = agent.page(link)
    assert "谢谢" in page and "客服小王" in page and "sent by a person" in page
    resolved = agent.page(agent.post(f"{link}/resolve", {"note": "账单已核对"}, page=link).headers["Location"])
    assert "resolved" in resolved and "账单已核对" in resolved
    assert "视频会员" in phone.send("0000")  # the bot answers again
    assert "账单已核对" in agent.page("/ops/escalations?show=resolved")
    timeline = agent.page(subscriber_link(agent))
    assert "wang</b> resolve" in timeline and "wang</b> reply" in timeline and "delivery" in timeline


def test_resolving_needs_a_note(agent, phone) -> None:
    phone.send("人工")
    link = escalation_link(agent)
    agent.post(f"{link}/resolve", {"note": "  "}, page=link)
    assert "Say in a note" in agent.page(link)
    assert phone.send("hello") != "" and phone.send("again") == ""  # still quiet after the one notice


def test_an_agent_cannot_reply_to_an_escalation_another_agent_took(app, agent, admin, phone) -> None:
    phone.send("人工")
    link = escalation_link(agent)
    agent.post(f"{link}/take", page=link)
    other = signed_in(app, "sun", operators.AGENT)
    response = other.post(f"{link}/reply", {"text": "hi"}, page=link)
    assert "Not done: taken by wang" in other.page(response.headers["Location"])
    assert phone.inbox() == []
    admin.post(f"{link}/take", page=link)
    assert "zhao" in admin.page(link)


def test_escalations_of_every_kind_are_listed_oldest_first_with_their_context(agent, phone, clock) -> None:
    store = phone.runtime.store
    store.escalate("+8618600000000", PAYMENT_FAILED, clock(), context={"statement": "s-1", "reference": "r-1"})
    clock.advance(minutes=1)
    phone.send("人工")
    page = agent.page("/ops/escalations")
    assert page.index(PAYMENT_FAILED) < page.index(REQUESTED)
    assert "statement: s-1" in page and "+86 186****0000" in page
