"""Carrier policy as data, plus small pure functions over it."""

from carriers.deadlines import (
    allowed_send_time,
    in_quiet_hours,
    next_renewal,
    on_anchor,
    period_bounds,
    period_cost_fen,
    reminder_slots,
    renewal_after,
    settlement_deadline,
    shift_out_of_quiet_hours,
)
from carriers.lookup import carrier_for, policy_of, to_e164
from carriers.policy import (
    DEFAULT_POLICY,
    POLICIES,
    CarrierPolicy,
    Plan,
    late_fee_fen,
    policy_for,
)

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "CarrierPolicy",
    "Plan",
    "allowed_send_time",
    "carrier_for",
    "in_quiet_hours",
    "late_fee_fen",
    "next_renewal",
    "on_anchor",
    "period_bounds",
    "period_cost_fen",
    "policy_for",
    "policy_of",
    "reminder_slots",
    "renewal_after",
    "settlement_deadline",
    "shift_out_of_quiet_hours",
    "to_e164",
]
