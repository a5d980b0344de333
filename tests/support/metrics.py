"""Reading /metrics (Prometheus text) in tests."""

from __future__ import annotations

import re

MESSAGES = "tdbot_messages_total"


def samples(text: str, name: str) -> dict[str, float]:
    return {labels: float(value) for labels, value in re.findall(rf"^{name}\{{(.*)\}} (\S+)$", text, re.MULTILINE)}


def receipts_counted(client, channel: str) -> dict[str, float]:
    """What /metrics counts of delivery receipts on `channel`, by status (what this process counted so far)."""
    counted = samples(client.get("/metrics").get_data(as_text=True), MESSAGES)
    return {status: counted.get(f'channel="{channel}",direction="out",outcome="{status}"', 0.0)
            for status in ("sent", "delivered", "undelivered", "failed")}
