"""The console sender is the development phone: what it sends is kept whole in its outbox (where `tdbot chat`,
`tdbot ussd` and `tdbot outbox` read it, as a phone shows an SMS), and its log line says a message went, never what
it said: a verification code is never in a log, whoever formats the line."""

from __future__ import annotations

import json
import logging

from gateway.delivery.senders import ConsoleSender
from gateway.state.keys import OUTBOX, Keys

CODE_SMS = "【中国移动】验证码428613，5分钟内有效，仅用于退订业务，请勿告诉他人。"


def test_the_log_line_says_a_message_went_but_not_its_text(redis, caplog) -> None:
    sender = ConsoleSender(redis, Keys().shared(OUTBOX))
    with caplog.at_level(logging.INFO, logger="gateway.delivery.senders"):
        sid = sender.send("+8613800138000", CODE_SMS, None, reference="m-1")
    [line] = [r.getMessage() for r in caplog.records if r.name == "gateway.delivery.senders"]
    assert "428613" not in line and "验证码" not in line
    assert "+8613800138000" in line and sid in line


def test_the_outbox_keeps_the_whole_message_for_the_phone(redis) -> None:
    sender = ConsoleSender(redis, Keys().shared(OUTBOX))
    sid = sender.send("+8613800138000", CODE_SMS, None, reference="m-1")
    [entry] = [json.loads(raw) for raw in redis.lrange(Keys().shared(OUTBOX), 0, -1)]
    assert (entry["sid"], entry["to"], entry["text"]) == (sid, "+8613800138000", CODE_SMS)
    assert sender.find("+8613800138000", CODE_SMS, None, "m-1") == [sid]
