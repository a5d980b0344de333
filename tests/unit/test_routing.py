"""The routing rule: which route (carrier link) a message leaves by, as a table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogs.model import Subscriber
from gateway.delivery.routing import SMS, SMS_CHANNELS, Channel, Routing

CMCC, CUCC, CTCC, OTHER = "+8613800138000", "+8613012345678", "+8618912345678", "+14155550100"
TWILIO = Channel("twilio")
KANNEL = Channel("kannel", replies_in_body=False)
USSD = Channel("ussd", carries_sms=False)  # a session screen: it can answer, but cannot carry an SMS


KANNEL_BY_CUCC = Channel("kannel", replies_in_body=False, link="cucc-smpp")  # an MO by China Unicom's link
KANNEL_BY_OTHER = Channel("kannel", replies_in_body=False, link="fake")  # by a link no setting names


def settings(default: str = "twilio", wired: tuple[str, ...] = SMS_CHANNELS, **by_carrier: str) -> Routing:
    return Routing(frozenset(wired), by_carrier, default, {"cmcc-smpp": "cmcc", "cucc-smpp": "cucc"})


# (name, routing settings, number, the subscriber's record: (carrier override, last SMS channel), answering, route)
RULES = [
    ("a reply goes back the way the message came", settings(), CMCC, (None, "twilio"), KANNEL, "kannel-cmcc"),
    ("a reply by Twilio stays on Twilio", settings(), CMCC, (None, "kannel"), TWILIO, "twilio"),
    ("a reply wins over the carrier's route", settings(cmcc="twilio"), CMCC, (None, ""), KANNEL, "kannel-cmcc"),
    ("a notice goes by the carrier's route", settings(cucc="kannel"), CUCC, (None, "twilio"), None, "kannel-cucc"),
    ("else by the last SMS channel", settings(), CTCC, (None, "kannel"), None, "kannel-ctcc"),
    ("else by the default", settings(), CMCC, None, None, "twilio"),
    ("a Kannel default is a link per carrier", settings("kannel"), CUCC, None, None, "kannel-cucc"),
    ("a number of no known carrier: Kannel's default link", settings("kannel"), OTHER, None, None, "kannel-default"),
    ("the record's carrier wins (ported number)", settings(cucc="kannel"), CMCC, ("cucc", ""), None, "kannel-cucc"),
    ("the link is named for the record's carrier", settings(), CMCC, ("ctcc", "kannel"), None, "kannel-ctcc"),
    ("a USSD code SMS: the carrier's route", settings(cmcc="kannel"), CMCC, (None, "twilio"), USSD, "kannel-cmcc"),
    ("a USSD code SMS: else the last SMS channel", settings(), CMCC, (None, "kannel"), USSD, "kannel-cmcc"),
    ("a USSD code SMS: else the default", settings(), CMCC, (None, ""), USSD, "twilio"),
    ("a channel with no sender here: the default (Twilio webhooks in development)",
     settings("console", ("console",)), CMCC, (None, "twilio"), TWILIO, "console"),
    ("a last channel no longer configured is passed over", settings("console", ("console", "twilio")), CMCC,
     (None, "kannel"), None, "console"),
    ("an inbound of no provider is routed like a notice", settings(), CMCC, (None, "kannel"), SMS, "kannel-cmcc"),
    ("a Kannel reply goes back on the link it came by (ported)", settings(), CMCC, (None, ""), KANNEL_BY_CUCC,
     "kannel-cucc"),
    ("the link it came by wins over the record's carrier", settings(), CMCC, ("cmcc", "kannel"), KANNEL_BY_CUCC,
     "kannel-cucc"),
    ("a link no setting names: the carrier's link", settings(), CMCC, (None, ""), KANNEL_BY_OTHER, "kannel-cmcc"),
    ("a notice answers nothing: the carrier's link", settings(cmcc="kannel"), CMCC, (None, "kannel"), None,
     "kannel-cmcc"),
    ("a reply that leaves Kannel ignores its link", settings("console", ("console",)), CMCC, (None, ""),
     KANNEL_BY_CUCC, "console"),
]


@pytest.mark.parametrize(("name", "routing", "msisdn", "record", "answering", "route"), RULES,
                         ids=[r[0] for r in RULES])
def test_the_routing_rule(name, routing: Routing, msisdn: str, record, answering, route: str) -> None:
    subscriber = Subscriber(msisdn, carrier=record[0], sms_channel=record[1]) if record else None
    assert routing.route(msisdn, subscriber, answering) == route


CHANNELS = st.sampled_from(SMS_CHANNELS)


@given(
    wired=st.sets(CHANNELS, min_size=1).map(frozenset), default=CHANNELS,
    by_carrier=st.dictionaries(st.sampled_from(["cmcc", "cucc", "ctcc", "default"]), CHANNELS),
    last=st.sampled_from([*SMS_CHANNELS, ""]),
    answering=st.sampled_from([None, TWILIO, KANNEL, KANNEL_BY_CUCC, KANNEL_BY_OTHER, USSD, SMS]),
    msisdn=st.sampled_from([CMCC, CUCC, CTCC, OTHER]),
)
def test_a_message_only_ever_leaves_by_a_configured_route(wired, default, by_carrier, last, answering, msisdn):
    """Settings name only configured channels (the app refuses others at start): so does every route chosen."""
    routing = Routing(wired | {default}, {k: v for k, v in by_carrier.items() if v in wired}, default,
                      {"cucc-smpp": "cucc"})
    route = routing.route(msisdn, Subscriber(msisdn, sms_channel=last), answering)
    assert route.split("-", 1)[0] in routing.channels
    if answering is not None and answering.carries_sms and answering.name in routing.channels:
        assert route.split("-", 1)[0] == answering.name
