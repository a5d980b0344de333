"""MSISDN normalisation and MSISDN → carrier key."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import carrier as pn_carrier

from carriers.policy import POLICIES, CarrierPolicy, policy_for

_CARRIER_KEYS = {
    "China Mobile": "cmcc",
    "China Unicom": "cucc",
    "China Telecom": "ctcc",
}


@lru_cache(maxsize=65536)
def to_e164(raw: str, default_region: str = "CN") -> str | None:
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=65536)
def carrier_for(msisdn: str, override: str | None = None) -> str:
    """Policy key for a number; a known override wins (携号转网 keeps the old prefix)."""
    if override is not None and override.strip().lower() in POLICIES:
        return override.strip().lower()
    e164 = to_e164(msisdn)
    if e164 is None:
        return "default"
    name = pn_carrier.name_for_number(phonenumbers.parse(e164), "en")
    return _CARRIER_KEYS.get(name, "default")


def policy_of(msisdn: str, override: str | None = None) -> CarrierPolicy:
    """The policy a subscriber is served under: their record's carrier if known, else their number's."""
    return policy_for(carrier_for(msisdn, override))
