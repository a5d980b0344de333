"""Which route (carrier link) an outbound message leaves by: the rule, pure, over this deployment's settings.

A route is an SMS channel with a sender (`console`, `twilio`, `kannel`); Kannel has one link per carrier, so its
routes are named for the carrier too (`kannel-cmcc`), each with its own smsc, short code and pace.

The rule, in order:
1. A message answering an inbound one (a step's reply, or anything the step sends) goes back through the channel it
   came in on, if that channel carries SMS and has a sender here, and on the carrier link it came in on (Kannel's smsc
   id, when a link setting names it). A USSD session carries no SMS: its code goes on.
2. Else the carrier's route, `TDBOT_ROUTE_<CARRIER>`.
3. Else the SMS channel the subscriber last texted on (recorded by each step).
4. Else this deployment's default, `TDBOT_ROUTE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from carriers import POLICIES, carrier_for
from dialogs.model import Subscriber
from gateway import config as settings

CONSOLE = "console"
TWILIO = "twilio"
KANNEL = "kannel"
SMS_CHANNELS = (CONSOLE, TWILIO, KANNEL)
PER_CARRIER = frozenset({KANNEL})  # channels with one link per carrier


@dataclass(frozen=True)
class Channel:
    """What the service needs to know about the way a message came in."""

    name: str
    replies_in_body: bool = True  # the provider's HTTP answer carries the reply (TwiML, a USSD screen)
    carries_sms: bool = True  # outbound SMS can go back the way it came
    link: str = ""  # the carrier link it came in on, as the provider names it (Kannel's smsc id, %i)


SMS = Channel("sms", carries_sms=False)  # of no particular provider: answered in the body, routed like a notice


@dataclass(frozen=True)
class Routing:
    """This deployment's routing settings."""

    channels: frozenset[str]  # SMS channels with a sender configured
    by_carrier: Mapping[str, str]  # carrier key -> channel, from TDBOT_ROUTE_<CARRIER>
    default: str  # TDBOT_ROUTE
    links: Mapping[str, str] = field(default_factory=dict)  # a carrier link's id (KANNEL_SMSC_<CARRIER>) -> carrier

    def route(self, msisdn: str, subscriber: Subscriber | None = None, answering: Channel | None = None) -> str:
        """The route of a message to `msisdn` (whose record, if any, is `subscriber`), answering an inbound message
        that came by `answering`, or nothing."""
        carrier = carrier_for(msisdn, subscriber.carrier if subscriber else None)
        channel = self.channel(carrier, answering, subscriber.sms_channel if subscriber else "")
        if channel not in PER_CARRIER:
            return channel
        came_by = self.links.get(answering.link) if answering is not None and answering.name == channel else None
        return f"{channel}-{came_by or carrier}"

    def channel(self, carrier: str, answering: Channel | None, last_sms: str) -> str:
        if answering is not None and answering.carries_sms and answering.name in self.channels:
            return answering.name
        for candidate in (self.by_carrier.get(carrier, ""), last_sms):
            if candidate in self.channels:
                return candidate
        return self.default


def from_config(config: dict, channels: frozenset[str]) -> Routing:
    """The routing rule's settings, for the SMS `channels` that have a sender here. ConfigError for a route setting
    that names an unknown carrier, or a channel that is not configured."""
    default = str(config.get("TDBOT_ROUTE") or next(c for c in (TWILIO, KANNEL, CONSOLE) if c in channels))
    by_carrier = {}
    for name, value in config.items():
        if name.startswith(settings.PER_CARRIER_ROUTE) and value:
            carrier = name.removeprefix(settings.PER_CARRIER_ROUTE).lower()
            if carrier not in POLICIES:
                raise settings.ConfigError(f"{name}: no carrier {carrier!r} (carriers: {', '.join(POLICIES)})")
            by_carrier[carrier] = _configured(name, str(value).lower(), channels)
    return Routing(channels, by_carrier, _configured("TDBOT_ROUTE", default.lower(), channels), _links(config))


def _links(config: dict) -> dict[str, str]:
    """Each carrier link's smsc id (KANNEL_SMSC_<CARRIER>) -> its carrier; one several carriers share (an aggregator's
    link) names none of them, and a reply to what came by it goes by the carrier's route."""
    carriers: dict[str, set[str]] = {}
    for name, value in config.items():
        if name.startswith(settings.PER_CARRIER_SMSC) and value:
            carrier = name.removeprefix(settings.PER_CARRIER_SMSC).lower()
            if carrier not in POLICIES:
                raise settings.ConfigError(f"{name}: no carrier {carrier!r} (carriers: {', '.join(POLICIES)})")
            carriers.setdefault(str(value), set()).add(carrier)
    return {link: next(iter(named)) for link, named in carriers.items() if len(named) == 1}


def _configured(name: str, channel: str, channels: frozenset[str]) -> str:
    if channel not in SMS_CHANNELS:
        raise settings.ConfigError(f"{name}={channel}: a route is one of {', '.join(SMS_CHANNELS)}")
    if channel not in channels:
        raise settings.ConfigError(f"{name}={channel}, but {channel} is not configured (see the README's settings)")
    return channel
