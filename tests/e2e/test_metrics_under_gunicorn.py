"""/metrics under gunicorn's two workers adds up both, whichever one answers the scrape; logs are JSON lines with
numbers masked and no code."""

from __future__ import annotations

import json
import re

import requests

from tests.support.live import running
from tests.support.phone import seed_demo

NUMBER = "+8613800138000"
TEXTS = 12


def _inbound(metrics: str) -> float:
    found = re.findall(r'^tdbot_messages_total\{channel="twilio",direction="in",outcome="answered"\} (\S+)$', metrics,
                       re.MULTILINE)
    return sum(map(float, found))


def test_every_worker_counts_in_every_scrape_and_logs_hide_numbers(app, redis_url, tmp_path) -> None:
    seed_demo(app)
    with running(redis_url, tmp_path, worker=False) as live:
        for i in range(TEXTS):
            assert live.sms(NUMBER, "0000", f"SMmetrics{i:026d}")
        scrapes = [requests.get(f"{live.base}/metrics", timeout=10).text for _ in range(8)]
        assert {_inbound(s) for s in scrapes} == {TEXTS}
        assert all("tdbot_step_seconds_bucket" in s and 'tdbot_queue_jobs{queue="outbound"' in s for s in scrapes)
        requests.get(f"{live.base}/api/v1/subscribers/{NUMBER}", timeout=10)
    lines = [line for line in live.log_text().splitlines() if line.strip()]
    assert lines and all(json.loads(line)["message"] is not None for line in lines)
    assert NUMBER not in live.log_text() and "13800138000" not in live.log_text()
    assert "+86 138****8000" in live.log_text()
