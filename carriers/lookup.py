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


# Parsed once per distinct number and process: phonenumbers' validation and carrier lookup are regex-heavy, and the
# same numbers text again and again.
@lru_cache(maxsize=65536)
def _parse(raw: str, default_region: str) -> tuple[str, str] | None:
    """(E.164, carrier key) for a valid number, else None."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, _CARRIER_KEYS.get(pn_carrier.name_for_number(number, "en"), "default")


def to_e164(raw: str, default_region: str = "CN") -> str | None:
    parsed = _parse(raw, default_region)
    return parsed[0] if parsed else None


def carrier_for(msisdn: str, override: str | None = None) -> str:
    """Policy key for a number; a known override wins (携号转网 keeps the old prefix)."""
    if override is not None and override.strip().lower() in POLICIES:
        return override.strip().lower()
    parsed = _parse(msisdn, "CN")
    return parsed[1] if parsed else "default"


def policy_of(msisdn: str, override: str | None = None) -> CarrierPolicy:
    """The policy a subscriber is served under: their record's carrier if known, else their number's."""
    return policy_for(carrier_for(msisdn, override))
