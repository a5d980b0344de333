"""Each route's pace, read from the environment (README, Settings: TDBOT_SENDER_MPS and TDBOT_MPS_<ROUTE>)."""

from __future__ import annotations

import pytest

from gateway.config import from_env
from gateway.delivery.pacing import mps_for


@pytest.mark.parametrize(("environ", "sender", "mps"), [
    ({}, "twilio", 1.0),
    ({"TDBOT_SENDER_MPS": "5"}, "twilio", 5.0),
    ({"TDBOT_SENDER_MPS": "5", "TDBOT_MPS_TWILIO": "20"}, "twilio", 20.0),
    ({"TDBOT_SENDER_MPS": "5", "TDBOT_MPS_TWILIO": "20"}, "console", 5.0),
    ({"TDBOT_MPS_KANNEL_CMCC": "100"}, "kannel-cmcc", 100.0),
    ({"TDBOT_MPS_KANNEL": "50", "TDBOT_MPS_KANNEL_CMCC": "100"}, "kannel-cucc", 50.0),  # the channel's own rate
    ({"TDBOT_MPS_KANNEL": "50", "TDBOT_MPS_KANNEL_CMCC": "100"}, "kannel-cmcc", 100.0),
    ({"TDBOT_SENDER_MPS": "5"}, "kannel-ctcc", 5.0),
])
def test_each_route_has_its_own_rate_from_the_environment(environ, sender, mps):
    assert mps_for(from_env(environ), sender) == mps
