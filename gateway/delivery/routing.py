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

from carriers import carrier_for
from dialogs.model import Subscriber

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
