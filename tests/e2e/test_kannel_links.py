"""A reply goes back on the carrier link its message came in on, through a real Kannel with one fake SMSC per
carrier link (docs/delivery.md, "Routes"): fakesmsc on each plays a phone behind that carrier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kannel import Handset, Kannel, LiveApp, running_kannel, work
from tests.support.phone import seed_demo
from tests.support.processes import wait_for

LINKS = ("cmcc-link", "cucc-link")
LINK_SETTINGS = {"KANNEL_SMSC_CMCC": "cmcc-link", "KANNEL_SMSC_CUCC": "cucc-link"}
PORTED = "13800138000"  # the demo's China Mobile number, its prefix says so, now on China Unicom (携号转网)


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory, live: LiveApp) -> Iterator[Kannel]:
    yield from running_kannel(tmp_path_factory, live, LINKS)


@pytest.fixture
def phones(kannel: Kannel, request: pytest.FixtureRequest) -> Iterator[dict[str, Handset]]:
    on = {link: Handset(kannel, f"fakesmsc-{request.node.name}-{link}.log", link) for link in LINKS}
    yield on
    for phone in on.values():
        phone.stop()


def test_a_reply_goes_back_on_the_link_its_message_came_in_on(serve, phones: dict[str, Handset]) -> None:
    app = serve(**LINK_SETTINGS)
    seed_demo(app)
    runtime = app.extensions["tdbot"]
    phones["cucc-link"].text("TD", sender=PORTED, to="10010")  # in by China Unicom's link

    def answered() -> list[tuple[str, str, str]]:
        return phones["cucc-link"].received() or phones["cmcc-link"].received()

    wait_for(answered, "the reply on either link", work=lambda: work(runtime))
    [(sender, _, listing)] = phones["cucc-link"].received()
    assert "1.视频会员" in listing and sender == "10010"  # from the short code it texted, on the link it came in on
    assert phones["cmcc-link"].received() == []
