"""The cancel journey through the signed Twilio webhook, the real store and the RQ outbound queue."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from dialogs.reasons import CODE_ATTEMPTS, REQUESTED
from gateway.state.demo import DEMO_NUMBERS
from tests.support.phone import API_TOKEN, Phone, api_headers

CMCC, CUCC, CTCC = DEMO_NUMBERS
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # the clock fixture's start: 10:00 in Shanghai


@pytest.fixture
def phone_for(client, seeded):
    return lambda number: Phone(client, seeded, number)


def redis_state(redis) -> dict[bytes, bytes]:
    """Every key in the test database with its serialised value."""
    return {key: redis.dump(key) for key in sorted(redis.scan_iter(count=1000))}


def statuses(phone: Phone) -> dict[str, str]:
    return {s["id"]: s["status"] for s in phone.subscriber()["subscriptions"]}


JOURNEYS = [
    # number, package picked, its amount to settle in fen, due at (UTC), a word of the reply language
    # China Mobile: 15.00 prorated by day (19 of 30 days), end of the 7th day after, Shanghai.
    (CMCC, "vid", 950, datetime(2026, 12, 2, 15, 59, 59, tzinfo=UTC), "已退订"),
    # China Unicom: the whole month, exactly 24 hours after the cancel confirmation.
    (CUCC, "news", 500, NOW + timedelta(hours=24), "已退订"),  # no locale on record: TD is pinyin, not English
    # China Telecom: 8.00 prorated by day, end of the 15th day after.
    (CTCC, "cloud", 507, datetime(2026, 12, 10, 15, 59, 59, tzinfo=UTC), "cancelled"),
]


@pytest.mark.parametrize(("number", "package", "amount", "due_at", "word"), JOURNEYS, ids=["cmcc", "cucc", "ctcc"])
def test_whole_journey_per_carrier(phone_for, number, package, amount, due_at, word) -> None:
    phone = phone_for(number)
    listing = phone.send("TD")
    assert "1." in listing and "2." in listing
    confirm = phone.send("1")
    assert "Y" in confirm and "N" in confirm
    assert phone.send("Y")
    code = phone.last_code()
    assert phone.send(code) == ""  # the result comes as its own message, not as the reply

    inbox = phone.inbox()
    assert len(inbox) == 2, inbox
    assert code in inbox[0] and code not in inbox[1]
    assert word in inbox[1]

    record = phone.subscriber()
    assert {s: status for s, status in statuses(phone).items() if status == "cancelled"} == {package: "cancelled"}
    [statement] = record["statements"]
    assert statement["subscription_id"] == package
    assert statement["amount_fen"] == amount and isinstance(statement["amount_fen"], int)
    assert datetime.fromisoformat(statement["due_at"]) == due_at
    assert statement["status"] == "open"


@pytest.mark.parametrize("choice", ["1,3", "1，3", "1 3"])
def test_several_packages_in_one_go(phone_for, choice) -> None:
    phone = phone_for(CMCC)
    phone.send("TD")
    confirm = phone.send(choice)
    assert "视频会员" in confirm and "流量包" in confirm and "音乐包" not in confirm
    phone.send("Y")
    phone.send(phone.last_code())
    done = phone.inbox()[-1]
    assert "视频会员已退订" in done and "流量包已退订" in done
    assert statuses(phone) == {"vid": "cancelled", "music": "active", "data": "cancelled"}
    assert sorted(s["subscription_id"] for s in phone.subscriber()["statements"]) == ["data", "vid"]


@pytest.mark.parametrize("command", ["TD ALL", "全部退订"])
def test_everything_in_one_go(phone_for, command) -> None:
    phone = phone_for(CMCC)
    phone.send(command)
    phone.send("是")
    phone.send(phone.last_code())
    done = phone.inbox()[-1]
    assert [line for line in done.splitlines() if "已退订" in line] == [
        "视频会员已退订，结清9.50元，截止12月2日23:59",
        "音乐包已退订，结清6.34元，截止12月2日23:59",
        "流量包已退订，结清12.67元，截止12月2日23:59",
    ]
    assert set(statuses(phone).values()) == {"cancelled"}
    assert len(phone.subscriber()["statements"]) == 3
    assert "没有可退订" in phone.send("TD")


def test_wrong_then_right_code(phone_for) -> None:
    phone = phone_for(CMCC)
    for text in ("TD", "1", "Y"):
        phone.send(text)
    code = phone.last_code()
    wrong = "000000" if code != "000000" else "111111"
    assert "还可尝试4次" in phone.send(wrong)
    assert statuses(phone)["vid"] == "active"
    phone.send(code)
    assert statuses(phone)["vid"] == "cancelled"


def test_expired_code_cancels_nothing_and_a_new_one_works(phone_for, clock) -> None:
    phone = phone_for(CMCC)
    for text in ("TD", "1", "Y"):
        phone.send(text)
    old = phone.last_code()
    clock.advance(minutes=6)
    assert "已过期" in phone.send(old)
    assert statuses(phone)["vid"] == "active"
    assert "已发送" in phone.send("Y")
    new = phone.last_code()
    if new != old:
        assert "验证码错误" in phone.send(old)
        assert statuses(phone)["vid"] == "active"
    phone.send(new)
    assert statuses(phone)["vid"] == "cancelled"


def test_five_wrong_codes_lock_and_escalate(phone_for, seeded) -> None:
    phone = phone_for(CMCC)
    for text in ("TD", "1", "Y"):
        phone.send(text)
    code = phone.last_code()
    wrong = "000000" if code != "000000" else "111111"
    replies = [phone.send(wrong) for _ in range(5)]
    assert "还可尝试1次" in replies[3] and "转人工" in replies[4]
    assert (CMCC, CODE_ATTEMPTS) in seeded.extensions["tdbot"].store.escalations()
    assert "暂停" in phone.send(code)
    assert "暂停" in phone.send("TD")
    assert statuses(phone)["vid"] == "active"


def test_five_wrong_codes_across_several_codes_lock_and_escalate(phone_for, seeded, clock) -> None:
    """A new code, starting over or waiting out the idle timeout does not give back wrong tries."""
    phone = phone_for(CMCC)

    def wrong_guess() -> str:
        return "000000" if phone.last_code() != "000000" else "111111"

    for text in ("TD", "1", "Y"):
        phone.send(text)
    phone.send(wrong_guess())
    phone.send(wrong_guess())
    clock.advance(minutes=2)
    assert "已发送" in phone.send("Y")  # a second code
    assert "还可尝试2次" in phone.send(wrong_guess())
    for text in ("N", "TD", "1"):  # start over: a third code
        phone.send(text)
    clock.advance(minutes=2)
    assert "已发送" in phone.send("Y")
    assert "还可尝试1次" in phone.send(wrong_guess())
    clock.advance(minutes=11)  # the flow times out: a fourth code
    for text in ("TD", "1", "Y"):
        phone.send(text)
    assert "转人工" in phone.send(wrong_guess())
    assert (CMCC, CODE_ATTEMPTS) in seeded.extensions["tdbot"].store.escalations()
    assert "暂停" in phone.send(phone.last_code())
    assert statuses(phone)["vid"] == "active"


def test_a_right_code_clears_the_wrong_tries(phone_for, clock) -> None:
    phone = phone_for(CMCC)
    for text in ("TD", "1", "Y"):
        phone.send(text)
    code = phone.last_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        phone.send(wrong)
    phone.send(code)
    assert statuses(phone)["vid"] == "cancelled"
    clock.advance(minutes=2)
    for text in ("TD", "1", "Y"):
        phone.send(text)
    wrong = "000000" if phone.last_code() != "000000" else "111111"
    assert "还可尝试4次" in phone.send(wrong)


def test_a_retried_message_sid_gets_the_same_reply_and_changes_nothing(phone_for, redis) -> None:
    phone = phone_for(CMCC)
    phone.send("TD")
    first = phone.send("1", sid="SMretried")
    phone.deliver()
    before = redis_state(redis)
    assert phone.send("1", sid="SMretried") == first
    assert redis_state(redis) == before  # nothing written, nothing queued


def test_a_retried_code_confirmation_sends_nothing_twice(phone_for) -> None:
    phone = phone_for(CMCC)
    phone.send("TD")
    phone.send("1")
    phone.send("Y", sid="SMyes")
    phone.send("Y", sid="SMyes")
    code = phone.last_code()
    phone.send(code, sid="SMcode")
    phone.send(code, sid="SMcode")
    assert len(phone.inbox()) == 2
    assert len(phone.subscriber()["statements"]) == 1


def _at_once(app, number: str, texts: list[str]) -> list[str]:
    """Post `texts` for one number from separate threads and clients, released together."""
    barrier, replies = threading.Barrier(len(texts)), [""] * len(texts)

    def post(index: int) -> None:
        phone = Phone(app.test_client(), app, number)
        barrier.wait(timeout=10)
        replies[index] = phone.send(texts[index])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return replies


def test_two_yes_at_once_send_one_code(phone_for, seeded) -> None:
    phone = phone_for(CMCC)
    phone.send("TD")
    phone.send("1")
    replies = _at_once(seeded, CMCC, ["Y", "Y"])
    assert sorted("已发送" in r for r in replies) == [False, True], replies
    assert len(phone.inbox()) == 1
    assert len(seeded.extensions["tdbot"].store.load_dialog(CMCC).codes_sent) == 1


def test_two_messages_at_once_lose_no_update(phone_for, seeded) -> None:
    phone = phone_for(CMCC)
    store = seeded.extensions["tdbot"].store
    for _ in range(5):
        _at_once(seeded, CMCC, ["STOP", "TD"])
        assert store.load_subscriber(CMCC).opted_out is True
        assert store.load_dialog(CMCC).stage == "choosing"
        _at_once(seeded, CMCC, ["START", "N"])
        assert store.load_subscriber(CMCC).opted_out is False
        assert store.load_dialog(CMCC).stage == "idle"
    assert len(store.conversation(CMCC)) == 20
    assert phone.subscriber()["opted_out"] is False


def test_two_codes_at_once_cancel_once(phone_for, seeded) -> None:
    phone = phone_for(CMCC)
    for text in ("TD", "1", "Y"):
        phone.send(text)
    code = phone.last_code()
    _at_once(seeded, CMCC, [code, code])
    assert len(phone.inbox()) == 2  # the code and one confirmation
    assert len(phone.subscriber()["statements"]) == 1


@pytest.mark.parametrize(("text", "expect"), [("ＴＤ１", "您将退订"), ("ｔｄ　１", "您将退订"), ("退订", "回复序号"),
                                              ("退定", "回复序号")])
def test_full_width_and_typos(phone_for, text, expect) -> None:
    assert expect in phone_for(CMCC).send(text)


def test_full_width_td1_cancels_the_first_package(phone_for) -> None:
    phone = phone_for(CMCC)
    assert "视频会员" in phone.send("ＴＤ１")
    phone.send("Ｙ")
    phone.send(phone.last_code())
    assert statuses(phone)["vid"] == "cancelled"


# A +86 number: TD is pinyin, so the country's language; English words get English.
@pytest.mark.parametrize(("text", "word"), [("TD", "未查询到"), ("退订", "未查询到"), ("HELP", "no monthly packages")])
def test_unknown_number_gets_a_clear_reply_and_nothing_is_stored(client, app, redis, text, word) -> None:
    stranger = Phone(client, app, "+8613900000001")
    before = redis_state(redis)
    assert word in stranger.send(text)
    assert redis_state(redis) == before
    assert stranger.client.get("/api/v1/subscribers/+8613900000001", headers=api_headers()).status_code == 404


def test_td_with_no_active_packages(client, app) -> None:
    number = "+8613700000000"
    response = client.put(f"/api/v1/subscribers/{number}", json={"locale": "zh", "subscriptions": []},
                          headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200
    phone = Phone(client, app, number)
    assert "没有可退订" in phone.send("TD")
    assert "没有可退订" in phone.send("TD ALL")
    assert phone.inbox() == []


def test_td_after_everything_is_cancelled(phone_for) -> None:
    phone = phone_for(CUCC)
    phone.send("TD ALL")
    phone.send("Y")
    phone.send(phone.last_code())
    assert "没有可退订" in phone.send("TD")


def test_stop_mid_flow_is_honoured_and_the_flow_goes_on(phone_for) -> None:
    phone = phone_for(CMCC)
    phone.send("TD")
    phone.send("1")
    assert "关闭提醒" in phone.send("STOP")
    assert phone.subscriber()["opted_out"] is True
    phone.send("Y")
    phone.send(phone.last_code())
    assert statuses(phone)["vid"] == "cancelled"


def test_human_request_is_recorded(phone_for, seeded) -> None:
    assert "人工" in phone_for(CMCC).send("人工")
    assert (CMCC, REQUESTED) in seeded.extensions["tdbot"].store.escalations()


def test_query_and_bill_after_a_cancel(phone_for) -> None:
    phone = phone_for(CMCC)
    assert "12月7日续订" in phone.send("0000")
    phone.send("1")
    phone.send("Y")
    phone.send(phone.last_code())
    assert "视频会员 已退订" in phone.send("查询")
    assert "视频会员 9.50元 待缴，截止12月2日23:59" in phone.send("ZD")
