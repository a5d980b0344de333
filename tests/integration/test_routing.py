"""Routes in the running app: messages that answer nothing go by the carrier's route, else the channel the subscriber
last texted on, else the default; each route is paced on its own; records without a route go by the default."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import pytest

from dialogs.reminders import RENEWAL
from gateway import create_app
from gateway.config import ConfigError, InsecureConfig
from gateway.jobs import reminders
from gateway.service import Service
from gateway.state import due as due_index
from gateway.state.messages import SENT
from tests.support.delivery import MSISDN, queue_message, stored
from tests.support.kannel import TOKEN, kannel_settings
from tests.support.phone import Phone, seed_demo
from tests.support.processes import free_port
from tests.support.reminders import due, outbox

KANNEL_MO = "/webhooks/kannel/mo"


@pytest.fixture
def both(twilio_config: dict) -> dict:
    """Twilio and Kannel both configured (Twilio the default route)."""
    return {**twilio_config, **kannel_settings(f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms")}


def texted(app, channel: str | None) -> None:
    client = app.test_client()
    if channel == "kannel":
        query = {"token": TOKEN, "from": "13800138000", "to": "10086", "text": "0000", "coding": "0", "id": "r-1"}
        assert client.get(f"{KANNEL_MO}?{urlencode(query)}").status_code == 200
    elif channel == "twilio":
        Phone(client, app, MSISDN).send("0000")


def renewal_reminder_route(app) -> str:
    """Send the demo subscriber's first renewal reminder (it answers nothing): the route its message got."""
    runtime = app.extensions["tdbot"]
    member, at = min(due(app, RENEWAL).items(), key=lambda item: item[1])
    reminder = due_index.parse(member)
    runtime.clock = lambda: at
    assert reminder.msisdn == MSISDN and reminders.notify(runtime, reminder) == reminders.SENT
    return runtime.store.load_message(MSISDN, reminders.message_id(reminder)).route


@pytest.mark.parametrize(("settings", "last", "route"), [
    ({}, None, "twilio"),
    ({"TDBOT_ROUTE": "kannel"}, None, "kannel-cmcc"),
    ({}, "kannel", "kannel-cmcc"),
    ({}, "twilio", "twilio"),
    ({"TDBOT_ROUTE_CMCC": "kannel"}, "twilio", "kannel-cmcc"),
    ({"TDBOT_ROUTE_CMCC": "twilio"}, "kannel", "twilio"),
    ({"TDBOT_ROUTE_CUCC": "kannel"}, "twilio", "twilio"),  # another carrier's route is not this one's
])
def test_a_reminder_goes_by_the_carriers_route_else_the_last_channel_else_the_default(both, settings, last, route):
    app = create_app({**both, **settings})
    seed_demo(app)
    texted(app, last)
    assert renewal_reminder_route(app) == route


@pytest.mark.parametrize(("last", "route"), [("kannel", "kannel-cmcc"), ("twilio", "twilio")])
def test_what_a_person_writes_from_the_ops_console_goes_where_the_subscriber_last_texted(both, last, route) -> None:
    app = create_app(both)
    seed_demo(app)
    texted(app, last)
    assert Service(app.extensions["tdbot"]).person_message(MSISDN, "您好，我是客服。").route == route


def test_each_route_has_its_own_pace_from_the_environment(test_config) -> None:
    app = create_app({**test_config, **kannel_settings(f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms"),
                      "TDBOT_MPS_KANNEL_CMCC": "100", "TDBOT_MPS_KANNEL": "10", "TDBOT_SENDER_MPS": "1"})
    routes = app.extensions["tdbot"].routes
    assert {name: r.pacer.mps for name, r in routes.items()} == {
        "console": 1.0, "kannel-cmcc": 100.0, "kannel-cucc": 10.0, "kannel-ctcc": 10.0, "kannel-default": 10.0,
    }
    assert len({r.pacer.key for r in routes.values()}) == len(routes)
    assert routes["kannel-cucc"].sender.short_code == "10010"


def test_a_carriers_link_names_its_smsc(test_config) -> None:
    app = create_app({**test_config, **kannel_settings(f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms"),
                      "KANNEL_SMSC_CMCC": "cmcc-smpp"})
    routes = app.extensions["tdbot"].routes
    assert (routes["kannel-cmcc"].sender.smsc, routes["kannel-cucc"].sender.smsc) == ("cmcc-smpp", "")


def test_a_message_of_the_previous_release_without_a_route_goes_by_the_default(phone, app) -> None:
    runtime = app.extensions["tdbot"]
    message = queue_message(runtime)
    runtime.redis.hdel(runtime.keys.message(MSISDN, message.id), "route")
    phone.deliver()
    assert stored(runtime, message).status == SENT and outbox(app, MSISDN) == [message.text]


def test_a_route_no_longer_configured_goes_by_the_default_and_says_so(phone, app, caplog) -> None:
    message = queue_message(app.extensions["tdbot"], route="kannel-cmcc")
    with caplog.at_level(logging.WARNING):
        phone.deliver()
    assert outbox(app, MSISDN) == [message.text]
    assert "route kannel-cmcc" in caplog.text


@pytest.mark.parametrize(("settings", "says"), [
    ({"TDBOT_ROUTE_CMCC": "kannel"}, "kannel is not configured"),
    ({"TDBOT_ROUTE": "twilio"}, "twilio is not configured"),
    ({"TDBOT_ROUTE": "sms"}, "a route is one of"),
    ({"TDBOT_ROUTE_VODAFONE": "console"}, "no carrier 'vodafone'"),
    ({**kannel_settings("http://127.0.0.1:13013/cgi-bin/sendsms"), "KANNEL_SMSC_VODAFONE": "vf"},
     "no carrier 'vodafone'"),
    ({"TDBOT_KANNEL_TOKEN": TOKEN}, "KANNEL_SENDSMS_URL is not"),
    ({"KANNEL_SENDSMS_URL": "http://127.0.0.1:13013/cgi-bin/sendsms"}, "KANNEL_USERNAME, KANNEL_PASSWORD"),
    ({**kannel_settings("http://127.0.0.1:13013/cgi-bin/sendsms"), "TDBOT_KANNEL_TOKEN": "short"}, "at least 16"),
    ({**kannel_settings("http://127.0.0.1:13013/cgi-bin/sendsms"), "TDBOT_KANNEL_TOKEN": "x%dx%dx%dx%dx%dx%d"},
     "at least 16"),
])
def test_contradicting_route_and_kannel_settings_are_refused_at_start(test_config, settings, says) -> None:
    with pytest.raises(ConfigError, match=says):
        create_app({**test_config, **settings})


def test_a_kannel_token_is_real_traffic_so_the_default_secret_is_refused(test_config) -> None:
    live = {"TESTING": False, "TDBOT_SECRET_KEY": "dev-secret-change-me", "PUBLIC_BASE_URL": None}
    with pytest.raises(InsecureConfig, match="TDBOT_KANNEL_TOKEN"):
        create_app({**test_config, **live, **kannel_settings("http://127.0.0.1:13013/cgi-bin/sendsms")})


@pytest.fixture
def phone(app) -> Phone:
    seed_demo(app)
    return Phone(app.test_client(), app, MSISDN)
