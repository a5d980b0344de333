"""One operator's journey in a real browser (Debian's chromium, driven by playwright) against gunicorn and an RQ
worker: an SMS 人工 opens an escalation, the bot stays quiet, the agent replies and resolves it, the bot answers
again; then the subscriber's timeline and the dashboard's charts. Screenshots go to the test's tmp dir.

Needs chromium (`apt-get install -y chromium`); playwright's own browser download is never used. Skipped without
it, except in CI (CI=true, or .ci/run's CI=1), where a browser that cannot start fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from gateway.state import operators
from tests.support.live import running
from tests.support.ops import PASSWORD, add_operator
from tests.support.phone import seed_demo

NUMBER = "+8613800138000"
CHROMIUM = os.environ.get("TDBOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
REPLY = "您好，我是客服小王，已为您核对账单。"
INSTALL = "chromium is needed for the browser test: apt-get install -y chromium"
# CI services set CI=true, and .ci/run sets CI=1 when it is unset: there a browser that cannot start is a failure.
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings playwright")
    try:
        with sync_api.sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            yield launched
            launched.close()
    except sync_api.Error as exc:
        if IN_CI or "Executable doesn't exist" not in str(exc):
            raise
        pytest.skip(f"{INSTALL} ({exc.message.splitlines()[0]})")


@pytest.fixture(autouse=True)
def need_chromium() -> None:
    if not Path(CHROMIUM).exists() and not IN_CI:
        pytest.skip(INSTALL)


def go(page, selector: str) -> None:
    """Click what leads to another page, and wait for that page: nothing is read from the one left behind."""
    with page.expect_navigation():
        page.click(selector)


def wait_for(check, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_an_agent_answers_an_sms_human_request_in_a_browser(app, redis, redis_url, tmp_path, browser) -> None:
    seed_demo(app)
    add_operator(app, "wang", operators.AGENT)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with running(redis_url, tmp_path, TDBOT_TRAFFIC_FLUSH_SECONDS="1") as live:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            journey(live, page, redis, shots)
        except Exception:
            page.screenshot(path=str(shots / "failed.png"), full_page=True)
            print(f"the processes' logs:\n{live.log_text()[-4000:]}")
            raise
    names = sorted(p.name for p in shots.iterdir())
    assert names == ["1-dashboard.png", "2-escalations.png", "3-escalation-open.png", "4-escalation-replied.png",
                     "5-escalation-resolved.png", "6-timeline.png", "7-dashboard-after.png"]
    print(f"screenshots in {shots}: {', '.join(names)}")


def journey(live, page, redis, shots: Path) -> None:
    """Sign in, see the escalation an SMS 人工 opened and the bot quiet, take it, reply, resolve; then the timeline
    and the dashboard."""
    assert "人工" in live.sms(NUMBER, "人工", "SMbrowser0000000000000000000001")
    assert "客服会在此回复" in live.sms(NUMBER, "我的账单不对，多扣了钱", "SMbrowser0000000000000000000002")
    assert live.sms(NUMBER, "还在吗？", "SMbrowser0000000000000000000003") == ""  # the bot stays quiet

    page.goto(f"{live.base}/ops/")
    page.fill("input[name=name]", "wang")
    page.fill("input[name=password]", PASSWORD)
    go(page, "button[type=submit]")
    assert page.url == f"{live.base}/ops/"
    page.screenshot(path=str(shots / "1-dashboard.png"), full_page=True)

    go(page, "header nav >> text=Escalations")
    assert page.locator("table.escalations tbody tr").count() == 1
    assert "+86 138****8000" in page.inner_text("table.escalations") and NUMBER not in page.content()
    page.screenshot(path=str(shots / "2-escalations.png"), full_page=True)
    go(page, "table.escalations a")
    conversation = page.inner_text("ol.conversation")
    assert "我的账单不对，多扣了钱" in conversation and "还在吗？" in conversation
    assert "The bot is quiet" in page.inner_text("main")
    page.screenshot(path=str(shots / "3-escalation-open.png"), full_page=True)

    go(page, "#take")
    page.fill("textarea[name=text]", REPLY)
    go(page, "#send-reply")
    wait_for(lambda: any(e["to"] == NUMBER and e["text"].endswith(REPLY)
                         for e in map(json.loads, redis.lrange("tdbot:outbox", 0, -1))))
    page.reload()
    assert REPLY in page.inner_text("ol.conversation")
    page.screenshot(path=str(shots / "4-escalation-replied.png"), full_page=True)

    page.fill("input[name=note]", "多扣费用已核对，已说明")
    go(page, "#resolve")
    assert "resolved" in page.inner_text("h1")
    assert "视频会员" in live.sms(NUMBER, "0000", "SMbrowser0000000000000000000004")  # the bot answers again
    page.screenshot(path=str(shots / "5-escalation-resolved.png"), full_page=True)

    go(page, "dl.facts >> text=+86 138****8000")
    timeline = page.inner_text("ol.timeline")
    for seen in ("wang resolve", "wang reply", "sent by a person", "handed to a person", "0000"):
        assert seen in timeline, seen
    wait_for(lambda: page.reload() is not None and "[agent, sent]" in page.inner_text("ol.timeline"))
    page.screenshot(path=str(shots / "6-timeline.png"), full_page=True)

    go(page, "header nav >> text=Dashboard")
    charts = page.locator("svg.chart")
    assert charts.count() == 5
    assert page.locator("svg.chart polyline.series").count() >= 2  # messages in and out, per channel
    assert "in twilio" in page.inner_text("section.charts") and "out console" in page.inner_text("section.charts")
    page.screenshot(path=str(shots / "7-dashboard-after.png"), full_page=True)
