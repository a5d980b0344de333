"""A sendsms request that went out and got no answer: the message may be on its way, and sendsms cannot be asked, so
a person decides and nothing is sent again blindly (docs/delivery.md). (Answers sendsms does give: the live tests in
tests/e2e/test_kannel_journey.py.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dialogs.reasons import SEND_UNCERTAIN
from gateway import create_app
from gateway.delivery.senders import KannelSender, SendUncertain
from gateway.state.messages import SENDING
from tests.support.delivery import MSISDN, queue_message, stored
from tests.support.kannel import USERNAME, kannel_settings, work
from tests.support.phone import seed_demo
from tests.support.scheduled import run_scheduled


class Silent:
    """A server that takes connections (the kernel's backlog does) and never answers."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/cgi-bin/sendsms"

    def connections(self) -> int:
        self.socket.setblocking(False)
        count = 0
        while True:
            try:
                self.socket.accept()[0].close()
            except BlockingIOError:
                return count
            count += 1


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.socket.close()


def test_a_request_without_an_answer_is_uncertain_and_quotes_no_password(silent: Silent) -> None:
    sender = KannelSender(silent.url, USERNAME, "s3cr3t-pw", "10086", timeout=(1.0, 0.3))
    with pytest.raises(SendUncertain) as uncertain:
        sender.send(MSISDN, "您好", None, reference="m1")
    assert "s3cr3t-pw" not in str(uncertain.value) and uncertain.value.__suppress_context__


def test_a_send_sendsms_never_answered_goes_to_a_person_and_never_out_again(test_config, silent: Silent) -> None:
    link = KannelSender(silent.url, USERNAME, "s3cr3t-pw", "10086", name="kannel-cmcc", timeout=(1.0, 0.3))
    app = create_app({**test_config, **kannel_settings(silent.url), "SENDER": link})
    seed_demo(app)
    runtime = app.extensions["tdbot"]
    message = queue_message(runtime, route="kannel-cmcc")
    work(runtime)
    assert stored(runtime, message).status == SENDING
    assert (MSISDN, SEND_UNCERTAIN) in runtime.store.escalations()

    run_scheduled(runtime, 86400)
    assert silent.connections() == 1 and stored(runtime, message).status == SENDING
