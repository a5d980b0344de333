"""Demo subscribers, one per carrier, so a newcomer can text TD straight away."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from dialogs.model import Subscriber, Subscription
from gateway.state.subscribers import upsert

if TYPE_CHECKING:  # state/ is below the runtime that holds it
    from gateway.runtime import Runtime

DEMO_NUMBERS = ("+8613800138000", "+8618600000000", "+8618900000000")


def demo_subscribers(today: date) -> list[Subscriber]:
    renews = today + timedelta(days=12)
    packs = {
        "+8613800138000": [
            ("vid", "视频会员", "SPHY", 1500), ("music", "音乐包", "YYB", 1000), ("data", "流量包", "LLB", 2000),
        ],
        "+8618600000000": [("news", "手机报", "SJB", 500), ("game", "游戏包", "YXB", 1500)],
        "+8618900000000": [("cloud", "Cloud Storage", "CLOUD", 800), ("vid", "Video VIP", "VIP", 1500)],
    }
    locales = {"+8613800138000": "zh", "+8618900000000": "en"}
    return [
        Subscriber(
            msisdn=number, locale=locales.get(number),
            subscriptions=tuple(Subscription(i, name, code, fee, renews) for i, name, code, fee in subs),
        )
        for number, subs in packs.items()
    ]


def seed(runtime: Runtime, today: date) -> None:
    """Store the demo subscribers (merged, as any import is) with their renewal reminders."""
    for incoming in demo_subscribers(today):
        upsert(runtime, incoming)
